"""What PETS must know of each task beyond the environment (Chua et al. 2018; kchua/handful-of-trials): how a state becomes a model
input, what the model predicts and how a prediction becomes the next state, and the planner's costs.

obs_cost(states [..., dO], start [dO]) -> [...] is charged on the PREDICTED NEXT state, `start` being the real
observation the plan starts from (Reacher3D reads its goal there: the published planner uses the environment's
goal, not the model's prediction of it); action_cost(actions [..., dU]) on the action. Costs are the published
configs'; the small gymnax tasks use the negative of their own reward, split the same way. MountainCarContinuous
ends at its goal: PETS's episodes have a fixed length, so its end is made absorbing (envs/absorbing.py).
"""
from typing import Callable, NamedTuple

import jax.numpy as jnp

from envs import cartpole_swingup
from envs.absorbing import AbsorbingEnd
from envs.mujoco_tasks import PUSHER_GOAL, reacher_end_effector


class PETSTask(NamedTuple):
    preprocess: Callable  # state [..., dO] -> model input features [..., dI - dU]
    target: Callable  # (state, next state) -> model target [..., dT]
    postprocess: Callable  # (state, prediction) -> next state
    obs_cost: Callable  # (predicted next states, start observation) -> cost
    action_cost: Callable
    wrap: Callable | None = None  # adapts the environment to fixed-length episodes (AbsorbingEnd)


def identity(state):
    return state


def delta_target(state, next_state):
    return next_state - state


def add_delta(state, prediction):
    return state + prediction


def cartpole_preprocess(state):
    """[sin theta, cos theta, x, x_dot, theta_dot] (Chua et al. 2018; kchua/handful-of-trials)."""
    return jnp.concatenate([jnp.sin(state[..., 1:2]), jnp.cos(state[..., 1:2]), state[..., :1], state[..., 2:]],
                           axis=-1)


def cartpole_obs_cost(state, start):
    distance = jnp.sum((cartpole_swingup.pole_tip(state) - jnp.array([0.0, cartpole_swingup.POLE_LENGTH])) ** 2,
                       axis=-1)
    return -jnp.exp(-distance / cartpole_swingup.POLE_LENGTH ** 2)


def pendulum_obs_cost(state, start):
    """gymnax Pendulum-v1's cost on [cos th, sin th, th_dot]: th^2 + 0.1 th_dot^2 (th in [-pi, pi])."""
    angle = jnp.arctan2(state[..., 1], state[..., 0])
    return angle ** 2 + 0.1 * state[..., 2] ** 2


def reacher_obs_cost(state, start):
    """|end effector - goal|^2 with the goal of the real observation (its entries 7:10)."""
    return jnp.sum((reacher_end_effector(state) - start[7:10]) ** 2, axis=-1)


def pusher_obs_cost(state, start):
    """0.5 |tips - puck|_1 + 1.25 |puck - goal|_1 on the predicted fingertips (14:17) and puck (17:20)."""
    tips, puck = state[..., 14:17], state[..., 17:20]
    return 0.5 * jnp.sum(jnp.abs(tips - puck), axis=-1) + 1.25 * jnp.sum(jnp.abs(puck - jnp.array(PUSHER_GOAL)),
                                                                         axis=-1)


def cheetah_preprocess(state):
    """[s1, sin s2, cos s2, s3..s17]: the forward velocity s0 is never an input (Chua et al. 2018; kchua/handful-of-trials)."""
    return jnp.concatenate([state[..., 1:2], jnp.sin(state[..., 2:3]), jnp.cos(state[..., 2:3]), state[..., 3:]],
                           axis=-1)


def cheetah_target(state, next_state):
    """The forward velocity is predicted as an absolute value, the rest as deltas."""
    return jnp.concatenate([next_state[..., :1], next_state[..., 1:] - state[..., 1:]], axis=-1)


def cheetah_postprocess(state, prediction):
    return jnp.concatenate([prediction[..., :1], state[..., 1:] + prediction[..., 1:]], axis=-1)


def cheetah_obs_cost(state, start):
    return -state[..., 0]


def mountain_car_obs_cost(state, start):
    """-100 where gymnax's MountainCarContinuous pays its goal reward (position >= 0.45, velocity >= 0). The episode
    ends there in the environment; under AbsorbingEnd the car then stays, so the planner is charged -100 for
    every predicted step at the goal: reaching it sooner costs less."""
    return -100.0 * ((state[..., 0] >= 0.45) & (state[..., 1] >= 0.0))


def quadratic_action_cost(weight: float):
    return lambda action: weight * jnp.sum(action ** 2, axis=-1)


TASKS = {
    "CartpoleSwingUp": PETSTask(cartpole_preprocess, delta_target, add_delta, cartpole_obs_cost,
                                quadratic_action_cost(0.01)),
    "Reacher3D": PETSTask(identity, delta_target, add_delta, reacher_obs_cost, quadratic_action_cost(0.01)),
    "Pusher": PETSTask(identity, delta_target, add_delta, pusher_obs_cost, quadratic_action_cost(0.1)),
    "HalfCheetah": PETSTask(cheetah_preprocess, cheetah_target, cheetah_postprocess, cheetah_obs_cost,
                            quadratic_action_cost(0.1)),
    "Pendulum-v1": PETSTask(identity, delta_target, add_delta, pendulum_obs_cost, quadratic_action_cost(0.001)),
    "MountainCarContinuous-v0": PETSTask(identity, delta_target, add_delta, mountain_car_obs_cost,
                                         quadratic_action_cost(0.1), wrap=AbsorbingEnd),
}
