"""Sweeps: grid points from a config, one compiled program for every point x seed, the memory check before
allocation, sharding across (simulated) devices, and the sweep plots and table."""
import json
import os
import pickle
import subprocess
import sys

import jax
import numpy as np
import pytest

import best_points
import plot_metric
from agents import dqn, model_dqn
from experiment import cli, files, runner
from experiment import metrics as metrics_lib
from experiment.config import SWEEPABLE_KEYS, ConfigError, validate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
from sharding_probe import CONFIG as PROBE_CONFIG  # noqa: E402

PLAIN = {k: v for k, v in PROBE_CONFIG.items() if k != "sweep"}  # OpenGrid G=3, 3 seeds, 3 chunks of 50 steps


# --- config ---------------------------------------------------------------------------------------

def test_grid_product_and_explicit_points():
    config = validate("ER", {**PLAIN, "sweep": {"alpha_adam": [1e-3, 2e-3], "softmax_temp": [0.1, 1, 10]}})
    assert config["sweep"] == [{"alpha_adam": a, "softmax_temp": t} for a in (1e-3, 2e-3) for t in (0.1, 1.0, 10.0)]
    assert all(isinstance(p["softmax_temp"], float) for p in config["sweep"])  # coerced as the key's type
    points = [{"alpha_adam": 1e-3, "gamma": 0.5}, {"alpha_adam": 4e-3, "gamma": 0.99}]
    assert validate("ER", {**PLAIN, "sweep": points})["sweep"] == points
    assert validate("ER", PLAIN)["sweep"] is None
    # A swept key the base config leaves out takes the first point's value there.
    base = {k: v for k, v in PLAIN.items() if k != "alpha_adam"}
    assert validate("ER", {**base, "sweep": {"alpha_adam": [3e-3, 1e-3]}})["alpha_adam"] == 3e-3


@pytest.mark.parametrize("sweep, message", [
    ({"batch_size": [4, 8]}, "sweep over 'batch_size' is refused: it shapes the minibatch"),
    ({"buffer_size": [100, 200]}, "sweep over 'buffer_size' is refused: it shapes the replay buffer"),
    ({"num_hidden_units": [8, 16]}, "sweep over 'num_hidden_units' is refused: it shapes the networks"),
    ({"double_DQN": [True, False]}, "sweep over 'double_DQN' is refused: it is fixed when the program is compiled"),
    ({"alpha_adm": [1e-3]}, "sweep over unknown config key 'alpha_adm' for ER DQN; did you mean 'alpha_adam'"),
    ({"alpha_adam": [1e-3, -1.0]}, r"sweep point 1 \(\{\"alpha_adam\": -1.0\}\): config key 'alpha_adam' must be"),
    ({"alpha_adam": []}, "sweep key 'alpha_adam' must have a non-empty list of values"),
    ({"alpha_adam": [1e-3, 0.001]}, "sweep point 1 .* repeats point 0"),
    ([{"alpha_adam": 1e-3}, {"gamma": 0.9}], "every point must set the same keys"),
    ("alpha_adam", "'sweep' must be a JSON object"),
])
def test_bad_sweeps_are_refused_naming_the_problem(sweep, message):
    with pytest.raises(ConfigError, match=message):
        validate("ER", {**PLAIN, "sweep": sweep})


def test_rollout_length_sweep_is_refused_for_model_agents():
    raw = files_json("configs/simple_model.json")
    with pytest.raises(ConfigError, match="sweep over 'rollout_length' is refused: it shapes the imagined batch"):
        validate("simple_model", {**raw, "sweep": {"rollout_length": [5, 10]}})


def files_json(path):
    with open(os.path.join(REPO, path)) as f:
        return json.load(f)


def changed_value(name, value):
    """Another valid value of a sweepable key."""
    if value is None:
        return {"epsilon": 0.2, "epsilon_decay_steps": 10, "softmax_temp": 0.3}[name]
    if isinstance(value, int):
        return value + 1
    return value * 0.5 if value else 1e-4


