"""Optional TensorBoard event files of a run's scalars (extra: pip install -e ".[tensorboard]", tensorboardX).

Every per-chunk scalar the .out records (the evaluation score `reward_rates` and each metric the agent's
interact returns) is written at the chunk's evaluation step: the mean over seeds as `<name>/mean` and each
run as `<name>/seed_<s>` (`<name>/point_<p>/seed_<s>` in a sweep). NaN values (a chunk without training)
are skipped, as TensorBoard would. The .out stays the record; the event files are for watching.
"""
import numpy as np

EXTRA_HINT = 'pip install -e ".[tensorboard]"'


class TensorBoardError(RuntimeError):
    pass


class ScalarWriter:
    def __init__(self, logdir: str):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise TensorBoardError(f"--tensorboard needs tensorboardX: install the tensorboard extra "
                                   f"({EXTRA_HINT})") from None
        self.writer = SummaryWriter(logdir)

    def write(self, step: int, metrics: dict) -> None:
        """metrics: name -> this chunk's values per run, shaped (seeds,) or (points, seeds)."""
        for name, values in metrics.items():
            values = np.asarray(values, np.float64)
            if values.ndim == 0 or not np.issubdtype(values.dtype, np.floating):
                continue
            if np.isfinite(values).any():
                self.writer.add_scalar(f"{name}/mean", float(np.nanmean(values)), step)
            for index in np.ndindex(values.shape):
                if np.isfinite(values[index]):
                    tag = "/".join([f"point_{index[0]}"] * (values.ndim == 2) + [f"seed_{index[-1]}"])
                    self.writer.add_scalar(f"{name}/{tag}", float(values[index]), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
