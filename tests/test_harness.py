"""The multi-seed harness end to end: output files, refusing to overwrite, resume == uninterrupted, bad files."""
import os
import pickle

import jax
import numpy as np
import pytest

from agents import dqn
from experiment import files, runner
from experiment.config import validate

TINY = {  # ProcMaze G=4, 3 seeds, 6 chunks of 100 steps; training starts in chunk 2
    "num_hidden_layers": 2, "num_hidden_units": 16, "alpha_adam": 1e-3, "b1_adam": 0.9, "b2_adam": 0.99,
    "eps_adam": 1e-5, "wd_adam": 1e-6, "softmax_temp": 0.5, "exploration_strat": "softmax", "batch_size": 8,
    "num_seeds": 3, "target_update_frequency": 20, "use_target": True, "buffer_size": 250, "num_steps": 600,
    "gamma": 0.9, "training_start_time": 150, "eval_frequency": 100, "save_params": True, "save_frequency": 200,
    "eval_steps": 20, "eval_batch_size": 4, "environment": "ProcMaze", "episodic_env": True,
    "env_config": {"grid_size": 4}, "activation": "elu", "checkpoint_frequency": 200,
}


@pytest.fixture(scope="module")
def tiny_config():
    return validate("ER", dict(TINY))


@pytest.fixture(scope="module")
def uninterrupted(tiny_config, tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("full") / "run")
    result = runner.run(tiny_config, dqn.make, seed=7, output=prefix, progress=False)
    return prefix, result


def test_out_file_contents(uninterrupted, tiny_config):
    prefix, result = uninterrupted
    data = files.load_metrics(prefix + ".out")
    metrics = data["metrics"]
    assert metrics["reward_rates"].shape == (6, 3) and metrics["reward_rates"].dtype == np.float32
    np.testing.assert_array_equal(metrics["eval_times"], [0, 100, 200, 300, 400, 500])  # chunk starts (quirk Q9)
    # Episodic ProcMaze scores lie in [-eval_steps, -1].
    assert np.all(metrics["reward_rates"] <= -1) and np.all(metrics["reward_rates"] >= -20)
    assert data["config"]["seed"] == 7 and data["config"]["agent_type"] == "ER"
    assert data["meta"]["complete"] is True
    import jax
    from importlib import metadata
    meta = data["meta"]  # provenance: what decides whether two runs are comparable
    assert meta["jax_version"] == jax.__version__ and meta["jaxlib_version"] == metadata.version("jaxlib")
    assert meta["matmul_precision"] == "default" and meta["backend"] == "cpu"
    assert meta["device_kind"] == jax.devices()[0].device_kind
    assert "mujoco_version" in meta and "mujoco_mjx_version" in meta
    assert not os.path.exists(prefix + ".ckpt.npz")  # removed once the run is complete
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(prefix + ".out").st_mode & 0o777 == 0o666 & ~umask  # as open() would create it, not 0600
    # .out holds only plain Python and numpy: it loads with the plain pickle module without jax types.
    with open(prefix + ".out", "rb") as f:
        raw = pickle.load(f)
    assert all(type(v) is np.ndarray for v in raw["metrics"].values())


def test_params_file_holds_one_haiku_dict_per_seed(uninterrupted):
    prefix, _ = uninterrupted
    params = files.load_pickle(prefix + ".params")
    assert list(params) == ["Q"] and len(params["Q"]) == 3
    first = params["Q"][0]
    assert sorted(first) == ["q_function/linear", "q_function/linear_1", "q_function/linear_2"]
    assert first["q_function/linear"]["w"].shape == (64, 16)
    # Seeds are independent runs: different initialisations, so different parameters.
    assert not np.allclose(params["Q"][0]["q_function/linear"]["w"], params["Q"][1]["q_function/linear"]["w"])


def test_refuses_to_overwrite(uninterrupted, tiny_config):
    prefix, _ = uninterrupted
    with pytest.raises(runner.RunError, match="already exists; pass --resume .* or --overwrite"):
        runner.run(tiny_config, dqn.make, seed=7, output=prefix, progress=False)


def test_resume_after_kill_equals_uninterrupted(uninterrupted, tiny_config, tmp_path):
    prefix_full, full = uninterrupted
    prefix = str(tmp_path / "killed")
    with pytest.raises(runner.Interrupted):
        runner.run(tiny_config, dqn.make, seed=7, output=prefix, progress=False, stop_after_chunks=3)
    assert os.path.exists(prefix + ".ckpt.npz")
    partial = files.load_metrics(prefix + ".out")  # written when the run stopped: the 3 chunks done
    assert partial["meta"]["complete"] is False and partial["metrics"]["reward_rates"].shape == (3, 3)
    # A second kill, then the resumed run goes to the end.
    with pytest.raises(runner.Interrupted):
        runner.run(tiny_config, dqn.make, seed=7, output=prefix, resume=True, progress=False, stop_after_chunks=2)
    resumed = runner.run(tiny_config, dqn.make, seed=7, output=prefix, resume=True, progress=False)
    for name, values in full["metrics"].items():
        np.testing.assert_array_equal(resumed["metrics"][name], values, err_msg=name)
    assert len(full["episodes"]["return"]) > 0  # the training episodes survive the kills too
    for name, values in full["episodes"].items():
        np.testing.assert_array_equal(resumed["episodes"][name], values, err_msg=name)
    resumed_params = files.load_pickle(prefix + ".params")
    full_params = files.load_pickle(prefix_full + ".params")
    jax.tree.map(np.testing.assert_array_equal, resumed_params, full_params)
    # Resuming a finished run changes nothing.
    again = runner.run(tiny_config, dqn.make, seed=7, output=prefix, resume=True, progress=False)
    np.testing.assert_array_equal(again["metrics"]["reward_rates"], full["metrics"]["reward_rates"])


