"""launch.py through submitit's local executor: a run list of seed blocks, a whole run and a failing run; the blocks'
per-seed results equal the whole run's bit for bit; a relaunch skips complete runs, resumes an interrupted one to
the same result and refuses incomplete outputs without --resume; a failure is reported by run with its log."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from agents import dqn
from experiment import config as config_lib
from experiment import files, launch, results, runner
from tests.sharding_probe import CONFIG

# four train scripts start as jobs (~50 s here): a long end-to-end run
pytestmark = [pytest.mark.extra("slurm"), pytest.mark.slow]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 8 seeds as 2 jobs of 4: every job then trains at least 2 runs per device of the 2, the condition under which a
# seed block equals its seeds in one job bit for bit (docs/harness.md, seed blocks).
TINY = dict({k: v for k, v in CONFIG.items() if k != "sweep"}, num_seeds=8)


def launch_command(*arguments):
    result = subprocess.run([sys.executable, os.path.join(REPO, "launch.py"), *arguments], capture_output=True,
                            text=True, timeout=600, cwd=REPO)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """One local launch of: ER in 2 seed blocks, the same config whole, and a config the script refuses."""
    directory = tmp_path_factory.mktemp("launch")
    with open(directory / "tiny.json", "w") as f:
        json.dump(TINY, f)
    with open(directory / "bad.json", "w") as f:
        json.dump(dict(TINY, no_such_key=1), f)
    run_list = {"resources": {"timeout_min": 10},
                "runs": [{"name": "ER", "script": "train_ER_DQN.py", "config": str(directory / "tiny.json"), "jobs": 2},
                         {"name": "whole", "script": "train_ER_DQN.py", "config": str(directory / "tiny.json")},
                         {"name": "bad", "script": "train_ER_DQN.py", "config": str(directory / "bad.json")}]}
    with open(directory / "runs.json", "w") as f:
        json.dump(run_list, f)
    output = directory / "out"
    status, out, err = launch_command("--runs", str(directory / "runs.json"), "-o", str(output), "--local")
    return directory, output, status, out, err


def test_a_failed_job_is_reported_by_run_with_its_log(launched):
    _, output, status, out, err = launched
    assert status == 1, (out, err)
    failed = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(failed) == 1 and failed[0].startswith("error: bad: failed (exit status 2); log "), err
    log = failed[0].split("; log ")[1]
    with open(log) as f:
        assert "no_such_key" in f.read()  # the train script's own one-line refusal is in the job's log
    assert "3 of 4 jobs finished; 1 failed" in out


def test_seed_blocks_pool_to_the_whole_run_bit_for_bit(launched):
    _, output, *_ = launched
    blocks = [files.load_metrics(str(output / f"ER_seeds{a}-{a + 3}.out")) for a in (0, 4)]
    whole = files.load_metrics(str(output / "whole.out"))
    assert [b["config"]["seed_offset"] for b in blocks] == [0, 4]
    pooled = results.load_runs(",".join(str(output / f"ER_seeds{a}-{a + 3}.out") for a in (0, 4)))  # plot_metric's -d
    for name in ("reward_rates", "train_reward_rates"):
        concatenated = np.concatenate([np.asarray(b["metrics"][name]) for b in blocks], axis=-1)
        np.testing.assert_array_equal(concatenated, np.asarray(whole["metrics"][name]))
        np.testing.assert_array_equal(pooled["metrics"][name], np.asarray(whole["metrics"][name]))


def test_relaunch_skips_complete_runs_and_resumes_an_interrupted_one(launched):
    directory, output, *_ = launched
    # An interrupted run of the whole config at another output: one chunk done, its checkpoint left behind.
    config = config_lib.validate("ER", TINY)
    with pytest.raises(runner.Interrupted):
        runner.run(config, dqn.make, seed=0, output=str(output / "again"), progress=False, stop_after_chunks=1)
    assert not files.run_complete(str(output / "again"))
    run_list = {"runs": [{"name": "whole", "script": "train_ER_DQN.py", "config": str(directory / "tiny.json")},
                         {"name": "again", "script": "train_ER_DQN.py", "config": str(directory / "tiny.json")}]}
    with open(directory / "again.json", "w") as f:
        json.dump(run_list, f)

    status, out, err = launch_command("--runs", str(directory / "again.json"), "-o", str(output), "--local")
    assert status == 2 and err.startswith("error: incomplete runs have outputs already: again") and "--resume" in err

    before = os.path.getmtime(output / "whole.out")
    status, out, err = launch_command("--runs", str(directory / "again.json"), "-o", str(output), "--local", "--resume")
    assert status == 0, (out, err)
    assert "whole: complete, skipped" in out and "again: incomplete; resumed" in out
    assert os.path.getmtime(output / "whole.out") == before
    resumed, whole = (files.load_metrics(str(output / f"{n}.out")) for n in ("again", "whole"))
    for name in ("reward_rates", "train_reward_rates"):
        np.testing.assert_array_equal(resumed["metrics"][name], whole["metrics"][name])
    record = launch.read_record(str(output))
    assert record["again"]["command"][-1] == "--resume" and os.path.exists(record["again"]["stderr"])


@pytest.mark.parametrize("run, message", [
    ({"name": "x", "script": "train_nothing.py", "config": "configs/quickstart.json"}, "unknown script 'train_nothing.py'"),
    ({"name": "x", "script": "train_ER_DQN.py", "config": "missing.json"}, "config file 'missing.json' not found"),
    ({"name": "x", "script": "train_ER_DQN.py", "config": "configs/quickstart.json", "jobs": 7},
     "'jobs' 7 must divide the config's num_seeds"),
    ({"name": "x", "script": "train_ER_DQN.py", "config": "configs/quickstart.json", "seeds": 3}, "unknown key(s) seeds"),
    ({"name": "a/b", "script": "train_ER_DQN.py", "config": "configs/quickstart.json"}, "must be a plain file name"),
])
def test_bad_run_lists_are_refused_in_one_line(tmp_path, run, message):
    with open(tmp_path / "runs.json", "w") as f:
        json.dump({"runs": [run]}, f)
    status, out, err = launch_command("--runs", str(tmp_path / "runs.json"), "-o", str(tmp_path / "out"), "--dry-run")
    assert status == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_dry_run_prints_each_jobs_train_command(tmp_path):
    status, out, err = launch_command("--study", "--agents", "ER", "--environments", "ProcMaze", "--regimes", "low",
                                      "--jobs", "3", "-o", str(tmp_path), "--dry-run")
    assert status == 0, err
    commands = out.strip().splitlines()
    assert len(commands) == 3 and all("train_ER_DQN.py" in c for c in commands)
    assert [c.split("--seed-offset ")[1].split()[0] for c in commands] == ["0", "10", "20"]
    assert "ER_low_data_seeds10-19" in commands[1]


def test_slurm_without_sbatch_is_refused(tmp_path):
    if launch.shutil.which("sbatch"):
        pytest.skip("this machine has SLURM")
    status, out, err = launch_command("--study", "--agents", "ER", "--environments", "ProcMaze", "--regimes", "low",
                                      "-o", str(tmp_path))
    assert status == 2 and "no SLURM here (sbatch not found)" in err
