"""DQN on replayed real transitions: the ER DQN of Young et al. (section 3.1) and its standard extensions.

Reads top to bottom: hyperparameters -> state -> losses -> make (network, optimizer, buffer) -> one
update -> how it acts and what it stores (the chunk loop and the evaluation are the shared ones in
agents/components/interaction.py). With no extension switched on this is the paper
code's ER DQN, quirks included (spec section 7); the fix flags are listed in FIX_FLAGS and in the README.
Extensions, each a config key that is off by default: double_DQN; dueling (dueling_aggregation);
prioritized_replay (per_alpha, per_beta0, per_beta_schedule, per_beta_rate, per_eps); epsilon schedules
(epsilon_schedule: constant, power, linear); a conv torso for image observations (torso: conv).
"""
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from agents.components.agent import Agent
from agents.components.config_keys import (MAX_LAYERS, REQUIRED, AgentSchema, ConfigError, Key, choice, flag,
                                           non_negative_float, positive_float, positive_int,
                                           positive_int_list, unit_interval)
from agents.components.exploration import EPSILON_SCHEDULES, STRATEGIES
from agents.components.networks import ACTIVATIONS
from agents.components.exploration import behaviour_action, scheduled_epsilon
from agents.components.interaction import interaction_chunk, make_greedy_evaluation, refreshed_target
from agents.components.networks import q_network
from agents.components.optimizers import adamw
from agents.components.replay import make_prioritized_replay_buffer, make_replay_buffer
from agents.components.visitation import make_visitation

FIX_FLAGS = {
    "fix_stale_obs_after_reset": "Q1: act on the new episode's first observation after a terminal, not the old post-terminal one",
    "fix_weight_decay": "Q7: scale AdamW's weight decay by the step size (the usual decoupled AdamW)",
}

REPLAY_OBS_DTYPES = {"bool": jnp.bool_, "uint8": jnp.uint8, "float32": jnp.float32}


@struct.dataclass
class DQNHyperparams:
    """Values that may differ between runs of one compiled program (vmappable); shapes never depend on them."""

    learning_rate: float
    gamma: float
    softmax_temp: float
    epsilon: float
    b1: float
    b2: float
    eps_adam: float
    weight_decay: float
    target_update_frequency: int
    epsilon_start: float
    epsilon_end: float
    epsilon_decay: float
    epsilon_decay_steps: int
    per_alpha: float
    per_beta0: float
    per_beta_rate: float
    per_eps: float


@struct.dataclass
class Transition:
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminal: jax.Array  # true termination only: a time-limit truncation still bootstraps


@struct.dataclass
class DQNState:
    params: Any
    target_params: Any
    opt_state: Any
    replay: Any  # ReplayState or PrioritizedReplayState
    env_state: Any
    env_steps: jax.Array  # t: environment steps taken; the target refresh is keyed on it (quirk Q10)
    episodes_done: jax.Array  # finished training episodes (terminated or truncated): power epsilon, PER beta
    episode_return: jax.Array  # of the training episode under way
    episode_length: jax.Array
    visits: Any = None  # rooms and cells visited, for environments that have rooms (MiniMontezuma, Atari)


# Config keys that reach the compiled program only through DQNHyperparams: a sweep may vary them (tests check
# that changing any of them leaves the traced program unchanged).
SWEEPABLE_KEYS = ("alpha_adam", "gamma", "softmax_temp", "epsilon", "b1_adam", "b2_adam", "eps_adam", "wd_adam",
                  "target_update_frequency", "epsilon_start", "epsilon_end", "epsilon_decay", "epsilon_decay_steps",
                  "per_alpha", "per_beta0", "per_beta_rate", "per_eps")


