"""Real Atari through EnvPool, behind the gymnax API and the harness's runs axis (extra: pip install -e ".[atari]").

EnvPool steps ALE emulators in C++; their state lives outside JAX, so this environment is a handle (a slot in a
host-side pool) stepped by a host callback. The callback's vmap rule batches the call (`vmap_method=
"expand_dims"`): one host call per agent step steps every run's and every environment's emulator at once.

Slots: a reset allocates a slot (one emulator); a finished episode is reset in place on the host (gymnax
auto-reset semantics, with info["final_observation"]). Evaluation episodes allocate slots too; when the pool
reaches `max_slots` the least recently used slots are reset and reused, so the pool must hold every slot in
use at once (runs x (environments + evaluation episodes)), which the default of 1024 does for 30 runs.

What it cannot promise, plainly:
- Per-key determinism: the emulators are seeded by EnvPool from `seed` and their slot, not by JAX keys; the
  no-op starts and sticky actions draw from EnvPool's generators. Two runs of one config agree only if their
  slots are allocated in the same order.
- Exact resume: a checkpoint cannot hold the emulators. A resumed run restores everything in JAX (networks,
  replay, optimiser, counters, the slots its state names) and restarts the emulators: the first step of a slot
  this process never reset resets it instead of stepping, and reports the episode in progress as truncated
  (reward 0, the fresh frame as its last), so every episode cut by the kill ends there and a new one begins. A
  resumed run therefore continues the same learning but not the same emulator trajectories.
- vmap outside the harness works, but jax.grad through the environment does not (there is none).

`protocol` sets EnvPool's options to a seed's published protocol; each option can still be overridden:
- "psdrl" (PSDRL, Sasso et al. 2023; remosasso/PSDRL): 64 x 64 grayscale, frame skip 4 with max over the last two frames,
  1-30 no-ops at reset, no sticky actions, the minimal action set, no life-loss terminals, raw rewards (the
  agent stores tanh), 27000 agent steps per episode, no frame stack (the GRU is the memory).
- "rnd" (PPO + RND/SND, the RND/SND author's code): 96 x 96 grayscale, frame skip 4 with the max, 1-30 no-ops,
  sticky actions 0.25, the full 18-action set, 4500 agent steps; stack 4 frames newest first with
  env_wrappers {"frame_stack": 4, "frame_stack_order": "newest_first"} and reward positive_sign there too.
- "machado" (Machado et al. 2018): 84 x 84, sticky 0.25, noop_max 1 (EnvPool's smallest setting; the protocol
  has no no-op starts), full action set, 27000 steps.
EnvPool's own v5 defaults (84 x 84, 4 stacked frames, fire reset, no sticky actions) are never used silently.
"""
import re
import threading

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

EXTRA_HINT = 'pip install -e ".[atari]"'
ATARI_ID = re.compile(r"^[A-Z][A-Za-z0-9]*-v5$")

COMMON = {"gray_scale": True, "frame_skip": 4, "episodic_life": False, "reward_clip": False, "use_fire_reset": False,
          "stack_num": 1, "use_inter_area_resize": True}
PROTOCOLS = {
    "psdrl": {**COMMON, "img_height": 64, "img_width": 64, "noop_max": 30, "repeat_action_probability": 0.0,
              "full_action_space": False, "max_episode_steps": 27000},
    "rnd": {**COMMON, "img_height": 96, "img_width": 96, "noop_max": 30, "repeat_action_probability": 0.25,
            "full_action_space": True, "max_episode_steps": 4500},
    "machado": {**COMMON, "img_height": 84, "img_width": 84, "noop_max": 1, "repeat_action_probability": 0.25,
                "full_action_space": True, "max_episode_steps": 27000},
}
OPTION_TYPES = {"gray_scale": bool, "frame_skip": int, "episodic_life": bool, "reward_clip": bool,
                "use_fire_reset": bool, "stack_num": int, "use_inter_area_resize": bool, "img_height": int,
                "img_width": int, "noop_max": int, "repeat_action_probability": float, "full_action_space": bool,
                "max_episode_steps": int}

