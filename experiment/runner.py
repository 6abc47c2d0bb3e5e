"""The host loop: one process trains num_seeds runs of one agent as a single jitted, vmapped program.

Per chunk: one call of interact (eval_frequency env steps for every seed), one call of evaluate, then
metrics appended on the host. Files are written atomically; a checkpoint of the whole run state lets
`--resume` continue a killed run and end with exactly the files an uninterrupted run writes.
"""
import contextlib
import functools
import gc
import glob
import hashlib
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm import tqdm

import envs
from experiment import config as config_lib
from experiment import devices as devices_lib
from experiment import files
from experiment import metrics as metrics_lib
from experiment.tensorboard import ScalarWriter

CHECKPOINT_FORMAT = 3  # 3: episodes record the grid point; states hold only the real runs
EPISODE_PREFIX = "episodes_"  # checkpoint arrays holding the recorded training episodes


class RunError(RuntimeError):
    """A problem with the run's files or resumption; the message says what to do."""


@dataclass
class Progress:
    """Host-side loop state: what a checkpoint holds besides the run state."""

    next_chunk: int = 0
    since_params_save: int = 0
    since_checkpoint: int = 0
    metrics: dict = field(default_factory=dict)  # name -> list of per-chunk numpy arrays
    episodes: dict = field(default_factory=dict)  # seed / return / length / end_step -> list of 1-D arrays


