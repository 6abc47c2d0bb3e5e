"""PETS's cartpole swing-up in JAX (envs/cartpole_swingup.py): quantities worked by hand, the rail's soft
limit, the reward, reset noise, the gymnax API, and one-step agreement with MuJoCo on the model file written
from the published parameters (envs/assets/cartpole_swingup.xml; skipped without the mujoco extra)."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import cartpole_swingup as cp

ENV = cp.CartpoleSwingUp()
PARAMS = ENV.default_params
STEP = jax.jit(ENV.step_env)
XML = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "envs", "assets",
                   "cartpole_swingup.xml")


def state(x=0.0, theta=0.0, x_dot=0.0, theta_dot=0.0):
    return cp.SwingUpState(time=0, q=jnp.array([x, theta]), qdot=jnp.array([x_dot, theta_dot]))


def test_mass_matrix_and_inertia_by_hand():
    # c(0) = -(a sin 0 + l cos 0) = -0.3; J = 0.18875 + 5.01859 (0.3^2 + 0.0005^2) = 0.640423
    np.testing.assert_allclose(cp.mass_matrix(0.0), [[15.49057, -1.505577], [-1.505577, 0.640423]], rtol=1e-5)
    # Upright: c(pi) = +0.3.
    np.testing.assert_allclose(cp.mass_matrix(jnp.pi)[0, 1], 1.505577, rtol=1e-5)


def test_gravity_swings_the_pole_back_and_the_motor_pushes_the_cart():
    acc = cp.accelerations(jnp.array([0.0, 0.3]), jnp.zeros(2), 0.0)
    assert float(acc[1]) < 0  # a raised pole falls back towards theta = 0
    acc = cp.accelerations(jnp.zeros(2), jnp.zeros(2), 100.0)
    assert float(acc[0]) > 0 and float(acc[1]) > 0  # the cart moves right, the hanging pole lags (swings back)


def test_rail_limit_pushes_back_only_past_it():
    inside = cp.accelerations(jnp.array([2.49, 0.0]), jnp.array([1.0, 0.0]), 0.0)
    past = cp.accelerations(jnp.array([2.51, 0.0]), jnp.array([1.0, 0.0]), 0.0)
    free = cp.accelerations(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]), 0.0)
    np.testing.assert_allclose(inside, free, rtol=1e-6)
    assert float(past[0]) < -50  # a stiff push back towards the rail (-56 here)
    below = cp.accelerations(jnp.array([-2.51, 0.0]), jnp.array([-1.0, 0.0]), 0.0)
    assert float(below[0]) > 50


def test_reward_upright_hanging_and_action_cost():
    upright = state(theta=np.pi)
    obs, _, reward, terminated, _ = STEP(None, upright, jnp.zeros(1), PARAMS)
    assert abs(float(reward) - 1.0) < 1e-3 and not bool(terminated)  # one step from rest at the top
    np.testing.assert_allclose(-cp.planning_cost(jnp.zeros(4), jnp.zeros(1)), np.exp(-1.2 ** 2 / 0.36), rtol=1e-6)
    np.testing.assert_allclose(cp.planning_cost(jnp.zeros(4), jnp.array([2.0])) - cp.planning_cost(jnp.zeros(4),
                                                                                                    jnp.zeros(1)), 0.04,
                               rtol=1e-6)
    _, clipped, _, _, _ = STEP(None, state(), jnp.array([10.0]), PARAMS)
    _, limited, _, _, _ = STEP(None, state(), jnp.array([3.0]), PARAMS)
    np.testing.assert_array_equal(clipped.q, limited.q)  # control clipped to [-3, 3]


def test_reset_noise_and_gymnax_api():
    obs, states = jax.vmap(ENV.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), 4000), PARAMS)
    assert obs.shape == (4000, 4) and abs(float(obs.std()) - 0.1) < 0.005 and abs(float(obs.mean())) < 0.005
    env, params = envs.make("CartpoleSwingUp")
    _, s = env.reset(jax.random.PRNGKey(0), params)

    def body(s, key):
        _, s, reward, terminated, truncated, _ = env.step(key, s, jax.random.uniform(key, (1,), minval=-3, maxval=3),
                                                          params)
        return s, (reward, terminated, truncated)

    _, (rewards, terminated, truncated) = jax.lax.scan(body, s, jax.random.split(jax.random.PRNGKey(1), 400))
    assert not bool(terminated.any()) and np.flatnonzero(np.asarray(truncated)).tolist() == [199, 399]
    assert bool(jnp.all(rewards <= 1.0))


@pytest.mark.extra("mujoco")
def test_one_step_agreement_with_mujoco_on_a_random_episode_past_the_rail():
    """From each MuJoCo state of a 300-step random-action episode, one control step (2 RK4 substeps) in JAX
    (float32) and in MuJoCo (float64): relative difference below 1e-5 everywhere, the rail's limit included."""
    import mujoco
    model = mujoco.MjModel.from_xml_path(XML)
    np.testing.assert_allclose(model.body_mass[1:], [cp.CART_MASS, cp.POLE_MASS], rtol=1e-6)
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    data.qpos[:], data.qvel[:] = rng.normal(0, 0.1, 2), rng.normal(0, 0.1, 2)
    worst, past_rail = 0.0, 0
    for _ in range(300):
        u = rng.uniform(-3, 3)
        before = cp.SwingUpState(time=0, q=jnp.asarray(data.qpos, jnp.float32), qdot=jnp.asarray(data.qvel, jnp.float32))
        obs, _, _, _, _ = STEP(None, before, jnp.array([u]), PARAMS)
        data.ctrl[:] = u
        for _ in range(cp.SUBSTEPS):
            mujoco.mj_step(model, data)
        reference = np.concatenate([data.qpos, data.qvel])
        worst = max(worst, float(np.abs(np.asarray(obs) - reference).max() / (1 + np.abs(reference).max())))
        past_rail += abs(data.qpos[0]) > cp.RAIL
    assert past_rail >= 5 and worst < 1e-5, (past_rail, worst)
