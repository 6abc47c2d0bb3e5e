"""The host loop: one process trains num_seeds runs of one agent as a single jitted, vmapped program.

Per chunk: one call of interact (eval_frequency env steps for every seed), one call of evaluate, then
metrics appended on the host. Files are written atomically; a checkpoint of the whole run state lets
`--resume` continue a killed run and end with exactly the files an uninterrupted run writes.
"""
import hashlib
import json
import os
import signal
import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

import envs
from experiment import files

CHECKPOINT_FORMAT = 2
EPISODE_PREFIX = "episodes_"  # checkpoint arrays holding the recorded training episodes


class RunError(RuntimeError):
    """A problem with the run's files or resumption; the message says what to do."""


@dataclass
class Outputs:
    prefix: str

    @property
    def out(self):
        return self.prefix + ".out"

    @property
    def params(self):
        return self.prefix + ".params"

    @property
    def checkpoint(self):
        return self.prefix + ".ckpt.npz"

    def existing(self):
        return [p for p in (self.out, self.params, self.checkpoint) if os.path.exists(p)]


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


class CompiledRun:
    """jit(vmap(...)) of one agent's init / interact / evaluate over the seed axis."""

    def __init__(self, agent, num_seeds: int):
        self.agent = agent
        self.num_seeds = num_seeds
        self.init = jax.jit(jax.vmap(agent.init, in_axes=(0, None)))
        # The run state is donated: the replay buffers are updated in place, never copied per chunk.
        self.interact = jax.jit(jax.vmap(agent.interact, in_axes=(0, 0, None, None)), static_argnums=3,
                                donate_argnums=0)
        self.evaluate = jax.jit(jax.vmap(agent.evaluate, in_axes=(0, 0, None)))
        self.saved_params = jax.jit(jax.vmap(agent.saved_params))

    def abstract_state(self, keys):
        return jax.eval_shape(self.init, keys, self.agent.hparams)


_COMPILED_CACHE: dict = {}


def compiled_run(config: dict, make_agent) -> CompiledRun:
    """One CompiledRun per (agent, config minus seed) in this process, so repeated runs reuse the compiled programs."""
    cache_key = (make_agent, json.dumps({k: v for k, v in config.items() if k != "seed"}, sort_keys=True))
    if cache_key not in _COMPILED_CACHE:
        env, env_params = envs.make(config["environment"], **config["env_config"])
        _COMPILED_CACHE[cache_key] = CompiledRun(make_agent(config, env, env_params), config["num_seeds"])
    return _COMPILED_CACHE[cache_key]


class SeedKeys:
    """Every random stream derives from PRNGKey(--seed), independently of where a run was resumed."""

    def __init__(self, seed: int, num_seeds: int):
        init_key, self._chunk_key, self._eval_key = jax.random.split(jax.random.PRNGKey(seed), 3)
        self.init = jax.random.split(init_key, num_seeds)
        self.num_seeds = num_seeds

    def chunk(self, index: int):
        return jax.random.split(jax.random.fold_in(self._chunk_key, index), self.num_seeds)

    def evaluation(self, index: int):
        return jax.random.split(jax.random.fold_in(self._eval_key, index), self.num_seeds)


