"""Model-based DQN of Young et al.: Q learns only from imagined rollouts (spec sections 3.2-3.4).

Reads top to bottom: hyperparameters -> state -> the three world models (perfect, simple, latent) ->
make: one update (model step, imagination, Q step) -> one environment step -> chunk -> evaluation.

- perfect: the replay buffer holds true environment states; rollouts run the real env.step.
- simple: a one-step model in observation space: reward mean, continuation logit, next-observation logits.
- latent: an encoder to a categorical (straight-through one-hot) or Gaussian latent, a latent transition,
  reward and continuation heads and a decoder, trained with balanced KLs; Q acts on sampled latents.

One update (spec 3.3): sample B real items; take a model step (simple, latent); from the same B starts,
imagine H steps with the UPDATED model and the current online Q, actions drawn by the behaviour policy
(its temperature included); then one Q step on the B x H imagined transitions with the loss
mean of w * (Q(x)[a] - (r + gamma * c * V_target(x')))^2: soft continuations c (perfect: 1 - terminal)
and weights w = product of the earlier continuations (perfect always; simple/latent on episodic tasks).
Faithful by default, quirks included; FIX_FLAGS lists the opt-in fixes.
"""
from typing import Any, Callable, NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import optax
from flax import struct

from agents.components import distributions as dist
from agents.components.agent import Agent
from agents.components.exploration import behaviour_action
from agents.components.interaction import interaction_chunk, make_greedy_evaluation, refreshed_target
from agents.components.networks import (MLP, mlp_forward_saving, mlp_parameter_gradients,
                                        q_network)
from agents.components.optimizers import adamw
from agents.components.replay import make_replay_buffer
from agents import dqn
from agents.dqn import Transition, bootstrap_value, q_taken

FIX_FLAGS = {
    **dqn.FIX_FLAGS,  # Q1 and Q7 apply to every agent
    "fix_simple_model_obs_sampling": "Q2: sample imagined binary observations with p = sigmoid(logit), not the logit",
    "fix_latent_double_DQN": "Q3: the latent agent honours double_DQN (the paper code computes it, then drops it)",
}

STD_ACTIVATIONS = {"softplus": jax.nn.softplus, "sigmoid": jax.nn.sigmoid,
                   "sigmoid2": lambda x: 2.0 * jax.nn.sigmoid(x / 2.0)}
MIN_STD = 1e-6  # every learned std is clipped below here
ONE_HOT_IMAGINATION = True  # categorical latents imagined as class indices (benchmarks switch it off to compare)
REUSE_IMAGINED_Q_FORWARD = True  # the Q step reuses Q's forward pass from the rollouts (benchmarks switch it off)


@struct.dataclass
class ModelDQNHyperparams:
    """Values that may differ between runs of one compiled program (vmappable); shapes never depend on them."""

    q_learning_rate: float
    model_learning_rate: float
    gamma: float
    softmax_temp: float
    epsilon: float
    b1: float
    b2: float
    eps_adam: float
    weight_decay: float
    target_update_frequency: int
    reward_weight: float
    termination_weight: float
    obs_prediction_weight: float
    kl_prior_weight: float
    kl_posterior_weight: float
    posterior_entropy_weight: float


def hyperparams_from_config(config) -> ModelDQNHyperparams:
    def value(name, unset=0.0):
        return unset if config.get(name) is None else config[name]

    return ModelDQNHyperparams(
        q_learning_rate=config["alpha_adam"] if config["agent_type"] == "perfect_model" else config["Q_alpha"],
        model_learning_rate=value("model_alpha"), gamma=config["gamma"], softmax_temp=value("softmax_temp", 1.0),
        epsilon=value("epsilon"), b1=config["b1_adam"], b2=config["b2_adam"], eps_adam=config["eps_adam"],
        weight_decay=config["wd_adam"], target_update_frequency=config["target_update_frequency"],
        reward_weight=value("reward_weight"), termination_weight=value("termination_weight"),
        obs_prediction_weight=value("obs_prediction_weight"), kl_prior_weight=value("KL_prior_weight"),
        kl_posterior_weight=value("KL_posterior_weight"), posterior_entropy_weight=value("posterior_entropy_weight"))


