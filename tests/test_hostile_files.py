"""Hostile or mismatched result files are refused by every reader with one line and exit status 2: pickled code,
an .out from a newer format, another agent's run, parameters that do not fit their .out's config. No JAX
program runs here beyond shape evaluation."""
import os
import pickle

import numpy as np
import pytest

import best_points
import pets_outputs
import plot_metric
import ppo_features
from experiment import files

READERS = {  # name -> (function of an .out stem returning the exit status)
    "plot_metric": lambda stem, tmp: plot_metric.main(["-d", stem + ".out", "-o", os.path.join(tmp, "x.png")]),
    "best_points": lambda stem, tmp: best_points.main(["-d", stem + ".out"]),
    "ppo_features": lambda stem, tmp: ppo_features.main(["-d", stem, "-o", os.path.join(tmp, "x.png")]),
    "pets_outputs": lambda stem, tmp: pets_outputs.main(["archive", "-d", stem, "-o", os.path.join(tmp, "x.npz")]),
}
PPO_CONFIG = {"agent_type": "PPO", "environment": "CartPole-v1", "env_config": {}, "env_wrappers": {},
              "network": "mlp", "mlp_widths": [8], "distillation": "rnd", "distill_conv_channels": [8],
              "distill_conv_strides": [1], "distill_features": 4, "obs_norm": "mean", "num_seeds": 1}


def write_run(tmp_path, name, out, params):
    stem = str(tmp_path / name)
    with open(stem + ".out", "wb") as f:
        pickle.dump(out, f)
    with open(stem + ".params", "wb") as f:
        pickle.dump(params, f)
    return stem


def plain_out(config, meta=None):
    return {"config": config, "metrics": {"reward_rates": np.zeros((2, 1), np.float32),
                                          "eval_times": np.array([0, 10])}, "meta": meta or {}}


@pytest.mark.parametrize("reader", list(READERS))
def test_pickled_code_is_refused_by_every_reader(reader, tmp_path, capsys):
    stem = write_run(tmp_path, "hostile", {"metrics": {"x": os.system}}, {"policy": os.system})
    assert READERS[reader](stem, str(tmp_path)) == 2
    assert "refusing to load posix.system" in capsys.readouterr().err


@pytest.mark.parametrize("reader", list(READERS))
def test_an_out_of_a_newer_format_is_refused_by_every_reader(reader, tmp_path, capsys):
    stem = write_run(tmp_path, "newer", plain_out(PPO_CONFIG, {"format": files.OUT_FORMAT + 1}), {})
    assert READERS[reader](stem, str(tmp_path)) == 2
    assert f"written by a newer seedsuite (.out format {files.OUT_FORMAT + 1}" in capsys.readouterr().err


def test_another_agents_run_is_refused(tmp_path, capsys):
    dqn_stem = write_run(tmp_path, "dqn", plain_out({"agent_type": "ER"}), {"Q": [{}]})
    assert ppo_features.main(["-d", dqn_stem, "-o", str(tmp_path / "x.png")]) == 2
    assert "is a ER run, not PPO" in capsys.readouterr().err
    assert pets_outputs.main(["archive", "-d", dqn_stem, "-o", str(tmp_path / "x.npz")]) == 2
    assert "is a ER run, not PETS" in capsys.readouterr().err


def test_parameters_that_do_not_fit_their_out_are_refused(tmp_path, capsys):
    """A PPO .out beside parameters of another network (one layer too few), and a PETS .out beside episode arrays
    of another shape."""
    wrong = {"policy": [{"linear": {"w": np.zeros((4, 8)), "b": np.zeros(8)}}], "target": [{}], "predictor": [{}],
             "obs_mean": [np.zeros(4)], "obs_std": [np.ones(4)]}
    stem = write_run(tmp_path, "ppo", plain_out(PPO_CONFIG), wrong)
    assert ppo_features.main(["-d", stem, "-o", str(tmp_path / "x.png")]) == 2
    assert "the .params' policy network does not fit the .out's config" in capsys.readouterr().err
    pets_config = {"agent_type": "PETS", "num_seeds": 1, "task_hor": 5, "ninit_rollouts": 1}
    episodes = {"observations": [np.zeros((2, 6, 3))], "actions": [np.zeros((2, 5, 1))], "rewards": [np.zeros((2, 4))]}
    stem = write_run(tmp_path, "pets", plain_out(pets_config), episodes)
    assert pets_outputs.main(["archive", "-d", stem, "-o", str(tmp_path / "x.npz")]) == 2
    assert "does not fit its .out" in capsys.readouterr().err
