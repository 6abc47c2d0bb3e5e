"""PSDRL (Sasso et al. 2023): posterior sampling with a latent GRU world model and a Bayesian last layer.

Reads top to bottom: config keys -> hyperparameters -> state -> networks -> one-step look-ahead -> one model
update -> acting -> chunk -> test episode. The networks are in agents/psdrl_networks.py, the three trainers
(autoencoder, transition + terminal by truncated BPTT, value through the sampled model) in
agents/psdrl_trainers.py, the posterior in agents/components/blr.py, the replay in
agents/components/episode_replay.py, the posterior refit over the whole buffer in agents/psdrl_posterior.py. Faithful to the published code by default
(Sasso et al. 2023; remosasso/PSDRL); FIX_FLAGS lists the opt-in fixes.

Schedule (Sasso et al. 2023; remosasso/PSDRL): a chunk of the harness is `segments` scans of `segment` acting steps, each followed
by one model update: segment = warmup_freq (250) until warmup_length (100k) steps, then update_freq (1000).
The update is never inside a vmapped lax.cond; a run with no finished episode yet keeps its old state
(jnp.where), as the published `ep > 0` guard.
"""
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp
from flax import struct

from agents import psdrl_networks as nets
from agents.components import blr
from agents.components.agent import Agent
from agents.components.config_keys import (AgentSchema, ConfigError, flag, hyperparams_from, positive_float,
                                           positive_int, unit_interval)
from agents.components.episode_replay import make_episode_replay
from agents.components.networks import unit_float
from agents.psdrl_posterior import refit_posterior
from agents.psdrl_trainers import make_trainers

FIX_FLAGS = {
    "textbook_sampling": "Q1: sample W = mu + sqrt(sigma^2) eps chol(Phi)^T (Cov sigma^2 Phi), not mu + eps sigma^2 Phi",
    "fix_random_action_hidden": "Q3: advance the hidden state with an epsilon-random action too",
    "fix_initial_prior": "Q2: start from a zero mean and the prior variances times I (not all ones and I + p 1 1^T)",
    "fix_time_limit_terminal": "Q6: store a time-limit cut as not done (only true terminals train the terminal net)",
}

# --- config keys (config.yaml's, flattened; Sasso et al. 2023; remosasso/PSDRL) ---------------------------------------
CONFIG_KEYS = {
    "reward_prior": positive_float("sigma^2 of the reward row (algorithm.reward_prior)", default=1e-3),
    "transition_prior": positive_float("sigma^2 of the latent rows (algorithm.transition_prior)", default=1e-3),
    "update_freq": positive_int("env steps between model updates after the warm-up", default=1000),
    "warmup_length": positive_int("env steps of the warm-up phase", default=100000),
    "warmup_freq": positive_int("env steps between model updates during the warm-up", default=250),
    "policy_noise": unit_interval("probability of a uniformly random action", default=0.001),
    "time_limit": positive_int("episode cap in agent steps (a training episode lasts up to time_limit + 1, Q7)",
                               default=27000),
    "test": flag("run a test episode after every chunk (experiment.test)", default=True),
    "replay_capacity": positive_int("transitions kept (replay.capacity)", default=100000),
    "batch_size": positive_int("sequences per batch for every trainer (replay.batch_size)", default=125),
    "sequence_length": positive_int("steps per sampled sequence (replay.sequence_length)", default=250),
    "transition_training_iterations": positive_int("batches per update, transition and terminal", default=3),
    "transition_hidden_dim": positive_int("H: transition MLP width is H + gru_dim", default=1536),
    "gru_dim": positive_int("GRU size G", default=756),
    "transition_learning_rate": positive_float("Adam step size, transition net", default=1e-4),
    "window_length": positive_int("TBPTT window = window_length + 1 steps", default=4),
    "value_training_iterations": positive_int("batches per update, value net", default=3),
    "value_hidden_dim": positive_int("value width = value_hidden_dim + gru_dim", default=1536),
    "value_learning_rate": positive_float("Adam step size, value net", default=1e-4),
    "target_update_freq": positive_int("value target copy every this many sequence steps", default=4),
    "discount": unit_interval("gamma, fitting and acting", default=0.99),
    "terminal_hidden_dim": positive_int("terminal net width", default=1536),
    "terminal_learning_rate": positive_float("Adam step size, terminal net", default=1e-4),
    "terminal_training_iterations": positive_int("accepted, never read (Q13: the transition count is used)",
                                                 default=3),
    "representation_training_iterations": positive_int("batches per update, autoencoder", default=3),
    "representation_learning_rate": positive_float("Adam step size, autoencoder", default=1e-4),
    "embed_dim": positive_int("latent size E; must equal conv_feat * 32", default=1536),
    "conv_feat": positive_int("encoder's first conv channels (settings.py CONV_FEAT)", default=48),
    "blr_coefficient": positive_float("first ridge c0 of the posterior solve (BLR_COEFFICIENT)", default=100.0),
    "one_over_lambda": positive_float("beta, the Gram's scale (ONE_OVER_LAMBDA)", default=1.0),
    "terminal_threshold": unit_interval("a predicted terminal >= this ends the look-ahead (TP_THRESHOLD)",
                                        default=0.5),
    "episode_table_size": positive_int("episodes the replay's table holds (whole-episode FIFO)", default=4096),
    "posterior_lanes": positive_int("parallel lanes of the posterior refit over the buffer", default=128),
    "solve_in_float64": flag("the posterior's Cholesky solve in float64 (float32 with the ridge ladder otherwise)",
                             default=True),
    "textbook_sampling": flag(FIX_FLAGS["textbook_sampling"]),
    "fix_random_action_hidden": flag(FIX_FLAGS["fix_random_action_hidden"]),
    "fix_initial_prior": flag(FIX_FLAGS["fix_initial_prior"]),
    "fix_time_limit_terminal": flag(FIX_FLAGS["fix_time_limit_terminal"]),
    # seedsuite extensions (not in the published code)
    "oracle_lookahead": flag("diagnostic ablation: the look-ahead, acting and in the value targets, takes each "
                             "action's true tanh reward and terminal from the environment (a copy of its state "
                             "stepped once per action) instead of the sampled model's; deterministic environments"),
    "reward_loss_weight": positive_float("weight of the reward among the transition model's E + 1 squared errors "
                                         "(1: the published plain mean, Q11)", default=1.0),
}
SWEEPABLE_KEYS = ("transition_learning_rate", "terminal_learning_rate", "value_learning_rate",
                  "representation_learning_rate", "discount", "reward_prior", "transition_prior", "policy_noise",
                  "reward_loss_weight")
