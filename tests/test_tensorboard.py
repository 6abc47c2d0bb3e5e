"""--tensorboard: the .out's per-chunk scalars written as TensorBoard event files, read back record by record;
and a clear refusal when tensorboardX is absent."""
import glob
import struct as binary

import numpy as np
import pytest

from agents import dqn
from experiment import runner
from experiment import tensorboard as tb
from experiment.config import validate
from tests.test_harness import TINY


def read_scalars(logdir: str) -> dict:
    """tag -> [(step, value)] from the TFRecord event files (length, crc, Event proto, crc per record)."""
    from tensorboardX.proto import event_pb2

    scalars = {}
    for path in glob.glob(f"{logdir}/events.out.tfevents.*"):
        with open(path, "rb") as f:
            data = f.read()
        offset = 0
        while offset < len(data):
            (length,) = binary.unpack("<Q", data[offset:offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


@pytest.mark.extra("tensorboard")
def test_event_files_hold_the_out_scalars_per_seed_and_mean(tmp_path):
    config = validate("ER", dict(TINY))
    result = runner.run(config, dqn.make, seed=0, output=str(tmp_path / "run"), progress=False,
                        tensorboard=str(tmp_path / "tb"))
    scalars = read_scalars(str(tmp_path / "tb"))
    rates, times = np.asarray(result["metrics"]["reward_rates"]), np.asarray(result["metrics"]["eval_times"])
    for seed in range(3):
        steps, values = zip(*scalars[f"reward_rates/seed_{seed}"])
        assert list(steps) == times.tolist()
        np.testing.assert_allclose(values, rates[:, seed], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars["reward_rates/mean"]], rates.mean(axis=1), rtol=1e-5)
    assert len(scalars["train_reward_rates/seed_0"]) == len(times)


def test_missing_tensorboardx_is_one_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboardx(name, *args, **kwargs):
        if name.startswith("tensorboardX"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboardx)
    with pytest.raises(tb.TensorBoardError, match=r'install the tensorboard extra \(pip install -e "\.\[tensorboard\]"\)'):
        tb.ScalarWriter("unused")
