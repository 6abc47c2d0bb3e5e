"""ER DQN (Young et al., section 3.1): an MLP Q-function trained on uniformly replayed real transitions.

Reads top to bottom: hyperparameters -> state -> make (network, optimizer, buffer) -> loss -> one
update -> one environment step -> chunk -> evaluation. Faithful to the paper code by default,
quirks included (spec section 7); the fix flags are listed in FIX_FLAGS and in the README.
"""
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from agents.components.agent import Agent
from agents.components.exploration import behaviour_action
from agents.components.networks import q_network
from agents.components.optimizers import adamw
from agents.components.replay import ReplayState, make_replay_buffer

FIX_FLAGS = {
    "fix_stale_obs_after_reset": "Q1: act on the new episode's first observation after a terminal, not the old post-terminal one",
    "fix_weight_decay": "Q7: scale AdamW's weight decay by the step size (the usual decoupled AdamW)",
}


@struct.dataclass
class DQNHyperparams:
    """Values that may differ between runs of one compiled program (vmappable)."""

    learning_rate: float
    gamma: float
    softmax_temp: float
    epsilon: float
    b1: float
    b2: float
    eps_adam: float
    weight_decay: float
    target_update_frequency: int


@struct.dataclass
class Transition:
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminal: jax.Array


@struct.dataclass
class DQNState:
    params: Any
    target_params: Any
    opt_state: Any
    replay: ReplayState
    env_state: Any
    env_steps: jax.Array  # t: environment steps taken; the target refresh is keyed on it (quirk Q10)


def hyperparams_from_config(config) -> DQNHyperparams:
    return DQNHyperparams(
        learning_rate=config["alpha_adam"], gamma=config["gamma"],
        softmax_temp=config.get("softmax_temp") or 1.0, epsilon=config.get("epsilon") or 0.0,
        b1=config["b1_adam"], b2=config["b2_adam"], eps_adam=config["eps_adam"], weight_decay=config["wd_adam"],
        target_update_frequency=config["target_update_frequency"])


def td_loss(q_apply, params, target_params, batch: Transition, gamma, double_dqn: bool):
    """Mean over the batch of (Q(o)[a] - y)^2, y = r + gamma * (0 if d else V_target(o')).

    No 1/2 factor and no Huber (quirk Q11); the target carries no gradient.
    """
    q_taken = jnp.take_along_axis(q_apply(params, batch.obs), batch.action[:, None], axis=-1)[:, 0]
    next_target_q = q_apply(target_params, batch.next_obs)
    if double_dqn:
        greedy = jnp.argmax(q_apply(jax.lax.stop_gradient(params), batch.next_obs), axis=-1)
        next_value = jnp.take_along_axis(next_target_q, greedy[:, None], axis=-1)[:, 0]
    else:
        next_value = jnp.max(next_target_q, axis=-1)
    target = batch.reward + gamma * jnp.where(batch.terminal, 0.0, next_value)
    return jnp.mean((q_taken - jax.lax.stop_gradient(target)) ** 2)