SHAPE_KEYS = {name: "the networks" for name in ("transition_hidden_dim", "gru_dim", "value_hidden_dim",
                                                "terminal_hidden_dim", "embed_dim", "conv_feat")}
SHAPE_KEYS.update({"replay_capacity": "the replay ring", "batch_size": "the batches",
                   "sequence_length": "the batches", "episode_table_size": "the replay table",
                   "posterior_lanes": "the posterior refit", "window_length": "the TBPTT windows",
                   "time_limit": "the replay ring and the test episode", "update_freq": "the chunks",
                   "warmup_freq": "the chunks", "warmup_length": "the chunks"})


def check_config(config, obs_shape: tuple) -> None:
    if tuple(obs_shape) != (64, 64, 1):
        raise ConfigError(f"PSDRL needs 64 x 64 x 1 frames (env_wrappers pixels: 64, or the Atari protocol psdrl); "
                          f"{config['environment']} gives {tuple(obs_shape)}")
    if config["embed_dim"] != nets.latent_size(config["conv_feat"]):
        raise ConfigError(f"embed_dim ({config['embed_dim']}) must equal conv_feat * 32 = "
                          f"{nets.latent_size(config['conv_feat'])} (the encoder's 2 x 2 x 8 conv_feat output)")
    phases = ("warmup_freq", "update_freq") if config["num_steps"] > config["warmup_length"] else ("warmup_freq",)
    for name in phases:
        if config["eval_frequency"] % config[name]:
            raise ConfigError(f"{name} ({config[name]}) must divide eval_frequency ({config['eval_frequency']}): "
                              f"a chunk holds whole acting segments, each ended by a model update")
    if config["warmup_length"] % config["eval_frequency"] and config["num_steps"] > config["warmup_length"]:
        raise ConfigError(f"eval_frequency ({config['eval_frequency']}) must divide warmup_length "
                          f"({config['warmup_length']}): a chunk's segments all have one length")
    if config["replay_capacity"] < config["sequence_length"]:
        raise ConfigError("replay_capacity must hold at least one sequence (sequence_length)")


CONFIG_SCHEMAS = {"PSDRL": AgentSchema(name="PSDRL", keys=CONFIG_KEYS, sweepable=SWEEPABLE_KEYS,
                                       shape_keys=SHAPE_KEYS, check=check_config)}


