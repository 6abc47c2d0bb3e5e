"""What PETS must know of each task beyond the environment (pets.md 1.1 and 4): how a state becomes a model
input, what the model predicts and how a prediction becomes the next state, and the planner's costs.

obs_cost(states [..., dO]) -> [...] is charged on the PREDICTED NEXT state; action_cost(actions [..., dU]) on the
action. Costs are the published configs' (cartpole: -exp(-|tip - (0, 0.6)|^2 / 0.36) + 0.01 u^2); the small
gymnax tasks use the negative of their own reward, split the same way.
"""
from typing import Callable, NamedTuple

import jax.numpy as jnp

from envs import cartpole_swingup


class PETSTask(NamedTuple):
    preprocess: Callable  # state [..., dO] -> model input features [..., dI - dU]
    target: Callable  # (state, next state) -> model target [..., dT]
    postprocess: Callable  # (state, prediction) -> next state
    obs_cost: Callable
    action_cost: Callable


def delta_target(state, next_state):
    return next_state - state


def add_delta(state, prediction):
    return state + prediction


def cartpole_preprocess(state):
    """[sin theta, cos theta, x, x_dot, theta_dot] (pets.md 1.1)."""
    return jnp.concatenate([jnp.sin(state[..., 1:2]), jnp.cos(state[..., 1:2]), state[..., :1], state[..., 2:]],
                           axis=-1)


def cartpole_obs_cost(state):
    distance = jnp.sum((cartpole_swingup.pole_tip(state) - jnp.array([0.0, cartpole_swingup.POLE_LENGTH])) ** 2,
                       axis=-1)
    return -jnp.exp(-distance / cartpole_swingup.POLE_LENGTH ** 2)


def pendulum_obs_cost(state):
    """gymnax Pendulum-v1's cost on [cos th, sin th, th_dot]: th^2 + 0.1 th_dot^2 (th in [-pi, pi])."""
    angle = jnp.arctan2(state[..., 1], state[..., 0])
    return angle ** 2 + 0.1 * state[..., 2] ** 2


def quadratic_action_cost(weight: float):
    return lambda action: weight * jnp.sum(action ** 2, axis=-1)


TASKS = {
    "CartpoleSwingUp": PETSTask(cartpole_preprocess, delta_target, add_delta, cartpole_obs_cost,
                                quadratic_action_cost(0.01)),
    "Pendulum-v1": PETSTask(lambda s: s, delta_target, add_delta, pendulum_obs_cost, quadratic_action_cost(0.001)),
}
