"""PPO through the harness (agents/ppo.py): a short CartPole run at PureJaxRL's settings must learn; tiny
MiniMontezuma runs of the distillation variants report every metric docs/ppo.md lists, with the exploration
counts consistent, and a split run resumes to identical metrics. The parts are in tests/test_ppo_parts.py."""
import os

import numpy as np
import pytest

from agents import ppo
from experiment import config as config_lib
from experiment import files, runner

CARTPOLE = "configs/ppo/CartPole_purejaxrl.json"


@pytest.mark.slow  # a learning run: `-m "not slow"` leaves it out
def test_cartpole_ppo_learns(tmp_path):
    """2 seeds x 131,072 steps (256 updates of 4 x 128): every seed's mean return over the last four evaluation
    periods exceeds 150 (a uniformly random policy averages about 22; the maximum is 500). About 15 s."""
    config = config_lib.validate("PPO", {**config_lib.load_json(CARTPOLE), "num_seeds": 2, "num_steps": 131072,
                                         "eval_frequency": 16384, "save_frequency": 131072})
    result = runner.run(config, ppo.make, seed=0, output=str(tmp_path / "cartpole"), progress=False)
    returns = np.asarray(result["metrics"]["return"])  # (periods, seeds)
    assert returns.shape == (8, 2)
    assert np.all(returns[-4:].mean(axis=0) > 150), returns
    import ppo_features
    assert ppo_features.main(["-d", str(tmp_path / "cartpole"), "-o", str(tmp_path / "f.png")]) == 2  # no distillation


TINY = {"environment": "MiniMontezuma", "env_config": {"tile_pixels": 1},
        "env_wrappers": {"frame_stack": 2, "frame_stack_order": "newest_first"},
        "num_seeds": 2, "num_steps": 512, "eval_frequency": 256, "training_start_time": 0, "save_frequency": 512,
        "checkpoint_frequency": 256, "log_episodes": False, "num_envs": 4, "rollout_length": 32,
        "num_minibatches": 4, "conv_channels": [8], "conv_strides": [1], "hidden_width": 16,
        "distill_conv_channels": [8], "distill_conv_strides": [1], "distill_features": 16, "entropy_features": 8,
        "entropy_buffer_size": 8, "obs_norm_init_steps": 8, "snd_pairs": 8}
COMMON = {"return", "episodes_finished", "length", "rooms_visited", "cells_visited", "rooms_per_episode",
          "rooms_per_episode_max", "first_key_step", "first_door_step", "first_treasure_step", "policy_loss",
          "value_loss_ext", "value_loss_int", "entropy", "approx_kl", "clip_fraction", "explained_variance_ext",
          "explained_variance_int", "grad_norm"}
DISTILLED = {"int_reward_mean", "int_reward_std", "int_reward_max", "int_reward_clipped_mean",
             "int_reward_clip_fraction", "predictor_loss", "mask_kept_fraction"}
CONTRASTIVE = {"contrastive_loss", "pair_accuracy", "distance_close", "distance_far", "feature_magnitude"}


def test_snd_with_a_frozen_target_and_k_of_half_the_features_is_rnd(tmp_path):
    """SND's bonus k mean_j (phi_T - phi_P)^2 with k = F / 2 is RND's sum_j (...)^2 / 2, and a target learning at
    step size 0 stays RND's frozen target: the two agents then give the same bonus, chunk by chunk, and the same
    training. Held equal for the comparison: the predictor's keep probability, the independent init (RND's coupled
    init off) and the input (obs_norm none: the author's RND updates its running mean with s_t+1, SND with s_t)."""
    common = {**TINY, "obs_norm": "none", "predictor_keep_prob": 0.5, "rnd_coupled_init": False}
    features = TINY["distill_features"]
    results = {}
    for variant, changes in (("rnd", {}), ("snd", {"target_learning_rate": 0.0, "int_reward_coeff": features / 2})):
        config = config_lib.validate("PPO", {**common, "distillation": variant, **changes})
        results[variant] = runner.run(config, ppo.make, seed=3, output=str(tmp_path / variant),
                                      progress=False)["metrics"]
    for name in ("int_reward_mean", "int_reward_max", "predictor_loss", "value_loss_int", "return"):
        np.testing.assert_allclose(np.asarray(results["snd"][name]), np.asarray(results["rnd"][name]), rtol=1e-4,
                                   atol=1e-7, err_msg=name)
    assert np.all(np.asarray(results["rnd"]["int_reward_mean"]) > 0)


