"""PETS's three MuJoCo tasks on MuJoCo MJX, with the gymnax API (Chua et al. 2018; kchua/handful-of-trials): Reacher3D, Pusher, HalfCheetah.

The model files (envs/assets/reacher3d.xml, pusher.xml, half_cheetah.xml) are written in this project from the
published models' physical parameters; under MuJoCo 4.0 they reproduce the published files' trajectories to
float64 rounding. The physics is MJX's (float32, modern MuJoCo's solver), stepped `frame_skip` times per control
step with the action held. Every task: no termination, a fixed number of control steps (`task_hor` of the PETS
config). Observations, resets and rewards follow the published environments:

- Reacher3D (17): qpos (7 joints + the 3-D goal) ++ arm qvel. Reset: arm at rest; goal (0, 0.25, 0) + N(0, 0.1^2).
  Reward -|end effector - goal|^2 - 0.01 |a|^2 after the step, the end effector by the published closed form.
- Pusher (20): arm qpos, arm qvel, centre of mass of the fingertips, of the puck. Reset: arm at rest with qvel
  U(+-0.005), puck slides (-0.25, 0.15) + N(0, 0.025^2). Reward -(0.5 |tips - puck|_1 + 1.25 |puck - goal|_1 +
  0.1 |a|^2) on the state BEFORE the step (the published environment's one-step lag, kept).
- HalfCheetah (18): [rootx velocity over the control step, qpos[1:], qvel]. Reset: qpos, qvel + N(0, 0.001^2).
  Reward s'[0] - 0.1 |a|^2.

As in MuJoCo, centres of mass read after a step are those of the last substep's start (mj_step computes
kinematics before it integrates); the published observations read them the same way.

MuJoCo and MJX are the `mujoco` extra: without them `require_mjx` raises one line naming it.
"""
import contextlib
import io
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

EXTRA_HINT = 'pip install -e ".[mujoco]"'
ASSETS = os.path.join(os.path.dirname(__file__), "assets")


def mjx_available() -> bool:
    try:
        import mujoco  # noqa: F401
        # mujoco.mjx prints "Failed to import warp" to stdout when its optional GPU backend (warp) is absent;
        # we never use that backend, and the line would land in every PETS run's output
        with contextlib.redirect_stdout(io.StringIO()):
            from mujoco import mjx  # noqa: F401
    except ImportError:
        return False
    return True


def require_mjx(name: str):
    if not mjx_available():
        raise ValueError(f"environment '{name}' runs on MuJoCo MJX: install the mujoco extra ({EXTRA_HINT})")
    import mujoco
    from mujoco import mjx

    return mujoco, mjx


@struct.dataclass
class MJXState(environment.EnvState):
    data: object  # mjx.Data
    goal: jax.Array  # Reacher3D's goal (3,); unused (zeros) by the other tasks


@struct.dataclass
class MJXParams(environment.EnvParams):
    max_steps_in_episode: int = 1000


