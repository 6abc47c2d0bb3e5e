"""plot_metric.py: smoothing, the bootstrap band, loading ours and the paper code's files, the CLI and its errors."""
import os
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest

import plot_metric
from plot_metric import bootstrap_band, load_curve, main, smooth

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_ours(path, reward_rates, eval_times=None):
    reward_rates = np.asarray(reward_rates, dtype=np.float32)
    if eval_times is None:
        eval_times = np.arange(len(reward_rates), dtype=np.int64) * 500
    data = {"config": {"num_seeds": reward_rates.shape[1], "eval_frequency": 500},
            "metrics": {"reward_rates": reward_rates, "eval_times": np.asarray(eval_times)}, "meta": {}}
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return str(path)


def write_paper_style(path, reward_rates):
    """The original code's format: SimpleNamespace config, lists of per-eval jax (S,) arrays and int times."""
    import jax.numpy as jnp
    data = {"config": types.SimpleNamespace(num_seeds=reward_rates.shape[1], eval_frequency=500),
            "metrics": {"reward_rates": [jnp.asarray(row) for row in reward_rates],
                        "eval_times": [i * 500 for i in range(len(reward_rates))]}}
    with open(path, "wb") as f:
        f.write(pickle.dumps(data))
    return str(path)


@pytest.fixture
def rates():
    rng = np.random.default_rng(1)
    return (np.linspace(0, 1, 12)[:, None] + 0.1 * rng.standard_normal((12, 4))).astype(np.float32)


@pytest.fixture
def ours(tmp_path, rates):
    return write_ours(tmp_path / "ours.out", rates)


# --- smoothing ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("window", [1, 2, 3, 12])
def test_smooth_matches_hand_computed_moving_average(rates, window):
    times = np.arange(12) * 500
    values, smoothed_times = smooth(rates, times, window)
    expected_times = np.array([times[i:i + window].mean() for i in range(12 - window + 1)])
    expected_values = np.stack([np.convolve(rates[:, s], np.ones(window) / window, mode="valid")
                                for s in range(rates.shape[1])], axis=1)
    assert values.shape == (12 - window + 1, 4) and smoothed_times.shape == (12 - window + 1,)
    np.testing.assert_allclose(smoothed_times, expected_times, rtol=0, atol=1e-9)
    np.testing.assert_allclose(values, expected_values, rtol=1e-6, atol=1e-6)


def test_smooth_by_hand_small_example():
    values = np.array([[1.0, 10.0], [2.0, 20.0], [4.0, 40.0], [8.0, 80.0]])
    smoothed, times = smooth(values, [0, 1, 2, 3], 2)
    np.testing.assert_allclose(smoothed, [[1.5, 15.0], [3.0, 30.0], [6.0, 60.0]])
    np.testing.assert_allclose(times, [0.5, 1.5, 2.5])


def test_smooth_rejects_bad_window(rates):
    with pytest.raises(ValueError):
        smooth(rates, np.arange(12), 0)
    with pytest.raises(ValueError):
        smooth(rates, np.arange(12), 13)


# --- bootstrap band ----------------------------------------------------------------------------------

def test_band_contains_mean_and_is_reproducible():
    values = np.random.default_rng(0).standard_normal((50, 8))
    mean, low, high = bootstrap_band(values, rng=3)
    np.testing.assert_allclose(mean, values.mean(axis=1))
    assert np.all(low <= mean) and np.all(mean <= high) and np.all(low < high)
    again = bootstrap_band(values, rng=3)
    for a, b in zip((mean, low, high), again):
        np.testing.assert_array_equal(a, b)


def test_band_shrinks_as_seeds_agree():
    noise = np.random.default_rng(0).standard_normal((20, 10))
    widths = []
    for spread in (1.0, 0.1, 0.01):
        _, low, high = bootstrap_band(5.0 + spread * noise, rng=0)
        widths.append(np.mean(high - low))
    assert widths[0] > widths[1] > widths[2] > 0
    np.testing.assert_allclose(widths[1] / widths[0], 0.1, rtol=1e-6)  # same resamples: width scales exactly