@struct.dataclass
class PSDRLHyperparams:
    representation_learning_rate: float
    transition_learning_rate: float
    terminal_learning_rate: float
    value_learning_rate: float
    discount: float
    reward_prior: float
    transition_prior: float
    policy_noise: float
    reward_loss_weight: float


def hyperparams_from_config(config) -> PSDRLHyperparams:
    return hyperparams_from(PSDRLHyperparams, config)


@struct.dataclass
class PSDRLState:
    params: dict  # autoencoder, transition (GRU + head), terminal, value
    target_value: Any
    opt_states: dict  # one persistent Adam state per network (Q12)
    posterior: blr.Posterior
    weights: jax.Array  # the sampled last layer W (E + 1, L): drives acting until the next update
    replay: Any
    env_state: Any
    frame: jax.Array  # the current observation (uint8)
    hidden: jax.Array  # (G,) the acting GRU state
    episode_step: jax.Array
    episodes_done: jax.Array  # `ep`: no update before the first episode ends (Q20)
    episode_return: jax.Array
    env_steps: jax.Array
    ridge: jax.Array  # the ridge c of the last posterior solve (logged)
    # (ring, A, 2): for each stored step, every action's true (tanh reward, terminal) (oracle_lookahead; else 1 row)
    true_outcomes: jax.Array


def networks(config, num_actions: int):
    """Haiku transforms: autoencoder, encoder, transition step, terminal, value."""
    conv_feat, gru = config["conv_feat"], config["gru_dim"]
    width = config["transition_hidden_dim"] + gru
    embed = config["embed_dim"]

    def transition(latent, action, hidden):
        x = jnp.concatenate([latent, jax.nn.one_hot(action, num_actions)], axis=-1)
        hidden = nets.GRUCell(gru)(x, hidden)
        phi, prediction = nets.TransitionHead(width, embed + 1)(jnp.concatenate([hidden, x], axis=-1))
        return hidden, phi, prediction

    def value(latent, hidden):
        return nets.mlp_head(jnp.concatenate([latent, hidden], axis=-1), config["value_hidden_dim"] + gru, 4, "value")

    pure = lambda f: hk.without_apply_rng(hk.transform(f))  # noqa: E731
    sliced = jax.default_backend() == "cpu"  # the trained autoencoder only (psdrl_networks' docstring says why)
    return (pure(lambda f: nets.Decoder(conv_feat, sliced)(nets.Encoder(conv_feat, sliced)(f))),
            pure(lambda f: nets.Encoder(conv_feat)(f)), pure(transition),
            pure(lambda s: nets.mlp_head(s, config["terminal_hidden_dim"], 3, "terminal")), pure(value))


def lookahead(config, num_actions: int, transition, terminal, value):
    """The one-step look-ahead through the sampled model (Sasso et al. 2023; remosasso/PSDRL): predict(params, W, s, h) gives, for
    every action, (next latent (A, E), reward (A,), raw terminal (A,), next hidden (A, G)); action_values gives
    Q_a = r_a + gamma V(s'_a, h'_a) 1(terminal_a < threshold) and the next hiddens."""
    embed, gru, threshold = config["embed_dim"], config["gru_dim"], config["terminal_threshold"]

    def predict(params, weights, latent, hidden):
        actions = jnp.arange(num_actions)
        next_hidden, phi, _ = transition.apply(params["transition"], jnp.broadcast_to(latent, (num_actions, embed)),
                                               actions, jnp.broadcast_to(hidden, (num_actions, gru)))
        output = jnp.dot(phi, weights.T)  # the sampled last layer: no bias (the posterior has no intercept)
        next_latent, reward = output[:, :embed], output[:, embed]
        return next_latent, reward, terminal.apply(params["terminal"], next_latent), next_hidden

    def action_values(params, value_params, weights, latent, hidden, discount, outcomes=None):
        """outcomes (A, 2): the true (reward, terminal) per action, replacing the model's (oracle_lookahead)."""
        next_latent, reward, done, next_hidden = predict(params, weights, latent, hidden)
        if outcomes is not None:
            reward, done = outcomes[:, 0], outcomes[:, 1]
        continues = (done < threshold).astype(jnp.float32)
        return reward + discount * value.apply(value_params, next_latent, next_hidden) * continues, next_hidden

    return predict, action_values


