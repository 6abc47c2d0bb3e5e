"""Multi-process JAX (--distributed) on this machine: two train-script processes joined through a coordinator on
localhost, each with one CPU device, train the seeds of one run sharded across them; process 0 writes the files.
Their metrics and parameters equal, bit for bit, one process training the same run on two CPU devices (the same
runs per device), and match one process on one device (metrics equal, parameters to float rounding: XLA
vectorises 2 and 4 runs per device differently)."""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiment import devices, files
from tests.sharding_probe import CONFIG

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "train_scripts", "train_ER_DQN.py")

pytestmark = pytest.mark.skipif(sys.platform != "linux" or not hasattr(jax.config, "jax_cpu_collectives_implementation"),
                                reason="cross-process collectives on CPU (gloo) are tested on Linux only")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(config_path, output, device_count, *flags):
    """Start the train script; returns the Popen."""
    env = dict(os.environ, JAX_NUM_CPU_DEVICES=str(device_count))
    return subprocess.Popen([sys.executable, SCRIPT, "--config", config_path, "--output", output, "--no-progress",
                             *flags], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process):
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    return out


def load(output):
    metrics = files.load_metrics(output + ".out")
    return metrics, jax.tree.leaves(files.load_pickle(output + ".params"))


@pytest.mark.slow  # two processes start, compile and train: ~30 s here
def test_two_processes_train_as_one(tmp_path):
    config_path = str(tmp_path / "tiny.json")
    with open(config_path, "w") as f:
        json.dump(dict({k: v for k, v in CONFIG.items() if k != "sweep"}, num_seeds=4), f)
    address = f"127.0.0.1:{free_port()}"
    joined = [train(config_path, str(tmp_path / f"joined{i}"), 1, "--distributed", "--coordinator", address,
                    "--num-processes", "2", "--process-id", str(i)) for i in range(2)]
    logs = [finish(p) for p in joined]
    assert "wrote" in logs[0] and "process 1 of 2 done" in logs[1], logs
    assert not os.path.exists(tmp_path / "joined1.out")  # only process 0 writes
    for name, count in (("two_devices", 2), ("one_device", 1)):
        finish(train(config_path, str(tmp_path / name), count))

    joined, two, one = (load(str(tmp_path / n)) for n in ("joined0", "two_devices", "one_device"))
    assert joined[0]["meta"]["num_processes"] == 2 and len(joined[0]["meta"]["devices"]) == 2
    for name in ("reward_rates", "train_reward_rates", "diverged"):
        np.testing.assert_array_equal(joined[0]["metrics"][name], two[0]["metrics"][name])
        np.testing.assert_array_equal(joined[0]["metrics"][name], one[0]["metrics"][name])
    for a, b, c in zip(joined[1], two[1], one[1]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, atol=1e-6)


@pytest.mark.parametrize("arguments, message", [
    (dict(distributed=False, coordinator="127.0.0.1:1"), "--coordinator only mean something with --distributed"),
    (dict(distributed=True, num_processes=2, process_id=2), "--process-id must be in 0 .. 1, got 2"),
    (dict(distributed=True, process_id=-1), "--process-id must be >= 0, got -1"),
    (dict(distributed=True, num_processes=0), "--num-processes must be >= 1, got 0"),
])
def test_impossible_distributed_flags_are_refused(arguments, message):
    with pytest.raises(devices.DistributedError, match=message):
        devices.distributed_arguments(**arguments)


def test_distributed_flags_pass_through_only_what_was_given():
    assert devices.distributed_arguments(False) is None
    assert devices.distributed_arguments(True) == {}  # SLURM: JAX reads the job's variables
    assert devices.distributed_arguments(True, "h:1", 2, 1) == {"coordinator_address": "h:1", "num_processes": 2,
                                                              "process_id": 1}


def test_a_train_script_refuses_a_bad_process_id_before_jax_starts(tmp_path):
    result = subprocess.run([sys.executable, SCRIPT, "--distributed", "--num-processes", "2", "--process-id", "5"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --process-id must be in 0 .. 1, got 5"
