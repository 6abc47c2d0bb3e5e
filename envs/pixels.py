"""Pixel observations and the Atari-style protocol wrappers, as gymnax environments over gymnax environments.

Every wrapper is a small `step_env`/`reset_env` class whose state holds the wrapped state in `inner`, so
gymnax's own `step` (auto-reset, truncation) and our presampled resets work unchanged, inside jit and vmap.
`wrap(env, options)` composes them in the one order the Atari protocols use:

    Render (grid planes -> grayscale image)
    -> NoopReset (1..noop_max raw no-op steps at reset)
    -> FrameSkip (sticky actions per raw frame, action repeat, rewards summed, max over the last two frames)
    -> RewardTransform (clip / tanh / positive sign; the raw reward stays in info["raw_reward"])
    -> TimeLimit (in agent steps) -> FrameStack (the last k observations along the channel axis)

Images are (height, width, channels) uint8 by default: storage stays one byte per pixel (replay buffers
keep each leaf's dtype) and the networks read them through agents.components.networks.unit_float, which
divides by 255.
"""
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

REWARD_TRANSFORMS = ("none", "clip", "tanh", "positive_sign")
FRAME_STACK_ORDERS = ("newest_last", "newest_first")
FRAME_STACK_RESETS = ("repeat", "zeros")

# The env_wrappers config block: key -> (default, what it must be). Everything is off by default.
WRAPPER_OPTIONS = {
    "pixels": (0, "render to pixels x pixels grayscale (0: off; natively pixel environments are resized)"),
    "pixel_dtype": ("uint8", "uint8 (0..255, for storage) or float32 (0..1)"),
    "noop_max": (0, "1..noop_max raw no-op steps (action 0) at every reset (0: off)"),
    "sticky_action_prob": (0.0, "probability per raw frame of repeating the previous raw action instead"),
    "action_repeat": (1, "raw frames per agent step, rewards summed, stopping early at an episode end"),
    "max_pool": (False, "observation = pixelwise max of the last two raw frames (needs action_repeat >= 2)"),
    "reward_transform": ("none", "reward the agent sees: none, clip (sign), tanh, positive_sign (1 if r > 0)"),
    "time_limit": (0, "agent steps after which an episode is truncated (0: none besides the environment's own)"),
    "frame_stack": (1, "observations stacked along the channel axis"),
    "frame_stack_order": ("newest_last", "where the newest frame goes: newest_last or newest_first (channel 0)"),
    "frame_stack_reset": ("repeat", "what fills the stack at a reset: repeat (the first frame) or zeros"),
}


class WrapperError(ValueError):
    """A bad env_wrappers block; the message names the key."""


def check_wrapper_options(options) -> dict:
    """The full options (defaults filled in), or WrapperError naming the first bad key."""
    import difflib

    if not isinstance(options, dict):
        raise WrapperError(f"env_wrappers must be a JSON object of options, got {options!r}")
    for name in options:
        if name not in WRAPPER_OPTIONS:
            close = difflib.get_close_matches(str(name), list(WRAPPER_OPTIONS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(WRAPPER_OPTIONS)})"
            raise WrapperError(f"unknown env_wrappers key '{name}'{hint}")
    full = {name: options.get(name, default) for name, (default, _) in WRAPPER_OPTIONS.items()}

    def require(name, ok, what):
        value = full[name]
        if not ok(value):
            raise WrapperError(f"env_wrappers key '{name}' must be {what}, got {value!r}")

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    require("pixels", lambda v: is_int(v) and 0 <= v <= 1024, "an integer in [0, 1024]")
    require("pixel_dtype", lambda v: v in ("uint8", "float32"), "uint8 or float32")
    require("noop_max", lambda v: is_int(v) and 0 <= v <= 10_000, "an integer in [0, 10000]")
    require("sticky_action_prob", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1,
            "a number in [0, 1)")
    require("action_repeat", lambda v: is_int(v) and 1 <= v <= 1000, "an integer in [1, 1000]")
    require("max_pool", lambda v: isinstance(v, bool), "true or false")
    require("reward_transform", lambda v: v in REWARD_TRANSFORMS, f"one of {', '.join(REWARD_TRANSFORMS)}")
    require("time_limit", lambda v: is_int(v) and 0 <= v < 2**31 - 1, "an integer >= 0")
    require("frame_stack", lambda v: is_int(v) and 1 <= v <= 64, "an integer in [1, 64]")
    require("frame_stack_order", lambda v: v in FRAME_STACK_ORDERS, f"one of {', '.join(FRAME_STACK_ORDERS)}")
    require("frame_stack_reset", lambda v: v in FRAME_STACK_RESETS, f"one of {', '.join(FRAME_STACK_RESETS)}")
    if full["max_pool"] and full["action_repeat"] < 2:
        raise WrapperError("env_wrappers key 'max_pool' needs action_repeat >= 2 (it pools the last two raw frames)")
    full["sticky_action_prob"] = float(full["sticky_action_prob"])
    return full