def config_digest(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def default_devices(num_runs: int, devices=None) -> list:
    """The devices (default: all of JAX's) a run axis of num_runs uses unless told: on one host, as few as
    keep the most runs on any device the least (30 runs on 4 devices: 4 with 8, 8, 8, 6 + 2 padding; on 16:
    15 with 2 each; 1 run: 1), so no device computes only padding; across hosts, all of them (every host
    must hold a shard)."""
    devices = list(devices if devices is not None else jax.devices())
    if jax.process_count() > 1:
        return devices
    runs_per_device = -(-num_runs // len(devices))
    return devices[:-(-num_runs // runs_per_device)]


class RunAxis:
    """The one batch axis every compiled function is vmapped over: run r = point * num_seeds + seed.

    Without a sweep there is one point. The axis is padded with copies of run 0 up to a multiple of the
    device count (the copies' results are dropped) and sharded across the devices, so any number of seeds
    and points runs on any number of devices, with each run's result independent of the layout up to float
    rounding (XLA vectorises different numbers of runs per device differently).
    """

    def __init__(self, num_points: int, num_seeds: int, devices=None, swept: bool = False):
        self.num_points, self.num_seeds, self.swept = num_points, num_seeds, swept
        self.num_runs = num_points * num_seeds
        self.devices = list(devices if devices is not None else default_devices(self.num_runs))
        self.padded = -(-self.num_runs // len(self.devices)) * len(self.devices)
        self.sharding = NamedSharding(Mesh(np.array(self.devices), ("runs",)), PartitionSpec("runs"))

    def place(self, tree):
        """Host arrays with a leading num_runs axis -> padded global arrays sharded over the devices."""
        def put(x):
            x = np.asarray(x)
            if self.padded > self.num_runs:
                x = np.concatenate([x, np.repeat(x[:1], self.padded - self.num_runs, axis=0)])
            return jax.make_array_from_callback(x.shape, self.sharding, lambda index: x[index])
        return jax.tree.map(put, tree)

    def fetch(self, tree):
        """Global arrays -> host numpy arrays of the num_runs real runs (gathered from every host)."""
        def get(x):
            if jax.process_count() > 1:
                x = multihost_utils.process_allgather(x, tiled=True)
            return np.asarray(x)[:self.num_runs]
        return jax.tree.map(get, tree)

    def per_run(self, per_seed):
        """(num_seeds, ...) -> (num_runs, ...): every point's seed s shares seed s's key (common random numbers)."""
        return np.tile(np.asarray(per_seed), (self.num_points,) + (1,) * (np.ndim(per_seed) - 1))

    def grid(self, per_run):
        """(num_runs, ...) -> (num_points, num_seeds, ...) in a sweep, else (num_seeds, ...)."""
        per_run = np.asarray(per_run)
        return per_run.reshape((self.num_points,) * self.swept + (self.num_seeds,) + per_run.shape[1:])


class CompiledRun:
    """jit(vmap(...)) of one agent's init / interact / evaluate over the run axis, sharded across its devices."""

    def __init__(self, agent, axis: RunAxis):
        self.agent, self.axis = agent, axis
        options = devices_lib.compiler_options(axis.devices)
        jit = functools.partial(jax.jit, out_shardings=axis.sharding, **({"compiler_options": options} if options else {}))
        self.init = jit(self.per_device(agent.init))
        # The run state is donated: the replay buffers are updated in place, never copied per chunk.
        self.interact = jit(lambda state, keys, hparams, phase: self.per_device(
            lambda s, k, h: agent.interact(s, k, h, phase))(state, keys, hparams), static_argnums=3, donate_argnums=0)
        self.evaluate = jit(self.per_device(agent.evaluate))
        self.saved_params = jit(self.per_device(agent.saved_params))
        learned = agent.learned_params or agent.saved_params
        self.params_finite = jit(self.per_device(lambda state: all_finite(learned(state))))

    def per_device(self, function):
        """vmap(function) over each device's own runs. The runs are independent, so each device runs its share
        without waiting on the others: under plain sharding a vmapped while_loop's condition (any run still
        going) becomes an all-reduce across the devices at every iteration, and on a CPU whose devices share
        the cores a device that waits there can time out XLA's rendezvous and abort the process."""
        spec = PartitionSpec("runs")
        return jax.shard_map(jax.vmap(function), mesh=self.axis.sharding.mesh, in_specs=spec, out_specs=spec,
                             check_vma=False)

    def abstract_state(self, keys, hparams):
        return jax.eval_shape(self.init, keys, hparams)


def all_finite(tree) -> jax.Array:
    """Whether every float in the pytree is finite (no NaN, no infinity)."""
    checks = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(checks)) if checks else jnp.bool_(True)


def diverged_runs(previous, params_finite, train_metrics: dict) -> np.ndarray:
    """(num_runs,) bool: runs that diverged before, or whose learned parameters hold a NaN or an infinity now, or
    whose chunk reported an infinite loss (any metric with "loss" in its name; a NaN loss alone is not taken as
    divergence: agents report NaN for a chunk without training, and a NaN gradient reaches the parameters)."""
    diverged = np.asarray(previous, dtype=bool) | ~np.asarray(params_finite, dtype=bool)
    for name, value in train_metrics.items():
        if "loss" in name and not name.startswith("episode_"):
            value = np.asarray(value, dtype=float)
            diverged |= np.any(np.isinf(value.reshape(len(value), -1)), axis=1)
    return diverged


def diverged_steps(diverged, eval_times) -> np.ndarray:
    """Per run (the trailing axes of diverged (num_evals, ...)), the eval time of the first chunk that ended
    diverged, or -1."""
    diverged = np.asarray(diverged, dtype=bool)
    first = np.argmax(diverged, axis=0)
    return np.where(np.any(diverged, axis=0), np.asarray(eval_times)[first], -1).astype(np.int64)


_COMPILED_CACHE: dict = {}


def compiled_run(config: dict, make_agent, devices=None) -> CompiledRun:
    """One CompiledRun per (agent, static config, run axis, devices) in this process, so repeated runs reuse the
    compiled programs: configs that differ only in seed or in hyperparameters the agent takes as hparams
    (the sweepable keys) share one."""
    if devices is None and envs.external_state(config):
        devices = jax.devices()[:1]  # emulators step on the host through one callback: sharding would only gather
    axis = RunAxis(len(config.get("sweep") or [None]), config["num_seeds"], devices, swept=bool(config.get("sweep")))
    dynamic = set(config_lib.SWEEPABLE_KEYS[config["agent_type"]]) | {"seed", "sweep"}
    static = {k: v for k, v in config.items() if k not in dynamic}
    cache_key = (make_agent, json.dumps(static, sort_keys=True), axis.num_points, axis.swept,
                 tuple(str(d) for d in axis.devices))
    if cache_key not in _COMPILED_CACHE:
        env, env_params = envs.make_from_config(config)
        _COMPILED_CACHE[cache_key] = CompiledRun(make_agent(config, env, env_params), axis)
    return _COMPILED_CACHE[cache_key]


def release_compiled() -> None:
    """Drop every compiled program this process holds (ours and JAX's caches). XLA:CPU maps each program's
    machine code into its own memory regions, ~800 for a small agent's run, and Linux allows a process 65,530
    (vm.max_map_count): past it compiling segfaults. A process that compiles one different program after another
    (a command running many configs, the test suite) releases them between configs."""
    _COMPILED_CACHE.clear()
    jax.clear_caches()
    gc.collect()


def stacked_hyperparams(config: dict, make_agent, axis: RunAxis):
    """Every run's hparams as host arrays with a leading num_runs axis: each grid point's values, repeated per seed.

    A point's hparams are those of the agent its own config (the base with the point's values) makes, so
    they come from the agent's own reading of the config."""
    env, env_params = envs.make_from_config(config)
    per_point = [make_agent({**config, **point}, env, env_params).hparams for point in (config.get("sweep") or [{}])]
    as_arrays = [jax.tree.map(lambda x: np.asarray(jnp.asarray(x)), hp) for hp in per_point]  # jax's dtypes
    return jax.tree.map(lambda *xs: np.repeat(np.stack(xs), axis.num_seeds, axis=0), *as_arrays)


class SeedKeys:
    """Every random stream derives from PRNGKey(--seed), independently of where a run was resumed. Seed i of the
    master seed gets the i-th key of each split, and JAX's partitionable threefry (the default) makes that key
    depend on i alone, not on how many keys are split: so seeds offset..offset+n-1 of a job with seed_offset
    `offset` get the keys they would get in one job of offset + n seeds."""

    def __init__(self, seed: int, num_seeds: int, offset: int = 0):
        if not jax.config.jax_threefry_partitionable:
            raise RuntimeError("seedsuite's per-seed keys need jax_threefry_partitionable (JAX's default) on")
        init_key, self._chunk_key, self._eval_key = jax.random.split(jax.random.PRNGKey(seed), 3)
        self.num_seeds, self.offset = num_seeds, offset
        self.init = self._split(init_key)

    def _split(self, key):
        return jax.random.split(key, self.offset + self.num_seeds)[self.offset:]

    def chunk(self, index: int):
        return self._split(jax.random.fold_in(self._chunk_key, index))

    def evaluation(self, index: int):
        return self._split(jax.random.fold_in(self._eval_key, index))


class Runs:
    """What the host loop drives: the compiled functions and every run's hparams and keys, on the devices."""

    def __init__(self, config: dict, make_agent, seed: int, devices=None, compiled: CompiledRun | None = None):
        """compiled: a CompiledRun built by the caller (benchmarks), instead of this process's cached one."""
        self.compiled = compiled if compiled is not None else compiled_run(config, make_agent, devices)
        self.axis = self.compiled.axis
        self.seed_keys = SeedKeys(seed, config["num_seeds"], config.get("seed_offset", 0))
        self.hparams = self.axis.place(stacked_hyperparams(config, make_agent, self.axis))

    def init_keys(self):
        return self.axis.place(self.axis.per_run(self.seed_keys.init))

    def chunk_keys(self, index: int):
        return self.axis.place(self.axis.per_run(self.seed_keys.chunk(index)))

    def evaluation_keys(self, index: int):
        return self.axis.place(self.axis.per_run(self.seed_keys.evaluation(index)))

    def init(self):
        return self.compiled.init(self.init_keys(), self.hparams)

    def abstract_state(self):
        return self.compiled.abstract_state(self.init_keys(), self.hparams)

    def interact(self, state, index: int, train: bool, time_step: int = 0):
        phase = self.compiled.agent.chunk_phase
        static = train if phase is None else phase(time_step, train)
        return self.compiled.interact(state, self.chunk_keys(index), self.hparams, static)

    def evaluate(self, state, index: int):
        return self.compiled.evaluate(state, self.evaluation_keys(index), self.hparams)


def per_seed_params(tree, num_seeds: int) -> list:
    """Stacked (S, ...) parameter pytree -> list of S nested dicts of numpy arrays (the paper's layout)."""
    host = jax.tree.map(np.asarray, tree)
    return [jax.tree.map(lambda x, i=i: x[i], host) for i in range(num_seeds)]


# --- memory, checked before the state is allocated ---------------------------------------------------

MEMORY_HEADROOM = 0.9  # the state may fill this fraction of free memory; XLA needs the rest for temporaries


def tree_bytes(tree) -> int:
    return sum(int(np.prod(leaf.shape)) * np.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(tree))


def free_memory(device) -> tuple[int, bool]:
    """(bytes free, whether that is per device): an accelerator's own memory, else the host's available memory,
    which all (simulated) CPU devices share."""
    try:
        stats = device.memory_stats()
    except Exception:  # backends without memory statistics
        stats = None
    if stats and "bytes_limit" in stats:
        return stats["bytes_limit"] - stats.get("bytes_in_use", 0), True
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) * 1024, False


def _gib(num_bytes) -> str:
    """Bytes in the largest binary unit that keeps the number >= 1 (up to GiB)."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if num_bytes >= size:
            return f"{num_bytes / size:.2f} {unit}"
    return f"{num_bytes:.0f} B"


def check_memory(abstract_state, axis: RunAxis, config: dict, free=None) -> str:
    """The run's memory estimate as one line, or RunError with the options when the state would not fit.

    The state (replay buffers dominate) is what stays allocated; `free` is (bytes, per_device), measured
    on this host's first device when not given."""
    total, replay = tree_bytes(abstract_state), tree_bytes(getattr(abstract_state, "replay", ()))
    free_bytes, per_device = free if free is not None else free_memory(jax.local_devices()[0])
    num_devices = len(axis.devices)
    need = total / num_devices if per_device else total
    where = f"per device ({num_devices} {axis.devices[0].platform} devices)" if per_device else "of host memory"
    runs = (f"{axis.num_points} points x {axis.num_seeds} seeds" if axis.swept else f"{axis.num_seeds} seeds") + \
        (f" (+{axis.padded - axis.num_runs} padding runs)" if axis.padded > axis.num_runs else "")
    capacity_key = "buffer_size" if "buffer_size" in config else "replay_capacity"
    capacity = config.get(capacity_key) or 1
    per_transition = replay / max(axis.padded * capacity, 1)
    line = (f"estimated memory {_gib(need)} {where} for {runs}: replay buffers {_gib(replay)} "
            f"({capacity} transitions x {per_transition:.0f} B per run), other state {_gib(total - replay)}; "
            f"{_gib(free_bytes)} free")
    if need <= MEMORY_HEADROOM * free_bytes:
        return line
    per_run = total / axis.padded
    fitting = int(MEMORY_HEADROOM * free_bytes * (num_devices if per_device else 1) // per_run)
    options = [f"fewer seeds or grid points per process (at most {fitting} runs fit)"]
    stored_obs = getattr(getattr(getattr(abstract_state, "replay", None), "items", None), "obs", None)
    if "replay_obs_dtype" in config and stored_obs is not None and np.dtype(stored_obs.dtype).itemsize > 1:
        options.append(f"replay_obs_dtype 'uint8' or 'bool' (observations are stored as {np.dtype(stored_obs.dtype)}; "
                       f"lossless for 0/1 or small-integer observations)")
    options.append(f"a smaller {capacity_key}")
    raise RunError(f"this run would not fit: {line}; options: {'; '.join(options)}")


def chunk_starts_to_trace(config: dict) -> list[int]:
    """Time steps whose chunks cover every compiled phase of a run: the first chunk, the first that trains, the
    last (an agent's phase depends only on where its chunk starts relative to these)."""
    length, last = config["eval_frequency"], (config["num_steps"] // config["eval_frequency"] - 1)
    first_training = min(-(-config["training_start_time"] // length), last)
    return sorted({0, first_training * length, last * length})


def check_only(config: dict, make_agent, seed: int = 0) -> str:
    """Everything a run does except allocating, compiling and running: the environment and agent built from the
    config, every run's hparams, the state's shapes, the memory check, and the chunk and evaluation programs
    traced (shapes only) for each phase the run will use. Returns the memory line; raises what run() would
    (ConfigError, RunError) for a config that cannot run."""
    runs = Runs(dict(config, seed=seed), make_agent, seed)
    abstract = runs.abstract_state()
    memory = check_memory(abstract, runs.axis, config)
    compiled, phase = runs.compiled, runs.compiled.agent.chunk_phase
    for time_step in chunk_starts_to_trace(config):
        train = time_step >= config["training_start_time"]
        static = train if phase is None else phase(time_step, train)
        compiled.interact.trace(abstract, runs.chunk_keys(0), runs.hparams, static)
    compiled.evaluate.trace(abstract, runs.evaluation_keys(0), runs.hparams)
    return memory


class _StopRequest:
    """SIGTERM/SIGINT: finish the current chunk, write a checkpoint, then stop; a second signal stops at once."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Interrupted(Exception):
    pass


def run(config: dict, make_agent, seed: int, output: str, resume: bool = False, overwrite: bool = False,
        progress: bool = True, stop_after_chunks: int | None = None, devices=None, tensorboard: str | None = None) -> dict:
    """Train config['num_seeds'] seeds (of every point of config['sweep']) and write <output>.out / .params;
    returns the .out contents. devices: those to shard the runs across (default: default_devices).

    stop_after_chunks stops (after checkpointing) once that many chunks ran in this call; tests use it
    to simulate a kill at a chunk boundary. tensorboard: a directory for event files of the per-chunk scalars.
    """
    config = dict(config, seed=seed)
    outputs = files.Outputs(output)
    if _writes_files():
        check_writable(outputs.prefix)
    existing = outputs.existing()
    if existing and not (resume or overwrite):
        raise RunError(f"output file '{existing[0]}' already exists; pass --resume to continue that run "
                       f"or --overwrite to replace it")
    resuming = resume and (os.path.exists(outputs.checkpoint) or os.path.exists(outputs.previous_checkpoint))
    if resume and not resuming and os.path.exists(outputs.out):
        done = files.load_metrics(outputs.out)
        if done["meta"].get("complete"):
            print(f"{outputs.out} is already complete; nothing to resume")
            return done
    num_seeds, chunk_length = config["num_seeds"], config["eval_frequency"]
    num_chunks = config["num_steps"] // chunk_length

    runs = Runs(config, make_agent, seed, devices)
    axis = runs.axis
    abstract = runs.abstract_state()
    print(check_memory(abstract, axis, config), file=sys.stderr)  # before anything is allocated

    if resuming:
        _remove_orphaned_temporaries(outputs)
        state, loop = _restore_latest_good(outputs, runs, abstract, config)
    else:
        state, loop = runs.init(), Progress()
        if overwrite and _writes_files():
            for path in existing:
                os.remove(path)

    scalars = ScalarWriter(tensorboard) if tensorboard and _writes_files() else None
    started, chunks_this_call = time.time(), 0
    bar = tqdm(total=config["num_steps"], initial=loop.next_chunk * chunk_length, unit="step", unit_scale=True,
               dynamic_ncols=True, mininterval=0.5, disable=not progress, desc=config["agent_type"])
    with _StopRequest() as stop:
        for index in range(loop.next_chunk, num_chunks):
            time_step = index * chunk_length
            if config["save_params"] and loop.since_params_save >= config["save_frequency"]:
                _write_params(outputs, runs, state)
                _write_out(outputs, config, axis, loop, complete=False)
                loop.since_params_save = 0
            if config["checkpoint_frequency"] and loop.since_checkpoint >= config["checkpoint_frequency"]:
                _checkpoint(outputs, axis, state, loop, config)
                loop.since_checkpoint = 0
            if stop.requested or (stop_after_chunks is not None and chunks_this_call >= stop_after_chunks):
                bar.close()
                # Runs on Atari resume too, their emulators restarted (envs/atari.py: the episodes in progress end).
                _checkpoint(outputs, axis, state, loop, config)
                _write_out(outputs, config, axis, loop, complete=False)  # the evaluations so far, readable now
                raise Interrupted(f"stopped before step {time_step}; run again with --resume to continue")

            train = time_step >= config["training_start_time"]
            state, train_metrics = runs.interact(state, index, train, time_step)
            train_metrics = axis.fetch(train_metrics)
            reward_rates = axis.fetch(runs.evaluate(state, index)["reward_rate"])
            before = np.asarray(loop.metrics["diverged"][-1]).reshape(-1) if loop.metrics.get("diverged") else False
            diverged = diverged_runs(before, axis.fetch(runs.compiled.params_finite(state)), train_metrics)

            eval_time = time_step + chunk_length if config["fix_eval_time_label"] else time_step
            _append(loop.metrics, "reward_rates", axis.grid(reward_rates))
            _append(loop.metrics, "eval_times", np.int64(eval_time))
            _append(loop.metrics, "diverged", axis.grid(diverged))
            for name, value in train_metrics.items():  # per-run chunk metrics; episode_* are per-step records
                if not name.startswith("episode_"):
                    _append(loop.metrics, name, axis.grid(value))
            if scalars is not None:
                scalars.write(eval_time, {"reward_rates": axis.grid(reward_rates), **{
                    name: axis.grid(value) for name, value in train_metrics.items() if not name.startswith("episode_")}})
            if config["log_episodes"] and "episode_ended" in train_metrics:
                _record_episodes(loop.episodes, train_metrics, time_step, num_seeds)
            loop.next_chunk = index + 1
            loop.since_params_save += chunk_length
            loop.since_checkpoint += chunk_length
            chunks_this_call += 1
            bar.update(chunk_length)
            sane = reward_rates[~diverged]
            score = f"{np.nanmean(sane):.3f}" if np.any(np.isfinite(sane)) else "nan"
            bar.set_postfix(score=score, refresh=False, **({"diverged": f"{diverged.sum()}/{len(diverged)}"}
                                                          if diverged.any() else {}))
            if diverged.any() and not np.asarray(before).any():
                tqdm.write(f"warning: {diverged.sum()} of {len(diverged)} runs diverged (NaN or infinite parameters or "
                           f"loss) by step {eval_time}; their results are marked in the .out ('diverged_step')",
                           file=sys.stderr)
    bar.close()
    if scalars is not None:
        scalars.close()

    wall = time.time() - started
    loop_meta = {"wall_seconds": wall, "steps_this_call": chunks_this_call * chunk_length}
    result = _write_out(outputs, config, axis, loop, complete=True, extra_meta=loop_meta)
    if config["save_params"]:
        _write_params(outputs, runs, state)
    if _writes_files():
        files.remove_checkpoint(outputs.checkpoint)
    return result


def check_writable(prefix: str) -> None:
    """Refuse before anything runs when the output directory cannot take a file (read-only, missing rights, a
    file in the way): RunError naming the directory and the system's reason."""
    directory = os.path.dirname(os.path.abspath(prefix))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".seedsuite-write-probe.", dir=directory)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise RunError(f"cannot write in the output directory '{directory}': {e.strerror or e}; nothing was run")


@contextlib.contextmanager
def _writing(path: str):
    """Turn a failed write (disk full, directory gone read-only) into a RunError saying what is safe: the atomic
    writes leave the earlier files whole."""
    try:
        yield
    except OSError as e:
        raise RunError(f"cannot write '{path}': {e.strerror or e}; the files written before are intact (the last "
                       f"checkpoint and .out are whole): free space or fix the directory, then run again with "
                       f"--resume") from None


def _writes_files() -> bool:
    """Only the first host writes files in a multi-host run (every host holds the gathered results)."""
    return jax.process_index() == 0


def _append(metrics: dict, name: str, value) -> None:
    metrics.setdefault(name, []).append(value)


EPISODE_FIELDS = {"seed": np.int32, "point": np.int32, "return": np.float32, "length": np.int32, "end_step": np.int64}


def _record_episodes(episodes: dict, train_metrics: dict, chunk_start: int, num_seeds: int) -> None:
    """Append every training episode that ended in this chunk: its seed, grid point, return, length and end step.

    The agent reports, per run and step, whether an episode ended there and the return and length it
    had; end_step counts environment steps of that run, the ending step included.
    """
    ended = np.asarray(train_metrics["episode_ended"])  # (num_runs, chunk_length)
    runs, steps = np.nonzero(ended)
    values = {"seed": runs % num_seeds, "point": runs // num_seeds,
              "return": np.asarray(train_metrics["episode_return"])[runs, steps],
              "length": np.asarray(train_metrics["episode_length"])[runs, steps], "end_step": chunk_start + steps + 1}
    for name, dtype in EPISODE_FIELDS.items():
        _append(episodes, name, values[name].astype(dtype))


def episode_table(episodes: dict) -> dict:
    """The recorded episodes as flat arrays (one entry per episode, in order of end step within each run)."""
    return {name: np.concatenate(episodes[name]) if episodes.get(name) else np.zeros(0, dtype)
            for name, dtype in EPISODE_FIELDS.items()}


def first_step_reaching(table: dict, num_seeds: int, target: float, window: int = 100,
                        num_points: int = 1) -> np.ndarray:
    """Per run (point-major: run = point * num_seeds + seed), the end step of the first episode at which the mean
    return of its last `window` training episodes reached `target` (defined once `window` episodes have
    finished); -1 where it never did."""
    first = np.full(num_points * num_seeds, -1, np.int64)
    points = table.get("point", np.zeros_like(table["seed"]))
    for run in range(num_points * num_seeds):
        mine = (points == run // num_seeds) & (table["seed"] == run % num_seeds)
        returns, end_steps = table["return"][mine].astype(np.float64), table["end_step"][mine]
        if len(returns) < window:
            continue
        rolling = np.convolve(returns, np.full(window, 1.0 / window), mode="valid")  # rolling[k]: episodes k..k+window-1
        reached = np.nonzero(rolling >= target - 1e-9)[0]
        if len(reached):
            first[run] = end_steps[reached[0] + window - 1]
    return first


def _write_params(outputs: files.Outputs, runs: Runs, state) -> None:
    """{name: [per-seed pytrees]}, or in a sweep {name: [[per-seed pytrees] per grid point]}."""
    axis = runs.axis
    saved = axis.fetch(runs.compiled.saved_params(state))
    by_run = {name: per_seed_params(tree, axis.num_runs) for name, tree in saved.items()}
    if axis.swept:
        by_run = {name: [trees[p * axis.num_seeds:(p + 1) * axis.num_seeds] for p in range(axis.num_points)]
                  for name, trees in by_run.items()}
    if _writes_files():
        with _writing(outputs.params):
            files.save_pickle(outputs.params, by_run)


def _package_version(name: str):
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def provenance(devices) -> dict:
    """What decides whether two runs' numbers are comparable, for the .out's meta: the matmul precision (JAX's
    default lets an NVIDIA GPU use TF32; the CPU computes float32 in full), the device kind and the versions of
    the packages that compute (mujoco and mujoco-mjx: None where not installed)."""
    precision = jax.config.jax_default_matmul_precision
    return {"jax_version": jax.__version__, "jaxlib_version": _package_version("jaxlib"),
            "mujoco_version": _package_version("mujoco"), "mujoco_mjx_version": _package_version("mujoco-mjx"),
            "matmul_precision": str(precision) if precision else "default", "backend": jax.default_backend(),
            "device_kind": devices[0].device_kind if len(devices) else None, "devices": [str(d) for d in devices]}


def _write_out(outputs: files.Outputs, config: dict, axis: RunAxis, loop: Progress, complete: bool, extra_meta=None) -> dict:
    metrics = {name: np.stack(values) for name, values in loop.metrics.items()}
    extra = {"grid": [dict(point) for point in config["sweep"]]} if axis.swept else {}
    if loop.metrics.get("diverged"):
        extra["diverged_step"] = diverged_steps(np.stack(loop.metrics["diverged"]), np.stack(loop.metrics["eval_times"]))
    if config.get("log_episodes"):
        extra["episodes"] = episode_table(loop.episodes)
        if config.get("target_score") is not None:
            extra["target_reached_step"] = axis.grid(first_step_reaching(
                extra["episodes"], axis.num_seeds, config["target_score"], num_points=axis.num_points))
    meta = {"format": files.OUT_FORMAT, "complete": complete, "chunks_done": loop.next_chunk,
            **provenance(axis.devices), "num_processes": jax.process_count(),
            "agent": config_lib.AGENT_NAMES.get(config.get("agent_type"), config.get("agent_type")),
            **metrics_lib.out_meta(config, metrics), **(extra_meta or {})}
    result = {"config": dict(config), "metrics": metrics, **extra, "meta": meta}
    if _writes_files():
        with _writing(outputs.out):
            files.save_pickle(outputs.out, result)
    return result


def _checkpoint(outputs: files.Outputs, axis: RunAxis, state, loop: Progress, config: dict) -> None:
    """The real runs' state (no padding, so a run may resume on another number of devices) and the host loop."""
    leaves = axis.fetch(jax.tree.leaves(state))
    arrays = {name: np.stack(values) for name, values in loop.metrics.items()}
    episodes = {EPISODE_PREFIX + name: values for name, values in episode_table(loop.episodes).items()}
    if set(arrays) & set(episodes):  # restoring tells them apart by these names
        raise RunError(f"metric names {sorted(set(arrays) & set(episodes))} clash with the checkpoint's episode table")
    arrays.update(episodes)
    meta = {"format": CHECKPOINT_FORMAT, "config_digest": config_digest(config), "config": config,
            "next_chunk": loop.next_chunk, "since_params_save": loop.since_params_save,
            "since_checkpoint": loop.since_checkpoint, "num_leaves": len(leaves)}
    if _writes_files():
        with _writing(outputs.checkpoint):
            files.save_checkpoint(outputs.checkpoint, leaves, arrays, meta)


def _remove_orphaned_temporaries(outputs: files.Outputs) -> None:
    """A kill during a write leaves its temporary file (files.atomic_write: `<file>.<random>.tmp`) beside the
    intact old file; a resumed run removes those of its own files."""
    for path in (outputs.out, outputs.params, outputs.checkpoint):
        for orphan in glob.glob(glob.escape(path) + ".*.tmp"):
            os.remove(orphan)
    for orphan in glob.glob(os.path.join(glob.escape(files.row_log_dir(outputs.checkpoint)), "*.tmp")):
        os.remove(orphan)


def _restore_latest_good(outputs: files.Outputs, runs: Runs, abstract, config: dict):
    """The newest checkpoint that loads and passes its checksum: the latest, else (with a warning) the one kept
    before it. A config mismatch is not corruption: it is refused, not skipped."""
    try:
        return _restore(outputs.checkpoint, runs, abstract, config)
    except files.FileFormatError as latest_problem:
        previous = outputs.previous_checkpoint
        if not os.path.exists(previous):
            raise files.FileFormatError(f"{latest_problem}; no previous checkpoint to fall back on: start again "
                                        f"with --overwrite") from None
        print(f"warning: {latest_problem}; resuming from the previous checkpoint '{previous}' instead",
              file=sys.stderr)
        try:
            return _restore(previous, runs, abstract, config)
        except files.FileFormatError as previous_problem:
            raise files.FileFormatError(f"both checkpoints are unusable: {latest_problem}; {previous_problem}; "
                                        f"start again with --overwrite") from None


def _restore(path: str, runs: Runs, abstract, config: dict):
    leaves, arrays, meta = files.load_checkpoint(path)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise RunError(f"checkpoint '{path}' has format {meta.get('format')}, expected {CHECKPOINT_FORMAT}")
    if meta.get("config_digest") != config_digest(config):
        saved = meta.get("config", {})
        changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
        raise RunError(f"checkpoint '{path}' was written with a different config (changed: {', '.join(changed)}); "
                       f"resume with the same config and --seed, or start again with --overwrite")
    expected, treedef = jax.tree.flatten(abstract)
    num_runs = runs.axis.num_runs
    if len(leaves) != len(expected) or any(a.shape != (num_runs,) + e.shape[1:] or a.dtype != e.dtype
                                           for a, e in zip(leaves, expected)):
        raise RunError(f"checkpoint '{path}' does not match this agent's state; start again with --overwrite")
    state = jax.tree.unflatten(treedef, runs.axis.place(leaves))
    # The episode table's columns by their exact names: a metric may share the prefix (PPO's episodes_finished).
    episode_keys = {EPISODE_PREFIX + name for name in EPISODE_FIELDS}
    loop = Progress(next_chunk=meta["next_chunk"], since_params_save=meta["since_params_save"],
                    since_checkpoint=meta["since_checkpoint"],
                    metrics={name: list(values) for name, values in arrays.items() if name not in episode_keys},
                    episodes={name: [arrays[EPISODE_PREFIX + name]] for name in EPISODE_FIELDS
                              if EPISODE_PREFIX + name in arrays})
    return state, loop