def hyperparams_from_config(config) -> DQNHyperparams:
    def value(name, unset):
        return unset if config.get(name) is None else config[name]

    return DQNHyperparams(
        learning_rate=config["alpha_adam"], gamma=config["gamma"],
        softmax_temp=value("softmax_temp", 1.0), epsilon=value("epsilon", 0.0),
        b1=config["b1_adam"], b2=config["b2_adam"], eps_adam=config["eps_adam"], weight_decay=config["wd_adam"],
        target_update_frequency=config["target_update_frequency"],
        epsilon_start=config["epsilon_start"], epsilon_end=config["epsilon_end"], epsilon_decay=config["epsilon_decay"],
        epsilon_decay_steps=value("epsilon_decay_steps", 1),
        per_alpha=config["per_alpha"], per_beta0=config["per_beta0"], per_beta_rate=config["per_beta_rate"],
        per_eps=config["per_eps"])


# --- config keys ---------------------------------------------------------------------------------------
# Keys every DQN-family agent of the paper reads (spec section 4), with the paper code's defaults; the
# model-based agents (agents/model_dqn_config.py) read them too.
PAPER_KEYS = {
    "episodic_env": flag("episodic evaluation (return until the first terminal) instead of reward per step"),
    "num_hidden_layers": Key("int", REQUIRED, lambda v: 0 <= v <= MAX_LAYERS, f"an integer in [0, {MAX_LAYERS}]",
                             "hidden layers of every MLP"),
    "num_hidden_units": positive_int("width of every hidden layer"),
    "activation": Key("str", check=lambda v: v in ACTIVATIONS, requirement=f"one of {', '.join(ACTIVATIONS)}",
                      doc="hidden activation"),
    "b1_adam": unit_interval("AdamW first-moment decay", closed_top=False),
    "b2_adam": unit_interval("AdamW second-moment decay", closed_top=False),
    "eps_adam": positive_float("AdamW epsilon"),
    "wd_adam": non_negative_float("AdamW weight decay per update, not scaled by the step size (quirk Q7)"),
    "exploration_strat": Key("str", check=lambda v: v in STRATEGIES, requirement=f"one of {', '.join(STRATEGIES)}",
                             doc="behaviour policy"),
    "softmax_temp": positive_float("softmax temperature (required with softmax)", default=None),
    "epsilon": unit_interval("epsilon-greedy rate (required with epsilon_greedy)", default=None),
    "batch_size": positive_int("minibatch size"),
    "target_update_frequency": positive_int("target copy period, in environment steps"),
    "use_target": Key("bool", doc="use a target network"),
    "double_DQN": flag("double-DQN bootstrap"),
    "updates_per_step": positive_int("updates per environment step", default=1),
    "buffer_size": positive_int("replay capacity per seed"),
    "gamma": unit_interval("discount"),
    "eval_steps": positive_int("steps per evaluation episode"),
    "eval_batch_size": positive_int("evaluation episodes per seed"),
}

FIX_KEYS = {
    "fix_stale_obs_after_reset": flag("Q1: act on the new episode's first observation after a terminal"),
    "fix_weight_decay": flag("Q7: scale the weight decay by the step size (usual decoupled AdamW)"),
}