def per_seed_params(tree, num_seeds: int) -> list:
    """Stacked (S, ...) parameter pytree -> list of S nested dicts of numpy arrays (the paper's layout)."""
    host = jax.tree.map(np.asarray, tree)
    return [jax.tree.map(lambda x, i=i: x[i], host) for i in range(num_seeds)]


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
        progress: bool = True, stop_after_chunks: int | None = None) -> dict:
    """Train config['num_seeds'] seeds and write <output>.out / .params; returns the .out contents.

    stop_after_chunks stops (after checkpointing) once that many chunks ran in this call; tests use it
    to simulate a kill at a chunk boundary.
    """
    config = dict(config, seed=seed)
    outputs = Outputs(output)
    existing = outputs.existing()
    if existing and not (resume or overwrite):
        raise RunError(f"output file '{existing[0]}' already exists; pass --resume to continue that run "
                       f"or --overwrite to replace it")
    resuming = resume and os.path.exists(outputs.checkpoint)
    if resume and not resuming and os.path.exists(outputs.out):
        done = files.load_metrics(outputs.out)
        if done["meta"].get("complete"):
            print(f"{outputs.out} is already complete; nothing to resume")
            return done
    num_seeds, chunk_length = config["num_seeds"], config["eval_frequency"]
    num_chunks = config["num_steps"] // chunk_length

    compiled = compiled_run(config, make_agent)
    agent = compiled.agent
    keys = SeedKeys(seed, num_seeds)

    if resuming:
        state, loop = _restore(outputs.checkpoint, compiled, keys, config)
    else:
        state, loop = compiled.init(keys.init, agent.hparams), Progress()
        if overwrite:
            for path in existing:
                os.remove(path)

    started, chunks_this_call = time.time(), 0
    bar = tqdm(total=config["num_steps"], initial=loop.next_chunk * chunk_length, unit="step", unit_scale=True,
               dynamic_ncols=True, mininterval=0.5, disable=not progress, desc=config["agent_type"])
    with _StopRequest() as stop:
        for index in range(loop.next_chunk, num_chunks):
            time_step = index * chunk_length
            if config["save_params"] and loop.since_params_save >= config["save_frequency"]:
                _write_params(outputs, compiled, state, num_seeds)
                _write_out(outputs, config, loop, complete=False)
                loop.since_params_save = 0
            if config["checkpoint_frequency"] and loop.since_checkpoint >= config["checkpoint_frequency"]:
                _checkpoint(outputs, state, loop, config)
                loop.since_checkpoint = 0
            if stop.requested or (stop_after_chunks is not None and chunks_this_call >= stop_after_chunks):
                _checkpoint(outputs, state, loop, config)
                bar.close()
                raise Interrupted(f"stopped before step {time_step}; run again with --resume to continue")

            train = time_step >= config["training_start_time"]
            state, train_metrics = compiled.interact(state, keys.chunk(index), agent.hparams, train)
            eval_metrics = compiled.evaluate(state, keys.evaluation(index), agent.hparams)
            reward_rates = np.asarray(eval_metrics["reward_rate"])

            eval_time = time_step + chunk_length if config["fix_eval_time_label"] else time_step
            _append(loop.metrics, "reward_rates", reward_rates)
            _append(loop.metrics, "eval_times", np.int64(eval_time))
            for name, value in train_metrics.items():  # per-seed chunk metrics; episode_* are per-step records
                if not name.startswith("episode_"):
                    _append(loop.metrics, name, np.asarray(value))
            if config["log_episodes"] and "episode_ended" in train_metrics:
                _record_episodes(loop.episodes, train_metrics, time_step)
            loop.next_chunk = index + 1
            loop.since_params_save += chunk_length
            loop.since_checkpoint += chunk_length
            chunks_this_call += 1
            bar.update(chunk_length)
            bar.set_postfix(score=f"{reward_rates.mean():.3f}", refresh=False)
    bar.close()

    wall = time.time() - started
    loop_meta = {"wall_seconds": wall, "steps_this_call": chunks_this_call * chunk_length}
    result = _write_out(outputs, config, loop, complete=True, extra_meta=loop_meta)
    if config["save_params"]:
        _write_params(outputs, compiled, state, num_seeds)
    if os.path.exists(outputs.checkpoint):
        os.remove(outputs.checkpoint)
    return result


def _append(metrics: dict, name: str, value) -> None:
    metrics.setdefault(name, []).append(value)


EPISODE_FIELDS = {"seed": np.int32, "return": np.float32, "length": np.int32, "end_step": np.int64}


def _record_episodes(episodes: dict, train_metrics: dict, chunk_start: int) -> None:
    """Append every training episode that ended in this chunk: its seed, return, length and end step.

    The agent reports, per seed and step, whether an episode ended there and the return and length it
    had; end_step counts environment steps of that seed, the ending step included.
    """
    ended = np.asarray(train_metrics["episode_ended"])  # (num_seeds, chunk_length)
    seeds, steps = np.nonzero(ended)
    values = {"seed": seeds, "return": np.asarray(train_metrics["episode_return"])[seeds, steps],
              "length": np.asarray(train_metrics["episode_length"])[seeds, steps], "end_step": chunk_start + steps + 1}
    for name, dtype in EPISODE_FIELDS.items():
        _append(episodes, name, values[name].astype(dtype))