def test_constant_bonus_control(tmp_path):
    """The control pays constant_bonus every step through the intrinsic stream: at 0 it is plain PPO bit for bit
    (the same keys, the same zero stream); at 0.05 its bonus statistics are 0.05 and the training differs."""
    def run(name, variant, **changes):
        config = config_lib.validate("PPO", {**TINY, "checkpoint_frequency": 0, "distillation": variant, **changes})
        return {metric: np.asarray(value) for metric, value in runner.run(
            config, ppo.make, seed=2, output=str(tmp_path / name), progress=False)["metrics"].items()}
    plain, zero = run("plain", "none"), run("zero", "constant", constant_bonus=0.0)
    paid = run("paid", "constant", constant_bonus=0.05)
    for name in plain:
        np.testing.assert_array_equal(zero[name], plain[name], err_msg=name)
    np.testing.assert_allclose(paid["int_reward_clipped_mean"], 0.05, rtol=1e-6)
    np.testing.assert_allclose(paid["int_reward_std"], 0.0, atol=1e-7)
    assert not np.allclose(paid["value_loss_int"], plain["value_loss_int"])


@pytest.mark.parametrize("variant, expected", [
    ("rnd", COMMON | DISTILLED),
    pytest.param("snd_entropy", COMMON | DISTILLED | CONTRASTIVE | {"int_b_reward_mean"},
                 marks=pytest.mark.slow)])  # the larger program: ~35 s here
def test_tiny_minimontezuma_runs_report_the_metrics_and_resume_exactly(tmp_path, variant, expected):
    config = config_lib.validate("PPO", {**TINY, "distillation": variant})
    result = runner.run(config, ppo.make, seed=1, output=str(tmp_path / "whole"), progress=False)
    metrics = {name: np.asarray(value) for name, value in result["metrics"].items()}
    assert expected <= set(metrics), expected - set(metrics)
    for name in expected - {"return", "length", "rooms_per_episode", "first_key_step", "first_door_step",
                            "first_treasure_step"}:
        assert np.all(np.isfinite(metrics[name])), name
    assert np.all(metrics["rooms_visited"] >= 1) and np.all(metrics["cells_visited"] >= metrics["rooms_visited"])
    assert np.all(metrics["rooms_visited"] >= metrics["rooms_per_episode_max"])
    assert np.all(np.diff(metrics["cells_visited"], axis=0) >= 0)  # cumulative
    assert np.all((metrics["int_reward_clipped_mean"] >= 0) & (metrics["int_reward_clipped_mean"] <= 1))
    if variant == "rnd":  # the author's RND keeps min(1, 32 / num_envs): every element at 4 environments
        np.testing.assert_allclose(metrics["mask_kept_fraction"], 1.0)
    else:  # SND keeps 1 in 4 at any num_envs (cnd_21); chunk means of 16 x 32-element draws: sigma about 0.005
        assert np.all(np.abs(metrics["mask_kept_fraction"] - 0.25) < 0.03)
    if variant != "snd_entropy":
        return
    import ppo_features
    picture = str(tmp_path / "features.png")
    assert ppo_features.main(["-d", str(tmp_path / "whole"), "--seed-index", "1", "--steps", "40", "-o", picture]) == 0
    assert os.path.getsize(picture) > 1000
    assert ppo_features.main(["-d", str(tmp_path / "whole"), "--seed-index", "2", "-o", picture]) == 2
    assert ppo_features.main(["-d", str(tmp_path / "missing"), "-o", picture]) == 2
    with pytest.raises(runner.Interrupted):
        runner.run(config, ppo.make, seed=1, output=str(tmp_path / "split"), progress=False, stop_after_chunks=1)
    resumed = runner.run(config, ppo.make, seed=1, output=str(tmp_path / "split"), resume=True, progress=False)
    assert set(resumed["metrics"]) == set(metrics)
    for name, values in metrics.items():  # every metric (episodes_finished once lost its first chunk on resume)
        np.testing.assert_array_equal(np.asarray(resumed["metrics"][name]), values, err_msg=name)


