"""Pixel rendering and the protocol wrappers (envs/pixels.py): renders of hand-built states, frame-stack
order and max-pooling on scripted sequences, sticky-action frequency, no-op resets, reward transforms, time
limits, the config block's errors, and gymnax API conformance of wrapped environments."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

import envs
from envs import pixels
from envs.procmaze import ProcMazeState
from experiment import config as config_lib


# ------------------------------------------------------------------------------------------ a scripted env
FRAMES = np.array([3, 9, 4, 7, 1, 8, 2, 6, 5, 0], np.uint8)  # frame t shows FRAMES[t % 10]


@struct.dataclass
class ScriptState(environment.EnvState):
    last_action: jax.Array


class Scripted(environment.Environment):
    """Frame t is a 1x1 image of FRAMES[t]; reward = the action taken + 0.5; terminates at `end` raw steps.
    The state records the raw action executed last (what sticky actions change)."""

    def __init__(self, end=1000):
        super().__init__()
        self.end = end

    @property
    def default_params(self):
        return environment.EnvParams(max_steps_in_episode=10**6)

    def action_space(self, params=None):
        return spaces.Discrete(3)

    def observation_space(self, params=None):
        return spaces.Box(0, 255, (1, 1, 1), jnp.uint8)

    def get_obs(self, state, params=None, key=None):
        return jnp.asarray(FRAMES)[state.time % len(FRAMES)].reshape(1, 1, 1)

    def step_env(self, key, state, action, params):
        state = state.replace(time=state.time + 1, last_action=jnp.int32(action))
        return self.get_obs(state), state, action + 0.5, state.time >= self.end, {}

    def reset_env(self, key, params):
        state = ScriptState(time=0, last_action=jnp.int32(-1))
        return self.get_obs(state), state


def run_steps(env, actions, key=0):
    params = env.default_params
    obs, state = env.reset_env(jax.random.PRNGKey(key), params)
    out = []
    for index, action in enumerate(actions):
        obs, state, reward, terminated, info = env.step_env(jax.random.PRNGKey(100 + index), state, action, params)
        out.append((np.asarray(obs).ravel(), float(reward), bool(terminated), info, state))
    return out


# ------------------------------------------------------------------------------------------ rendering
def test_render_procmaze_hand_built_state_pixel_values():
    """G=4 at 8x8: 2 px per cell; player 255, goal 170, wall 85, empty 0, each filling its cell."""
    env, params = envs.make("ProcMaze", grid_size=4)
    walls = jnp.zeros((4, 4), bool).at[1, 1].set(True).at[2, 3].set(True)
    state = ProcMazeState(time=0, goal=jnp.array([3, 0]), walls=walls, pos=jnp.array([0, 2]))
    rendered = pixels.Render(env, 8)
    image = np.asarray(rendered.render(env.get_obs(state), state))[:, :, 0]
    expected_cells = np.zeros((4, 4), np.uint8)
    expected_cells[1, 1] = expected_cells[2, 3] = 85
    expected_cells[3, 0] = 170
    expected_cells[0, 2] = 255
    np.testing.assert_array_equal(image, np.kron(expected_cells, np.ones((2, 2), np.uint8)))
    assert rendered.observation_space(params).shape == (8, 8, 1)


def test_render_uneven_scale_is_nearest_neighbour():
    """3 cells onto 8 pixels: rows 0-2 show cell 0, 3-5 cell 1, 6-7 cell 2."""
    np.testing.assert_array_equal(pixels.nearest_indices(3, 8), [0, 0, 0, 1, 1, 1, 2, 2])
    planes = jnp.zeros((3, 3, 1), bool).at[2, 0, 0].set(True)
    image = np.asarray(pixels.render_planes(planes, (200,), 8))
    assert image[6:, :3].min() == 200 and image[:6].max() == 0 and image[:, 3:].max() == 0


def test_render_overlap_draws_the_brightest_channel():
    """ProcMaze player on the goal: the player's level wins."""
    planes = jnp.zeros((2, 2, 4), bool).at[0, 0, 0].set(True).at[0, 0, 1].set(True)
    image = np.asarray(pixels.render_planes(planes, (255, 170, 85, 0), 2))
    assert image[0, 0] == 255