# The DQN family's extensions (dqn_variants spec); all off by default, so the paper's configs are unchanged.
EXTENSION_KEYS = {
    "dueling": flag("dueling value/advantage streams"),
    "dueling_aggregation": choice("how the advantage stream is centred, per state", ("mean", "max"), default="mean"),
    "prioritized_replay": flag("proportional prioritized replay"),
    "per_alpha": non_negative_float("priority exponent (0: uniform)", default=0.6),
    "per_beta0": unit_interval("initial importance-sampling exponent (linear schedule)", default=0.4),
    "per_beta_schedule": choice("beta: linear to 1 over num_steps, or 1 - exp(-rate * episodes)",
                                ("linear", "exponential"), default="linear"),
    "per_beta_rate": positive_float("rate of the exponential beta schedule, per finished episode", default=0.01),
    "per_eps": positive_float("added to |TD error| to form a priority", default=1e-6),
    "epsilon_schedule": choice("epsilon-greedy rate over time", EPSILON_SCHEDULES, default="constant"),
    "epsilon_start": unit_interval("first epsilon of the power and linear schedules", default=1.0),
    "epsilon_end": unit_interval("floor of the power schedule, end of the linear one", default=0.01),
    "epsilon_decay": Key("float", 0.99, lambda v: 0 < v <= 1, "a number in (0, 1]",
                         "power schedule: epsilon_start * decay^episodes"),
    "epsilon_decay_steps": positive_int("linear schedule: environment steps from start to end", default=None),
    "target_score": Key("float", None, lambda v: math.isfinite(v), "a finite number",
                        "per-seed metric: first step at which the mean of the last 100 training episodes reached it"),
    "torso": choice("Q-network torso: mlp (flattened input) or conv (image input)", ("mlp", "conv"), default="mlp"),
    "conv_channels": positive_int_list("conv torso: output channels per layer", default=[16]),
    "conv_kernel_sizes": positive_int_list("conv torso: square kernel size per layer", default=[3]),
    "conv_strides": positive_int_list("conv torso: stride per layer", default=[1]),
    "replay_obs_dtype": choice("replay storage of observations (auto: the observation's own dtype; bool or uint8 "
                               "are lossless for 0/1 observations)", ("auto", "bool", "uint8", "float32"), default="auto"),
}

# Keys that fix an array shape of the DQN family's programs (a sweep over them is refused).
SHAPE_KEYS = {
    "batch_size": "the minibatch", "buffer_size": "the replay buffer", "num_hidden_units": "the networks",
    "num_hidden_layers": "the networks", "eval_batch_size": "the evaluation batch", "eval_steps": "the evaluation loop",
    "updates_per_step": "the update loop", "conv_channels": "the networks", "conv_kernel_sizes": "the networks",
    "conv_strides": "the networks",
}


def check_exploration(config) -> None:
    """The behaviour policy's keys agree with each other (every DQN-family agent)."""
    if config["exploration_strat"] == "softmax" and config["softmax_temp"] is None:
        raise ConfigError("exploration_strat 'softmax' needs the key 'softmax_temp'")
    schedule = config.get("epsilon_schedule", "constant")
    if schedule != "constant" and config["exploration_strat"] != "epsilon_greedy":
        raise ConfigError(f"epsilon_schedule '{schedule}' applies to exploration_strat 'epsilon_greedy' only")
    if config["exploration_strat"] == "epsilon_greedy" and schedule == "constant" and config["epsilon"] is None:
        raise ConfigError("exploration_strat 'epsilon_greedy' needs the key 'epsilon' (or a non-constant epsilon_schedule)")
    if schedule == "linear" and config.get("epsilon_decay_steps") is None:
        raise ConfigError("epsilon_schedule 'linear' needs the key 'epsilon_decay_steps'")
    if config["buffer_size"] < config["batch_size"]:
        raise ConfigError(f"buffer_size ({config['buffer_size']}) must be at least batch_size ({config['batch_size']})")


def check_config(config, obs_shape: tuple) -> None:
    check_exploration(config)
    conv_lengths = {len(config[k]) for k in ("conv_channels", "conv_kernel_sizes", "conv_strides")}
    if len(conv_lengths) > 1:
        raise ConfigError("conv_channels, conv_kernel_sizes and conv_strides must have one entry per conv layer "
                          "(the same length)")
    if config["torso"] == "conv" and len(obs_shape) != 3:
        raise ConfigError(f"torso 'conv' needs image observations (height, width, channels); "
                          f"{config['environment']} observations have shape {obs_shape}")


CONFIG_SCHEMAS = {"ER": AgentSchema(
    name="ER DQN",
    keys={**PAPER_KEYS, "alpha_adam": positive_float("Q step size"),
          "save_final_params": flag("accepted for compatibility; never read (as in the paper code)", default=True),
          **FIX_KEYS, **EXTENSION_KEYS},
    sweepable=SWEEPABLE_KEYS, shape_keys=SHAPE_KEYS, check=check_config)}