# ------------------------------------------------------------------------------------------------ rendering

def default_intensities(num_channels: int) -> tuple:
    """Evenly spaced gray levels, the last channel brightest (it wins where channels overlap)."""
    return tuple(int(round(255 * (c + 1) / num_channels)) for c in range(num_channels))


def nearest_indices(source: int, target: int) -> np.ndarray:
    """For each of `target` output rows, the source row it shows (nearest-neighbour upscaling)."""
    return (np.arange(target) * source // target).astype(np.int32)


def render_planes(planes: jax.Array, intensities, size: int) -> jax.Array:
    """(H, W, C) 0/1 planes -> (size, size) uint8: each pixel the largest intensity among the channels set in
    its cell (so the channel order is the drawing order), cells scaled up by nearest neighbour."""
    height, width, num_channels = planes.shape
    levels = jnp.asarray(intensities, jnp.uint8)
    cells = jnp.max(jnp.where(planes.astype(jnp.bool_), levels, jnp.uint8(0)), axis=-1)
    return cells[nearest_indices(height, size)][:, nearest_indices(width, size)]


def resize_image(image: jax.Array, size: int) -> jax.Array:
    """A native (H, W) uint8 image at size x size: area-like (antialiased linear) when shrinking, nearest when
    the size is a whole multiple, as an Atari pipeline's INTER_AREA would."""
    height, width = image.shape
    if (height, width) == (size, size):
        return image
    if size % height == 0 and size % width == 0:
        return image[nearest_indices(height, size)][:, nearest_indices(width, size)]
    resized = jax.image.resize(image.astype(jnp.float32), (size, size), "linear", antialias=True)
    return jnp.clip(jnp.round(resized), 0, 255).astype(jnp.uint8)


def observation_planes(env, obs: jax.Array) -> jax.Array:
    """An environment's observation as (H, W, C) planes: its own `observation_planes` if it has one (the grid
    environments, PanFlute), else an observation that already is (H, W, C) (MinAtar) or one (H, W) board
    (bsuite's Catch and DeepSea)."""
    if hasattr(env, "observation_planes"):
        return env.observation_planes(obs)
    if obs.ndim == 3:
        return obs
    if obs.ndim == 2:
        return obs[..., None]
    raise ValueError(f"{env.name} observations of shape {obs.shape} cannot be rendered to pixels")


def can_render(env, params) -> bool:
    shape = tuple(env.observation_space(params).shape)
    return hasattr(env, "render_image") or hasattr(env, "observation_planes") or len(shape) in (2, 3)


# ------------------------------------------------------------------------------------------------ wrappers

@struct.dataclass
class WrappedState(environment.EnvState):
    inner: Any


class Wrapper(environment.Environment):
    """Delegates everything to the wrapped environment; subclasses change what they wrap."""

    def __init__(self, env):
        super().__init__()
        self._env = env

    @property
    def inner(self):
        return self._env

    @property
    def default_params(self):
        return self._env.default_params

    @property
    def num_actions(self) -> int:
        return self._env.num_actions

    @property
    def name(self) -> str:
        return self._env.name

    def action_space(self, params=None):
        return self._env.action_space(params)

    def observation_space(self, params=None):
        return self._env.observation_space(params)

    def is_truncated(self, state, params) -> jax.Array:
        return self._env.is_truncated(state.inner, params)

    @property
    def external_state(self) -> bool:
        """Whether the wrapped environment lives outside JAX (Atari) and resets itself inside `step`."""
        return getattr(self._env, "external_state", False)

    def step(self, key, state, action, params=None):
        if not self.external_state:
            return super().step(key, state, action, params)
        return self.external_step(key, state, action, params)

    def external_step(self, key, state, action, params):
        raise NotImplementedError(f"{type(self).__name__} cannot wrap an environment that lives outside JAX")

    def is_terminated(self, state, params) -> jax.Array:
        return self._env.is_terminated(state.inner, params)

    def unwrapped_state(self, state):
        """The innermost environment's state (room ids, positions, RAM: what bookkeeping reads)."""
        inner_state = state.inner
        return self._env.unwrapped_state(inner_state) if isinstance(self._env, Wrapper) else inner_state

    def unwrapped(self):
        return self._env.unwrapped() if isinstance(self._env, Wrapper) else self._env

    def step_env(self, key, state, action, params):
        obs, inner, reward, terminated, info = self._env.step_env(key, state.inner, action, params)
        return obs, state.replace(inner=inner, time=state.time + 1), reward, terminated, info

    def reset_env(self, key, params):
        obs, inner = self._env.reset_env(key, params)
        return obs, WrappedState(time=0, inner=inner)


class Render(Wrapper):
    """Grayscale (size, size, 1) images of a grid environment's observation planes, or of a natively pixel
    environment's own image resized. uint8 0..255 by default; float32 in [0, 1] with pixel_dtype float32."""

    def __init__(self, env, size: int, pixel_dtype: str = "uint8"):
        super().__init__(env)
        self.size = size
        self.pixel_dtype = pixel_dtype
        self.intensities = getattr(env, "plane_intensities", None)

    def render(self, obs, inner_state):
        if hasattr(self._env, "render_image"):
            image = resize_image(self._env.render_image(inner_state), self.size)
        else:
            planes = observation_planes(self._env, obs)
            intensities = self.intensities or default_intensities(planes.shape[-1])
            image = render_planes(planes, intensities, self.size)
        image = image[:, :, None]
        return image if self.pixel_dtype == "uint8" else image.astype(jnp.float32) / 255.0

    def observation_space(self, params=None):
        dtype = jnp.uint8 if self.pixel_dtype == "uint8" else jnp.float32
        return spaces.Box(0, 255 if self.pixel_dtype == "uint8" else 1.0, (self.size, self.size, 1), dtype)

    def step_env(self, key, state, action, params):
        obs, state, reward, terminated, info = super().step_env(key, state, action, params)
        return self.render(obs, state.inner), state, reward, terminated, info

    def reset_env(self, key, params):
        obs, state = super().reset_env(key, params)
        return self.render(obs, state.inner), state

    def get_obs(self, state, params=None, key=None):
        return self.render(self._env.get_obs(state.inner, params), state.inner)


def raw_done(env, state, terminated, params):
    return terminated | env.is_truncated(state, params)


@struct.dataclass
class FrameSkipState(environment.EnvState):
    inner: Any
    frame: jax.Array  # the last raw observation (the max-pool's partner when an episode ends on the first frame)
    last_action: jax.Array  # the raw action executed last (what a sticky frame repeats)


class FrameSkip(Wrapper):
    """`repeat` raw frames per agent step with the same action. With sticky_prob each raw frame instead
    repeats the previous raw action with that probability (Machado et al. 2018: decided per frame). Rewards
    are summed; an episode end inside the repeat stops it (later frames change nothing). With max_pool the
    observation is the pixelwise max of the last two raw frames."""

    def __init__(self, env, repeat: int, sticky_prob: float = 0.0, max_pool: bool = False):
        super().__init__(env)
        self.repeat, self.sticky_prob, self.max_pool = repeat, sticky_prob, max_pool

    def step_env(self, key, state: FrameSkipState, action, params):
        def raw_frame(carry, frame_key):
            inner, previous, frame, last_action, reward, terminated, done = carry
            sticky_key, step_key = jax.random.split(frame_key)
            sticky = jax.random.bernoulli(sticky_key, self.sticky_prob) if self.sticky_prob > 0 else False
            raw_action = jnp.where(sticky, last_action, action).astype(jnp.int32)
            obs, stepped, r, term, _ = self._env.step_env(step_key, inner, raw_action, params)
            live = ~done  # frames after an episode end are no-ops
            keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(live, n, o), new, old)  # noqa: E731
            inner = keep(stepped, inner)
            previous, frame = keep(frame, previous), keep(obs, frame)
            reward = reward + jnp.where(live, r, 0.0)
            terminated = terminated | (live & term)
            done = done | (live & raw_done(self._env, stepped, term, params))
            last_action = jnp.where(live, raw_action, last_action)
            return (inner, previous, frame, last_action, reward, terminated, done), None

        carry = (state.inner, state.frame, state.frame, state.last_action, jnp.float32(0.0), jnp.bool_(False),
                 jnp.bool_(False))
        (inner, previous, frame, last_action, reward, terminated, _), _ = jax.lax.scan(
            raw_frame, carry, jax.random.split(key, self.repeat))
        obs = jnp.maximum(previous, frame) if self.max_pool else frame
        state = FrameSkipState(time=state.time + 1, inner=inner, frame=frame, last_action=last_action)
        return obs, state, reward, terminated, {}

    def reset_env(self, key, params):
        obs, inner = self._env.reset_env(key, params)
        return obs, FrameSkipState(time=0, inner=inner, frame=obs, last_action=jnp.int32(0))

    def get_obs(self, state, params=None, key=None):
        return state.frame