def test_band_collapses_for_identical_seeds():
    values = np.tile(np.array([[0.1], [0.3], [-2.0]]), (1, 7))
    mean, low, high = bootstrap_band(values, rng=0)
    np.testing.assert_array_equal(mean, [0.1, 0.3, -2.0])
    np.testing.assert_array_equal(low, mean)
    np.testing.assert_array_equal(high, mean)
    mean, low, high = bootstrap_band(np.array([[4.0]]), rng=0)  # a single seed: no spread either
    assert mean[0] == low[0] == high[0] == 4.0


def test_band_width_matches_normal_theory():
    """Seeds ~ N(mu, 1): the 95% band of the mean is about 2 * 1.96 / sqrt(S) wide.

    Tolerance: the width averaged over 40 time points must be within 5% of the theory. The sources of error are
    the sample std (~1/sqrt(2S) = 3.5% per point), the percentile Monte Carlo error with 1000 resamples (~3% per
    point) and the plug-in bias sqrt((S-1)/S) (0.1%); averaged over 40 points that is about 1%, so 5% is 5 sigma.
    Each single time point must be within 20%.
    """
    num_seeds, mu = 400, 3.0
    values = mu + np.random.default_rng(7).standard_normal((40, num_seeds))
    mean, low, high = bootstrap_band(values, rng=11)
    expected = 2 * 1.96 / np.sqrt(num_seeds)
    widths = high - low
    assert abs(widths.mean() / expected - 1) < 0.05
    assert np.all(np.abs(widths / expected - 1) < 0.20)
    np.testing.assert_allclose(mean, mu, atol=5 / np.sqrt(num_seeds))


def test_band_percentiles_follow_confidence():
    values = np.random.default_rng(0).standard_normal((5, 30))
    _, low95, high95 = bootstrap_band(values, confidence=95, rng=0)
    _, low50, high50 = bootstrap_band(values, confidence=50, rng=0)
    assert np.all(low95 < low50) and np.all(high50 < high95)


# --- loading -----------------------------------------------------------------------------------------

def test_paper_style_file_loads_like_ours(tmp_path, rates, ours):
    paper = write_paper_style(tmp_path / "paper.out", rates)
    for path in (ours, paper):
        values, times = load_curve(path, "reward_rates", frequency=1)
        np.testing.assert_allclose(values, rates)
        np.testing.assert_array_equal(times, np.arange(12) * 500)
    values, times = load_curve(paper, "reward_rates", frequency=3)
    np.testing.assert_allclose(values, rates[::3])
    np.testing.assert_array_equal(times, [0, 1500, 3000, 4500])


# --- command line, end to end ------------------------------------------------------------------------

def test_main_end_to_end_writes_png(tmp_path, rates, ours, capsys):
    paper = write_paper_style(tmp_path / "paper.out", rates[:, :3] + 0.5)
    out = tmp_path / "fig.png"
    status = main(["--data", ours, paper, "--window", "3", "--frequency", "2", "--metric", "reward_rates",
                   "--output", str(out), "--labels", "ours", "paper", "--bootstrap-seed", "5", "--title", "T"])
    assert status == 0
    assert out.exists() and out.stat().st_size > 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out) in capsys.readouterr().out