def make(config, env, env_params) -> Agent:
    num_actions = env.action_space(env_params).n
    q_net = q_network(num_actions, config["num_hidden_layers"], config["num_hidden_units"], config["activation"])
    buffer = make_replay_buffer(config["buffer_size"], config["batch_size"])
    strategy = config["exploration_strat"]
    double_dqn, use_target = config["double_DQN"], config["use_target"]
    updates_per_step, chunk_length = config["updates_per_step"], config["eval_frequency"]
    fix_stale_obs = config["fix_stale_obs_after_reset"]

    def optimizer(hp: DQNHyperparams):
        return adamw(hp.learning_rate, hp.b1, hp.b2, hp.eps_adam, hp.weight_decay,
                     decay_scaled_by_learning_rate=config["fix_weight_decay"])

    def init(key, hp: DQNHyperparams) -> DQNState:
        net_key, env_key = jax.random.split(key)
        obs, env_state = env.reset(env_key, env_params)
        params = q_net.init(net_key, obs)
        example = Transition(obs=obs, action=jnp.int32(0), reward=jnp.float32(0), next_obs=obs, terminal=jnp.bool_(False))
        return DQNState(params=params, target_params=params, opt_state=optimizer(hp).init(params),
                        replay=buffer.init(example), env_state=env_state, env_steps=jnp.int32(0))

    def learn(state: DQNState, key, hp: DQNHyperparams) -> DQNState:
        """Refresh the target (keyed on env steps, before the updates), then updates_per_step updates."""
        if use_target:
            refresh = state.env_steps % hp.target_update_frequency == 0
            target_params = jax.tree.map(lambda p, t: jnp.where(refresh, p, t), state.params, state.target_params)
        else:
            target_params = state.params
        loss_grad = jax.grad(lambda p, batch: td_loss(q_net.apply, p, target_params, batch, hp.gamma, double_dqn))

        def update(carry, sample_key):
            params, opt_state = carry
            grads = loss_grad(params, buffer.sample(state.replay, sample_key))
            updates, opt_state = optimizer(hp).update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, opt_state), _ = jax.lax.scan(update, (state.params, state.opt_state),
                                              jax.random.split(key, updates_per_step))
        return state.replace(params=params, opt_state=opt_state, target_params=target_params)

    def interact(state: DQNState, key, hp: DQNHyperparams, train: bool):
        def env_step(carry, step_key):
            state, obs = carry
            act_key, env_key, learn_key = jax.random.split(step_key, 3)
            action = behaviour_action(strategy, act_key, q_net.apply(state.params, obs), hp)
            next_obs, env_state, reward, terminal, _, info = env.step(env_key, state.env_state, action, env_params)
            last_obs = info["final_observation"]  # the post-step observation, before any auto-reset
            replay = buffer.add(state.replay, Transition(obs, action, reward.astype(jnp.float32), last_obs, terminal))
            state = state.replace(env_state=env_state, replay=replay)
            if train:
                state = learn(state, learn_key, hp)
            state = state.replace(env_steps=state.env_steps + 1)
            # Quirk Q1: the paper code acts next on the old episode's post-terminal observation.
            return (state, next_obs if fix_stale_obs else last_obs), reward

        # The observation is recomputed from the env state at every chunk start, as in the paper code.
        first_obs = env.get_obs(state.env_state, env_params)
        (state, _), rewards = jax.lax.scan(env_step, (state, first_obs), jax.random.split(key, chunk_length))
        return state, {"train_reward_rate": jnp.mean(rewards.astype(jnp.float32))}

    evaluate = make_greedy_evaluation(env, env_params, config, lambda state, obs: q_net.apply(state.params, obs))

    return Agent(init=init, interact=interact, evaluate=evaluate, saved_params=lambda state: {"Q": state.params},
                 hparams=hyperparams_from_config(config))


def make_greedy_evaluation(env, env_params, config, q_values):
    """eval_batch_size episodes from fresh resets, greedy in q_values(state, obs), eval_steps steps each.

    Episodic: the return up to and including the first terminal step (no reset, later rewards masked;
    a policy that never terminates scores -eval_steps on ProcMaze). Continuing: reward per step.
    """
    episodic, num_steps, num_episodes = config["episodic_env"], config["eval_steps"], config["eval_batch_size"]

    def episode(state, key):
        reset_key, loop_key = jax.random.split(key)
        obs, env_state = env.reset(reset_key, env_params)

        def step(carry, step_key):
            env_state, obs, terminated, total = carry
            action = jnp.argmax(q_values(state, obs))
            obs, env_state, reward, terminal, _ = env.step_env(step_key, env_state, action, env_params)
            if episodic:
                total = total + reward * ~terminated
                terminated = terminated | terminal
            else:
                total = total + reward
            return (env_state, obs, terminated, total), None

        carry = (env_state, obs, jnp.bool_(False), jnp.float32(0.0))
        (_, _, _, total), _ = jax.lax.scan(step, carry, jax.random.split(loop_key, num_steps))
        return total if episodic else total / num_steps

    def evaluate(state, key, hp):
        scores = jax.vmap(episode, in_axes=(None, 0))(state, jax.random.split(key, num_episodes))
        return {"reward_rate": jnp.mean(scores)}

    return evaluate