def test_resume_refuses_changed_config_and_corrupt_checkpoint(tiny_config, tmp_path):
    prefix = str(tmp_path / "run")
    with pytest.raises(runner.Interrupted):
        runner.run(tiny_config, dqn.make, seed=1, output=prefix, progress=False, stop_after_chunks=1)
    changed = dict(tiny_config, gamma=0.5)
    with pytest.raises(runner.RunError, match=r"different config \(changed: gamma\)"):
        runner.run(changed, dqn.make, seed=1, output=prefix, resume=True, progress=False)
    with pytest.raises(runner.RunError, match=r"changed: seed"):
        runner.run(tiny_config, dqn.make, seed=2, output=prefix, resume=True, progress=False)
    with open(prefix + ".ckpt.npz", "r+b") as f:
        f.truncate(100)
    with pytest.raises(files.FileFormatError, match="corrupt or unreadable"):
        runner.run(tiny_config, dqn.make, seed=1, output=prefix, resume=True, progress=False)


def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(uninterrupted, tiny_config, tmp_path, capsys):
    """Killed after 3 chunks: the checkpoint of chunk 3 and the one kept from chunk 2 exist. A flipped byte in the
    latest (the zip's CRC) or a consistent rewrite of one leaf (our SHA-256) makes the resume warn and start from
    the previous one, and the run still ends bit-identical to the uninterrupted one. Both damaged: refused."""
    prefix_full, full = uninterrupted
    prefix = str(tmp_path / "killed")
    latest, previous = prefix + ".ckpt.npz", prefix + ".ckpt.prev.npz"
    with pytest.raises(runner.Interrupted):
        runner.run(tiny_config, dqn.make, seed=7, output=prefix, progress=False, stop_after_chunks=3)
    assert files.load_checkpoint(latest)[2]["next_chunk"] == 3
    assert files.load_checkpoint(previous)[2]["next_chunk"] == 2
    with np.load(latest) as npz:
        payload = {name: npz[name] for name in npz.files}
    payload["leaf_00000"] = payload["leaf_00000"] + 1  # a plausible file whose contents changed after writing
    np.savez(latest, **payload)
    with pytest.raises(files.FileFormatError, match="fails its checksum"):
        files.load_checkpoint(latest)
    capsys.readouterr()
    resumed = runner.run(tiny_config, dqn.make, seed=7, output=prefix, resume=True, progress=False)
    assert "resuming from the previous checkpoint" in capsys.readouterr().err
    for name, values in full["metrics"].items():
        np.testing.assert_array_equal(resumed["metrics"][name], values, err_msg=name)
    jax.tree.map(np.testing.assert_array_equal, files.load_pickle(prefix + ".params"),
                 files.load_pickle(prefix_full + ".params"))
    assert not os.path.exists(latest) and not os.path.exists(previous)  # both removed at the end

    prefix = str(tmp_path / "both")
    with pytest.raises(runner.Interrupted):
        runner.run(tiny_config, dqn.make, seed=7, output=prefix, progress=False, stop_after_chunks=3)
    for path in (prefix + ".ckpt.npz", prefix + ".ckpt.prev.npz"):
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 0xFF
        open(path, "wb").write(bytes(data))
    with pytest.raises(files.FileFormatError, match="both checkpoints are unusable"):
        runner.run(tiny_config, dqn.make, seed=7, output=prefix, resume=True, progress=False)


def test_fix_eval_time_label_marks_chunk_ends(tiny_config, tmp_path):
    config = dict(tiny_config, fix_eval_time_label=True, num_steps=200)
    result = runner.run(config, dqn.make, seed=0, output=str(tmp_path / "r"), progress=False)
    np.testing.assert_array_equal(result["metrics"]["eval_times"], [100, 200])
    # The .out says what it holds: the agent, each metric's label and meaning, what the x axis counts.
    meta = files.load_metrics(str(tmp_path / "r.out"))["meta"]
    assert meta["agent"] == "ER DQN" and meta["x_axis"] == "environment steps per seed"
    assert set(meta["metrics"]) == set(result["metrics"])
    assert meta["metrics"]["reward_rates"]["label"].startswith("greedy evaluation")
    assert meta["metrics"]["train_reward_rates"]["meaning"]