def test_render_buttongrid_panflute_opengrid_and_float_dtype():
    env, params = envs.make("ButtonGrid", grid_size=3, num_buttons=2)
    obs, state = pixels.Render(env, 6).reset_env(jax.random.PRNGKey(0), params)
    cells = np.asarray(obs)[::2, ::2, 0]
    assert cells[tuple(state.inner.pos)] == 255 and np.sum(cells == 85) == 2  # two buttons, off
    env, params = envs.make("PanFlute", num_pipes=3)
    rendered = pixels.Render(env, 3)
    pipes = jnp.array([True, False, True, True, False, True])  # pipe 0: [1]; pipe 1: [0, 1]; pipe 2: [1, 0, 1]
    image = np.asarray(rendered.render(pipes, None))[:, :, 0]
    np.testing.assert_array_equal(image, [[255, 0, 0], [0, 255, 0], [255, 0, 255]])
    env, params = envs.make("OpenGrid", grid_size=2)
    obs_u8, _ = pixels.Render(env, 4).reset_env(jax.random.PRNGKey(1), params)
    obs_f, _ = pixels.Render(env, 4, "float32").reset_env(jax.random.PRNGKey(1), params)
    assert obs_f.dtype == jnp.float32 and float(obs_f.max()) == 1.0
    np.testing.assert_allclose(np.asarray(obs_f), np.asarray(obs_u8) / 255.0)


def test_render_minatar_breakout_paddle_and_bricks():
    """Breakout's 4 channels at evenly spaced levels (64, 128, 191, 255): paddle on row 9, bricks rows 1-3."""
    env, params = envs.make("Breakout-MinAtar")
    obs, state = pixels.Render(env, 20).reset_env(jax.random.PRNGKey(0), params)
    cells = np.asarray(obs)[::2, ::2, 0]
    assert cells[9, int(state.inner.pos)] == 64
    assert (cells[1:4] == 255).all()
    assert obs.shape == (20, 20, 1) and obs.dtype == jnp.uint8


def test_render_refuses_vector_observations():
    env, params = envs.make("CartPole-v1")
    with pytest.raises(ValueError, match="cannot be rendered"):
        pixels.wrap(env, params, {"pixels": 16})


# ------------------------------------------------------------------------------------------ wrappers
def test_frame_stack_newest_last_and_first_with_reset_fills():
    env = Scripted()
    stack = pixels.FrameStack(env, 3, "newest_last", "repeat")
    obs, state = stack.reset_env(jax.random.PRNGKey(0), env.default_params)
    np.testing.assert_array_equal(np.asarray(obs).ravel(), [3, 3, 3])
    seen = [o for o, *_ in run_steps(stack, [0, 0, 0])]
    np.testing.assert_array_equal(seen, [[3, 3, 9], [3, 9, 4], [9, 4, 7]])
    first = pixels.FrameStack(env, 3, "newest_first", "zeros")
    obs, _ = first.reset_env(jax.random.PRNGKey(0), env.default_params)
    np.testing.assert_array_equal(np.asarray(obs).ravel(), [3, 0, 0])
    seen = [o for o, *_ in run_steps(first, [0, 0, 0])]
    np.testing.assert_array_equal(seen, [[9, 3, 0], [4, 9, 3], [7, 4, 9]])
    assert first.observation_space().shape == (1, 1, 3)


def test_action_repeat_sums_rewards_and_max_pools_the_last_two_frames():
    env = Scripted()
    skip = pixels.FrameSkip(env, 4, max_pool=True)
    steps = run_steps(skip, [1, 2])
    # Raw frames 1..4 show 9, 4, 7, 1: max of the last two = 7; frames 5..8 show 8, 2, 6, 5: max 6.
    assert steps[0][0][0] == 7 and steps[1][0][0] == 6
    assert steps[0][1] == 4 * 1.5 and steps[1][1] == 4 * 2.5
    no_pool = run_steps(pixels.FrameSkip(env, 4, max_pool=False), [1])
    assert no_pool[0][0][0] == 1


def test_action_repeat_stops_at_the_episode_end():
    """An episode ending on raw frame 2 of 4: two rewards, the pool of frames 1 and 2, terminated."""
    env = Scripted(end=2)
    (obs, reward, terminated, _, state), = run_steps(pixels.FrameSkip(env, 4, max_pool=True), [1])
    assert terminated and reward == 2 * 1.5 and obs[0] == max(FRAMES[1], FRAMES[2]) and int(state.inner.time) == 2