@struct.dataclass
class ImaginedBatch:
    """B x H imagined transitions (leading axes (B, H)): what Q learns from."""

    inputs: jax.Array  # what Q sees: observations (perfect, simple) or flat latents
    action: jax.Array
    reward: jax.Array
    next_inputs: jax.Array
    continuation: jax.Array  # predicted P(continue) (perfect: 1 - true terminal); scales the bootstrap
    weight: jax.Array  # product of the earlier continuations in the rollout (or 1)
    q_forward: Any = None  # SavedForward of online Q on `inputs`, when the imagination kept it for the Q step
    next_hot_rows: Any = None  # with q_forward on one-hot latents: the indices of the ones of next_inputs


@struct.dataclass
class ModelDQNState:
    q_params: Any
    target_params: Any
    q_opt_state: Any
    model_params: Any  # dict of per-network Haiku params ({} for the perfect model)
    model_opt_state: Any
    replay: Any
    env_state: Any
    env_steps: jax.Array
    episodes_done: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array


def _flat_batch_and_targets(q_apply, params, target_params, imagined: ImaginedBatch, gamma, double_dqn: bool):
    """The imagined batch flattened to B*H rows and its targets r + gamma * c * V_target(x') (no gradient)."""
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), imagined)
    next_value = bootstrap_value(q_apply, params, target_params, flat.next_inputs, double_dqn)
    return flat, jax.lax.stop_gradient(flat.reward + gamma * flat.continuation * next_value)


def imagined_q_loss(q_apply, params, target_params, imagined: ImaginedBatch, gamma, double_dqn: bool):
    """mean over all B*H of w * (Q(x)[a] - (r + gamma * c * V_target(x')))^2, zero-weight rows in the count
    (quirk Q11: no 1/2, no renormalisation by the weights)."""
    flat, target = _flat_batch_and_targets(q_apply, params, target_params, imagined, gamma, double_dqn)
    return jnp.mean(flat.weight * (q_taken(q_apply, params, flat.inputs, flat.action) - target) ** 2)


def imagined_q_loss_and_grads(q_apply, params, target_params, imagined: ImaginedBatch, gamma, double_dqn: bool,
                              activation: str):
    """imagined_q_loss and its gradient, with Q(x) taken from the forward pass the rollouts kept
    (imagined.q_forward: Q's params do not change between the rollouts and the Q step) instead of recomputed:
    jax.value_and_grad(imagined_q_loss) up to float rounding, one forward pass of Q on B*H inputs fewer.
    One-hot latents (imagined.next_hot_rows set) also bootstrap on hot rows, never on the dense inputs."""
    if imagined.next_hot_rows is not None:
        def q_apply(p, rows):
            return mlp_forward_saving(p, rows, activation, hot_rows=True).output
        imagined = imagined.replace(next_inputs=imagined.next_hot_rows)
    flat, target = _flat_batch_and_targets(q_apply, params, target_params, imagined, gamma, double_dqn)
    q_values = flat.q_forward.output
    error = jnp.take_along_axis(q_values, flat.action[:, None], axis=-1)[:, 0] - target
    d_taken = 2.0 * flat.weight * error / error.shape[0]  # d mean(w * error^2) / d Q(x)[a]
    d_q_values = jax.nn.one_hot(flat.action, q_values.shape[-1], dtype=q_values.dtype) * d_taken[:, None]
    grads = mlp_parameter_gradients(params, flat.q_forward, d_q_values, activation)
    return jnp.mean(flat.weight * error ** 2), grads


# ---------------------------------------------------------------------------------------------------------
# World models. Each is a bundle of pure functions over ONE sample (the learner vmaps them over B):
#   init(key, obs) -> model params; loss(params, batch, key, hp) -> (loss, terms) over a real batch;
#   start(params, obs, key) -> x0; step(params, x, action, key) -> (reward, continuation, x_next);
#   q_input(x) -> what Q sees; act_input(params, obs, key) -> Q's input when acting on a real observation.
# ---------------------------------------------------------------------------------------------------------


