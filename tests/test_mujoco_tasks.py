"""PETS's MuJoCo tasks on MJX (envs/mujoco_tasks.py): the refusal without the extra; Reacher3D's closed-form end
effector against MuJoCo's kinematics; resets, observations and rewards worked from the published code (kchua/handful-of-trials)
on rollouts that MJX (float32) and MuJoCo's C engine (float64) step side by side on the same model file; the
planner's costs of agents/pets_tasks.py against the environments' rewards. Skipped without the mujoco extra,
except the refusal."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents.pets_tasks import TASKS
from envs import mujoco_tasks
from experiment import config as config_lib

RESETS = 512
STEPS = 12


def test_without_the_extra_the_tasks_are_refused_naming_it(monkeypatch):
    monkeypatch.setattr(mujoco_tasks, "mjx_available", lambda: False)
    for name in mujoco_tasks.MJX_TASKS:
        with pytest.raises(ValueError, match=f"environment '{name}' runs on MuJoCo MJX: install the mujoco extra "
                                             r'\(pip install -e "\.\[mujoco\]"\)'):
            envs.make(name)
    with pytest.raises(config_lib.ConfigError, match="install the mujoco extra"):
        config_lib.validate("PETS", {**config_lib.load_json("configs/pets/tiny_test.json"),
                                     "environment": "Pusher"})


requires_mjx = pytest.mark.extra("mujoco")  # conftest.py skips these without the extra
if mujoco_tasks.mjx_available():
    import mujoco


@requires_mjx
def test_reacher_end_effector_is_the_wrist_plus_the_palm_length_along_its_axis():
    """The published closed form equals MuJoCo's kinematics of our model file: the wrist-roll frame's origin
    plus 0.16828 along its x axis; at the rest pose (0.98928, -0.188, 0) (0.1 + 0.4 + 0.321 + 0.16828). It holds
    inside the joint ranges: the form takes each flex joint's hinge axis as (new axis x old axis) / |...|, which
    flips sign when the flex angle does (elbow and wrist flex are limited to <= 0)."""
    env, _ = envs.make("Reacher3D")
    model = env.mj_model
    data = mujoco.MjData(model)
    wrist = model.body("wrist_roll").id
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(mujoco_tasks.reacher_end_effector(jnp.zeros(17)), [0.98928, -0.188, 0.0], atol=1e-6)
    for _ in range(20):
        data.qpos[:7] = rng.uniform(model.jnt_range[:7, 0], model.jnt_range[:7, 1])
        data.qpos[[4, 6]] = rng.uniform(-np.pi, np.pi, 2)  # the two unlimited roll joints
        mujoco.mj_kinematics(model, data)
        expected = data.xpos[wrist] + 0.16828 * data.xmat[wrist].reshape(3, 3)[:, 0]
        np.testing.assert_allclose(mujoco_tasks.reacher_end_effector(jnp.asarray(data.qpos[:7], jnp.float32)),
                                   expected, atol=2e-6)


def rollout(name):
    """Resets from RESETS keys and a STEPS-step rollout of uniform random actions from the first, one program."""
    env, params = envs.make(name)
    low, high = env.control_low, env.control_high

    @jax.jit
    def run(key):
        reset_keys = jax.random.split(key, RESETS)
        observations, states = jax.vmap(env.reset_env, in_axes=(0, None))(reset_keys, params)
        first = jax.tree.map(lambda x: x[0], states)
        actions = jax.random.uniform(jax.random.fold_in(key, 1), (STEPS, env.num_actions), minval=low, maxval=high)

        def step(state, action):
            obs, state, reward, done, _ = env.step_env(key, state, action, params)
            return state, (obs, reward, done)

        _, (obs, rewards, dones) = jax.lax.scan(step, first, actions)
        return observations, first, actions, obs, rewards, dones

    return env, jax.tree.map(np.asarray, run(jax.random.PRNGKey(3)))


def c_engine_rollout(env, first, actions, observe):
    """The same rollout stepped by MuJoCo's C engine in float64 from the MJX reset state."""
    model = env.mj_model
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:] = first.data.qpos, first.data.qvel
    mujoco.mj_forward(model, data)
    observations, before = [], []
    for action in actions:
        before.append(observe(data, data.qpos.copy()))
        previous = data.qpos.copy()
        data.ctrl[:] = action
        for _ in range(env.frame_skip):
            mujoco.mj_step(model, data)
        observations.append(observe(data, previous))
    return np.array(observations), np.array(before)