def test_sticky_actions_repeat_the_previous_raw_action_with_probability_p():
    """Alternating actions 1, 2, one raw frame per step: among the steps whose chosen action differs from the
    raw action executed before, the fraction that executes the previous one instead is 0.25 within 0.03
    (4 x 2000 steps, about 6000 such steps: the binomial std is 0.006)."""
    env = pixels.FrameSkip(Scripted(end=10**6), 1, sticky_prob=0.25)
    params = env.default_params

    def one_run(key):
        def body(state, inputs):
            index, step_key = inputs
            action = 1 + index % 2
            previous = state.inner.last_action
            _, state, _, _, _ = env.step_env(step_key, state, action, params)
            return state, (previous != action, state.inner.last_action == previous)

        _, state = env.reset_env(key, params)
        _, record = jax.lax.scan(body, state, (jnp.arange(2000), jax.random.split(key, 2000)))
        return record

    differs, repeated = jax.jit(jax.vmap(one_run))(jax.random.split(jax.random.PRNGKey(0), 4))
    fraction = float(jnp.sum(differs & repeated) / jnp.sum(differs))
    assert abs(fraction - 0.25) < 0.03


def test_noop_reset_takes_between_one_and_noop_max_raw_steps():
    env = pixels.NoopReset(Scripted(), 5)
    _, states = jax.vmap(env.reset_env, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), 2000),
                                                          env.default_params)
    counts = np.bincount(np.asarray(states.inner.time), minlength=6)
    assert counts[0] == 0 and counts[1:].sum() == 2000
    assert np.all(np.abs(counts[1:] / 2000 - 0.2) < 0.04)  # uniform over 1..5
    assert (np.asarray(states.inner.last_action) == 0).all()


@pytest.mark.parametrize("how, expected", [("clip", [1.0, -1.0, 0.0]), ("tanh", list(np.tanh([2.5, -3.0, 0.0]))),
                                           ("positive_sign", [1.0, 0.0, 0.0])])
def test_reward_transforms_keep_the_raw_reward_in_info(how, expected):
    for raw, want in zip([2.5, -3.0, 0.0], expected):
        assert float(pixels.transform_reward(jnp.float32(raw), how)) == pytest.approx(want, rel=1e-6)
    (_, reward, _, info, _), = run_steps(pixels.RewardTransform(Scripted(), how), [2])
    assert info["raw_reward"] == 2.5 and reward == pytest.approx(float(pixels.transform_reward(jnp.float32(2.5), how)))


def test_time_limit_truncates_in_agent_steps_through_gymnax_step():
    env = pixels.wrap(Scripted(), None, {"time_limit": 3, "action_repeat": 2})
    params = env.default_params
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    truncations = []
    for index in range(4):
        obs, state, _, terminated, truncated, _ = env.step(jax.random.PRNGKey(index), state, 0, params)
        truncations.append(bool(truncated))
    assert truncations == [False, False, True, False]  # auto-reset after the third agent step


def test_wrap_order_and_defaults_off():
    env, params = envs.make("ProcMaze", grid_size=3)
    assert pixels.wrap(env, params, {}) is env and pixels.wrap(env, params, None) is env
    wrapped = pixels.wrap(env, params, {"pixels": 6, "noop_max": 2, "action_repeat": 2, "max_pool": True,
                                        "reward_transform": "clip", "time_limit": 9, "frame_stack": 2})
    chain = []
    while isinstance(wrapped, pixels.Wrapper):
        chain.append(type(wrapped).__name__)
        wrapped = wrapped.inner
    assert chain == ["FrameStack", "TimeLimit", "RewardTransform", "FrameSkip", "NoopReset", "Render"]


# ------------------------------------------------------------------------------------------ config
BASE = config_lib.load_json("configs/quickstart.json")