class WorldModel(NamedTuple):
    init: Callable
    loss: Callable | None  # None: nothing to learn (perfect model)
    start: Callable
    step: Callable
    q_input: Callable
    act_input: Callable
    input_size: int  # length of Q's (flat) input
    loss_terms: tuple  # names of the logged loss terms besides 'model_loss'
    stores_env_states: bool = False
    imagined_q: Callable | None = None  # Q on an imagined x without building q_input(x) (one-hot latents)
    q_hot_rows: Callable | None = None  # x -> the indices of the ones of q_input(x), with imagined_q


def _net(output_size, config, name, squeeze=False) -> hk.Transformed:
    """An MLP of the config's depth, width and activation as its own Haiku module `name`."""

    def forward(x):
        out = MLP(output_size, config["num_hidden_layers"], config["num_hidden_units"], config["activation"], name=name)(x)
        return out[..., 0] if squeeze else out

    return hk.without_apply_rng(hk.transform(forward))


def _with_action(x, action, num_actions):
    """concat(flattened x, one_hot(action)): the models' input (spec section 0)."""
    return jnp.concatenate([x.reshape(-1).astype(jnp.float32), jax.nn.one_hot(action, num_actions)])


def mlp_on_one_hot(module_params: dict, hot_rows, activation: str):
    """One Haiku MLP module ('<name>/linear', '<name>/linear_1', ...) applied to a 0/1 input vector whose
    ones are at `hot_rows`: the first layer is the sum of those weight rows instead of a matrix product.

    Equal to the dense forward pass up to float rounding; for the categorical latent's 1029-wide inputs
    (32 one-hot groups of 32, plus the action) it replaces most of the imagination's arithmetic.
    """
    return mlp_forward_saving(module_params, hot_rows, activation, hot_rows=True).output  # kept values unused: dropped


def _init_nets(key, nets: dict, examples: dict) -> dict:
    keys = jax.random.split(key, len(nets))
    return {name: net.init(k, examples[name]) for k, (name, net) in zip(keys, nets.items())}


def perfect_model(env, env_params) -> WorldModel:
    """The true environment: rollouts from stored env states through the real env.step (its randomness,
    teleports and ButtonGrid's internal resets included); continuation 1 - terminal, so every transition
    after the first true terminal gets weight 0 (quirk Q20: no reset inside a rollout)."""

    def step(params, env_state, action, key):
        _, next_state, reward, terminal, _ = env.step_env(key, env_state, action, env_params)
        return reward.astype(jnp.float32), 1.0 - terminal.astype(jnp.float32), next_state

    return WorldModel(init=lambda key, obs: {}, loss=None, start=lambda params, env_state, key: env_state, step=step,
                      q_input=lambda env_state: env.get_obs(env_state, env_params).astype(jnp.float32),
                      act_input=lambda params, obs, key: obs,
                      input_size=env.observation_space(env_params).shape[0], loss_terms=(), stores_env_states=True)


