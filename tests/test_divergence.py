"""Diverging runs: a sweep with one absurd step size marks that run diverged (the step recorded in the .out, a
warning and a count on the progress bar), finishes its sane point exactly as that point finishes alone, and the
plots and the table exclude or mark the diverged run."""
import contextlib
import io
import os
import sys

import numpy as np
import pytest

import best_points
import plot_metric
from agents import dqn
from experiment import files, runner
from experiment.config import validate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
from sharding_probe import CONFIG as PROBE_CONFIG  # noqa: E402

PLAIN = {k: v for k, v in PROBE_CONFIG.items() if k != "sweep"}  # OpenGrid G=3, 3 chunks of 50 steps


@pytest.fixture(scope="module")
def sweep_and_alone(tmp_path_factory):
    """The sweep (1 seed; points alpha_adam 1e-3 and 1e30, one run per device) and the sane point alone (one run
    on one device): the same number of runs per device, so the sane point must come out bit-identical."""
    directory = tmp_path_factory.mktemp("divergence")
    base = {**PLAIN, "num_seeds": 1, "training_start_time": 0}
    sweep = validate("ER", {**base, "sweep": {"alpha_adam": [1e-3, 1e30]}})
    bar = io.StringIO()  # the progress bar (stderr) and its warnings (stdout)
    with contextlib.redirect_stderr(bar), contextlib.redirect_stdout(bar):
        swept = runner.run(sweep, dqn.make, seed=3, output=str(directory / "sweep"), progress=True)
    alone = runner.run(validate("ER", {**base, "alpha_adam": 1e-3}), dqn.make, seed=3,
                       output=str(directory / "alone"), progress=False)
    return directory, swept, alone, bar.getvalue()


def test_the_absurd_point_is_marked_and_the_sane_one_is_untouched(sweep_and_alone):
    directory, swept, alone, _ = sweep_and_alone
    steps = np.asarray(swept["diverged_step"])  # (points, seeds)
    assert steps.shape == (2, 1) and steps[0, 0] == -1 and steps[1, 0] >= 0
    diverged = np.asarray(swept["metrics"]["diverged"])  # (chunks, points, seeds), sticky once set
    assert not diverged[:, 0].any() and diverged[-1, 1].all()
    assert np.all(np.diff(diverged[:, 1, 0].astype(int)) >= 0)
    np.testing.assert_array_equal(np.asarray(swept["metrics"]["reward_rates"])[:, 0],
                                  np.asarray(alone["metrics"]["reward_rates"]))
    assert np.asarray(alone["diverged_step"]).tolist() == [-1]
    on_disk = files.load_metrics(str(directory / "sweep.out"))
    assert on_disk["metrics"]["diverged"].shape == diverged.shape


def test_plots_and_table_exclude_and_mark_the_diverged_run(sweep_and_alone, capsys):
    directory, _, _, _ = sweep_and_alone
    sweep_out = str(directory / "sweep.out")
    values, _, _, diverged = plot_metric.load_grid_and_divergence(sweep_out)
    assert diverged.tolist() == [[False], [True]] and np.all(np.isnan(values[:, 1]))
    figure = str(directory / "points.png")
    assert plot_metric.main(["-d", sweep_out, "--plot", "points", "-o", figure]) == 0
    assert "all 1 runs diverged; not drawn" in capsys.readouterr().out and os.path.getsize(figure) > 1000
    table = best_points.best_points_table(sweep_out).splitlines()
    assert table[2].split()[:2] == ["1", "0.001"] and table[2].split()[-1] == "0/1"
    assert table[3].split()[-1] == "1/1"  # the diverged point ranks last


def test_a_mismatched_divergence_record_is_refused(sweep_and_alone, tmp_path, capsys):
    directory, _, _, _ = sweep_and_alone
    data = files.load_pickle(str(directory / "sweep.out"))
    data["diverged_step"] = np.array([[0, 1, 2]])
    files.save_pickle(str(tmp_path / "bad.out"), data)
    assert plot_metric.main(["-d", str(tmp_path / "bad.out"), "-o", str(tmp_path / "x.png")]) == 2
    assert "'diverged_step' has shape (1, 3), expected one integer per run" in capsys.readouterr().err


def test_the_progress_bar_counts_the_diverged_runs_and_warns_once(sweep_and_alone):
    *_, bar = sweep_and_alone
    assert "diverged=1/2" in bar  # the bar's postfix: diverged runs of all runs
    assert bar.count("warning: 1 of 2 runs diverged") == 1