@pytest.mark.parametrize("wrappers, message", [
    ({"pixel": 16}, "unknown env_wrappers key 'pixel'; did you mean 'pixels'"),
    ({"pixels": -1}, "'pixels' must be an integer in"),
    ({"pixels": 16, "pixel_dtype": "float16"}, "'pixel_dtype' must be uint8 or float32"),
    ({"sticky_action_prob": 1.0}, "'sticky_action_prob' must be a number in \\[0, 1\\)"),
    ({"action_repeat": 0}, "'action_repeat' must be an integer in"),
    ({"max_pool": True}, "'max_pool' needs action_repeat >= 2"),
    ({"reward_transform": "sign"}, "'reward_transform' must be one of"),
    ({"frame_stack": 2.5}, "'frame_stack' must be an integer"),
    ({"frame_stack_order": "oldest_first"}, "'frame_stack_order' must be one of"),
])
def test_bad_env_wrappers_are_refused_naming_the_key(wrappers, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.validate("ER", {**BASE, "env_wrappers": wrappers})


def test_env_wrappers_must_be_an_object_and_pixels_need_images():
    with pytest.raises(config_lib.ConfigError, match="'env_wrappers' must be a JSON object"):
        config_lib.validate("ER", {**BASE, "env_wrappers": [16]})
    cartpole = {**BASE, "environment": "CartPole-v1", "env_config": {}, "env_wrappers": {"pixels": 16}}
    with pytest.raises(config_lib.ConfigError, match="CartPole-v1 observations cannot be rendered"):
        config_lib.validate("ER", cartpole)


def test_conv_torso_accepts_rendered_observations():
    config = config_lib.validate("ER", {**BASE, "env_wrappers": {"pixels": 12}, "torso": "conv"})
    env, params = envs.make_from_config(config)
    assert env.observation_space(params).shape == (12, 12, 1)


# ------------------------------------------------------------------------------------------ gymnax API
WRAPPED = [
    ("ProcMaze", {"grid_size": 4}, {"pixels": 16, "frame_stack": 2}),
    ("Breakout-MinAtar", {}, {"pixels": 20, "action_repeat": 2, "max_pool": True, "sticky_action_prob": 0.25}),
    ("MiniMontezuma", {"tile_pixels": 2}, {"frame_stack": 4, "frame_stack_order": "newest_first", "time_limit": 50}),
    ("MiniMontezuma", {"layout": "procedural", "tile_pixels": 1}, {}),
]


@pytest.mark.parametrize("name, env_config, wrappers", WRAPPED)
def test_gymnax_api_jit_vmap_auto_reset(name, env_config, wrappers):
    env, params = envs.make_from_config({"environment": name, "env_config": env_config, "env_wrappers": wrappers})
    space = env.observation_space(params)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    assert obs.shape == (3,) + tuple(space.shape) and obs.dtype == space.dtype
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))

    def rollout(carry, key):
        state, _ = carry
        action_key, step_key = jax.random.split(key)
        actions = jax.random.randint(action_key, (3,), 0, env.action_space(params).n)
        obs, state, reward, terminated, truncated, info = step(jax.random.split(step_key, 3), state, actions, params)
        return (state, obs), (obs, terminated | truncated, info["final_observation"])

    (_, _), (all_obs, done, final) = jax.lax.scan(rollout, (state, obs), jax.random.split(jax.random.PRNGKey(1), 60))
    assert all_obs.shape == (60, 3) + tuple(space.shape) and final.shape == all_obs.shape
    assert bool(jnp.all((all_obs >= space.low) & (all_obs <= space.high)))
    if "time_limit" in wrappers:  # no episode outlasts the limit (an episode may also end before it)
        since_reset = jax.lax.scan(lambda n, d: (jnp.where(d, 0, n + 1),) * 2, jnp.zeros(3, jnp.int32), done)[1]
        assert int(since_reset.max()) < wrappers["time_limit"]


def minatar_ids():
    import gymnax

    return [name for name in gymnax.registered_envs if name.endswith("-MinAtar")]


def test_every_minatar_game_renders_each_channel_at_its_level():
    """Every MinAtar game of gymnax: a reset's (10, 10, C) planes drawn at 30x30 (3 px per cell); each cell shows
    the level of the highest channel set there (0 where none is)."""
    assert len(minatar_ids()) >= 4
    for name in minatar_ids():
        env, params = envs.make(name)
        planes, state = env.reset(jax.random.PRNGKey(0), params)
        obs, _ = pixels.Render(env, 30).reset_env(jax.random.PRNGKey(0), params)
        levels = np.asarray(pixels.default_intensities(planes.shape[-1]))
        set_planes = np.asarray(planes).astype(bool)
        expected = np.where(set_planes.any(-1), levels[np.argmax(set_planes * np.arange(1, planes.shape[-1] + 1),
                                                                  axis=-1)], 0)
        np.testing.assert_array_equal(np.asarray(obs)[1::3, 1::3, 0], expected, err_msg=name)