def simple_model(config, num_actions: int, obs_size: int) -> WorldModel:
    """Reward mean (std 1), continuation logit and next-observation logits (binary_obs) or means (std 1),
    each its own MLP on concat(obs, one_hot(a))."""
    nets = {"reward": _net(1, config, "reward_function", squeeze=True),
            "termination": _net(1, config, "termination_function", squeeze=True),
            "next_obs": _net(obs_size, config, "next_obs_function")}
    binary, fixed_sampling = config["binary_obs"], config["fix_simple_model_obs_sampling"]

    def heads(params, obs, action):
        x = _with_action(obs, action, num_actions)
        return tuple(nets[name].apply(params[name], x) for name in ("reward", "termination", "next_obs"))

    def init(key, obs):
        x = _with_action(obs, jnp.int32(0), num_actions)
        return _init_nets(key, nets, {name: x for name in nets})

    def sample_loss(params, item: Transition, key, hp):
        reward_mean, continue_logit, next_obs_out = heads(params, item.obs, item.action)
        next_obs = item.next_obs.astype(jnp.float32)
        reward_nll = -dist.gaussian_log_prob(item.reward, reward_mean, 1.0)
        termination_nll = -dist.bernoulli_log_prob(~item.terminal, continue_logit)
        if binary:
            obs_nll = -jnp.sum(dist.bernoulli_log_prob(next_obs, next_obs_out))
        else:
            obs_nll = -jnp.sum(dist.gaussian_log_prob(next_obs, next_obs_out, 1.0))
        obs_nll = jnp.where(item.terminal, 0.0, obs_nll)  # no next observation to predict after a terminal
        return {"reward_loss": reward_nll, "termination_loss": termination_nll, "obs_loss": obs_nll}

    def loss(params, batch, key, hp):
        terms = jax.tree.map(jnp.mean, jax.vmap(sample_loss, in_axes=(None, 0, None, None))(params, batch, key, hp))
        total = (hp.reward_weight * terms["reward_loss"] + hp.termination_weight * terms["termination_loss"]
                 + hp.obs_prediction_weight * terms["obs_loss"])
        return total, terms

    def step(params, obs, action, key):
        reward_mean, continue_logit, next_obs_out = heads(params, obs, action)
        if binary:
            # Quirk Q2: the paper code passes the logit where a probability belongs (p = clip(logit, 0, 1)).
            probability = jax.nn.sigmoid(next_obs_out) if fixed_sampling else next_obs_out
            next_obs = (jax.random.uniform(key, next_obs_out.shape) < probability).astype(jnp.float32)
        else:
            next_obs = next_obs_out + jax.random.normal(key, next_obs_out.shape)
        return reward_mean, jax.nn.sigmoid(continue_logit), next_obs

    return WorldModel(init=init, loss=loss, start=lambda params, obs, key: obs.astype(jnp.float32), step=step,
                      q_input=lambda obs: obs, act_input=lambda params, obs, key: obs, input_size=obs_size,
                      loss_terms=("reward_loss", "termination_loss", "obs_loss"))