def make(config, env, env_params) -> Agent:
    num_actions = env.action_space(env_params).n
    external = getattr(env, "external_state", False)
    if external and config["time_limit"] < env_params.max_steps_in_episode:
        raise ConfigError(f"time_limit ({config['time_limit']}) is below {env.name}'s own episode cap "
                          f"({env_params.max_steps_in_episode} agent steps), which ends its episodes and resets it outside JAX: "
                          f"lower that cap instead (Atari: env_config max_episode_steps)")
    autoencoder, encoder, transition, terminal, value = networks(config, num_actions)
    embed, gru = config["embed_dim"], config["gru_dim"]
    features = config["transition_hidden_dim"] + gru
    batch, sequence = config["batch_size"], config["sequence_length"]
    textbook = config["textbook_sampling"]
    time_limit, chunk_length = config["time_limit"], config["eval_frequency"]
    replay = make_episode_replay(ring=config["replay_capacity"] + 2 * (time_limit + 2),
                                 episodes=config["episode_table_size"], capacity=config["replay_capacity"],
                                 batch=batch, sequence=sequence)

    predict, action_values = lookahead(config, num_actions, transition, terminal, value)
    oracle = config["oracle_lookahead"]

    def true_outcomes(env_state, key):
        """(A, 2): each action's true (tanh reward, terminal), from stepping a copy of env_state once per action."""
        def outcome(action):
            _, stepped, reward, terminated, _ = env.step_env(key, env_state, action, env_params)
            done = terminated | env.is_truncated(stepped, env_params)
            return jnp.stack([jnp.tanh(reward.astype(jnp.float32)), done.astype(jnp.float32)])

        return jax.vmap(outcome)(jnp.arange(num_actions))

    train = make_trainers(config, autoencoder, encoder, transition, terminal, value, action_values)
    keep_if = train.keep_if

    # --- one model update (Sasso et al. 2023; remosasso/PSDRL) --------------------------------------------------------
    def update(state: PSDRLState, key, hp: PSDRLHyperparams):
        ae_key, trans_key, value_key, sample_key = jax.random.split(key, 4)
        params, opt_states = state.params, state.opt_states

        def repeat(key, count, body, carry):
            return jax.lax.scan(lambda c, k: body(c, replay.sample(state.replay, k)), carry,
                                jax.random.split(key, count))

        (ae_params, ae_opt), ae_losses = repeat(
            ae_key, config["representation_training_iterations"],
            lambda c, seqs: (lambda out: ((out[0], out[1]), out[2]))(train.autoencoder(c[0], c[1], seqs, hp)),
            (params["autoencoder"], opt_states["autoencoder"]))
        params = {**params, "autoencoder": ae_params}
        opt_states = {**opt_states, "autoencoder": ae_opt}

        def transition_round(carry, seqs):
            params, opt_states = carry
            params, opt_states, trans_loss, term_loss = train.transition(params, opt_states, seqs, hp)
            return (params, opt_states), (trans_loss, term_loss)

        (params, opt_states), (trans_losses, term_losses) = repeat(
            trans_key, config["transition_training_iterations"], transition_round, (params, opt_states))

        posterior = refit_posterior(config, replay, state.replay, params, encoder, transition,
                                    jnp.array([hp.transition_prior] * embed + [hp.reward_prior]))
        weights = blr.sample(sample_key, posterior, textbook)

        def value_round(carry, seqs):
            value_params, target_params, opt_state = carry
            outcomes = state.true_outcomes[seqs.index] if oracle else None
            value_params, target_params, opt_state, loss = train.value(params, value_params, target_params, opt_state,
                                                                       weights, seqs, outcomes, hp)
            return (value_params, target_params, opt_state), loss

        (value_params, target_value, value_opt), value_losses = repeat(
            value_key, config["value_training_iterations"], value_round,
            (params["value"], state.target_value, opt_states["value"]))
        updated = state.replace(params={**params, "value": value_params}, target_value=target_value,
                                opt_states={**opt_states, "value": value_opt}, posterior=posterior, weights=weights,
                                ridge=posterior.ridge)
        ready = state.episodes_done > 0
        metrics = {"loss_ae": ae_losses[-1], "loss_transition": trans_losses[-1], "loss_terminal": term_losses[-1],
                   "loss_value": value_losses[-1], "ridge": posterior.ridge,
                   "posterior_transitions": replay.stored(state.replay).astype(jnp.float32)}
        metrics = {name: jnp.where(ready, x, jnp.nan) for name, x in metrics.items()}
        return keep_if(ready, updated, state), metrics

    # --- acting (Sasso et al. 2023; remosasso/PSDRL) ------------------------------------------------------------------
    def choose(state: PSDRLState, key, hp: PSDRLHyperparams):
        """(action, next hidden): epsilon-random (h not advanced, Q3) or greedy in the look-ahead with numpy's
        isclose tie-break at random."""
        noise_key, random_key, tie_key = jax.random.split(key, 3)
        hidden = jnp.where(state.episode_step == 0, 0.0, state.hidden)
        latent = encoder.apply(state.params["autoencoder"], unit_float(state.frame))
        outcomes = true_outcomes(state.env_state, jax.random.fold_in(key, 1)) if oracle else None
        q, next_hidden = action_values(state.params, state.params["value"], state.weights, latent, hidden,
                                       hp.discount, outcomes)
        best = jnp.max(q)
        ties = jnp.abs(q - best) <= 1e-8 + 1e-5 * jnp.abs(best)
        greedy = jax.random.categorical(tie_key, jnp.where(ties, 0.0, -jnp.inf))
        explore = jax.random.bernoulli(noise_key, hp.policy_noise)
        action = jnp.where(explore, jax.random.randint(random_key, (), 0, num_actions), greedy)
        advanced = next_hidden[action]
        if not config["fix_random_action_hidden"]:
            advanced = jnp.where(explore, hidden, advanced)
        return action, advanced

    def step_environment(state: PSDRLState, action, step_key, reset_key):
        """(next frame, the first frame of the next episode where this one ended, env state, reward, terminated,
        done). The training cap is time_limit + 1 steps (Q7)."""
        if external:
            # An emulator resets itself on the host, in place, only when its episode ends (as the shared loop
            # steps it): never a reset per step. make() refused a time_limit below the emulator's own cap.
            frame, env_state, reward, terminated, truncated, info = env.step(step_key, state.env_state, action,
                                                                             env_params)
            return info["final_observation"], frame, env_state, reward, terminated, terminated | truncated, info
        next_frame, env_state, reward, terminated, info = env.step_env(step_key, state.env_state, action, env_params)
        done = terminated | env.is_truncated(env_state, env_params) | (state.episode_step >= time_limit)
        reset_frame, reset_state = env.reset_env(reset_key, env_params)
        env_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, env_state)
        return next_frame, reset_frame, env_state, reward, terminated, done, info

    def env_step(state: PSDRLState, key, hp: PSDRLHyperparams):
        act_key, env_key, reset_key = jax.random.split(key, 3)
        action, hidden = choose(state, act_key, hp)
        if oracle:  # kept beside the ring slot this step is written to, for the value targets
            state = state.replace(true_outcomes=state.true_outcomes.at[state.replay.write].set(
                true_outcomes(state.env_state, jax.random.fold_in(env_key, 1))))
        next_frame, reset_frame, env_state, reward, terminated, done, info = step_environment(state, action, env_key,
                                                                                             reset_key)
        stored_done = terminated if config["fix_time_limit_terminal"] else done  # a time-limit cut is terminal (Q6)
        score = info.get("raw_reward", reward).astype(jnp.float32)
        buffer = replay.add(state.replay, action, jnp.tanh(reward.astype(jnp.float32)), next_frame, stored_done,
                            score)
        buffer = jax.tree.map(lambda c, b: jnp.where(done, c, b), replay.commit(buffer), buffer)
        buffer = jax.tree.map(lambda n, b: jnp.where(done, n, b), replay.begin(buffer, reset_frame), buffer)
        episode_return, episode_length = state.episode_return + score, state.episode_step + 1
        state = state.replace(
            replay=buffer, hidden=hidden, env_steps=state.env_steps + 1, env_state=env_state,
            frame=jnp.where(done, reset_frame, next_frame), episode_step=jnp.where(done, 0, state.episode_step + 1),
            episodes_done=state.episodes_done + done, episode_return=jnp.where(done, 0.0, episode_return))
        record = {"episode_ended": done, "episode_return": episode_return,
                  "episode_length": episode_length, "reward": score}
        return state, record

    # --- the harness contract ----------------------------------------------------------------------------
    def init(key, hp: PSDRLHyperparams) -> PSDRLState:
        keys = jax.random.split(key, 7)
        frame, env_state = env.reset(keys[0], env_params)
        dummy = jnp.zeros((1,) + frame.shape, jnp.float32)
        latent = jnp.zeros((1, embed))
        params = {"autoencoder": autoencoder.init(keys[1], dummy),
                  "transition": transition.init(keys[2], latent, jnp.zeros(1, jnp.int32), jnp.zeros((1, gru))),
                  "terminal": terminal.init(keys[3], latent), "value": value.init(keys[4], latent, jnp.zeros((1, gru)))}
        opts = train.optimizers(hp)
        row_prior = jnp.array([hp.transition_prior] * embed + [hp.reward_prior])
        if config["fix_initial_prior"]:
            posterior = blr.Posterior(mean=jnp.zeros((embed + 1, features)), scale=jnp.eye(features),
                                      row_variance=row_prior, ridge=jnp.float32(config["blr_coefficient"]),
                                      shift=jnp.zeros(embed + 1))
        else:
            posterior = blr.initial_posterior(embed + 1, features, config["blr_coefficient"], row_prior)
        buffer = replay.begin(replay.init(frame), frame)
        return PSDRLState(params=params, target_value=params["value"],
                          opt_states={name: opts[name].init(params[name]) for name in opts}, posterior=posterior,
                          weights=blr.sample(keys[5], posterior, textbook), replay=buffer, env_state=env_state,
                          frame=frame, hidden=jnp.zeros(gru), episode_step=jnp.int32(0), episodes_done=jnp.int32(0),
                          episode_return=jnp.float32(0), env_steps=jnp.int32(0), ridge=posterior.ridge,
                          true_outcomes=jnp.zeros((buffer.action.shape[0] if oracle else 1, num_actions, 2)))

    def chunk_phase(time_step: int, train: bool):
        """The segment length of the chunk starting at time_step (static: one compiled program per length)."""
        return (train, config["warmup_freq"] if time_step < config["warmup_length"] else config["update_freq"])

    def interact(state: PSDRLState, key, hp: PSDRLHyperparams, phase):
        train, segment = phase

        def run_segment(state, key):
            step_key, update_key = jax.random.split(key)
            state, record = jax.lax.scan(lambda s, k: env_step(s, k, hp), state, jax.random.split(step_key, segment))
            metrics = {}
            if train:
                state, metrics = update(state, update_key, hp)
            return state, (record, metrics)

        state, (record, metrics) = jax.lax.scan(run_segment, state, jax.random.split(key, chunk_length // segment))
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), record)
        out = {"train_reward_rates": jnp.mean(flat["reward"]), "episode_ended": flat["episode_ended"],
               "episode_return": flat["episode_return"], "episode_length": flat["episode_length"]}
        for name, values in metrics.items():  # the last update of the chunk (NaN before the first episode ends)
            out[name] = values[-1]
        return state, out

    def evaluate(state: PSDRLState, key, hp: PSDRLHyperparams):
        """One test episode with the behaviour policy (the sampled W, the value net, epsilon, tie-breaks; Q19),
        up to time_limit steps, from a fresh reset and h = 0."""
        reset_key, loop_key = jax.random.split(key)
        frame, env_state = env.reset(reset_key, env_params)
        test = state.replace(frame=frame, env_state=env_state, episode_step=jnp.int32(0))

        def running(carry):
            test, _, done, _ = carry
            return ~done & (test.episode_step < time_limit)

        def step(carry):
            test, total, _, key = carry
            key, act_key, env_key = jax.random.split(key, 3)
            action, hidden = choose(test, act_key, hp)
            frame, env_state, reward, terminated, info = env.step_env(env_key, test.env_state, action, env_params)
            done = terminated | env.is_truncated(env_state, env_params)
            total = total + info.get("raw_reward", reward).astype(jnp.float32)
            return (test.replace(frame=frame, env_state=env_state, hidden=hidden, episode_step=test.episode_step + 1),
                    total, done, key)

        if not config["test"]:
            return {"reward_rate": jnp.float32(jnp.nan)}
        _, total, _, _ = jax.lax.while_loop(running, step, (test, jnp.float32(0), jnp.bool_(False), loop_key))
        return {"reward_rate": total}

    def saved_params(state: PSDRLState):
        return {**state.params, "posterior_mean": state.posterior.mean, "sampled_weights": state.weights}

    return Agent(init=init, interact=interact, evaluate=evaluate, saved_params=saved_params,
                 hparams=hyperparams_from_config(config), chunk_phase=chunk_phase, act=choose)
