"""The PSDRL evidence commands: the parity statistic of benchmarks/psdrl_original.py and the per-block returns and
random-policy baseline of benchmarks/psdrl_results.py."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import psdrl_original  # noqa: E402
import psdrl_results  # noqa: E402

CONFIG = {"environment": "Catch-bsuite", "env_config": {}, "time_limit": 100, "warmup_length": 8000}


def test_parity_interval_known_answers():
    rng = np.random.default_rng(0)
    ours = rng.normal(size=(4, 6))
    difference, low, high = psdrl_original.parity(ours, ours.copy(), rng)
    np.testing.assert_allclose(difference, 0.0)
    assert np.all(low < 0) and np.all(high > 0)
    # every seed of ours exactly 1 above every seed of theirs: the resampled difference is 1 whatever is drawn
    difference, low, high = psdrl_original.parity(np.full((3, 5), 1.0), np.zeros((3, 5)), rng)
    np.testing.assert_allclose([difference, low, high], 1.0)


def test_random_policy_on_catch_scores_minus_three_fifths():
    # the ball's column is independent of any ball-blind policy: P(catch) = 1/5, return 0.2 - 0.8 = -0.6 exactly.
    # 10 seeds x 2,000 steps ~ 2,200 episodes of +-1: the mean's standard error is about 0.017; tolerance 0.06.
    values = psdrl_results.random_policy(CONFIG, cap=101, num_steps=2000, block=250, num_seeds=10)
    assert values.shape == (8, 10)
    assert abs(np.nanmean(values) + 0.6) < 0.06
    assert np.all((values >= -1) & (values <= 1))


def test_random_policy_cuts_episodes_at_the_cap():
    # ProcMaze pays -1 per step: with a cap of 5 steps no episode returns below -5
    values = psdrl_results.random_policy({"environment": "ProcMaze", "env_config": {"grid_size": 3}}, cap=5,
                                         num_steps=200, block=100, num_seeds=3)
    assert np.all(values >= -5) and np.all(values <= 0)


def test_series_pool_logs_of_both_kinds(tmp_path):
    moves = {"config": CONFIG, "chunks": [{"step": 250, "train_return": [-1.0, 1.0]},
                                          {"step": 500, "train_return": [0.0, 0.5]}]}
    original = {"config": CONFIG, "chunk_steps": [250, 500, 750], "train_return": [0.2, 0.4, 0.6]}
    (tmp_path / "moves.json").write_text(json.dumps(moves))
    (tmp_path / "original.json").write_text(json.dumps(original))
    values, block, _ = psdrl_results.load_series([str(tmp_path / "moves.json"), str(tmp_path / "original.json")], None)
    assert block == 250
    np.testing.assert_allclose(values, [[-1.0, 1.0, 0.2], [0.0, 0.5, 0.4]])  # cut to the shorter log


def test_results_command_refuses_bad_input(tmp_path, capsys):
    (tmp_path / "other.json").write_text(json.dumps({"config": CONFIG}))
    assert psdrl_results.main(["-o", str(tmp_path / "f"), "--panel", "Catch", f"x={tmp_path / 'other.json'}"]) == 2
    assert "neither a psdrl_moves.py log" in capsys.readouterr().err
    assert psdrl_results.main(["-o", str(tmp_path / "f"), "--panel", "Catch", "no-equals-sign"]) == 2
    assert "is not LABEL=PATH" in capsys.readouterr().err
    assert psdrl_results.main(["-o", str(tmp_path / "f"), "--panel", "Catch", f"x={tmp_path / 'missing.json'}"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_out_files_are_binned_by_episode_end(tmp_path):
    from experiment import files

    block = 250
    table = {"seed": np.array([0, 0, 1, 1]), "return": np.array([1.0, -1.0, 0.5, 0.25]),
             "length": np.array([9, 9, 9, 9]), "end_step": np.array([9, 250, 251, 500]), "point": np.zeros(4, int)}
    data = {"config": {**CONFIG, "num_seeds": 2, "num_steps": 500, "eval_frequency": block}, "metrics": {},
            "episodes": table, "meta": {"format": files.OUT_FORMAT}}
    path = tmp_path / "run.out"
    files.save_pickle(str(path), data)
    values, got_block, _ = psdrl_results.episode_blocks(str(path), None)
    assert got_block == block
    np.testing.assert_allclose(values, [[0.0, np.nan], [np.nan, 0.375]])
