"""Run by test_sweep.py in a fresh process with N simulated CPU devices (XLA_FLAGS must be set before jax loads).

Trains one tiny sweep (2 points x 3 seeds) on 1 device and on all 4 (6 runs padded to 8), the base config
without a sweep (3 seeds) on 2 devices (padded to 4), to compare with the sweep's first point, whose values
are the base config's, and the sweep stopped on 4 devices and resumed on 1; prints, as JSON, how each
compares with the single-device result. Training starts at step 0, so only one interact program compiles.
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from agents import dqn  # noqa: E402
from experiment import files, runner  # noqa: E402
from experiment.config import validate  # noqa: E402

CONFIG = {
    "num_hidden_layers": 1, "num_hidden_units": 8, "alpha_adam": 1e-3, "b1_adam": 0.9, "b2_adam": 0.99,
    "eps_adam": 1e-5, "wd_adam": 0.0, "softmax_temp": 0.5, "exploration_strat": "softmax", "batch_size": 4,
    "num_seeds": 3, "target_update_frequency": 20, "use_target": True, "buffer_size": 100, "num_steps": 150,
    "gamma": 0.9, "training_start_time": 0, "eval_frequency": 50, "eval_steps": 10, "eval_batch_size": 2,
    "environment": "OpenGrid", "episodic_env": True, "env_config": {"grid_size": 3}, "activation": "relu",
    "checkpoint_frequency": 0, "sweep": {"alpha_adam": [1e-3, 1e-2]},
}


def main():
    devices = jax.devices()
    sweep = validate("ER", CONFIG)
    plain = validate("ER", {k: v for k, v in CONFIG.items() if k != "sweep"})
    out = tempfile.mkdtemp()

    def train(config, name, device_count, **kwargs):
        return runner.run(config, dqn.make, seed=3, output=os.path.join(out, name), progress=False,
                          devices=devices[:device_count], **kwargs)

    def compare(a, b, name_a, name_b, first_point_only=False):
        """Metrics equal, and the largest parameter difference (float rounding may differ with the number of
        runs per device: XLA vectorises a batch of 6 and of 2 differently)."""
        pa, pb = (files.load_pickle(os.path.join(out, n + ".params")) for n in (name_a, name_b))
        if first_point_only:
            pb = {name: per_point[0] for name, per_point in pb.items()}
        return {"metrics_equal": all(np.array_equal(a["metrics"][k], b["metrics"][k])
                                     for k in ("reward_rates", "train_reward_rates")),
                "params_max_difference": max(float(np.abs(x - y).max())
                                             for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)))}

    reference = train(sweep, "sweep1", 1)
    report = {"num_devices": len(devices), "shape": list(reference["metrics"]["reward_rates"].shape)}
    result = train(sweep, "sweep4", 4)
    report["sweep_on_4"] = compare(result, reference, "sweep4", "sweep1")
    plain = train(plain, "plain2", 2)
    first_point = {"metrics": {k: v[:, 0] for k, v in reference["metrics"].items() if v.ndim == 3}}
    report["plain_3_seeds_on_2"] = compare(plain, first_point, "plain2", "sweep1", first_point_only=True)
    try:
        train(sweep, "resumed", 4, stop_after_chunks=1)
    except runner.Interrupted:
        pass
    resumed = train(sweep, "resumed", 1, resume=True)
    report["stopped_on_4_resumed_on_1"] = compare(resumed, reference, "resumed", "sweep1")
    report["devices_recorded"] = [len(result["meta"]["devices"]), len(plain["meta"]["devices"])]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
