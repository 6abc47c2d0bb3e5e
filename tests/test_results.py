"""Results as data: pooling the .out files of one config's jobs (experiment/results.py), plot_metric.py's --pool and
--group, and the tidy CSV export (export_csv.py), on hand-made files with known contents."""
import csv

import numpy as np
import pytest

import export_csv
from experiment import files, results
from plot_metric import main as plot_main

CONFIG = {"agent_type": "ER", "environment": "ProcMaze", "alpha_adam": 1e-3, "eval_frequency": 100}


def write_out(path, seed, num_seeds, offset=0, shift=0.0, config_changes=None, times=(0, 100, 200)):
    """A .out of `num_seeds` seeds whose reward_rates are seed_index + shift + 0.1 t (seed index = offset + column),
    with one training episode per seed (return = seed index)."""
    seeds = offset + np.arange(num_seeds)
    rates = seeds[None, :] + shift + 0.1 * np.arange(len(times))[:, None]
    data = {"config": {**CONFIG, "seed": seed, "seed_offset": offset, "num_seeds": num_seeds, **(config_changes or {})},
            "metrics": {"reward_rates": rates.astype(np.float32), "eval_times": np.asarray(times, np.int64),
                        "diverged": np.zeros((len(times), num_seeds), np.int8)},
            "episodes": {"seed": np.arange(num_seeds, dtype=np.int32), "point": np.zeros(num_seeds, np.int32),
                         "return": seeds.astype(np.float32), "length": np.ones(num_seeds, np.int32),
                         "end_step": np.full(num_seeds, 50, np.int64)},
            "diverged_step": np.full(num_seeds, -1, np.int64), "meta": {"format": files.OUT_FORMAT, "complete": True}}
    files.save_pickle(str(path), data)
    return str(path)


@pytest.fixture
def jobs(tmp_path):
    """Master seed 0's seeds 0-1 and 2-4 as two jobs (seed_offset 0 and 2)."""
    return write_out(tmp_path / "a.out", 0, 2), write_out(tmp_path / "b.out", 0, 3, offset=2)


def test_jobs_pool_into_one_result_in_seed_order(jobs):
    pooled = results.load_runs(",".join(jobs))
    np.testing.assert_allclose(pooled["metrics"]["reward_rates"][0], [0, 1, 2, 3, 4])
    np.testing.assert_allclose(pooled["metrics"]["reward_rates"][:, 4], [4.0, 4.1, 4.2], rtol=1e-6)
    assert pooled["config"]["num_seeds"] == 5 and pooled["metrics"]["eval_times"].tolist() == [0, 100, 200]
    assert [run["seed"] for run in pooled["runs"]] == [0, 1, 2, 3, 4]
    assert [run["file"] for run in pooled["runs"]] == [jobs[0]] * 2 + [jobs[1]] * 3
    # the episode table's seed column indexes the pooled seed axis
    np.testing.assert_array_equal(pooled["episodes"]["seed"], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(pooled["episodes"]["return"], [0, 1, 2, 3, 4])
    assert pooled["diverged_step"].tolist() == [-1] * 5


def test_pooling_refuses_other_configs_the_same_seeds_and_other_steps(tmp_path, jobs):
    other = write_out(tmp_path / "c.out", 0, 2, offset=5, config_changes={"alpha_adam": 3e-3})
    with pytest.raises(files.FileFormatError, match="configs differ beyond the seed \\(alpha_adam: 0.001 vs 0.003"):
        results.load_runs(f"{jobs[0]},{other}")
    again = write_out(tmp_path / "d.out", 0, 2, offset=1)  # seed 1 is in a.out already
    with pytest.raises(files.FileFormatError, match="both hold seed 1 of master seed 0"):
        results.load_runs(f"{jobs[0]},{again}")
    short = write_out(tmp_path / "e.out", 0, 2, offset=7, times=(0, 100))
    with pytest.raises(files.FileFormatError, match="evaluated at different steps"):
        results.load_runs(f"{jobs[0]},{short}")
    other_master = write_out(tmp_path / "f.out", 1, 2)  # master seed 1's seeds 0-1: different runs, poolable
    assert results.load_runs(f"{jobs[0]},{other_master}")["config"]["num_seeds"] == 4


def test_group_by_config_and_plot_pooling(tmp_path, jobs, capsys):
    other = write_out(tmp_path / "c.out", 0, 2, config_changes={"alpha_adam": 3e-3})
    assert results.group_by_config([jobs[0], other, jobs[1]]) == [[jobs[0], jobs[1]], [other]]
    figure = tmp_path / "pooled.png"
    assert plot_main(["-d", jobs[0], jobs[1], "--pool", "-o", str(figure)]) == 0 and figure.stat().st_size > 0
    assert plot_main(["-d", jobs[0], other, jobs[1], "--group", "-o", str(figure)]) == 0
    assert plot_main(["-d", f"{jobs[0]},{other}", "-o", str(figure)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "differ beyond the seed" in err and "--group" in err


def test_export_writes_tidy_rows(tmp_path, jobs, capsys):
    output = tmp_path / "results.csv"
    assert export_csv.main(["-d", ",".join(jobs), "-o", str(output), "--metrics", "reward_rates", "--labels", "ER"]) == 0
    with open(output, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(results.TIDY_COLUMNS)
    assert len(rows) == 3 * 5  # evaluations x seeds
    row = next(r for r in rows if r["seed"] == "3" and r["step"] == "200")
    assert (row["run"], row["agent"], row["environment"], row["metric"]) == ("ER", "ER", "ProcMaze", "reward_rates")
    assert float(row["value"]) == pytest.approx(3.2) and row["master_seed"] == "0" and row["grid_point"] == "0"
    assert export_csv.main(["-d", jobs[0], "-o", str(output)]) == 2  # exists: refused without --overwrite
    assert export_csv.main(["-d", jobs[0], "-o", str(output), "--overwrite", "--metrics", "nope"]) == 2
    assert "has no per-seed metric nope" in capsys.readouterr().err