@pytest.mark.slow  # MJX compiles: ~35 s here; CI runs it with the extras
@requires_mjx
def test_reacher3d_reset_rollout_and_reward():
    env, (resets, first, actions, obs, rewards, dones) = rollout("Reacher3D")
    # Reset: the arm at rest, no velocity; the goal (0, 0.25, 0) + N(0, 0.1^2) per coordinate.
    assert resets.shape == (RESETS, 17) and np.all(resets[:, :7] == 0) and np.all(resets[:, 10:] == 0)
    np.testing.assert_allclose(resets[:, 7:10].mean(0), [0, 0.25, 0], atol=4 * 0.1 / np.sqrt(RESETS))
    np.testing.assert_allclose(resets[:, 7:10].std(0), 0.1, rtol=0.15)
    np.testing.assert_array_equal(first.goal, resets[0, 7:10])
    reference, _ = c_engine_rollout(env, first, actions, lambda d, _: np.concatenate([d.qpos, d.qvel[:7]]))
    np.testing.assert_allclose(obs, reference, atol=1e-4)
    assert np.all(obs[:, 7:10] == resets[0, 7:10])  # the goal never moves
    effector = np.asarray(mujoco_tasks.reacher_end_effector(jnp.asarray(obs)))
    expected = -np.sum((effector - first.goal) ** 2, axis=1) - 0.01 * np.sum(actions ** 2, axis=1)
    np.testing.assert_allclose(rewards, expected, rtol=1e-5)
    assert not dones.any()
    # The planner's cost of arriving at each state equals minus the reward, goal read from the start observation.
    cost = TASKS["Reacher3D"].obs_cost(jnp.asarray(obs), jnp.asarray(resets[0])) + TASKS["Reacher3D"].action_cost(
        jnp.asarray(actions))
    np.testing.assert_allclose(cost, -rewards, rtol=1e-5)


@pytest.mark.slow  # MJX compiles: ~30 s here; CI runs it with the extras
@requires_mjx
def test_pusher_reset_rollout_and_the_one_step_reward_lag():
    env, (resets, first, actions, obs, rewards, dones) = rollout("Pusher")
    model = env.mj_model
    tips, puck, goal = (model.body(name).id for name in ("tips_arm", "object", "goal"))
    # Reset: arm at rest with velocities U(+-0.005); puck slides (y, x) = (-0.25, 0.15) + N(0, 0.025^2), so the
    # puck's centre is near (0.45 + 0.15, -0.05 - 0.25, -0.275); the fingertips' centre (0.1 + 0.4 + 0.321 + 0.1,
    # -0.6, 0) at rest.
    assert np.all(resets[:, :7] == 0) and np.all(np.abs(resets[:, 7:14]) <= 0.005)
    np.testing.assert_allclose(resets[:, 14:17], np.tile([0.921, -0.6, 0.0], (RESETS, 1)), atol=1e-6)
    np.testing.assert_allclose(resets[:, 17:20].mean(0), [0.6, -0.3, -0.275], atol=4 * 0.025 / np.sqrt(RESETS))
    np.testing.assert_allclose(resets[:, 17:19].std(0), 0.025, rtol=0.15)
    assert np.all(first.data.qvel[7:] == 0)

    def observe(data, _):
        return np.concatenate([data.qpos[:7], data.qvel[:7], data.subtree_com[tips], data.subtree_com[puck]])

    reference, before = c_engine_rollout(env, first, actions, observe)
    np.testing.assert_allclose(obs, reference, atol=1e-4)
    np.testing.assert_allclose(env.body_com(first.data, "goal"), mujoco_tasks.PUSHER_GOAL, atol=1e-6)
    # The logged reward is the cost of the state BEFORE the step (the published environment's lag).
    expected = -np.asarray(mujoco_tasks.pusher_cost(before[:, 14:17], before[:, 17:20],
                                                    np.array(mujoco_tasks.PUSHER_GOAL), actions))
    np.testing.assert_allclose(rewards, expected, rtol=1e-4)
    lagged = np.concatenate([resets[:1], obs[:-1]])
    planner = TASKS["Pusher"].obs_cost(jnp.asarray(lagged), None) + TASKS["Pusher"].action_cost(jnp.asarray(actions))
    np.testing.assert_allclose(planner, -rewards, rtol=1e-4)