class NoopReset(Wrapper):
    """After each reset, a uniform number in 1..noop_max of raw steps with action 0 (the no-op of our grid
    environments, MinAtar and the minimal Atari sets). An episode that ends during them is reset again."""

    def __init__(self, env, noop_max: int):
        super().__init__(env)
        self.noop_max = noop_max

    def reset_env(self, key, params):
        reset_key, count_key, loop_key = jax.random.split(key, 3)
        obs, inner = self._env.reset_env(reset_key, params)
        count = jax.random.randint(count_key, (), 1, self.noop_max + 1)

        def noop(carry, step):
            obs, inner = carry
            index, step_key = step
            stepped_key, again_key = jax.random.split(step_key)
            new_obs, stepped, _, term, _ = self._env.step_env(stepped_key, inner, jnp.int32(0), params)
            done = raw_done(self._env, stepped, term, params)
            fresh_obs, fresh = self._env.reset_env(again_key, params)
            new_obs, stepped = jax.tree.map(lambda f, s: jnp.where(done, f, s), (fresh_obs, fresh), (new_obs, stepped))
            live = index < count
            return jax.tree.map(lambda n, o: jnp.where(live, n, o), (new_obs, stepped), (obs, inner)), None

        (obs, inner), _ = jax.lax.scan(noop, (obs, inner), (jnp.arange(self.noop_max),
                                                              jax.random.split(loop_key, self.noop_max)))
        return obs, WrappedState(time=0, inner=inner)

    def get_obs(self, state, params=None, key=None):
        return self._env.get_obs(state.inner, params)


