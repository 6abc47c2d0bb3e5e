"""Checkpoints whose bytes grow with the data: the row log of experiment/files.py (large leaves filled row by row
are written as new-row segments, verified, reused), and a PETS run through it that resumes bit for bit."""
import os

import numpy as np
import pytest

from agents import pets
from experiment import config as config_lib
from experiment import files, runner


@pytest.fixture
def row_log_on(monkeypatch):
    monkeypatch.setattr(files, "ROW_LOG_MIN_BYTES", 0)  # every leaf with rows goes to the row log


def written_bytes(monkeypatch, only_checkpoints=False):
    """A list that collects the size of every file atomic_write writes (or only the checkpoints and their rows)."""
    sizes = []
    write = files.atomic_write

    def counting(path, writer, previous=None):
        write(path, writer, previous)
        if not only_checkpoints or ".ckpt" in path:
            sizes.append(os.path.getsize(path))

    monkeypatch.setattr(files, "atomic_write", counting)
    return sizes


def test_row_log_writes_new_rows_only_and_rebuilds_the_leaf(tmp_path, row_log_on, monkeypatch):
    path = str(tmp_path / "run.ckpt.npz")
    buffer = np.full((2, 10, 3), np.nan, np.float32)  # (runs, rows, features): rows not yet written hold NaN
    rng = np.random.default_rng(0)
    buffer[:, :4] = rng.normal(size=(2, 4, 3))
    sizes = written_bytes(monkeypatch)
    files.save_checkpoint(path, [buffer.copy(), np.arange(3)], {}, {"step": 1})
    first = buffer.copy()
    buffer[:, 4:7] = rng.normal(size=(2, 3, 3))
    files.save_checkpoint(path, [buffer.copy(), np.arange(3)], {}, {"step": 2})
    log = files.load_checkpoint(path)[2]["row_log"]["0"]
    assert [segment[:2] for segment in log["segments"]] == [[0, 4], [4, 7]] and np.isnan(log["fill"])
    # the second checkpoint wrote one segment of 3 rows x 2 runs x 3 float32 (+ the .npy header), not the buffer
    assert sizes[2] - 128 == 2 * 3 * 3 * 4
    leaves, _, meta = files.load_checkpoint(path)
    np.testing.assert_array_equal(leaves[0], buffer)
    np.testing.assert_array_equal(leaves[1], np.arange(3))  # a leaf without rows stays in the .npz
    assert meta["step"] == 2
    previous, _, _ = files.load_checkpoint(files.previous_checkpoint(path))  # the fallback still loads
    np.testing.assert_array_equal(previous[0], first)
    # rows already logged changed (a ring buffer wrapped): one fresh segment holds them all
    buffer[:, 1] = 7.0
    files.save_checkpoint(path, [buffer.copy(), np.arange(3)], {}, {"step": 3})
    leaves, _, meta = files.load_checkpoint(path)
    assert [segment[:2] for segment in meta["row_log"]["0"]["segments"]] == [[0, 7]]
    np.testing.assert_array_equal(leaves[0], buffer)
    kept = {s[2] for m in (meta, files.load_checkpoint(files.previous_checkpoint(path))[2])
            for s in m["row_log"]["0"]["segments"]}
    assert set(os.listdir(files.row_log_dir(path))) == kept  # segments neither checkpoint lists are gone
    # a damaged or missing segment is a corrupt checkpoint (so the runner falls back to the previous one)
    segment = os.path.join(files.row_log_dir(path), meta["row_log"]["0"]["segments"][0][2])
    with open(segment, "r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(b"\x00\x00\x80\x7f")
    with pytest.raises(files.FileFormatError, match="fails its checksum"):
        files.load_checkpoint(path)
    os.remove(segment)
    with pytest.raises(files.FileFormatError, match="is missing"):
        files.load_checkpoint(path)
    files.remove_checkpoint(path)
    assert not os.path.exists(path) and not os.path.exists(files.row_log_dir(path))


def tiny_pets(episodes: int, horizon: int = 20):
    raw = config_lib.load_json("configs/pets/tiny_test.json")
    return config_lib.validate("PETS", {**raw, "ntrain_iters": episodes - 1, "num_steps": episodes * horizon,
                                        "task_hor": horizon, "eval_frequency": horizon,
                                        "checkpoint_frequency": horizon})


@pytest.mark.slow  # a learning run: `-m "not slow"` leaves it out
def test_pets_checkpoints_grow_with_the_data_and_resume_exactly(tmp_path, row_log_on, monkeypatch):
    """A checkpoint after every episode of 100 steps: the checkpoint bytes written over a run of 9 episodes are about
    4 times those of 3 (measured 4.1: the episode buffers logged once, the model and optimiser state each time),
    against 6.2 with a whole-buffer checkpoint per episode; a run interrupted after 5 episodes resumes to the
    uninterrupted metrics, bit for bit."""
    totals = {}
    for episodes in (3, 9):
        sizes = written_bytes(monkeypatch, only_checkpoints=True)
        runner.run(tiny_pets(episodes, horizon=100), pets.make, seed=3, output=str(tmp_path / f"run{episodes}"),
                   progress=False)
        totals[episodes] = sum(sizes)
        monkeypatch.undo()
        monkeypatch.setattr(files, "ROW_LOG_MIN_BYTES", 0)
    assert totals[9] < 5.0 * totals[3], totals
    config = tiny_pets(8)
    whole = runner.run(config, pets.make, seed=3, output=str(tmp_path / "whole"), progress=False)
    with pytest.raises(runner.Interrupted):
        runner.run(config, pets.make, seed=3, output=str(tmp_path / "split"), progress=False, stop_after_chunks=5)
    assert os.listdir(files.row_log_dir(str(tmp_path / "split.ckpt.npz")))
    resumed = runner.run(config, pets.make, seed=3, output=str(tmp_path / "split"), resume=True, progress=False)
    for name in ("reward_rates", "model_loss", "return_running_max"):
        np.testing.assert_array_equal(np.asarray(resumed["metrics"][name]), np.asarray(whole["metrics"][name]))
    assert not os.path.exists(files.row_log_dir(str(tmp_path / "split.ckpt.npz")))  # removed with the checkpoint