class MJXTask(environment.Environment):
    """One MuJoCo model stepped by MJX; a task supplies its file, frame skip, reset, observation and reward."""
    model_file: str
    frame_skip: int
    episode_steps: int

    def __init__(self):
        super().__init__()
        mujoco, self._mjx = require_mjx(self.name)
        self.mj_model = mujoco.MjModel.from_xml_path(os.path.join(ASSETS, self.model_file))
        self.model = self._mjx.put_model(self.mj_model)
        self._blank = self._mjx.make_data(self.model)
        self.control_low = jnp.asarray(self.mj_model.actuator_ctrlrange[:, 0], jnp.float32)
        self.control_high = jnp.asarray(self.mj_model.actuator_ctrlrange[:, 1], jnp.float32)

    @property
    def default_params(self) -> MJXParams:
        return MJXParams(max_steps_in_episode=self.episode_steps)

    @property
    def num_actions(self) -> int:
        return self.mj_model.nu

    def action_space(self, params=None):
        return spaces.Box(self.control_low, self.control_high, (self.mj_model.nu,), jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (self.observation_size,), jnp.float32)

    def is_terminated(self, state, params):
        return jnp.bool_(False)

    def start(self, qpos, qvel, goal=None) -> MJXState:
        """The state at qpos, qvel with its kinematics computed (as a simulator's set_state does)."""
        data = self._mjx.forward(self.model, self._blank.replace(qpos=qpos, qvel=qvel))
        return MJXState(time=0, data=data, goal=jnp.zeros(3) if goal is None else goal)

    def simulate(self, data, action):
        data = data.replace(ctrl=jnp.clip(action, self.control_low, self.control_high))
        return jax.lax.fori_loop(0, self.frame_skip, lambda _, d: self._mjx.step(self.model, d), data)

    def body_com(self, data, body: str):
        """gym's get_body_com: the subtree centre of mass of a body (its own for a leaf)."""
        return data.subtree_com[self.mj_model.body(body).id]

    def step_env(self, key, state: MJXState, action, params):
        action = jnp.reshape(action, (self.mj_model.nu,)).astype(jnp.float32)
        reward_before = self.reward_before(state, action)
        data = self.simulate(state.data, action)
        next_state = state.replace(time=state.time + 1, data=data)
        obs = self.observation(next_state, state)
        reward = reward_before + self.reward_after(obs, next_state, action)
        return obs, next_state, reward.astype(jnp.float32), jnp.bool_(False), {}

    def reward_before(self, state, action):
        return jnp.float32(0.0)

    def reward_after(self, obs, state, action):
        return jnp.float32(0.0)

    def get_obs(self, state: MJXState, params=None, key=None):
        return self.observation(state, state)

    camera = {"distance": 2.5, "elevation": -30.0, "azimuth": 270.0}

    def qpos_from_observations(self, observations):
        """numpy (T, dO) -> (T, nq): the joint positions an episode's observations imply (for pictures)."""
        return np.asarray(observations)[:, :self.mj_model.nq]

    def render_frames(self, observations, size: int = 240):
        """An episode's observations drawn by MuJoCo's offscreen renderer: uint8 (T, size, size, 3)."""
        import mujoco

        data = mujoco.MjData(self.mj_model)
        camera = mujoco.MjvCamera()
        camera.distance, camera.elevation, camera.azimuth = (self.camera[k] for k in ("distance", "elevation",
                                                                                      "azimuth"))
        frames = []
        with mujoco.Renderer(self.mj_model, size, size) as renderer:
            for qpos in self.qpos_from_observations(observations):
                data.qpos[:] = qpos
                mujoco.mj_forward(self.mj_model, data)
                camera.lookat[:] = data.subtree_com[self.camera_body]
                renderer.update_scene(data, camera)
                frames.append(renderer.render().copy())
        return np.stack(frames)

    camera_body = 0  # the world: the whole model's centre of mass


# --- Reacher3D -----------------------------------------------------------------------------------------------
def reacher_end_effector(obs):
    """The published closed-form end effector of Reacher3D's arm from the joint angles obs[..., 0:7] (Chua et al. 2018; kchua/handful-of-trials);
    at the rest pose (0.98928, -0.188, 0)."""
    t1, t2, t3, t4, t5, t6 = (obs[..., i] for i in range(6))
    axis = jnp.stack([jnp.cos(t2) * jnp.cos(t1), jnp.cos(t2) * jnp.sin(t1), -jnp.sin(t2)], axis=-1)
    perpendicular = jnp.stack([-jnp.sin(t1), jnp.cos(t1), jnp.zeros_like(t1)], axis=-1)
    end = jnp.stack([0.1 * jnp.cos(t1) + 0.4 * jnp.cos(t1) * jnp.cos(t2),
                     0.1 * jnp.sin(t1) + 0.4 * jnp.sin(t1) * jnp.cos(t2) - 0.188, -0.4 * jnp.sin(t2)], axis=-1)
    for length, hinge, roll in ((0.321, t4, t3), (0.16828, t6, t5)):
        third = jnp.cross(axis, perpendicular)
        new_axis = (jnp.cos(hinge)[..., None] * axis
                    + (jnp.sin(hinge) * jnp.sin(roll))[..., None] * perpendicular
                    - (jnp.sin(hinge) * jnp.cos(roll))[..., None] * third)
        new_perpendicular = jnp.cross(new_axis, axis)
        norm = jnp.linalg.norm(new_perpendicular, axis=-1, keepdims=True)
        degenerate = norm < 1e-30  # the published guard: keep the old perpendicular
        new_perpendicular = jnp.where(degenerate, perpendicular, new_perpendicular)
        norm = jnp.where(degenerate, jnp.linalg.norm(perpendicular, axis=-1, keepdims=True), norm)
        axis, perpendicular, end = new_axis, new_perpendicular / norm, end + length * new_axis
    return end