def transform_reward(reward: jax.Array, how: str) -> jax.Array:
    reward = jnp.asarray(reward, jnp.float32)
    if how == "clip":
        return jnp.sign(reward)
    if how == "tanh":
        return jnp.tanh(reward)
    if how == "positive_sign":
        return (reward > 0).astype(jnp.float32)
    return reward


class RewardTransform(Wrapper):
    """The reward the agent learns from; the environment's own reward (the score) is in info["raw_reward"]."""

    def __init__(self, env, how: str):
        super().__init__(env)
        self.how = how

    def step_env(self, key, state, action, params):
        obs, state, reward, terminated, info = super().step_env(key, state, action, params)
        return obs, state, transform_reward(reward, self.how), terminated, {**info, "raw_reward": reward}

    def external_step(self, key, state, action, params):
        obs, inner, reward, terminated, truncated, info = self._env.step(key, state.inner, action, params)
        state = state.replace(inner=inner, time=state.time + 1)
        return obs, state, transform_reward(reward, self.how), terminated, truncated, {**info, "raw_reward": reward}

    def get_obs(self, state, params=None, key=None):
        return self._env.get_obs(state.inner, params)


class TimeLimit(Wrapper):
    """Truncates an episode after `limit` agent steps (besides the environment's own limit)."""

    def __init__(self, env, limit: int):
        super().__init__(env)
        self.limit = limit

    def is_truncated(self, state, params) -> jax.Array:
        return self._env.is_truncated(state.inner, params) | (state.time >= self.limit)

    def get_obs(self, state, params=None, key=None):
        return self._env.get_obs(state.inner, params)