@pytest.mark.parametrize("agent_type, raw", [
    ("ER", {**PLAIN, "prioritized_replay": True, "epsilon_schedule": "linear", "exploration_strat": "epsilon_greedy",
            "epsilon_decay_steps": 50}),
    ("latent_model", {**files_json("configs/gaussian_latent_model.json"), "num_hidden_units": 8, "buffer_size": 32,
                      "batch_size": 4, "rollout_length": 2, "eval_frequency": 2, "num_steps": 4, "eval_steps": 3,
                      "env_config": {"grid_size": 3}}),
])
def test_sweepable_keys_reach_the_program_only_through_hparams(agent_type, raw):
    """Changing any sweepable key in the config leaves the traced program unchanged: it cannot be closed over,
    so one compiled program serves every grid point. The model agents' keys shared with ER DQN are read by
    the same kind of hyperparams_from_config; to keep the test short only their own keys are traced."""
    import envs
    base = validate(agent_type, raw)
    make = dqn.make if agent_type == "ER" else model_dqn.make
    env, env_params = envs.make(base["environment"], **base["env_config"])
    agent = make(base, env, env_params)
    state = agent.init(jax.random.PRNGKey(0), agent.hparams)

    def program(config):
        other = make(config, env, env_params)
        return str(jax.make_jaxpr(other.interact, static_argnums=3)(state, jax.random.PRNGKey(1), agent.hparams, True))

    reference = program(base)
    own = [name for name in SWEEPABLE_KEYS[agent_type] if agent_type == "ER" or name not in SWEEPABLE_KEYS["ER"]]
    for name in own:
        if name not in base:
            continue
        changed = validate(agent_type, {**raw, name: changed_value(name, base[name])})
        assert make(changed, env, env_params).hparams != agent.hparams or base[name] is None, name
        assert program(changed) == reference, f"'{name}' changes the compiled program; it is not sweepable"


# --- one program for every point x seed ------------------------------------------------------------

SWEEP_POINTS = [{"alpha_adam": 1e-3, "softmax_temp": 0.5}, {"alpha_adam": 1e-2, "softmax_temp": 2.0}]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    config = validate("ER", {**PLAIN, "sweep": SWEEP_POINTS})
    prefix = str(tmp_path_factory.mktemp("sweep") / "sweep")
    return config, prefix, runner.run(config, dqn.make, seed=5, output=prefix, progress=False)


def test_sweep_out_and_params_gain_a_grid_axis(swept):
    config, prefix, _ = swept
    data = files.load_metrics(prefix + ".out")
    assert data["grid"] == SWEEP_POINTS
    assert data["metrics"]["reward_rates"].shape == (3, 2, 3)  # evaluations x points x seeds
    assert data["metrics"]["train_reward_rates"].shape == (3, 2, 3)
    assert set(np.unique(data["episodes"]["point"])) == {0, 1}
    params = files.load_pickle(prefix + ".params")
    assert len(params["Q"]) == 2 and all(len(per_point) == 3 for per_point in params["Q"])
    # Point 1 learned with a 10x step size: its parameters differ from point 0's for the same seed.
    w = "q_function/linear"
    assert not np.allclose(params["Q"][0][0][w]["w"], params["Q"][1][0][w]["w"])


def test_each_point_equals_its_own_run(swept, tmp_path):
    """Seed s of every point uses seed s's keys, so point p reproduces a run of the base config with p's values
    (the separate runs share one compiled program: they differ only in sweepable keys)."""
    _, _, result = swept
    for index, point in enumerate(SWEEP_POINTS):
        alone = runner.run(validate("ER", {**PLAIN, **point}), dqn.make, seed=5, output=str(tmp_path / f"p{index}"),
                           progress=False)
        for name in ("reward_rates", "train_reward_rates"):
            np.testing.assert_allclose(alone["metrics"][name], result["metrics"][name][:, index], atol=1e-6)


def test_sweep_resumes_to_the_uninterrupted_result(swept, tmp_path):
    config, prefix, result = swept
    resumed_prefix = str(tmp_path / "resumed")
    with pytest.raises(runner.Interrupted):
        runner.run(config, dqn.make, seed=5, output=resumed_prefix, progress=False, stop_after_chunks=2)
    resumed = runner.run(config, dqn.make, seed=5, output=resumed_prefix, resume=True, progress=False)
    for name, values in result["metrics"].items():
        np.testing.assert_array_equal(resumed["metrics"][name], values, err_msg=name)
    first, again = files.load_pickle(prefix + ".params"), files.load_pickle(resumed_prefix + ".params")
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)


# --- memory ----------------------------------------------------------------------------------------

