"""The MiniMontezuma bed's results (benchmarks/ppo_minimontezuma.py): per-seed statistics of a run worked by hand,
the constant control's bonus read from RND's run, the random-policy study's bookkeeping, and the bed's configs."""
import json
import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import ppo_minimontezuma as bed  # noqa: E402


def synthetic_run():
    """8 periods x 2 seeds: seed 0 takes the key in period 5 (at step 170,000), seed 1 never."""
    periods, times = 8, np.arange(8) * 32768.0
    first_key = np.full((periods, 2), np.nan)
    first_key[5:, 0] = 170000
    ramp = np.arange(periods, dtype=float)[:, None]
    return {"times": times, "first_key_step": first_key,
            "return": np.where(np.arange(periods)[:, None] >= 6, [[1.0, 0.0]], 0.0),
            "rooms_per_episode": 1 + ramp * [[0.1, 0.2]], "length": 100 + ramp * [[10, 20]],
            "rooms_visited": np.minimum(1 + ramp, 6) * [[1, 1]], "cells_visited": 50 + ramp * [[5, 7]],
            "int_reward_clipped_mean": np.full((periods, 2), 0.01) + [[0.0, 0.02]]}


def test_row_values_take_the_last_quarter_and_the_final_unions():
    values = bed.row_values(synthetic_run())
    seeds = values["per_seed"]
    # the last quarter of 8 periods is periods 6 and 7
    np.testing.assert_allclose(seeds["return"], [1.0, 0.0])
    np.testing.assert_allclose(seeds["rooms_per_episode"], [1 + 6.5 * 0.1, 1 + 6.5 * 0.2])
    np.testing.assert_allclose(seeds["length"], [165, 230])
    np.testing.assert_allclose(seeds["rooms_visited"], [6, 6])
    np.testing.assert_allclose(seeds["cells_visited"], [85, 99])
    np.testing.assert_allclose(seeds["bonus"], [0.01, 0.03])
    assert seeds["first_key_step"][0] == 170000 and np.isnan(seeds["first_key_step"][1])
    np.testing.assert_allclose(values["curves"]["key_fraction"].mean(1), [0, 0, 0, 0, 0, 0.5, 0.5, 0.5])


def test_table_counts_the_seeds_that_took_the_key():
    lines = bed.table({"PPO + RND": bed.row_values(synthetic_run())}, np.random.default_rng(0))
    assert "| PPO + RND | 2 | 1 of 2 | 170k, - | 0.500 (0.000, 1.000) |" in lines[2]
    assert "range of the seeds" in lines[-1]


def test_constant_control_is_paid_rnds_mean_clipped_bonus(tmp_path, monkeypatch):
    monkeypatch.setattr(bed, "load_row", lambda path: synthetic_run())
    path = bed.row_config("constant", {"distillation": "constant"}, str(tmp_path))
    config = json.load(open(path))
    with open(bed.CONFIG.format("rnd")) as f:
        rnd = json.load(f)
    assert config["distillation"] == "constant" and config["constant_bonus"] == pytest.approx(0.02)
    assert {k: v for k, v in config.items() if k not in ("distillation", "constant_bonus")} == \
        {k: v for k, v in rnd.items() if k != "distillation"}  # RND's every other key


def test_random_study_counts_rewards_episodes_and_the_first_key():
    from bench_envs import random_policy_study
    study = random_policy_study(num_seeds=2, num_envs=8, num_steps=1500, env_config={"start_room": 4,
                                                                                     "tile_pixels": 1})
    episodes = np.array(study["episodes_per_seed"])
    assert episodes.sum() == study["episodes"] > 0
    # rewards: +1 per key, +1 per door, +10 for the treasure, each at most once an episode
    paid = np.sum(np.array(study["return_per_episode_per_seed"]) * episodes)
    expected = study["episodes"] * (study["episode_fraction_key"] + study["episode_fraction_door"]
                                    + 10 * study["episode_fraction_treasure"])
    assert paid == pytest.approx(expected, abs=1e-3)
    # every episode's length is counted once; the episodes fit in the seed's steps
    lengths = np.array(study["length_per_episode_per_seed"]) * episodes
    assert np.all(lengths <= 8 * 1500) and np.all(lengths > 0)
    for first in study["first_key_step_per_seed"]:  # all the seed's environments step together
        assert first is None or (first % 8 == 0 and 0 < first <= 8 * 1500)
    assert study["episode_fraction_key"] > 0 or all(f is None for f in study["first_key_step_per_seed"])