def bootstrap_value(q_apply, params, target_params, next_obs, double_dqn: bool):
    """V_target(o') = max_b Qtgt(o')[b], or with double_dqn Qtgt(o')[argmax_b Q_online(o')[b]]; no gradient
    reaches the online params through the action choice."""
    next_target_q = q_apply(target_params, next_obs)
    if not double_dqn:
        return jnp.max(next_target_q, axis=-1)
    greedy = jnp.argmax(q_apply(jax.lax.stop_gradient(params), next_obs), axis=-1)
    return jnp.take_along_axis(next_target_q, greedy[:, None], axis=-1)[:, 0]


def q_taken(q_apply, params, obs, action):
    """Q(o)[a] per sample."""
    return jnp.take_along_axis(q_apply(params, obs), action[:, None], axis=-1)[:, 0]


def td_errors(q_apply, params, target_params, batch: Transition, gamma, double_dqn: bool):
    """delta = Q(o)[a] - y per sample, y = r + gamma * (0 if d else V_target(o')), y without gradient."""
    next_value = bootstrap_value(q_apply, params, target_params, batch.next_obs, double_dqn)
    target = batch.reward + gamma * jnp.where(batch.terminal, 0.0, next_value)
    return q_taken(q_apply, params, batch.obs, batch.action) - jax.lax.stop_gradient(target)


def td_loss(q_apply, params, target_params, batch: Transition, gamma, double_dqn: bool):
    """Mean over the batch of delta^2: no 1/2 factor and no Huber (quirk Q11). Prioritized replay weights
    each sample's delta^2 by its importance weight (in `make`, where the deltas become priorities)."""
    return jnp.mean(td_errors(q_apply, params, target_params, batch, gamma, double_dqn) ** 2)


def per_beta(schedule: str, hp: DQNHyperparams, env_steps, episodes_done, num_steps: int):
    """Importance-sampling exponent: "linear" from per_beta0 to 1 over the run's environment steps, or
    "exponential" 1 - exp(-per_beta_rate * finished episodes) (per_beta0 unused there)."""
    if schedule == "linear":
        return hp.per_beta0 + (1.0 - hp.per_beta0) * jnp.minimum(env_steps / num_steps, 1.0)
    if schedule == "exponential":
        return 1.0 - jnp.exp(-hp.per_beta_rate * episodes_done)
    raise ValueError(f"unknown per_beta_schedule '{schedule}' (known: linear, exponential)")