@struct.dataclass
class FrameStackState(environment.EnvState):
    inner: Any
    frames: jax.Array  # (H, W, C * k) as observed


class FrameStack(Wrapper):
    """The last k observations concatenated along the channel axis (the last axis), the newest last
    (DQN's convention) or first (channel 0, as the SND author's code). A reset fills the older slots with
    the first frame or with zeros."""

    def __init__(self, env, k: int, order: str = "newest_last", reset_fill: str = "repeat"):
        super().__init__(env)
        self.k, self.order, self.reset_fill = k, order, reset_fill

    def observation_space(self, params=None):
        inner = self._env.observation_space(params)
        shape = tuple(inner.shape[:-1]) + (inner.shape[-1] * self.k,)
        return spaces.Box(inner.low, inner.high, shape, inner.dtype)

    def push(self, frames, obs):
        channels = obs.shape[-1]
        if self.order == "newest_last":
            return jnp.concatenate([frames[..., channels:], obs], axis=-1)
        return jnp.concatenate([obs, frames[..., :-channels]], axis=-1)

    def step_env(self, key, state: FrameStackState, action, params):
        obs, inner, reward, terminated, info = self._env.step_env(key, state.inner, action, params)
        frames = self.push(state.frames, obs)
        return frames, FrameStackState(time=state.time + 1, inner=inner, frames=frames), reward, terminated, info

    def first_frames(self, obs):
        if self.reset_fill == "repeat":
            return jnp.concatenate([obs] * self.k, axis=-1)
        return self.push(jnp.zeros(obs.shape[:-1] + (obs.shape[-1] * self.k,), obs.dtype), obs)

    def reset_env(self, key, params):
        obs, inner = self._env.reset_env(key, params)
        frames = self.first_frames(obs)
        return frames, FrameStackState(time=0, inner=inner, frames=frames)

    def external_step(self, key, state, action, params):
        obs, inner, reward, terminated, truncated, info = self._env.step(key, state.inner, action, params)
        final = self.push(state.frames, info["final_observation"])
        frames = jnp.where(terminated | truncated, self.first_frames(obs), self.push(state.frames, obs))
        state = FrameStackState(time=state.time + 1, inner=inner, frames=frames)
        return frames, state, reward, terminated, truncated, {**info, "final_observation": final}

    def get_obs(self, state, params=None, key=None):
        return state.frames


def wrap(env, params, options: dict | None):
    """`env` inside the wrappers `options` (checked by check_wrapper_options) switches on, in the fixed order."""
    if not options:
        return env
    options = check_wrapper_options(options)
    if getattr(env, "external_state", False):
        emulated = [name for name in ("pixels", "noop_max", "sticky_action_prob", "time_limit", "max_pool")
                    if options[name] != WRAPPER_OPTIONS[name][0]] + (["action_repeat"] if options["action_repeat"] > 1 else [])
        if emulated:
            raise WrapperError(f"env_wrappers key '{emulated[0]}' does not apply to {env.name}: EnvPool does it "
                               f"(set it in env_config: img_height/img_width, noop_max, repeat_action_probability, "
                               f"frame_skip, max_episode_steps)")
    if options["pixels"]:
        if not can_render(env, params):
            raise WrapperError(f"env_wrappers 'pixels': {env.name} observations cannot be rendered to pixels")
        env = Render(env, options["pixels"], options["pixel_dtype"])
    if options["noop_max"]:
        env = NoopReset(env, options["noop_max"])
    if options["action_repeat"] > 1 or options["sticky_action_prob"] > 0:
        env = FrameSkip(env, options["action_repeat"], options["sticky_action_prob"], options["max_pool"])
    if options["reward_transform"] != "none":
        env = RewardTransform(env, options["reward_transform"])
    if options["time_limit"]:
        env = TimeLimit(env, options["time_limit"])
    if options["frame_stack"] > 1:
        env = FrameStack(env, options["frame_stack"], options["frame_stack_order"], options["frame_stack_reset"])
    return env
