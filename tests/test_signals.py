"""SIGTERM (and Ctrl-C's SIGINT) during a run, for each agent family: the run finishes the chunk under way,
writes a checkpoint and an .out holding the evaluations so far, stops with Interrupted (the command line exits
1 with "run again with --resume"), and --resume completes it bit-identical to a run never stopped: each family's
whole state survives its checkpoint. PSDRL's case is in tests/test_psdrl.py."""
import os
import signal
import sys

import numpy as np
import pytest

from agents import dqn, model_dqn, pets, ppo
from experiment import config as config_lib
from experiment import files, runner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
from test_harness import TINY as HARNESS_TINY  # noqa: E402
from test_ppo import TINY as PPO_TINY  # noqa: E402


def family_configs():
    simple = {**config_lib.load_json("configs/simple_model.json"), "num_hidden_layers": 1, "num_hidden_units": 8,
              "num_seeds": 2, "buffer_size": 64, "batch_size": 4, "rollout_length": 3, "num_steps": 200,
              "eval_frequency": 100, "training_start_time": 50, "save_frequency": 200, "checkpoint_frequency": 100,
              "eval_steps": 10, "eval_batch_size": 2}
    return {
        "ER DQN": ("ER", HARNESS_TINY, dqn.make),  # the harness tests' program, compiled once
        "simple-model DQN": ("simple_model", simple, model_dqn.make),
        "PETS": ("PETS", config_lib.load_json("configs/pets/tiny_test.json"), pets.make),
        "PPO": ("PPO", {**PPO_TINY, "distillation": "rnd"}, ppo.make),
    }


def signal_during_first_chunk(monkeypatch, signum):
    """Deliver `signum` to this process while the first chunk is being computed."""
    original = runner.Runs.interact
    sent = []

    def interact(self, *args, **kwargs):
        if not sent:
            sent.append(signum)
            os.kill(os.getpid(), signum)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(runner.Runs, "interact", interact)


@pytest.mark.parametrize("family", list(family_configs()))
def test_a_signal_writes_checkpoint_and_out_then_resume_completes(family, tmp_path, monkeypatch):
    agent_type, raw, make = family_configs()[family]
    config = config_lib.validate(agent_type, raw)
    prefix = str(tmp_path / "run")
    signal_during_first_chunk(monkeypatch, signal.SIGTERM if family != "PPO" else signal.SIGINT)
    with pytest.raises(runner.Interrupted, match="run again with --resume"):
        runner.run(config, make, seed=0, output=prefix, progress=False)
    assert signal.getsignal(signal.SIGTERM) is not None  # the run's handlers are removed again
    assert files.load_checkpoint(prefix + ".ckpt.npz")[2]["next_chunk"] == 1
    partial = files.load_metrics(prefix + ".out")
    assert partial["meta"]["complete"] is False and partial["meta"]["chunks_done"] == 1
    assert len(partial["metrics"]["reward_rates"]) == 1
    monkeypatch.undo()
    done = runner.run(config, make, seed=0, output=prefix, resume=True, progress=False)
    assert done["meta"]["complete"] is True
    assert len(done["metrics"]["reward_rates"]) == config["num_steps"] // config["eval_frequency"]
    # The family's whole state went through its checkpoint: the resumed run ends as one never stopped, bit for bit.
    uninterrupted = runner.run(config, make, seed=0, output=str(tmp_path / "uninterrupted"), progress=False)
    for name, values in uninterrupted["metrics"].items():
        np.testing.assert_array_equal(done["metrics"][name], values, err_msg=name)