def test_memory_estimate_counts_the_replay_buffers_and_refuses_what_does_not_fit():
    for replay_obs_dtype, bytes_per_transition in (("auto", 27), ("float32", 81)):
        config = validate("ER", {**PLAIN, "buffer_size": 1000, "replay_obs_dtype": replay_obs_dtype,
                                 "sweep": SWEEP_POINTS})
        run = runner.Runs(config, dqn.make, seed=0)
        abstract = run.abstract_state()
        # OpenGrid G=3: 9 observation values, bool (1 B) or float32 (4 B); a transition stores obs and next_obs,
        # action (4 B), reward (4 B) and terminal (1 B); 2 points x 3 seeds x 1000 transitions.
        assert runner.tree_bytes(abstract.replay.items) == 6 * 1000 * bytes_per_transition
        line = runner.check_memory(abstract, run.axis, config, free=(2**30, True))
        assert "for 2 points x 3 seeds: replay buffers" in line
        assert f"1000 transitions x {bytes_per_transition} B per run" in line
        num_devices = len(run.axis.devices)  # each holds its share of the runs
        free = runner.tree_bytes(abstract) // (2 * num_devices)  # per device: room for about half the runs
        with pytest.raises(runner.RunError) as refused:
            runner.check_memory(abstract, run.axis, config, free=(free, True))
        message = str(refused.value)
        fitting = int(0.9 * free * num_devices // (runner.tree_bytes(abstract) / 6))
        assert fitting == 2
        assert "would not fit" in message and f"at most {fitting} runs fit" in message and "smaller buffer_size" in message
        # Narrower storage is offered only where observations are stored wider than one byte.
        assert ("replay_obs_dtype 'uint8'" in message) == (replay_obs_dtype == "float32")


def test_a_run_too_big_for_this_machine_is_refused_before_allocation(tmp_path, capsys):
    """A billion-transition buffer per seed (hundreds of GB): one error line, exit 2, nothing written."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**PLAIN, "buffer_size": 10**9}))
    status = cli.main("ER", dqn.make, "ER", ["--config", str(path), "--output", str(tmp_path / "huge"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error: this run would not fit: estimated memory")
    assert not list(tmp_path.glob("huge.*"))


# --- devices ---------------------------------------------------------------------------------------

@pytest.mark.slow  # compiles the sharded and the single-device program: ~32 s here
def test_sharded_runs_equal_the_single_device_run():
    """1, 2 and 4 simulated CPU devices: 6 runs (padded to 8 on 4 devices), 3 seeds on 2 devices (padded to 4),
    and a sweep stopped on 4 devices then resumed on 1 all give the single-device metrics and parameters."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, os.path.join(REPO, "tests", "sharding_probe.py")], env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["num_devices"] == 4 and report["shape"] == [3, 2, 3] and report["devices_recorded"] == [4, 2]
    for check in ("sweep_on_4", "plain_3_seeds_on_2", "stopped_on_4_resumed_on_1"):
        assert report[check]["metrics_equal"], (check, report[check])
        assert report[check]["params_max_difference"] < 1e-4, (check, report[check])


# --- plots and the table ---------------------------------------------------------------------------

def write_sweep(path, values, grid):
    values = np.asarray(values, np.float32)
    data = {"config": {"num_seeds": values.shape[2]}, "grid": grid, "meta": {},
            "metrics": {"reward_rates": values, "eval_times": np.arange(len(values), dtype=np.int64) * 100}}
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return str(path)


GRID = [{"alpha": a, "temp": t} for a in (1e-4, 2e-4, 4e-4) for t in (0.1, 1.0)]


def hand_values():
    """10 evaluations x 6 points x 2 seeds: point p's curve is p everywhere except the last 2 evaluations,
    where point 0 jumps to 10 (the best final) while point 5 stays best by area."""
    values = np.repeat(np.arange(6, dtype=float)[None, :, None], 10, axis=0).repeat(2, axis=2)
    values[-2:, 0] = 10.0
    values[:, :, 1] += 1.0  # seed 1 one above seed 0
    return values


def test_criteria_rank_points_by_area_or_final_performance():
    values = hand_values()
    np.testing.assert_allclose(plot_metric.point_scores(values, "auc")[:, 0], [2, 1, 2, 3, 4, 5])  # (8*0+2*10)/10
    np.testing.assert_allclose(plot_metric.point_scores(values, "final")[:, 0], [10, 1, 2, 3, 4, 5])  # last 1 of 10
    np.testing.assert_allclose(plot_metric.point_scores(values, "final", final_window=4)[:, 0], [5, 1, 2, 3, 4, 5])
    assert plot_metric.ranked_points(values, "auc")[0][0] == 5
    assert plot_metric.ranked_points(values, "final")[0][0] == 0
    assert plot_metric.ranked_points(values, "auc", minimize=True)[0][0] == 1


def test_sensitivity_lines_pick_the_best_of_the_other_keys():
    values = hand_values()
    lines = plot_metric.sensitivity_lines(values, GRID, "alpha", "temp", "auc")
    xs, scores = lines[1.0]  # temp = 1.0: points 1, 3, 5
    np.testing.assert_allclose(xs, [1e-4, 2e-4, 4e-4])
    np.testing.assert_allclose(scores, [[1, 2], [3, 4], [5, 6]])
    xs, scores = plot_metric.sensitivity_lines(values, GRID, "alpha", None, "auc")[None]  # best temperature per alpha
    np.testing.assert_allclose(scores[:, 0], [2, 3, 5])  # points 0 (auc 2 > 1), 3, 5
    with pytest.raises(plot_metric.PlotInputError, match="'gamma' is not a swept key of this file"):
        plot_metric.sensitivity_lines(values, GRID, "gamma", None, "auc")


def test_sweep_plots_and_best_points_table(tmp_path, capsys):
    path = write_sweep(tmp_path / "s.out", hand_values(), GRID)
    for plot, extra in (("best", []), ("points", ["-w", "2"]), ("sensitivity", ["--x", "alpha", "--lines", "temp"]),
                        ("curves", ["--point", "3"])):
        out = tmp_path / f"{plot}.png"
        assert plot_metric.main(["-d", path, "--plot", plot, "-o", str(out), *extra]) == 0 and out.stat().st_size > 0
    capsys.readouterr()
    assert best_points.main(["-d", path, "--criterion", "final", "--top", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "6 points x 2 seeds" in lines[0] and "ranked by final" in lines[0]
    assert lines[1].split()[:5] == ["rank", "alpha", "temp", "final", "mean"]
    assert lines[2].split()[:4] == ["1", "0.0001", "0.1", "10.5"] and lines[3].split()[:4] == ["2", "0.0004", "1", "5.5"]
    assert len(lines) == 4
    # Errors: one line, status 2.
    assert plot_metric.main(["-d", path, "-o", str(tmp_path / "x.png")]) == 2
    assert "is a sweep of 6 grid points; choose one with --point" in capsys.readouterr().err
    assert plot_metric.main(["-d", path, "--plot", "sensitivity", "-o", str(tmp_path / "x.png")]) == 2
    assert "needs --x" in capsys.readouterr().err
    plain = tmp_path / "plain.out"
    with open(plain, "wb") as f:
        pickle.dump({"config": {}, "metrics": {"reward_rates": np.zeros((3, 2)), "eval_times": np.arange(3)}}, f)
    assert best_points.main(["-d", str(plain)]) == 2
    assert "holds no sweep" in capsys.readouterr().err


def test_sensitivity_reference_lines_sit_at_the_plain_runs_score(tmp_path, capsys, monkeypatch):
    path = write_sweep(tmp_path / "s.out", hand_values(), GRID)
    plain = tmp_path / "rnd.out"
    with open(plain, "wb") as f:  # 3 evaluations x 5 seeds; the final evaluation (the last 10%, one) is 4 + seed
        pickle.dump({"config": {}, "metrics": {"reward_rates": np.array([[0.0] * 5, [1.0] * 5, 4.0 + np.arange(5)]),
                                               "eval_times": np.arange(3)}}, f)
    drawn = {}
    real = plot_metric.make_sensitivity_figure
    monkeypatch.setattr(plot_metric, "make_sensitivity_figure",
                        lambda *a, **k: drawn.setdefault("figure", real(*a, **k)) if not drawn.update(k) else None)
    out = tmp_path / "k.png"
    assert plot_metric.main(["-d", path, "--plot", "sensitivity", "--x", "alpha", "--reference", "RND", str(plain),
                             "-o", str(out)]) == 0 and out.stat().st_size > 0
    (label, scores), = drawn["references"]
    assert label == "RND" and scores.tolist() == [4, 5, 6, 7, 8]
    line, = [l for l in drawn["figure"].axes[0].get_lines() if l.get_label().startswith("RND")]
    assert line.get_label() == "RND (mean of 5 seeds, 95% bootstrap CI)" and list(line.get_ydata()) == [6, 6]
    axis = drawn["figure"].axes[0]  # the swept file's line is named by its agent, the axis by the metric's words
    assert [l.get_label() for l in axis.get_lines() if not l.get_label().startswith("RND")] == [
        "run (mean and range of 2 seeds)"]  # a file without a config: "run"
    assert axis.get_ylabel() == "reward_rates\n(mean of the last 10% of evaluations, at least one)"  # no agent: the key
    with open(path, "rb") as f:  # an ER DQN sweep: the axis reads the metric's declared words
        data = pickle.load(f)
    data["config"].update(agent_type="ER", episodic_env=True, eval_steps=100, eval_batch_size=2)
    er_path = str(tmp_path / "er.out")
    with open(er_path, "wb") as f:
        pickle.dump(data, f)
    drawn.clear()
    assert plot_metric.main(["-d", er_path, "--plot", "sensitivity", "--x", "alpha", "-o", str(out)]) == 0
    axis = drawn["figure"].axes[0]
    assert axis.get_ylabel().split("\n")[0] == metrics_lib.of_file(data, "reward_rates").label != "reward_rates"
    capsys.readouterr()
    assert plot_metric.main(["-d", path, "--plot", "sensitivity", "--x", "alpha", "--reference", "S", path,
                             "-o", str(out)]) == 2
    assert "is a sweep of 6 points; give a plain run" in capsys.readouterr().err
    assert plot_metric.main(["-d", str(plain), "--reference", "R", str(plain), "-o", str(out)]) == 2
    assert "--reference applies to --plot sensitivity" in capsys.readouterr().err
