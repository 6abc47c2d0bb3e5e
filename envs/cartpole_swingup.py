"""PETS's cartpole swing-up (MBRLCartpole-v0) written directly in JAX (Chua et al. 2018; kchua/handful-of-trials).

The equations of motion of the published MuJoCo model (cart 10.472 kg on a slider with damping 1, pole
5.019 kg hinged at the cart with damping 1, a motor of gear 100 on the slider, control clipped to [-3, 3]),
MuJoCo's soft limit of the rail at |x| = 2.5, classic RK4 with h = 0.02 and two substeps per action (dt 0.04).
theta = 0 hangs down; upright is theta = pi. Observation [x, theta, x_dot, theta_dot] after the step (theta not
wrapped). Reward exp(-|p - (0, 0.6)|^2 / 0.6^2) - 0.01 u^2 with p the pole tip after the step; no termination;
200 steps per episode. Reset: positions and velocities N(0, 0.1^2) around the hanging rest.

`planning_cost(obs, action)` is the cost the PETS planner minimises (the negated reward's two terms).
"""
import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

CART_MASS = 10.47198
POLE_MASS = 5.01859
COM_OFFSET = 0.0005  # a: the pole's centre of mass, across the pole
COM_LENGTH = 0.3  # l: along the pole
INERTIA = 0.18875 + POLE_MASS * (COM_LENGTH ** 2 + COM_OFFSET ** 2)  # J about the hinge
POLE_LENGTH = 0.6
GRAVITY = 9.81
DAMPING = 1.0
GEAR = 100.0
RAIL = 2.5
TIMESTEP, SUBSTEPS = 0.02, 2
LIMIT_WIDTH, LIMIT_TIME = 0.001, max(0.02, 2 * 0.02)  # MuJoCo's default solimp width and solref time constant


@struct.dataclass
class SwingUpState(environment.EnvState):
    q: jax.Array  # (2,) x, theta
    qdot: jax.Array  # (2,)


@struct.dataclass
class SwingUpParams(environment.EnvParams):
    max_steps_in_episode: int = 200


def mass_matrix(theta):
    c = -(COM_OFFSET * jnp.sin(theta) + COM_LENGTH * jnp.cos(theta))
    return jnp.array([[CART_MASS + POLE_MASS, POLE_MASS * c], [POLE_MASS * c, INERTIA]])


def limit_impedance(violation):
    """MuJoCo's impedance d(r) for a violation |r| with solimp (0.9, 0.95, 0.001, 0.5, 2)."""
    y = jnp.abs(violation) / LIMIT_WIDTH
    h = jnp.where(y < 0.5, 2 * y ** 2, 1 - 2 * (1 - y) ** 2)
    return jnp.where(y >= 1, 0.95, 0.9 + 0.05 * h)


def accelerations(q, qdot, force):
    """q_ddot of (x, theta) under the motor force, damping, gravity and the rail's soft limit."""
    x, theta = q
    c_prime = -(COM_OFFSET * jnp.cos(theta) - COM_LENGTH * jnp.sin(theta))
    inverse = jnp.linalg.inv(mass_matrix(theta))
    tau = jnp.array([force - DAMPING * qdot[0] - POLE_MASS * c_prime * qdot[1] ** 2,
                     -DAMPING * qdot[1] - POLE_MASS * GRAVITY * c_prime])
    free = inverse @ tau
    distance = jnp.minimum(x + RAIL, RAIL - x)
    side = jnp.where(x + RAIL < RAIL - x, 1.0, -1.0)  # +1 at the lower limit, -1 at the upper
    d = limit_impedance(distance)
    stiffness = 1.0 / (0.95 ** 2 * LIMIT_TIME ** 2)
    damping = 2.0 / (0.95 * LIMIT_TIME)
    w0 = jnp.linalg.inv(mass_matrix(0.0))[0, 0]
    regulariser = w0 * (1 - d) / d
    reference = -damping * side * qdot[0] - stiffness * d * distance
    push = jnp.maximum(0.0, -(side * free[0] - reference) / (inverse[0, 0] + regulariser))
    push = jnp.where(distance < 0, push, 0.0)
    return free + inverse[:, 0] * side * push


def rk4_step(q, qdot, force, h):
    def derivative(state):
        q, qdot = state
        return qdot, accelerations(q, qdot, force)

    def add(state, delta, scale):
        return jax.tree.map(lambda s, d: s + scale * d, state, delta)

    state = (q, qdot)
    k1 = derivative(state)
    k2 = derivative(add(state, k1, h / 2))
    k3 = derivative(add(state, k2, h / 2))
    k4 = derivative(add(state, k3, h))
    return jax.tree.map(lambda s, a, b, c, d: s + h / 6 * (a + 2 * b + 2 * c + d), state, k1, k2, k3, k4)


def pole_tip(obs):
    x, theta = obs[..., 0], obs[..., 1]
    return jnp.stack([x - POLE_LENGTH * jnp.sin(theta), -POLE_LENGTH * jnp.cos(theta)], axis=-1)


def planning_cost(obs, action):
    """The published planner's cost of arriving at obs with action: -exp(-|tip - (0, 0.6)|^2 / 0.36) + 0.01 u^2."""
    distance = jnp.sum((pole_tip(obs) - jnp.array([0.0, POLE_LENGTH])) ** 2, axis=-1)
    return -jnp.exp(-distance / POLE_LENGTH ** 2) + 0.01 * jnp.sum(action ** 2, axis=-1)


class CartpoleSwingUp(environment.Environment):
    @property
    def name(self) -> str:
        return "CartpoleSwingUp"

    @property
    def default_params(self) -> SwingUpParams:
        return SwingUpParams()

    @property
    def num_actions(self) -> int:
        return 1

    def action_space(self, params=None):
        return spaces.Box(-3.0, 3.0, (1,), jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (4,), jnp.float32)

    def get_obs(self, state: SwingUpState, params=None, key=None):
        return jnp.concatenate([state.q, state.qdot]).astype(jnp.float32)

    def is_terminated(self, state, params):
        return jnp.bool_(False)

    def step_env(self, key, state: SwingUpState, action, params):
        u = jnp.clip(jnp.reshape(action, ()), -3.0, 3.0)
        q, qdot = state.q, state.qdot
        for _ in range(SUBSTEPS):
            q, qdot = rk4_step(q, qdot, GEAR * u, TIMESTEP)
        state = SwingUpState(time=state.time + 1, q=q, qdot=qdot)
        obs = self.get_obs(state)
        reward = -planning_cost(obs, u[None])
        return obs, state, reward.astype(jnp.float32), jnp.bool_(False), {}

    def reset_env(self, key, params):
        noise = 0.1 * jax.random.normal(key, (4,))
        state = SwingUpState(time=0, q=noise[:2], qdot=noise[2:])
        return self.get_obs(state), state