def episode_table(episodes: dict) -> dict:
    """The recorded episodes as flat arrays (one entry per episode, in order of end step within each seed)."""
    return {name: np.concatenate(episodes[name]) if episodes.get(name) else np.zeros(0, dtype)
            for name, dtype in EPISODE_FIELDS.items()}


def first_step_reaching(table: dict, num_seeds: int, target: float, window: int = 100) -> np.ndarray:
    """Per seed, the end step of the first episode at which the mean return of its last `window` training
    episodes reached `target` (defined once `window` episodes have finished); -1 where it never did."""
    first = np.full(num_seeds, -1, np.int64)
    for seed in range(num_seeds):
        mine = table["seed"] == seed
        returns, end_steps = table["return"][mine].astype(np.float64), table["end_step"][mine]
        if len(returns) < window:
            continue
        rolling = np.convolve(returns, np.full(window, 1.0 / window), mode="valid")  # rolling[k]: episodes k..k+window-1
        reached = np.nonzero(rolling >= target - 1e-9)[0]
        if len(reached):
            first[seed] = end_steps[reached[0] + window - 1]
    return first


def _write_params(outputs: Outputs, compiled: CompiledRun, state, num_seeds: int) -> None:
    saved = compiled.saved_params(state)
    files.save_pickle(outputs.params, {name: per_seed_params(tree, num_seeds) for name, tree in saved.items()})


def _write_out(outputs: Outputs, config: dict, loop: Progress, complete: bool, extra_meta=None) -> dict:
    metrics = {name: np.stack(values) for name, values in loop.metrics.items()}
    extra = {}
    if config.get("log_episodes"):
        extra["episodes"] = episode_table(loop.episodes)
        if config.get("target_score") is not None:
            extra["target_reached_step"] = first_step_reaching(extra["episodes"], config["num_seeds"],
                                                               config["target_score"])
    meta = {"complete": complete, "chunks_done": loop.next_chunk, "jax_version": jax.__version__,
            "backend": jax.default_backend(), "devices": [str(d) for d in jax.local_devices()], **(extra_meta or {})}
    result = {"config": dict(config), "metrics": metrics, **extra, "meta": meta}
    files.save_pickle(outputs.out, result)
    return result


def _checkpoint(outputs: Outputs, state, loop: Progress, config: dict) -> None:
    leaves = jax.tree.leaves(state)
    arrays = {name: np.stack(values) for name, values in loop.metrics.items()}
    arrays.update({EPISODE_PREFIX + name: values for name, values in episode_table(loop.episodes).items()})
    meta = {"format": CHECKPOINT_FORMAT, "config_digest": config_digest(config), "config": config,
            "next_chunk": loop.next_chunk, "since_params_save": loop.since_params_save,
            "since_checkpoint": loop.since_checkpoint, "num_leaves": len(leaves)}
    files.save_checkpoint(outputs.checkpoint, leaves, arrays, meta)


def _restore(path: str, compiled: CompiledRun, keys: SeedKeys, config: dict):
    leaves, arrays, meta = files.load_checkpoint(path)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise RunError(f"checkpoint '{path}' has format {meta.get('format')}, expected {CHECKPOINT_FORMAT}")
    if meta.get("config_digest") != config_digest(config):
        saved = meta.get("config", {})
        changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
        raise RunError(f"checkpoint '{path}' was written with a different config (changed: {', '.join(changed)}); "
                       f"resume with the same config and --seed, or start again with --overwrite")
    abstract = compiled.abstract_state(keys.init)
    expected, treedef = jax.tree.flatten(abstract)
    if len(leaves) != len(expected) or any(a.shape != e.shape or a.dtype != e.dtype for a, e in zip(leaves, expected)):
        raise RunError(f"checkpoint '{path}' does not match this agent's state; start again with --overwrite")
    state = jax.tree.unflatten(treedef, [jnp.asarray(leaf) for leaf in leaves])
    loop = Progress(next_chunk=meta["next_chunk"], since_params_save=meta["since_params_save"],
                    since_checkpoint=meta["since_checkpoint"],
                    metrics={name: list(values) for name, values in arrays.items()
                             if not name.startswith(EPISODE_PREFIX)},
                    episodes={name[len(EPISODE_PREFIX):]: [values] for name, values in arrays.items()
                              if name.startswith(EPISODE_PREFIX)})
    return state, loop