def test_figure_has_one_curve_per_file_with_its_band_in_words(tmp_path, rates, ours):
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    other = write_ours(tmp_path / "other.out", rates + 1)
    curves = [smooth(*load_curve(p, "reward_rates", 1), 2) for p in (ours, other)]
    fig = plot_metric.make_figure(curves, [ours, other], "reward_rates")
    try:
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"{ours} (mean and range of 4 seeds)",
                                                                       f"{other} (mean and range of 4 seeds)"]
        assert len(ax.lines) == 2 and len(ax.collections) == 2  # a mean line and a band each
        np.testing.assert_allclose(ax.lines[0].get_ydata(), curves[0][0].mean(axis=1))
        np.testing.assert_allclose(ax.lines[0].get_xdata(), curves[0][1])
        assert ax.get_ylabel() == "reward_rates" and ax.get_xlabel() == "environment steps per seed"
        assert all(g.get_visible() for g in ax.get_xgridlines() + ax.get_ygridlines())
    finally:
        plt.close(fig)


def test_main_without_display_saves_default_name(tmp_path, ours, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    assert main(["-d", ours, "-w", "2", "-f", "1", "-m", "reward_rates"]) == 0
    assert (tmp_path / "reward_rates.png").stat().st_size > 0
    assert "reward_rates.png" in capsys.readouterr().out


def test_script_runs_from_repo_root(tmp_path, ours):
    out = tmp_path / "cli.png"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "plot_metric.py", "-d", ours, "-O", str(out)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0
    bad = subprocess.run([sys.executable, "plot_metric.py", "-d", str(tmp_path / "nope.out")], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.splitlines()) == 1


# --- bad input: one line on stderr, status 2 ---------------------------------------------------------

def _bad_cases(tmp_path, ours):
    corrupt = tmp_path / "corrupt.out"
    corrupt.write_bytes(pickle.dumps({"metrics": {"reward_rates": np.ones((3, 2))}})[:20])
    unsafe = tmp_path / "unsafe.out"
    unsafe.write_bytes(pickle.dumps({"metrics": os.getcwd}))  # a reference to a function
    short = write_ours(tmp_path / "short.out", np.ones((4, 2)))
    png = str(tmp_path / "x.png")
    return {
        "missing file": (["-d", str(tmp_path / "missing.out"), "-O", png], "not found"),
        "corrupt file": (["-d", str(corrupt), "-O", png], "corrupt"),
        "unsafe file": (["-d", str(unsafe), "-O", png], "refusing"),
        "unknown metric": (["-d", ours, "-m", "returns", "-O", png], "available metrics: eval_times, reward_rates"),
        "window too large": (["-d", short, "-w", "5", "-O", png], "larger than the number of points (4)"),
        "window too large after frequency": (["-d", short, "-w", "3", "-f", "2", "-O", png], "points (2)"),
        "window zero": (["-d", ours, "-w", "0", "-O", png], "window must be an integer >= 1"),
        "frequency negative": (["-d", ours, "-f", "-1", "-O", png], "frequency must be an integer >= 1"),
        "frequency not a number": (["-d", ours, "-f", "x", "-O", png], "frequency must be an integer >= 1"),
        "label count mismatch": (["-d", ours, short, "--labels", "a", "-O", png], "1 label(s) given for 2"),
        "no data": (["-O", png], "--data"),
        "unwritable output": (["-d", ours, "-O", str(tmp_path / "no_dir" / "x.png")], "cannot write"),
    }


@pytest.mark.parametrize("case", ["missing file", "corrupt file", "unsafe file", "unknown metric", "window too large",
                                  "window too large after frequency", "window zero", "frequency negative",
                                  "frequency not a number", "label count mismatch", "no data", "unwritable output"])
def test_bad_input_prints_one_line_and_returns_2(tmp_path, ours, capsys, case):
    argv, fragment = _bad_cases(tmp_path, ours)[case]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert not (tmp_path / "x.png").exists()


# --- training episodes and densities ---------------------------------------------------------------

def write_with_episodes(path, returns_per_seed):
    """An .out with a 'episodes' table: seed s's episodes have the given returns and length 10 each."""
    seeds, returns, ends = [], [], []
    for seed, seed_returns in enumerate(returns_per_seed):
        seeds += [seed] * len(seed_returns)
        returns += list(seed_returns)
        ends += list(10 * np.arange(1, len(seed_returns) + 1))
    data = {"config": {"num_seeds": len(returns_per_seed)},
            "metrics": {"reward_rates": np.zeros((2, len(returns_per_seed)), np.float32), "eval_times": np.array([0, 1])},
            "episodes": {"seed": np.array(seeds, np.int32), "return": np.array(returns, np.float32),
                         "length": np.full(len(seeds), 10, np.int32), "end_step": np.array(ends, np.int64)},
            "meta": {}}
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return str(path)


def test_rolling_episode_curve_by_hand():
    table = {"seed": np.array([0, 0, 0, 1, 1]), "return": np.array([2.0, 4.0, 9.0, 1.0, 3.0]),
             "end_step": np.array([10, 20, 30, 15, 25]), "length": np.full(5, 10)}
    values, steps = plot_metric.rolling_episode_curve(table, 2, window=2, num_points=3)
    np.testing.assert_allclose(steps, [15, 22.5, 30])  # from the step at which every seed has an episode
    # seed 0 (window 2): after step 10 -> 2, after 20 -> 3, after 30 -> 6.5; seed 1: after 15 -> 1, after 25 -> 2.
    np.testing.assert_allclose(values, [[2.0, 1.0], [3.0, 1.0], [6.5, 2.0]])


def test_gaussian_kde_integrates_to_one_and_matches_a_normal():
    samples = np.random.default_rng(0).normal(2.0, 1.5, 20000)
    points = np.linspace(-8, 12, 2001)
    density = plot_metric.gaussian_kde(samples, points)
    assert abs(np.trapezoid(density, points) - 1) < 1e-3
    # Its expectation is the normal widened by the kernel (Scott: h = std * n^-1/5); the pointwise sampling
    # noise at the peak is about sqrt(f R(K) / (n h)) = 0.004, so 0.02 is a 4-5 sigma tolerance.
    std = np.sqrt(1.5**2 + (samples.std(ddof=1) * 20000 ** -0.2) ** 2)
    normal = np.exp(-0.5 * ((points - 2) / std) ** 2) / (std * np.sqrt(2 * np.pi))
    assert np.max(np.abs(density - normal)) < 0.02


@pytest.mark.parametrize("plot", ["episodes", "density"])
def test_episode_and_density_plots_write_png(tmp_path, plot, capsys):
    a = write_with_episodes(tmp_path / "a.out", [np.arange(150.0), np.arange(120.0) * 2])
    b = write_with_episodes(tmp_path / "b.out", [np.ones(130), np.ones(140) * 3])
    out = tmp_path / f"{plot}.png"
    assert main(["-d", a, b, "--plot", plot, "--rolling", "50", "-o", str(out), "--symlog"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_density_scores_are_each_seeds_last_episodes(tmp_path):
    path = write_with_episodes(tmp_path / "a.out", [np.arange(10.0), 100 + np.arange(5.0)])
    np.testing.assert_array_equal(np.sort(plot_metric.final_scores(path, "reward_rates", 3)), [7, 8, 9, 102, 103, 104])


def test_episode_plot_without_episodes_is_a_clear_error(tmp_path, ours, capsys):
    assert main(["-d", ours, "--plot", "episodes", "-o", str(tmp_path / "x.png")]) == 2
    assert "records no training episodes" in capsys.readouterr().err


def test_density_scores_fall_back_to_final_evaluations(ours, rates):
    np.testing.assert_array_equal(plot_metric.final_scores(ours, "reward_rates", 100), rates[-1])


def test_runs_of_different_matmul_precision_are_warned_about(tmp_path, rates, capsys):
    """A GPU run at JAX's default precision (TF32 allowed) beside a CPU one warns, naming both; CPU runs at any
    setting, or a file without the field, do not."""
    import pickle

    def with_meta(name, **meta):
        path = write_ours(tmp_path / name, rates)
        with open(path, "rb") as f:
            data = pickle.load(f)
        data["meta"] = meta
        with open(path, "wb") as f:
            pickle.dump(data, f)
        return path

    gpu = with_meta("gpu.out", matmul_precision="default", backend="gpu")
    cpu = with_meta("cpu.out", matmul_precision="default", backend="cpu")
    cpu_highest = with_meta("cpu_highest.out", matmul_precision="highest", backend="cpu")
    old = with_meta("old.out")
    assert main(["--data", gpu, cpu, "--output", str(tmp_path / "a.png")]) == 0
    err = capsys.readouterr().err
    assert "different matmul precisions" in err and "default on gpu: " + gpu in err and "float32: " + cpu in err
    assert main(["--data", cpu, cpu_highest, old, "--output", str(tmp_path / "b.png")]) == 0
    assert "precision" not in capsys.readouterr().err


def test_band_is_a_bootstrap_ci_from_five_seeds_and_the_range_below():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((6, 4))
    mean, low, high, words = plot_metric.band_of(values, rng=np.random.default_rng(0))
    assert words == "mean and range of 4 seeds"
    np.testing.assert_allclose(low, values.min(axis=1)) and np.testing.assert_allclose(high, values.max(axis=1))
    values = rng.standard_normal((6, 5))
    mean, low, high, words = plot_metric.band_of(values, rng=np.random.default_rng(0))
    assert words == "mean of 5 seeds, 95% bootstrap CI"
    expected = bootstrap_band(values, rng=np.random.default_rng(0))
    for got, want in zip((mean, low, high), expected):
        np.testing.assert_allclose(got, want)


def _described_run(path, agent_type, agent, meaning, rates):
    """A .out as the harness now writes it: the agent, every metric's label and meaning, the x axis."""
    data = {"config": {"num_seeds": rates.shape[1], "eval_frequency": 500, "agent_type": agent_type,
                       "environment": "CartPole-v1", "fix_eval_time_label": False},
            "metrics": {"reward_rates": np.asarray(rates, np.float32),
                        "eval_times": np.arange(len(rates), dtype=np.int64) * 500},
            "meta": {"agent": agent, "x_axis": "environment steps per seed",
                     "metrics": {"reward_rates": {"label": f"{agent} score", "meaning": meaning}}}}
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return str(path)


def test_figure_speaks_the_files_vocabulary_and_warns_on_mixed_meanings(tmp_path, rates, capsys, monkeypatch):
    """Legend: agent and environment (not the file name), the band in words; axes from the .out's meta;
    evaluations drawn at the end of their chunk (the paper's chunk-start labels with --chunk-start-times); a
    warning when reward_rates means different things in the files."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    dqn = _described_run(tmp_path / "a.out", "ER", "ER DQN", "greedy evaluation", rates)
    ppo = _described_run(tmp_path / "b.out", "PPO", "PPO", "training episodes", rates + 1)
    shown = []
    monkeypatch.setattr(plt.Figure, "savefig", lambda fig, *a, **k: shown.append(fig))
    assert main(["-d", dqn, ppo, "-o", str(tmp_path / "x.png")]) == 0
    assert "warning: 'reward_rates' means different things in these files" in capsys.readouterr().err
    ax = shown[0].axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "ER DQN on CartPole-v1 (mean and range of 4 seeds)", "PPO on CartPole-v1 (mean and range of 4 seeds)"]
    assert ax.get_ylabel() == "ER DQN score" and ax.get_xlabel() == "environment steps per seed"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), np.arange(12) * 500 + 500)
    shown.clear()
    assert main(["-d", dqn, "--chunk-start-times", "-o", str(tmp_path / "y.png")]) == 0
    np.testing.assert_array_equal(shown[0].axes[0].lines[0].get_xdata(), np.arange(12) * 500)
    assert "warning" not in capsys.readouterr().err