def latent_model(config, num_actions: int, obs_size: int, one_hot_imagination: bool = True) -> WorldModel:
    """Encoder phi(o), transition next_phi(z, a), reward(z, a), termination(z, a) and decoder obs(z).

    categorical: num_features groups of feature_width classes, sampled one-hot with the straight-through
    gradient; gaussian: mean and std heads (std = std_act(.) clipped at 1e-6, plus min_std in the encoder
    only: quirk Q6), reparameterised; tanh_gaussian squashes the sample (the KLs use the pre-tanh law).
    one_hot_imagination (categorical): imagine on class indices with row-sum first layers (see below);
    False keeps the dense straight-through path, for comparison.
    """
    latent_type, num_features = config["latent_type"], config["num_features"]
    categorical = latent_type == "categorical"
    classes = config["feature_width"] if categorical else 1
    latent_size = num_features * classes
    std_act, min_std = STD_ACTIVATIONS[config["std_act"]], config["min_std"]
    binary, learn_obs_std = config["binary_obs"], bool(config.get("learn_obs_variance"))
    latent_head = latent_size if categorical else (num_features, num_features)
    nets = {"reward": _net(1, config, "reward_function", squeeze=True),
            "termination": _net(1, config, "termination_function", squeeze=True),
            "phi": _net(latent_head, config, "phi_function"),
            "next_phi": _net(latent_head, config, "next_phi_function"),
            "obs": _net((obs_size, obs_size) if learn_obs_std and not binary else obs_size, config, "obs_function")}

    def law(head_out, extra_std):
        """The latent distribution's parameters: (logits (F, K),) or (mean, std)."""
        if categorical:
            return (head_out.reshape(num_features, classes),)
        mean, raw_std = head_out
        return mean, jnp.maximum(std_act(raw_std), MIN_STD) + extra_std

    def sample(params_law, key):
        """A flat latent sample: straight-through one-hot rows, or mean + std * noise (tanh-squashed)."""
        if categorical:
            return dist.straight_through_one_hot(key, params_law[0]).reshape(-1)
        mean, std = params_law
        z = mean + std * jax.random.normal(key, mean.shape)
        return jnp.tanh(z) if latent_type == "tanh_gaussian" else z

    def kl(p, q):
        return jnp.sum(dist.categorical_kl(p[0], q[0]) if categorical else dist.gaussian_kl(*p, *q))

    def kl_to_base(p):
        """KL to the uniform categorical or N(0, 1) (the paper code calls it the posterior entropy)."""
        return jnp.sum(dist.categorical_kl_to_uniform(p[0]) if categorical else dist.gaussian_kl(*p, 0.0, 1.0))

    def encode(params, obs):
        return law(nets["phi"].apply(params["phi"], obs.astype(jnp.float32)), min_std)

    def transition(params, z, action):
        return law(nets["next_phi"].apply(params["next_phi"], _with_action(z, action, num_actions)), 0.0)

    def init(key, obs):
        z = jnp.zeros(latent_size, jnp.float32)
        za = _with_action(z, jnp.int32(0), num_actions)
        examples = {"reward": za, "termination": za, "phi": obs.astype(jnp.float32), "next_phi": za, "obs": z}
        return _init_nets(key, nets, examples)

    def sample_loss(params, item: Transition, key, hp):
        posterior = encode(params, item.obs)
        z = sample(posterior, key)
        decoded = nets["obs"].apply(params["obs"], z)
        obs = item.obs.astype(jnp.float32)
        if binary:
            reconstruction = -jnp.sum(dist.bernoulli_log_prob(obs, decoded))
        elif learn_obs_std:
            mean, raw_std = decoded
            reconstruction = -jnp.sum(dist.gaussian_log_prob(obs, mean, jnp.maximum(jax.nn.softplus(raw_std), MIN_STD)))
        else:
            reconstruction = -jnp.sum(dist.gaussian_log_prob(obs, decoded, 1.0))
        za = _with_action(z, item.action, num_actions)
        reward_nll = -dist.gaussian_log_prob(item.reward, nets["reward"].apply(params["reward"], za), 1.0)
        termination_nll = -dist.bernoulli_log_prob(~item.terminal, nets["termination"].apply(params["termination"], za))
        next_posterior = encode(params, item.next_obs)
        prior = transition(params, z, item.action)
        stop = jax.lax.stop_gradient
        return {"reward_loss": reward_nll, "termination_loss": termination_nll,
                # Quirk Q4: the reconstruction of the CURRENT observation is masked on terminal transitions.
                "obs_loss": jnp.where(item.terminal, 0.0, reconstruction),
                # KL balancing; neither KL is masked on terminal transitions (quirk Q5).
                "kl_posterior": kl(next_posterior, jax.tree.map(stop, prior)),
                "kl_prior": kl(jax.tree.map(stop, next_posterior), prior),
                "posterior_entropy": kl_to_base(posterior)}

    def loss(params, batch, key, hp):
        keys = jax.random.split(key, batch.action.shape[0])
        terms = jax.tree.map(jnp.mean, jax.vmap(sample_loss, in_axes=(None, 0, 0, None))(params, batch, keys, hp))
        total = (hp.kl_posterior_weight * terms["kl_posterior"] + hp.kl_prior_weight * terms["kl_prior"]
                 + hp.posterior_entropy_weight * terms["posterior_entropy"] + hp.reward_weight * terms["reward_loss"]
                 + hp.termination_weight * terms["termination_loss"] + hp.obs_prediction_weight * terms["obs_loss"])
        return total, terms

    def step(params, z, action, key):
        za = _with_action(z, action, num_actions)
        reward = nets["reward"].apply(params["reward"], za)
        continuation = jax.nn.sigmoid(nets["termination"].apply(params["termination"], za))
        return reward, continuation, sample(transition(params, z, action), key)

    def encoded_sample(params, obs, key):
        return sample(encode(params, obs), key)

    loss_terms = ("reward_loss", "termination_loss", "obs_loss", "kl_posterior", "kl_prior", "posterior_entropy")
    if not (categorical and one_hot_imagination):
        return WorldModel(init=init, loss=loss, start=encoded_sample, step=step, q_input=lambda z: z,
                          act_input=encoded_sample, input_size=latent_size, loss_terms=loss_terms)

    # Categorical imagination needs no gradient, so it carries each group's sampled class (the same draw,
    # with the same key, as the straight-through sample) and runs the first layers as row sums.
    group_offsets = jnp.arange(num_features) * classes

    def start_classes(params, obs, key):
        return dist.sample_categorical(key, encode(params, obs)[0])

    def step_classes(params, latent_classes, action, key):
        rows = jnp.concatenate([latent_classes + group_offsets, (latent_size + action)[None]])
        reward = mlp_on_one_hot(params["reward"], rows, config["activation"])[0]
        continuation = jax.nn.sigmoid(mlp_on_one_hot(params["termination"], rows, config["activation"])[0])
        next_logits = mlp_on_one_hot(params["next_phi"], rows, config["activation"]).reshape(num_features, classes)
        return reward, continuation, dist.sample_categorical(key, next_logits)

    def one_hot_latent(latent_classes):
        return jax.nn.one_hot(latent_classes, classes, dtype=jnp.float32).reshape(-1)

    def q_hot_rows(latent_classes):
        return latent_classes + group_offsets

    def imagined_q(q_params, latent_classes):
        return mlp_on_one_hot(q_params, q_hot_rows(latent_classes), config["activation"])

    return WorldModel(init=init, loss=loss, start=start_classes, step=step_classes, q_input=one_hot_latent,
                      act_input=encoded_sample, input_size=latent_size, loss_terms=loss_terms, imagined_q=imagined_q,
                      q_hot_rows=q_hot_rows)