# Montezuma's Revenge RAM: room number, agent x, agent y, inventory bits.
MONTEZUMA_RAM = (3, 42, 43, 65)


def is_atari_id(name: str) -> bool:
    return bool(ATARI_ID.match(name))


def envpool_module():
    try:
        import envpool
    except ImportError:
        return None
    return envpool


def check_options(name: str, protocol: str, options: dict) -> dict:
    """The EnvPool options of `protocol` with the user's overrides, or ValueError naming the bad one."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"{name}: protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    merged = dict(PROTOCOLS[protocol])
    for key, value in options.items():
        if key not in OPTION_TYPES:
            raise ValueError(f"{name}: env_config key '{key}' is not an Atari option (known: protocol, "
                             f"{', '.join(OPTION_TYPES)}, seed, max_slots)")
        kind = OPTION_TYPES[key]
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1
        else:
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= (0 if key == "noop_max" else 1)
        if not ok:
            raise ValueError(f"{name}: env_config key '{key}' has the bad value {value!r}")
        merged[key] = value
    return merged


@struct.dataclass
class AtariState(environment.EnvState):
    slot: jax.Array  # int32: which emulator of the host pool
    truncated: jax.Array  # bool: the last step hit max_episode_steps
    lives: jax.Array  # int32
    room: jax.Array  # int32 (Montezuma's RAM byte 3; 0 for other games)
    cell: jax.Array  # int32: room, x, y, inventory bytes packed (Montezuma), for the visitation bitmaps
    obs: jax.Array  # the last observation (get_obs cannot ask the emulator again)


class HostPool:
    """Emulators in blocks of EnvPool environments, addressed by slot; allocation with least-recently-used reuse."""

    def __init__(self, task: str, options: dict, seed: int, max_slots: int, block: int = 8):
        self.task, self.options, self.seed, self.max_slots, self.block = task, options, seed, max_slots, block
        self.pools, self.last_used, self.clock = [], np.zeros(0, np.int64), 0
        self.live = np.zeros(0, bool)  # slots this process reset (a resumed run's state names others: revived)
        self.lock = threading.Lock()
        self.montezuma = task.startswith("MontezumaRevenge")

    def _grow(self):
        import envpool

        pool = envpool.make(self.task, env_type="gymnasium", num_envs=self.block, batch_size=self.block,
                            seed=self.seed + len(self.pools) * self.block, **self.options)
        self.pools.append(pool)
        self.last_used = np.concatenate([self.last_used, np.full(self.block, -1, np.int64)])
        self.live = np.concatenate([self.live, np.zeros(self.block, bool)])

    def _by_pool(self, slots):
        for index in np.unique(slots // self.block):
            mask = slots // self.block == index
            yield self.pools[index], np.flatnonzero(mask), (slots[mask] % self.block).astype(np.int32)

    def _info(self, info):
        ram = info["ram"].astype(np.int64)
        if self.montezuma:
            room, x, y, inventory = (ram[:, i] for i in MONTEZUMA_RAM)
            cell = ((room * 256 + x) * 256 + y) * 256 + inventory
        else:
            room, cell = np.zeros(len(ram), np.int64), np.zeros(len(ram), np.int64)
        return info["lives"].astype(np.int32), room.astype(np.int32), cell.astype(np.uint32).view(np.int32)

    def reset(self, count: int):
        """Allocate `count` slots (never-used ones first, then the least recently used) and reset them."""
        with self.lock:
            while (self.last_used < 0).sum() < count and len(self.last_used) + self.block <= self.max_slots:
                self._grow()
            if len(self.last_used) < count:
                raise RuntimeError(f"{self.task}: {count} emulators needed at once, max_slots is {self.max_slots}")
            slots = np.argsort(self.last_used, kind="stable")[:count]
            self.clock += 1
            self.last_used[slots] = self.clock
            self.live[slots] = True
            return slots.astype(np.int32), *self._reset_slots(slots)

    def _reset_slots(self, slots):
        obs = np.zeros((len(slots),) + self.obs_shape, np.uint8)
        lives = np.zeros(len(slots), np.int32)
        room = np.zeros(len(slots), np.int32)
        cell = np.zeros(len(slots), np.int32)
        for pool, rows, ids in self._by_pool(slots):
            o, info = pool.reset(ids)
            obs[rows] = np.moveaxis(o, 1, -1)
            lives[rows], room[rows], cell[rows] = self._info(info)
        return obs, lives, room, cell

    @property
    def obs_shape(self):
        return (self.options["img_height"], self.options["img_width"], self.options["stack_num"] * (
            1 if self.options["gray_scale"] else 3))

    def step(self, slots, actions, auto_reset: bool):
        """Step the slots' emulators; with auto_reset, finished ones are reset in place and their first observation
        returned, the last one as `final`. A slot this process never reset (a resumed run's) is reset instead and
        reported as a truncated episode with reward 0 and the fresh frame as both observations."""
        with self.lock:
            while len(self.last_used) <= int(np.max(slots, initial=-1)) and len(self.last_used) < self.max_slots:
                self._grow()
            self.clock += 1
            self.last_used[slots] = self.clock
            n = len(slots)
            final = np.zeros((n,) + self.obs_shape, np.uint8)
            reward, terminated, truncated = np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool)
            lives, room, cell = np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros(n, np.int32)
            revived = np.flatnonzero(~self.live[slots])
            stepped = np.flatnonzero(self.live[slots])
            if len(revived):
                self.live[slots[revived]] = True
                final[revived], lives[revived], room[revived], cell[revived] = self._reset_slots(slots[revived])
                truncated[revived] = True
            for pool, local, ids in self._by_pool(slots[stepped]):
                rows = stepped[local]
                o, r, te, tr, info = pool.step(actions[rows].astype(np.int32), ids)
                final[rows], reward[rows], terminated[rows], truncated[rows] = np.moveaxis(o, 1, -1), r, te, tr
                lives[rows], room[rows], cell[rows] = self._info(info)
            obs = final.copy()
            done = np.setdiff1d(np.flatnonzero(terminated | truncated), revived)  # revived: already fresh
            if auto_reset and len(done):
                obs[done], lives[done], room[done], cell[done] = self._reset_slots(slots[done])
            return obs, final, reward, terminated, truncated, lives, room, cell


class AtariEnv(environment.Environment):
    """An EnvPool Atari game as a gymnax environment whose state is a slot in a host pool (see the module doc)."""

    external_state = True  # the interaction loop steps it with its own auto-reset, never with presampled resets

    def __init__(self, task: str, protocol: str = "psdrl", seed: int = 0, max_slots: int = 1024, **options):
        envpool = envpool_module()
        if envpool is None:
            raise ValueError(f"environment '{task}' is an Atari game: install the atari extra ({EXTRA_HINT})")
        if task not in envpool.list_all_envs():
            raise ValueError(f"unknown Atari game '{task}' (EnvPool ids such as Pong-v5, MontezumaRevenge-v5)")
        super().__init__()
        self.task = task
        self.options = check_options(task, protocol, options)
        probe = envpool.make_spec(task, **self.options)
        self._num_actions = int(probe.action_space.n)
        self.pool = HostPool(task, self.options, seed, max_slots)

    @property
    def name(self) -> str:
        return self.task

    @property
    def num_actions(self) -> int:
        return self._num_actions

    @property
    def default_params(self):
        return environment.EnvParams(max_steps_in_episode=self.options["max_episode_steps"])

    def action_space(self, params=None):
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params=None):
        return spaces.Box(0, 255, self.pool.obs_shape, jnp.uint8)

    def is_truncated(self, state, params) -> jax.Array:
        return state.truncated

    def is_terminated(self, state, params) -> jax.Array:
        return jnp.bool_(False)

    # The callbacks take any leading batch shape (vmap_method="expand_dims" prepends the vmapped axes).
    def reset_env(self, key, params):
        shape = jax.ShapeDtypeStruct
        obs_spec = shape(self.pool.obs_shape, jnp.uint8)
        int_spec = shape((), jnp.int32)

        def host_reset(keys):
            batch = keys.shape[:-1]
            slots, obs, lives, room, cell = self.pool.reset(int(np.prod(batch, dtype=np.int64)))
            return (slots.reshape(batch), obs.reshape(batch + obs.shape[1:]), lives.reshape(batch),
                    room.reshape(batch), cell.reshape(batch))

        slot, obs, lives, room, cell = jax.pure_callback(host_reset, (int_spec, obs_spec, int_spec, int_spec, int_spec),
                                                         jax.random.key_data(key) if jnp.issubdtype(
                                                             key.dtype, jax.dtypes.prng_key) else key,
                                                         vmap_method="expand_dims")
        state = AtariState(time=0, slot=slot, truncated=jnp.bool_(False), lives=lives, room=room, cell=cell, obs=obs)
        return obs, state

    def get_obs(self, state: AtariState, params=None, key=None):
        return state.obs

    def _host_step(self, state, action, auto_reset: bool):
        obs_spec = jax.ShapeDtypeStruct(self.pool.obs_shape, jnp.uint8)
        scalar = lambda dtype: jax.ShapeDtypeStruct((), dtype)  # noqa: E731

        def host_step(slots, actions, _time):
            slots, actions = np.broadcast_arrays(slots, actions)
            batch = slots.shape
            outs = self.pool.step(slots.reshape(-1), actions.reshape(-1), auto_reset)
            return tuple(x.reshape(batch + x.shape[1:]) for x in outs)

        specs = (obs_spec, obs_spec, scalar(jnp.float32), scalar(jnp.bool_), scalar(jnp.bool_), scalar(jnp.int32),
                 scalar(jnp.int32), scalar(jnp.int32))
        # state.time is passed so that successive steps depend on each other's outputs (never reordered).
        return jax.pure_callback(host_step, specs, state.slot, jnp.asarray(action, jnp.int32), state.time,
                                 vmap_method="expand_dims")

    def step_env(self, key, state: AtariState, action, params):
        obs, _, reward, terminated, truncated, lives, room, cell = self._host_step(state, action, auto_reset=False)
        state = state.replace(time=state.time + 1, truncated=truncated, lives=lives, room=room, cell=cell, obs=obs)
        return obs, state, reward, terminated, {}

    def step(self, key, state: AtariState, action, params=None):
        """gymnax's step with the auto-reset done on the host, in the same slot."""
        obs, final, reward, terminated, truncated, lives, room, cell = self._host_step(state, action, auto_reset=True)
        done = terminated | truncated
        state = state.replace(time=jnp.where(done, 0, state.time + 1), truncated=jnp.zeros_like(truncated),
                              lives=lives, room=room, cell=cell, obs=obs)
        info = {"terminated": terminated, "truncated": truncated, "final_observation": final}
        return obs, state, reward, terminated, truncated, info


class MontezumaAtariEnv(AtariEnv):
    """Montezuma's Revenge, with rooms and (room, x, y, inventory) cells read from the RAM for the visitation bitmaps."""

    num_rooms = 256  # RAM byte 3 (24 rooms on the first level; later levels reuse the numbers)
    num_cells = 1 << 32  # four RAM bytes: hashed into the bitmap

    def visitation(self, state: AtariState):
        return state.room, state.cell


def make(task: str, **env_config):
    """The environment for an Atari id, or ValueError naming the atari extra when EnvPool is not installed."""
    cls = MontezumaAtariEnv if task.startswith("MontezumaRevenge") else AtariEnv
    env = cls(task, **env_config)
    return env, env.default_params