def test_deepsea_sizes_command_reports_success_and_skips_sizes_never_solved(tmp_path, capsys):
    """train_scripts/ppo_deepsea.py on sizes 4 and 40 for plain PPO: the size-4 run's success rate agrees with
    its returns (an episode that reaches the treasure scores 1 minus at most 0.01 of move costs, any other at
    most 0), size 40 (a random walk finds its treasure with probability 2^-40 per episode) never finds it, and
    the table says so. About 20 s."""
    import json

    from train_scripts import ppo_deepsea
    config = {**config_lib.load_json("configs/ppo/DeepSea_cpu.json"), "num_steps": 8192, "eval_frequency": 2048,
              "save_frequency": 8192, "checkpoint_frequency": 8192, "num_envs": 16, "rollout_length": 16,
              "num_minibatches": 4}
    path = tmp_path / "deepsea.json"
    path.write_text(json.dumps(config))
    out = tmp_path / "runs"
    assert ppo_deepsea.main(["--config", str(path), "--output", str(out), "--sizes", "4", "40", "48",
                             "--variants", "none"]) == 0
    metrics = {k: np.asarray(v) for k, v in files.load_metrics(str(out / "none-4.out"))["metrics"].items()}
    success, returns = metrics["success_rate"], metrics["return"]
    assert np.all(returns <= success + 1e-6) and np.all(returns >= success - 0.01 - 1e-6)
    assert np.all(success[0] > 0) and np.all(np.isfinite(metrics["first_treasure_step"][-1]))
    assert np.all(metrics["cells_visited"][-1] == 10)  # every reachable cell of the 4 x 4 triangle: 1 + 2 + 3 + 4
    never = files.load_metrics(str(out / "none-40.out"))["metrics"]
    assert np.all(np.isnan(np.asarray(never["first_treasure_step"])))
    assert not (out / "none-48.out").exists()  # skipped after a size whose treasure was never found
    table = (out / "deepsea.md").read_text()
    assert "| none |" in table and "not run" in table and (out / "deepsea_40.png").exists()
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**config, "environment": "CartPole-v1"}))
    assert ppo_deepsea.main(["--config", str(bad), "--output", str(out)]) == 2
    assert "environment must be DeepSea" in capsys.readouterr().err
    # The multi-run flags: --check runs and writes nothing; --resume with --overwrite is refused; --overwrite
    # trains a complete run again (the other runs of the call are kept as they were).
    checked = tmp_path / "checked"
    assert ppo_deepsea.main(["-c", str(path), "-o", str(checked), "--sizes", "4", "--variants", "none", "rnd",
                             "--check"]) == 0
    assert "2 runs: valid configs; nothing was run" in capsys.readouterr().out and not checked.exists()
    assert ppo_deepsea.main(["-c", str(path), "-o", str(out), "--resume", "--overwrite"]) == 2
    assert "exclude each other" in capsys.readouterr().err
    before = os.path.getmtime(out / "none-4.out")
    assert ppo_deepsea.main(["-c", str(path), "-o", str(out), "--sizes", "4", "--variants", "none", "--overwrite",
                             "--no-progress"]) == 0
    assert os.path.getmtime(out / "none-4.out") > before