def make_imagination(world: WorldModel, q_apply, strategy: str, rollout_length: int, weights_follow_continuations: bool,
                     keep_q_forward_activation: str | None = None):
    """imagine(model_params, q_params, starts, key, hp) -> ImaginedBatch with leading axes (B, H).

    From each start, H steps: act by the behaviour policy (strategy, with hp's temperature or epsilon) on
    the online Q, then the model's reward, continuation and next input. Weights: w_0 = 1 and
    w_k = w_(k-1) * c_(k-1) when weights_follow_continuations, else 1. With keep_q_forward_activation (Q's
    activation; Q a plain MLP), Q's forward pass is kept in ImaginedBatch.q_forward for the Q step.
    """

    def imagine(model_params, q_params, starts, key, hp) -> ImaginedBatch:
        num_starts = jax.tree.leaves(starts)[0].shape[0]
        start_key, scan_key = jax.random.split(key)
        x = jax.vmap(world.start, in_axes=(None, 0, 0))(model_params, starts, jax.random.split(start_key, num_starts))

        def rollout_step(carry, step_key):
            x, weight, previous_continuation = carry
            if weights_follow_continuations:
                weight = weight * previous_continuation
            action_key, model_key = jax.random.split(step_key)
            inputs = jax.vmap(world.q_input)(x)
            q_forward = next_hot_rows = None
            if keep_q_forward_activation is not None:
                one_hot = world.q_hot_rows is not None
                q_rows = jax.vmap(world.q_hot_rows)(x) if one_hot else inputs.astype(jnp.float32)
                q_forward = mlp_forward_saving(q_params, q_rows, keep_q_forward_activation, hot_rows=one_hot)
                q_values = q_forward.output
            elif world.imagined_q is not None:
                q_values = jax.vmap(world.imagined_q, in_axes=(None, 0))(q_params, x)
            else:
                q_values = q_apply(q_params, inputs)
            actions = jax.vmap(behaviour_action, in_axes=(None, 0, 0, None, None))(
                strategy, jax.random.split(action_key, num_starts), q_values, hp.softmax_temp, hp.epsilon)
            reward, continuation, next_x = jax.vmap(world.step, in_axes=(None, 0, 0, 0))(
                model_params, x, actions, jax.random.split(model_key, num_starts))
            if q_forward is not None and world.q_hot_rows is not None:
                next_hot_rows = jax.vmap(world.q_hot_rows)(next_x)
            imagined = ImaginedBatch(inputs=inputs, action=actions, reward=reward,
                                     next_inputs=jax.vmap(world.q_input)(next_x), continuation=continuation,
                                     weight=weight, q_forward=q_forward, next_hot_rows=next_hot_rows)
            return (next_x, weight, continuation), imagined

        ones = jnp.ones(num_starts, jnp.float32)
        _, imagined = jax.lax.scan(rollout_step, (x, ones, ones), jax.random.split(scan_key, rollout_length))
        return jax.tree.map(lambda v: jnp.swapaxes(v, 0, 1), imagined)  # (H, B, ...) -> (B, H, ...)

    return imagine