@pytest.mark.slow  # MJX compiles: ~25 s here; CI runs it with the extras
@requires_mjx
def test_half_cheetah_reset_rollout_and_reward():
    env, (resets, first, actions, obs, rewards, dones) = rollout("HalfCheetah")
    # Reset: qpos, qvel N(0, 0.001^2) around the model's rest; the velocity entry is 0.
    assert np.all(resets[:, 0] == 0)
    np.testing.assert_allclose(resets[:, 1:9].std(0), 0.001, rtol=0.15)
    np.testing.assert_allclose(resets[:, 9:].std(0), 0.001, rtol=0.15)
    dt = 0.01 * 5

    def observe(data, previous):
        return np.concatenate([[(data.qpos[0] - previous[0]) / dt], data.qpos[1:], data.qvel])

    reference, _ = c_engine_rollout(env, first, actions, observe)
    np.testing.assert_allclose(obs, reference, atol=2e-3)  # contacts: MJX's float32 solver, small differences
    np.testing.assert_allclose(rewards, obs[:, 0] - 0.1 * np.sum(actions ** 2, axis=1), rtol=1e-5)
    task = TASKS["HalfCheetah"]
    states = jnp.asarray(np.concatenate([resets[:1], obs[:-1]]))
    np.testing.assert_allclose(task.postprocess(states, task.target(states, jnp.asarray(obs))), obs, atol=1e-5)
    assert task.preprocess(states).shape == (STEPS, 18)


@pytest.mark.slow  # a whole harness run on MJX: ~85 s here
@requires_mjx
def test_pets_plans_reacher3d_through_the_harness(tmp_path):
    """A tiny PETS run on Reacher3D (one random episode, then one planned): the planned episode's return beats the
    random one's on both seeds (random torques of up to 20 N m pay ~9 per step in action cost alone), and the
    recorded rewards are the environment's on the recorded observations, with the goal read from them; the
    episode renders to a GIF through MuJoCo's offscreen renderer."""
    from agents import pets
    from experiment import runner

    config = config_lib.validate("PETS", {**config_lib.load_json("configs/pets/tiny_test.json"),
                                          "environment": "Reacher3D", "num_steps": 40, "ntrain_iters": 1})
    result = runner.run(config, pets.make, seed=0, output=str(tmp_path / "reacher"), progress=False)
    returns = np.asarray(result["metrics"]["return"])
    assert returns.shape == (2, 2) and np.all(returns[1] > returns[0] + 20), returns
    import pets_outputs
    assert pets_outputs.main(["archive", "-d", str(tmp_path / "reacher")]) == 0
    archive = np.load(str(tmp_path / "reacher.npz"))
    obs, actions, rewards = archive["observations"], archive["actions"], archive["rewards"]
    effector = np.asarray(mujoco_tasks.reacher_end_effector(jnp.asarray(obs[:, :, 1:])))
    expected = -np.sum((effector - obs[:, :, :1, 7:10]) ** 2, axis=-1) - 0.01 * np.sum(actions ** 2, axis=-1)
    np.testing.assert_allclose(rewards, expected, rtol=1e-4, atol=1e-4)
    gif = str(tmp_path / "reacher.gif")
    # In a child process: MuJoCo's EGL context loads Mesa, whose own LLVM in this process made XLA's next
    # compilation segfault (seen in the suite, in a later test's compile).
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "pets_outputs.py", "render", "-d", str(tmp_path / "reacher"), "--seed-index",
                           "1", "-o", gif], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    from PIL import Image
    frames = Image.open(gif)
    assert frames.n_frames == config["task_hor"] + 1
