"""SIGKILL at any moment: a run killed while writing its checkpoint, its .out and its .params, and at a random moment
from outside resumes with --resume, through the command line in fresh processes, to the uninterrupted run's
metrics and parameters bit for bit. The kills inside a write come from a wrapper that makes the process kill
itself just before the write's final rename (the temporary file complete, the old file still in place): the
moment a crash would catch a file half-replaced."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from agents import dqn
from experiment import files, runner
from experiment.config import validate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
from test_harness import TINY  # noqa: E402

KILLING_CLI = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from experiment import files
suffix, nth = sys.argv[1], int(sys.argv[2])
real_replace, seen = os.replace, []
def replace(source, target):
    if str(target).endswith(suffix):
        seen.append(target)
        if len(seen) == nth:
            os.kill(os.getpid(), signal.SIGKILL)  # the temporary file is written and synced; the rename never happens
    return real_replace(source, target)
files.os.replace = replace
from agents import dqn
from experiment import cli
sys.exit(cli.main("ER", dqn.make, default_output="x", argv=sys.argv[3:]))
"""


def command(config_path, prefix, resume):
    return ["--config", config_path, "--output", prefix, "--seed", "7", "--no-progress"] + (["--resume"] if resume
                                                                                           else [])


def cli_process(tmp_path, args, kill_suffix=None, nth=0):
    if kill_suffix is None:
        script = [os.path.join(REPO, "train_scripts", "train_ER_DQN.py")]
    else:
        wrapper = tmp_path / "killing_cli.py"
        wrapper.write_text(KILLING_CLI.format(repo=REPO))
        script = [str(wrapper), kill_suffix, str(nth)]
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2"}  # as the test process: the same runs per device
    return subprocess.Popen([sys.executable, *script, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # a run killed and resumed in subprocesses: ~26 s here
def test_sigkill_in_writes_and_at_random_resumes_bit_identical(tmp_path):
    config = validate("ER", dict(TINY))
    full = runner.run(config, dqn.make, seed=7, output=str(tmp_path / "full"), progress=False)
    config_path = str(tmp_path / "tiny.json")
    with open(config_path, "w") as f:
        json.dump(TINY, f)
    prefix = str(tmp_path / "killed")

    # 1. Killed inside the second checkpoint's write (step 400), between moving the first checkpoint aside and
    #    renaming the new one into place: only the kept previous checkpoint (step 200) exists.
    process = cli_process(tmp_path, command(config_path, prefix, False), ".ckpt.npz", 2)
    process.communicate(timeout=600)
    assert process.returncode == -signal.SIGKILL
    assert not os.path.exists(prefix + ".ckpt.npz")
    assert files.load_checkpoint(prefix + ".ckpt.prev.npz")[2]["next_chunk"] == 2
    assert any(name.endswith(".tmp") for name in os.listdir(tmp_path))  # the orphaned temporary file

    # 2. Resumed (removing the orphan), then killed inside its second .out write (the final one).
    process = cli_process(tmp_path, command(config_path, prefix, True), ".out", 2)
    _, err = process.communicate(timeout=600)
    assert process.returncode == -signal.SIGKILL
    assert "resuming from the previous checkpoint" in err
    files.load_metrics(prefix + ".out")  # the previous .out is whole

    # 3. Resumed and killed inside its first .params write.
    process = cli_process(tmp_path, command(config_path, prefix, True), ".params", 1)
    process.communicate(timeout=600)
    assert process.returncode == -signal.SIGKILL
    if os.path.exists(prefix + ".params"):
        files.load_pickle(prefix + ".params")  # an earlier .params, whole

    # 4. Resumed and killed from outside at a random moment, then resumed to the end.
    process = cli_process(tmp_path, command(config_path, prefix, True))
    time.sleep(random.Random(0).uniform(2.0, 8.0))
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=600)
    for _ in range(3):
        process = cli_process(tmp_path, command(config_path, prefix, True))
        _, err = process.communicate(timeout=600)
        if process.returncode == 0:
            break
    assert process.returncode == 0, err

    resumed = files.load_metrics(prefix + ".out")
    assert resumed["meta"]["complete"] is True
    for name, values in full["metrics"].items():
        np.testing.assert_array_equal(resumed["metrics"][name], values, err_msg=name)
    jax.tree.map(np.testing.assert_array_equal, files.load_pickle(prefix + ".params"),
                 files.load_pickle(str(tmp_path / "full.params")))
    assert not os.path.exists(prefix + ".ckpt.npz") and not os.path.exists(prefix + ".ckpt.prev.npz")
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]  # orphans removed on resume