def uses_double_dqn(config) -> bool:
    """Quirk Q3: the latent agent's code computes the double-DQN target, then overwrites it with the plain max."""
    if config["agent_type"] == "latent_model":
        return config["double_DQN"] and config["fix_latent_double_DQN"]
    return config["double_DQN"]


def make_world_model(config, env, env_params) -> WorldModel:
    agent_type = config["agent_type"]
    num_actions = env.action_space(env_params).n
    obs_size = env.observation_space(env_params).shape[0]
    if agent_type == "perfect_model":
        return perfect_model(env, env_params)
    if agent_type == "simple_model":
        return simple_model(config, num_actions, obs_size)
    if agent_type == "latent_model":
        return latent_model(config, num_actions, obs_size, one_hot_imagination=ONE_HOT_IMAGINATION)
    raise ValueError(f"model_dqn has no agent '{agent_type}'")


# ---------------------------------------------------------------------------------------------------------


def make(config, env, env_params) -> Agent:
    world = make_world_model(config, env, env_params)
    num_actions = env.action_space(env_params).n
    q_net = q_network(num_actions, config["num_hidden_layers"], config["num_hidden_units"], config["activation"],
                      obs_shape=(world.input_size,))
    batch_size, rollout_length = config["batch_size"], config["rollout_length"]
    buffer = make_replay_buffer(config["buffer_size"], batch_size)
    separate_starts = bool(config.get("seperate_rollout_batch_size"))
    start_buffer = make_replay_buffer(config["buffer_size"], config["rollout_batch_size"]) if separate_starts else None
    strategy, use_target, double_dqn = config["exploration_strat"], config["use_target"], uses_double_dqn(config)
    # Perfect model: weights always follow the true terminals; learned models only on episodic tasks.
    weights_follow_continuations = world.stores_env_states or config["episodic_env"]
    # Q's forward pass on the imagined inputs is computed once, in the rollouts, and reused by the Q step (one-hot
    # latents: on their hot rows, forward and backward, never on the 1024-wide dense inputs).
    reuse_q_forward = REUSE_IMAGINED_Q_FORWARD and (world.imagined_q is None or world.q_hot_rows is not None)
    imagine = make_imagination(world, q_net.apply, strategy, rollout_length, weights_follow_continuations,
                               keep_q_forward_activation=config["activation"] if reuse_q_forward else None)
    updates_per_step, chunk_length = config["updates_per_step"], config["eval_frequency"]
    learn_metric_names = ("q_loss",) + (("model_loss",) + world.loss_terms if world.loss is not None else ())

    def optimizer(learning_rate, hp: ModelDQNHyperparams):
        return adamw(learning_rate, hp.b1, hp.b2, hp.eps_adam, hp.weight_decay,
                     decay_scaled_by_learning_rate=config["fix_weight_decay"])

    def gradient_step(params, opt_state, grads, learning_rate, hp):
        updates, opt_state = optimizer(learning_rate, hp).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def init(key, hp: ModelDQNHyperparams) -> ModelDQNState:
        q_key, model_key, env_key = jax.random.split(key, 3)
        obs, env_state = env.reset(env_key, env_params)
        model_params = world.init(model_key, obs)
        q_params = q_net.init(q_key, jnp.zeros(world.input_size, jnp.float32))
        example = env_state if world.stores_env_states else Transition(
            obs=obs, action=jnp.int32(0), reward=jnp.float32(0), next_obs=obs, terminal=jnp.bool_(False))
        return ModelDQNState(q_params=q_params, target_params=q_params,
                             q_opt_state=optimizer(hp.q_learning_rate, hp).init(q_params), model_params=model_params,
                             model_opt_state=optimizer(hp.model_learning_rate, hp).init(model_params),
                             replay=buffer.init(example), env_state=env_state, env_steps=jnp.int32(0),
                             episodes_done=jnp.int32(0), episode_return=jnp.float32(0), episode_length=jnp.int32(0))

    def learn(state: ModelDQNState, key, hp: ModelDQNHyperparams):
        target_params = refreshed_target(state.q_params, state.target_params, state.env_steps,
                                         hp.target_update_frequency, use_target)

        def q_loss(q_params, imagined):
            return imagined_q_loss(q_net.apply, q_params, target_params, imagined, hp.gamma, double_dqn)

        def update(carry, update_key):
            q_params, q_opt_state, model_params, model_opt_state = carry
            sample_key, model_key, rollout_key, start_key = jax.random.split(update_key, 4)
            batch = buffer.sample(state.replay, sample_key)
            metrics = {}
            if world.loss is not None:  # 1. the model step
                (model_loss, terms), grads = jax.value_and_grad(world.loss, has_aux=True)(model_params, batch, model_key, hp)
                model_params, model_opt_state = gradient_step(model_params, model_opt_state, grads,
                                                              hp.model_learning_rate, hp)
                metrics = {"model_loss": model_loss, **terms}
            # 2. imagination from the same minibatch's starts (or a second one), with the updated model
            if separate_starts:
                starts = start_buffer.sample(state.replay, start_key).obs
            else:
                starts = batch if world.stores_env_states else batch.obs
            imagined = imagine(model_params, q_params, starts, rollout_key, hp)
            # 3. the Q step on imagined data only
            if reuse_q_forward:
                loss, grads = imagined_q_loss_and_grads(q_net.apply, q_params, target_params, imagined, hp.gamma,
                                                        double_dqn, config["activation"])
            else:
                loss, grads = jax.value_and_grad(q_loss)(q_params, imagined)
            q_params, q_opt_state = gradient_step(q_params, q_opt_state, grads, hp.q_learning_rate, hp)
            return (q_params, q_opt_state, model_params, model_opt_state), {"q_loss": loss, **metrics}

        carry = (state.q_params, state.q_opt_state, state.model_params, state.model_opt_state)
        (q_params, q_opt_state, model_params, model_opt_state), metrics = jax.lax.scan(
            update, carry, jax.random.split(key, updates_per_step))
        state = state.replace(q_params=q_params, q_opt_state=q_opt_state, model_params=model_params,
                              model_opt_state=model_opt_state, target_params=target_params)
        return state, jax.tree.map(jnp.mean, metrics)

    def q_on_observation(state, obs, key):
        return q_net.apply(state.q_params, world.act_input(state.model_params, obs, key))

    def interact(state: ModelDQNState, key, hp: ModelDQNHyperparams, train: bool):
        def act(state, obs, key):
            input_key, action_key = jax.random.split(key)
            q_values = q_on_observation(state, obs, input_key)
            return behaviour_action(strategy, action_key, q_values, hp.softmax_temp, hp.epsilon)

        def store(state, obs, action, reward, next_obs, terminated):
            # The perfect model stores the environment state the action was taken in.
            item = state.env_state if world.stores_env_states else Transition(obs, action, reward, next_obs, terminated)
            return buffer.add(state.replay, item)

        return interaction_chunk(env, env_params, chunk_length, config["fix_stale_obs_after_reset"], state, key, train,
                                 act=act, store=store, learn=lambda state, key: learn(state, key, hp),
                                 learn_metric_names=learn_metric_names)

    # The latent agent evaluates greedily on a fresh encoder SAMPLE of each observation (quirk Q22).
    evaluate = make_greedy_evaluation(env, env_params, config, q_on_observation, input_needs_key=True)

    def saved_params(state):
        return {"Q": state.q_params} if world.loss is None else {"model": state.model_params, "Q": state.q_params}

    return Agent(init=init, interact=interact, evaluate=evaluate, saved_params=saved_params,
                 hparams=hyperparams_from_config(config))