def make(config, env, env_params) -> Agent:
    num_actions = env.action_space(env_params).n
    obs_shape = tuple(env.observation_space(env_params).shape)
    q_net = q_network(num_actions, config["num_hidden_layers"], config["num_hidden_units"], config["activation"],
                      obs_shape=obs_shape, dueling=config["dueling"], dueling_aggregation=config["dueling_aggregation"],
                      torso=config["torso"], conv_channels=config["conv_channels"],
                      conv_kernel_sizes=config["conv_kernel_sizes"], conv_strides=config["conv_strides"])
    prioritized = config["prioritized_replay"]
    make_buffer = make_prioritized_replay_buffer if prioritized else make_replay_buffer
    buffer = make_buffer(config["buffer_size"], config["batch_size"])
    strategy, epsilon_schedule = config["exploration_strat"], config["epsilon_schedule"]
    double_dqn, use_target = config["double_DQN"], config["use_target"]
    updates_per_step, chunk_length = config["updates_per_step"], config["eval_frequency"]
    fix_stale_obs = config["fix_stale_obs_after_reset"]
    replay_obs_dtype = REPLAY_OBS_DTYPES.get(config["replay_obs_dtype"])  # None: the observation's own dtype
    visitation = make_visitation(env, num_envs=1)

    def optimizer(hp: DQNHyperparams):
        return adamw(hp.learning_rate, hp.b1, hp.b2, hp.eps_adam, hp.weight_decay,
                     decay_scaled_by_learning_rate=config["fix_weight_decay"])

    def init(key, hp: DQNHyperparams) -> DQNState:
        net_key, env_key = jax.random.split(key)
        obs, env_state = env.reset(env_key, env_params)
        params = q_net.init(net_key, obs)
        stored_obs = obs if replay_obs_dtype is None else obs.astype(replay_obs_dtype)
        example = Transition(obs=stored_obs, action=jnp.int32(0), reward=jnp.float32(0), next_obs=stored_obs,
                             terminal=jnp.bool_(False))
        return DQNState(params=params, target_params=params, opt_state=optimizer(hp).init(params),
                        replay=buffer.init(example, hp.per_alpha) if prioritized else buffer.init(example),
                        env_state=env_state, env_steps=jnp.int32(0),
                        episodes_done=jnp.int32(0), episode_return=jnp.float32(0), episode_length=jnp.int32(0),
                        visits=None if visitation is None else visitation.init())

    def learn(state: DQNState, key, hp: DQNHyperparams):
        """Refresh the target (keyed on env steps, before the updates), then updates_per_step updates."""
        target_params = refreshed_target(state.params, state.target_params, state.env_steps,
                                         hp.target_update_frequency, use_target)

        def loss(params, batch):
            return td_loss(q_net.apply, params, target_params, batch, hp.gamma, double_dqn)

        def apply_gradient(params, opt_state, grads):
            updates, opt_state = optimizer(hp).update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        if not prioritized:
            def update(carry, sample_key):
                params, opt_state = carry
                grads = jax.grad(loss)(params, buffer.sample(state.replay, sample_key))
                return apply_gradient(params, opt_state, grads), None

            (params, opt_state), _ = jax.lax.scan(update, (state.params, state.opt_state),
                                                  jax.random.split(key, updates_per_step))
            return state.replace(params=params, opt_state=opt_state, target_params=target_params), {}

        beta = per_beta(config["per_beta_schedule"], hp, state.env_steps, state.episodes_done, config["num_steps"])

        def loss_and_errors(params, batch, weights):
            delta = td_errors(q_net.apply, params, target_params, batch, hp.gamma, double_dqn)
            return jnp.mean(weights * delta**2), delta

        def prioritized_update(carry, sample_key):
            params, opt_state, replay = carry
            batch, indices, weights = buffer.sample(replay, sample_key, beta)
            grads, delta = jax.grad(loss_and_errors, has_aux=True)(params, batch, weights)
            replay = buffer.update_priorities(replay, indices, jnp.abs(delta), hp.per_eps)
            return (*apply_gradient(params, opt_state, grads), replay), None

        (params, opt_state, replay), _ = jax.lax.scan(prioritized_update, (state.params, state.opt_state, state.replay),
                                                      jax.random.split(key, updates_per_step))
        return state.replace(params=params, opt_state=opt_state, target_params=target_params, replay=replay), {}

    def interact(state: DQNState, key, hp: DQNHyperparams, train: bool):
        def act(state, obs, key):
            epsilon = scheduled_epsilon(epsilon_schedule, hp, state.episodes_done, state.env_steps)
            return behaviour_action(strategy, key, q_net.apply(state.params, obs), hp.softmax_temp, epsilon)

        def store(state, obs, action, reward, next_obs, terminated):
            return buffer.add(state.replay, Transition(obs, action, reward, next_obs, terminated))

        return interaction_chunk(env, env_params, chunk_length, fix_stale_obs, state, key, train, act=act, store=store,
                                 learn=lambda state, key: learn(state, key, hp), visitation=visitation)

    evaluate = make_greedy_evaluation(env, env_params, config, lambda state, obs: q_net.apply(state.params, obs))

    return Agent(init=init, interact=interact, evaluate=evaluate, saved_params=lambda state: {"Q": state.params},
                 hparams=hyperparams_from_config(config))