class Reacher3D(MJXTask):
    model_file, frame_skip, episode_steps, observation_size = "reacher3d.xml", 2, 150, 17

    @property
    def name(self) -> str:
        return "Reacher3D"

    def reset_env(self, key, params):
        qpos = jnp.asarray(self.mj_model.qpos0, jnp.float32)
        qpos = qpos.at[7:].add(0.1 * jax.random.normal(key, (3,)))
        state = self.start(qpos, jnp.zeros(self.mj_model.nv), goal=qpos[7:])
        return self.get_obs(state), state

    def observation(self, state, previous):
        return jnp.concatenate([state.data.qpos, state.data.qvel[:7]]).astype(jnp.float32)

    def reward_after(self, obs, state, action):
        return -jnp.sum((reacher_end_effector(obs) - state.goal) ** 2) - 0.01 * jnp.sum(action ** 2)


# --- Pusher --------------------------------------------------------------------------------------------------
PUSHER_GOAL = (0.45, -0.05, -0.323)  # the goal's centre of mass; its slides stay at 0


def pusher_cost(tips, puck, goal, action):
    return (0.5 * jnp.sum(jnp.abs(tips - puck), axis=-1) + 1.25 * jnp.sum(jnp.abs(puck - goal), axis=-1)
            + 0.1 * jnp.sum(action ** 2, axis=-1))


class Pusher(MJXTask):
    model_file, frame_skip, episode_steps, observation_size = "pusher.xml", 4, 150, 20

    @property
    def name(self) -> str:
        return "Pusher"

    def reset_env(self, key, params):
        puck_key, velocity_key = jax.random.split(key)
        qpos = jnp.zeros(self.mj_model.nq).at[7:9].set(jnp.array([-0.25, 0.15])
                                                       + 0.025 * jax.random.normal(puck_key, (2,)))
        qvel = jax.random.uniform(velocity_key, (self.mj_model.nv,), minval=-0.005, maxval=0.005).at[7:].set(0.0)
        state = self.start(qpos, qvel)
        return self.get_obs(state), state

    def observation(self, state, previous):
        data = state.data
        return jnp.concatenate([data.qpos[:7], data.qvel[:7], self.body_com(data, "tips_arm"),
                                self.body_com(data, "object")]).astype(jnp.float32)

    camera = {"distance": 2.0, "elevation": -45.0, "azimuth": 270.0}

    def qpos_from_observations(self, observations):
        """The arm from qpos[:7]; the puck's slides (y, x) from its centre relative to its body (0.45, -0.05)."""
        observations = np.asarray(observations)
        qpos = np.zeros((len(observations), self.mj_model.nq))
        qpos[:, :7] = observations[:, :7]
        qpos[:, 7], qpos[:, 8] = observations[:, 18] + 0.05, observations[:, 17] - 0.45
        return qpos

    def reward_before(self, state, action):
        data = state.data
        return -pusher_cost(self.body_com(data, "tips_arm"), self.body_com(data, "object"),
                            self.body_com(data, "goal"), action)


# --- HalfCheetah ---------------------------------------------------------------------------------------------
class HalfCheetah(MJXTask):
    model_file, frame_skip, episode_steps, observation_size = "half_cheetah.xml", 5, 1000, 18

    @property
    def name(self) -> str:
        return "HalfCheetah"

    def reset_env(self, key, params):
        position_key, velocity_key = jax.random.split(key)
        qpos = jnp.asarray(self.mj_model.qpos0, jnp.float32) + 0.001 * jax.random.normal(position_key,
                                                                                          (self.mj_model.nq,))
        state = self.start(qpos, 0.001 * jax.random.normal(velocity_key, (self.mj_model.nv,)))
        return self.get_obs(state), state

    def observation(self, state, previous):
        """[(x' - x) / dt, qpos[1:], qvel]: at a reset (state is previous) the velocity entry is 0."""
        dt = self.mj_model.opt.timestep * self.frame_skip
        velocity = (state.data.qpos[0] - previous.data.qpos[0]) / dt
        return jnp.concatenate([velocity[None], state.data.qpos[1:], state.data.qvel]).astype(jnp.float32)

    def reward_after(self, obs, state, action):
        return obs[0] - 0.1 * jnp.sum(action ** 2)

    camera = {"distance": 4.0, "elevation": -10.0, "azimuth": 90.0}
    camera_body = 1  # follow the torso

    def qpos_from_observations(self, observations):
        """rootx is not observed: integrated from the observed velocity, from 0."""
        observations = np.asarray(observations)
        dt = self.mj_model.opt.timestep * self.frame_skip
        rootx = np.concatenate([[0.0], np.cumsum(observations[1:, 0] * dt)])
        return np.concatenate([rootx[:, None], observations[:, 1:9]], axis=1)


MJX_TASKS = {cls.__name__: cls for cls in (Reacher3D, Pusher, HalfCheetah)}