def test_the_bed_configs_differ_only_in_the_variant():
    configs = {v: json.load(open(bed.CONFIG.format(v))) for v in ("none", "rnd", "snd", "snd_entropy")}
    for variant, config in configs.items():
        assert config["distillation"] == variant and config["env_config"] == {"tile_pixels": 1, "start_room": 0}
        assert {k: v for k, v in config.items() if k != "distillation"} == \
            {k: v for k, v in configs["none"].items() if k != "distillation"}
    assert configs["none"]["num_seeds"] >= 5


def test_bad_runs_folder_is_one_line_and_status_2(tmp_path, capsys):
    assert bed.main(["--runs", str(tmp_path / "missing"), "-o", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.strip() == f"error: --runs '{tmp_path / 'missing'}' is not a folder"


# ------------------------------------------------------------------------------------------ the SND author's log
def author_log(path, updates: int):
    """A result.log of `updates` lines: steps per environment 128 u, magnitude u / 10, bonus 0.001 u, filler."""
    with open(path, "w") as f:
        for u in range(1, updates + 1):
            fields = [128 * u, 0, 0, 0.0, 0.0, 9.7, 0.05, 0.05, u / 10, -2.2, 0.5, 0.001 * u, 0.01, 0.0, 0.0, 0.0]
            f.write(" ".join(str(x) for x in fields) + "  {'room_id': 0, 'explored_rooms': 1, 'raw_score': 0.0} \n")
    return str(path)


def snd_out(path, periods: int = 4, seeds: int = 5):
    """An SND run: 2 envs x 4 steps = 8 steps per update, periods of 16 steps (2 updates); period p's feature
    magnitude is p + 1 on every seed and its clipped bonus 0.01 (p + 1) + 0.001 seed."""
    from experiment import files
    p, s = np.arange(periods)[:, None], np.arange(seeds)[None, :]
    data = {"config": {"agent_type": "PPO", "distillation": "snd", "num_envs": 2, "rollout_length": 4,
                       "eval_frequency": 16},
            "metrics": {"eval_times": np.arange(periods) * 16, "feature_magnitude": np.broadcast_to(p + 1.0, (periods, seeds)),
                        "int_reward_clipped_mean": 0.01 * (p + 1) + 0.001 * s}}
    files.save_pickle(str(path), data)
    return str(path)


def test_author_log_table_matches_updates(tmp_path, capsys):
    import snd_author_log
    log, run = author_log(tmp_path / "result.log", 30), snd_out(tmp_path / "snd.out")
    assert snd_author_log.main(["--log", log, "--run", run, "-o", str(tmp_path / "t"), "--updates", "1", "3", "20",
                                "40"]) == 0
    table = open(tmp_path / "t.md").read().splitlines()
    # update 3: the log's line 3 (384 steps per env x 128 envs = 49,152 samples); ours: period 1 (updates 3-4),
    # magnitude 2 x 2 (the two views), bonus 0.02 + the seeds' mean 0.002
    assert table[3].startswith("| 3 | 0.05M | 0.30 | 0.0030 | 24 | 4.00 (4.00, 4.00) | 0.0220 (")
    assert table[4].startswith("| 20 | 0.33M | 2.00 | 0.0200 | not run |")  # past our 4 periods (8 updates)
    assert table[5].startswith("| 40 | - | - | - | not run |")  # past the log's 30 lines


def test_author_log_refuses_other_files(tmp_path, capsys):
    import snd_author_log
    bad = tmp_path / "bad.log"
    bad.write_text("128 0 0\n")
    run = snd_out(tmp_path / "snd.out")
    assert snd_author_log.main(["--log", str(bad), "--run", run, "-o", str(tmp_path / "t")]) == 2
    assert "line 1 is not a result.log line" in capsys.readouterr().err
    log = author_log(tmp_path / "result.log", 3)
    assert snd_author_log.main(["--log", log, "--run", str(tmp_path / "none.out"), "-o", str(tmp_path / "t")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_a_run_stopped_by_a_signal_is_not_a_row(tmp_path):
    """A signal writes the .out so far (meta complete false): --train must resume it and the table leave it out."""
    from experiment import files
    for name, complete in (("stopped", False), ("done", True)):
        files.save_pickle(str(tmp_path / f"{name}.out"), {"config": {}, "metrics": {}, "meta": {"complete": complete}})
    assert not bed.run_complete(str(tmp_path / "stopped")) and bed.run_complete(str(tmp_path / "done"))
    assert not bed.run_complete(str(tmp_path / "missing"))
