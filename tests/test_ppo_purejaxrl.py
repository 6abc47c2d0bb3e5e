"""The PureJaxRL side by side (benchmarks/ppo_purejaxrl.py): PureJaxRL's per-step episode log turned into our
per-period metric by hand, and the parity summary on synthetic runs with known answers (PureJaxRL itself is not
needed)."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import ppo_purejaxrl  # noqa: E402


def test_period_means_average_the_episodes_that_end_in_each_period():
    # 1 seed, 4 updates of 2 steps x 2 envs, periods of 2 updates; the log holds the last ended return everywhere
    returns = np.array([[[[5, 7], [5, 7]], [[9, 7], [9, 7]], [[9, 7], [9, 7]], [[9, 3], [4, 3]]]], float)
    ended = np.zeros_like(returns)
    ended[0, 0, 0, 0] = ended[0, 0, 1, 1] = 1  # episodes of 5 and 7 end in period 0 ...
    ended[0, 1, 0, 0] = 1  # ... and one of 9
    ended[0, 3, 0, 1] = ended[0, 3, 1, 0] = 1  # period 1: 3 and 4; update 2 has none
    means = ppo_purejaxrl.period_means(returns, ended, updates_per_period=2)
    assert means.shape == (2, 1)
    np.testing.assert_allclose(means[:, 0], [(5 + 7 + 9) / 3, (3 + 4) / 2])
    ended[0, 2:] = 0
    assert np.isnan(ppo_purejaxrl.period_means(returns, ended, 2)[1, 0])  # no episode ended: NaN, not 0


def test_summary_of_identical_and_of_shifted_runs(tmp_path):
    rng = np.random.default_rng(0)
    ours = rng.normal(100, 5, size=(12, 8))
    data = {"environment": "CartPole-v1", "period_steps": 8192, "ours": ours.tolist(), "purejaxrl": ours.tolist()}
    text = ppo_purejaxrl.summarise(dict(data), str(tmp_path / "same"))
    assert "contains 0 at 12 of 12 periods (100%" in text
    saved = json.load(open(tmp_path / "same.json", encoding="utf-8"))
    assert saved["ci_contains_zero"] == 1.0 and (tmp_path / "same.png").exists()
    data["purejaxrl"] = (ours - 50).tolist()  # 10 standard deviations apart: no interval contains 0
    assert "contains 0 at 0 of 12 periods" in ppo_purejaxrl.summarise(dict(data), str(tmp_path / "shifted"))