def test_corrupt_out_file_is_refused(tmp_path):
    bad = tmp_path / "bad.out"
    bad.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(files.FileFormatError, match="corrupt"):
        files.load_metrics(str(bad))
    hostile = tmp_path / "hostile.out"
    hostile.write_bytes(pickle.dumps({"metrics": {"x": os.system}}))
    with pytest.raises(files.FileFormatError, match="refusing to load posix.system"):
        files.load_metrics(str(hostile))


def test_an_unwritable_output_directory_is_refused_before_running(tiny_config, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    with pytest.raises(runner.RunError, match="cannot write in the output directory .*a_file.*nothing was run"):
        runner.run(tiny_config, dqn.make, seed=7, output=str(blocker / "run"), progress=False)


def test_a_read_only_output_directory_is_refused_before_running(tiny_config, tmp_path):
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    os.chmod(read_only, 0o555)
    try:
        if os.access(read_only, os.W_OK):  # root ignores the mode bits
            pytest.skip("this user can write into a 0555 directory (root)")
        with pytest.raises(runner.RunError, match="cannot write in the output directory .*read_only"):
            runner.run(tiny_config, dqn.make, seed=7, output=str(read_only / "run"), progress=False)
    finally:
        os.chmod(read_only, 0o755)


def test_disk_full_stops_with_a_message_and_leaves_earlier_files_whole(uninterrupted, tiny_config, tmp_path,
                                                                        monkeypatch):
    """The disk fills at the fifth file written (.params, .out and the checkpoint at step 200, .params at 400,
    then the .out at 400 fails): the run stops with one message naming the file, the earlier .out and checkpoint
    load, no temporary file is left behind, and once space is back --resume ends with the uninterrupted run's
    results."""
    import errno
    prefix_full, full = uninterrupted
    prefix = str(tmp_path / "full_disk")
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) >= 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    with pytest.raises(runner.RunError, match="cannot write .*: No space left on device; the files written before are "
                                              "intact"):
        runner.run(tiny_config, dqn.make, seed=7, output=prefix, progress=False)
    monkeypatch.undo()
    assert files.load_metrics(prefix + ".out")["meta"]["complete"] is False
    files.load_checkpoint(prefix + ".ckpt.npz")
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    resumed = runner.run(tiny_config, dqn.make, seed=7, output=prefix, resume=True, progress=False)
    for name, values in full["metrics"].items():
        np.testing.assert_array_equal(resumed["metrics"][name], values, err_msg=name)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="counts the memory regions Linux lists")
def test_releasing_the_compiled_programs_unmaps_their_code(uninterrupted, tiny_config):
    """XLA:CPU maps each program's code into regions of its own and Linux allows a process 65,530: commands that
    run config after config release them between configs. Releasing gives back the regions (hundreds for this
    run's programs). (That a run after a release compiles afresh and matches is tried by every test module after
    the first: the suite releases between modules.)"""
    def regions():
        with open("/proc/self/maps") as maps:
            return sum(1 for _ in maps)

    runner.compiled_run(tiny_config, dqn.make)  # held in the cache since the uninterrupted run
    before = regions()
    runner.release_compiled()
    assert regions() < before - 100 and not runner._COMPILED_CACHE


def test_seeds_split_across_jobs_train_exactly_the_seeds_of_one_job(tmp_path):
    """6 seeds of master seed 7 in one job, and as two jobs of 3 (seed_offset 0 and 3): every metric, episode and
    parameter of each seed is the same, bit for bit. (On the suite's 2 devices a job of 3 runs 2 per device with a
    padding run, the job of 6 runs 3 per device; a job with ONE run per device compiles differently and matches
    only to float rounding, see docs/harness.md.)"""
    def job(num_seeds, offset, name):
        result = runner.run(validate("ER", {**TINY, "num_seeds": num_seeds, "seed_offset": offset}), dqn.make, seed=7,
                            output=str(tmp_path / name), progress=False)
        with open(tmp_path / f"{name}.params", "rb") as f:
            return result, pickle.load(f)["Q"]  # {"Q": one parameter tree per seed}
    whole, whole_params = job(6, 0, "whole")
    first, first_params = job(3, 0, "first")
    rest, rest_params = job(3, 3, "rest")
    assert rest["config"]["seed_offset"] == 3
    for name, values in whole["metrics"].items():
        values = np.asarray(values)
        if values.ndim < 2:  # eval_times
            continue
        joined = np.concatenate([np.asarray(first["metrics"][name]), np.asarray(rest["metrics"][name])], axis=1)
        np.testing.assert_array_equal(joined, values, err_msg=name)
    assert len(whole_params) == 6
    for joined, single in zip(first_params + rest_params, whole_params):
        jax.tree.map(np.testing.assert_array_equal, joined, single)
    for seed in range(3):  # a job's episode table numbers its own seeds from 0: global index = seed_offset + seed
        np.testing.assert_array_equal(rest["episodes"]["return"][rest["episodes"]["seed"] == seed],
                                      whole["episodes"]["return"][whole["episodes"]["seed"] == 3 + seed])
