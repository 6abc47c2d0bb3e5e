"""PPO with two value streams, and intrinsic motivation by network distillation: none, RND, SND, SND + entropy
(the RND/SND author's agents are the defaults, the RND paper's and PureJaxRL's choices are switches).

Reads top to bottom: state -> one rollout of T steps in N environments (intrinsic rewards from the distillation
networks as it goes) -> advantages -> the update (epochs x minibatches: a PPO step, a predictor step, for SND a
target step) -> the chunk (a scan of updates) -> evaluation. The config keys and hyperparameters are in
agents/ppo_config.py, the networks and the PPO loss in agents/ppo_networks.py, the distillation pieces in
agents/components/distillation.py, GAE and the running statistics in agents/components/advantages.py.

A run has `num_envs` environments stepped together (vmapped inside the run; the harness vmaps runs outside).
The harness's steps count transitions: one update consumes num_envs x rollout_length of them, and a chunk
(eval_frequency steps) is a whole number of updates. The evaluation of a chunk is the mean game score of the
training episodes that ended in it (the previous chunk's value when none did): the author's protocol logs
training episodes, there is no separate greedy evaluation.
"""
import jax
import jax.numpy as jnp
import optax
from flax import struct

from agents.components import distillation as distill
from agents.components.advantages import RunningMean, RunningMoments, gae
from agents.components.agent import Agent
from agents.components.interaction import game_score
from agents.components.networks import unit_float
from agents.components.visitation import make_visitation, visitation_of
from agents.ppo_config import (  # noqa: F401 (CONFIG_SCHEMAS, DISTILLATIONS, check_config: the family's names)
    CONFIG_SCHEMAS, DISTILLATIONS, PPOHyperparams, check_config, distillation_defaults, hyperparams_from_config)
from agents.ppo_networks import distillation_view, explained_variance, policy_network, ppo_loss
from envs.autoreset import presample_resets, step_with_reset


@struct.dataclass
class Distillation:
    """The distillation networks, their optimisers and statistics (empty dicts where the variant has none)."""
    target: dict
    predictor: dict
    predictor_opt: optax.OptState
    target_opt: optax.OptState  # SND only
    entropy_model: dict  # SND + entropy only
    entropy_opt: optax.OptState
    obs_stats: RunningMean
    return_filter: jax.Array  # (N,) the RND paper's discounted intrinsic return per environment
    return_moments: RunningMoments
    feature_buffer: jax.Array  # (N, K, F) SND + entropy
    buffer_index: jax.Array


@struct.dataclass
class PPOState:
    params: dict
    opt_state: optax.OptState
    distill: Distillation
    env_state: object
    obs: jax.Array  # (N, ...) the observation each environment acts from
    started: jax.Array  # (N,) bool: the observation is an episode's first
    episode_return: jax.Array  # (N,) game score so far
    episode_length: jax.Array
    visits: object  # rooms and cells (environments with rooms), else None
    first_milestone_step: jax.Array  # (milestones,) transitions until the run first reached each (key, door, ...)
    env_steps: jax.Array
    updates: jax.Array
    last_return: jax.Array


def make(config, env, env_params) -> Agent:
    config = {**config, **distillation_defaults(config)}  # obs_norm and predictor_keep_prob per variant
    num_envs, horizon = config["num_envs"], config["rollout_length"]
    per_update = num_envs * horizon
    updates_per_chunk = config["eval_frequency"] // per_update
    total_updates = config["num_steps"] // per_update
    minibatch = per_update // config["num_minibatches"]
    steps_per_update = config["epochs"] * config["num_minibatches"]
    variant = config["distillation"]
    distilling = variant in ("rnd", "snd", "snd_entropy")  # the variants with distillation networks
    num_streams = {"none": 2, "constant": 2, "rnd": 2, "snd": 2, "snd_entropy": 3}[variant]
    num_actions = env.action_space(env_params).n
    obs_shape = tuple(env.observation_space(env_params).shape)
    net = policy_network(config, num_actions, num_streams)
    images = len(obs_shape) == 3
    target_net, predictor_net = distill.distillation_networks(config["distill_conv_channels"],
                                                              config["distill_conv_strides"],
                                                              config["distill_features"], images)
    entropy_net, _ = distill.distillation_networks(config["distill_conv_channels"], config["distill_conv_strides"],
                                                   config["entropy_features"], images)
    keep_prob = config["predictor_keep_prob"]
    view, newest_frame = distillation_view(config, obs_shape)
    stats_on_next = variant == "rnd"  # the author's RND updates the mean with s_t+1, SND with s_t
    visitation = make_visitation(env, num_envs=num_envs)
    found = visitation_of(env)
    milestone_names = tuple(getattr(found[0], "milestone_names", ())) if found is not None else ()
    milestones_of = (None if not milestone_names else
                     lambda state: jnp.stack([found[0].milestones(found[1](state))[m] for m in milestone_names]))
    # An episode succeeds when it ends holding the environment's last milestone (the treasure).
    success_index = len(milestone_names) - 1 if "treasure" in milestone_names[-1:] else None

    def adam(step_size):
        return optax.adam(step_size, b1=0.9, b2=0.999, eps=1e-8)

    def ppo_optimizer(hp: PPOHyperparams):
        return optax.chain(optax.clip_by_global_norm(hp.max_grad_norm),
                           optax.scale_by_adam(b1=0.9, b2=0.999, eps=config["adam_epsilon"]))

    # --- distillation inputs and rewards ------------------------------------------------------------------------
    def distill_input(stats: RunningMean, obs):
        return view(obs, stats.mean, stats.std())

    def intrinsic_reward(d: Distillation, obs, hp: PPOHyperparams):
        """Unclipped bonus (N,) of the current distillation networks."""
        x = distill_input(d.obs_stats, obs)
        target, predicted = target_net.apply(d.target, x), predictor_net.apply(d.predictor, x)
        if variant == "rnd":
            return distill.rnd_reward(target, predicted)
        return distill.snd_reward(target, predicted, hp.int_reward_coeff)

    # --- acting: one rollout --------------------------------------------------------------------------------------
    def rollout(state: PPOState, key, hp: PPOHyperparams):
        """T steps of the N environments; returns (state, the rollout's arrays, time-major (T, N, ...))."""
        step_keys = jax.random.split(key, horizon * num_envs * 2).reshape(horizon, num_envs, 2, -1)
        act_keys, env_keys = step_keys[:, :, 0], step_keys[:, :, 1]
        env_keys, resets = jax.vmap(lambda k: presample_resets(env, k, env_params))(env_keys)

        def step(state: PPOState, inputs):
            act_key, env_key, reset = inputs
            logits, values = net.apply(state.params, state.obs)
            actions = jax.vmap(jax.random.categorical)(act_key, logits)
            log_probs = jnp.take_along_axis(jax.nn.log_softmax(logits), actions[:, None], axis=1)[:, 0]
            visits = state.visits
            if visitation is not None:
                visits = visitation.visit(visits, *jax.vmap(visitation.of_state)(state.env_state))
            obs, env_state, reward, terminated, truncated, info = jax.vmap(
                lambda k, s, a, r: step_with_reset(env, k, s, a, env_params, r))(env_key, state.env_state, actions,
                                                                                   reset)
            done = terminated | truncated
            score = game_score(info, reward)
            d, bonus = state.distill, {}
            if distilling:
                stats_batch = info["final_observation"] if stats_on_next else state.obs
                d = d.replace(obs_stats=d.obs_stats.update(unit_float(stats_batch)))
                rewarded = info["final_observation"] if config["int_reward_on"] == "next" else state.obs
                bonus["int"] = intrinsic_reward(state.distill, rewarded, hp)
            if variant == "constant":  # the control: the same bonus whatever the state
                bonus["int"] = jnp.full(num_envs, hp.constant_bonus)
            if variant == "snd_entropy":
                features = entropy_net.apply(d.entropy_model, newest_frame(unit_float(state.obs)))
                buffer, raw = distill.feature_buffer_reward(d.feature_buffer, features, d.buffer_index,
                                                            state.started, hp.entropy_reward_coeff)
                d = d.replace(feature_buffer=buffer, buffer_index=(d.buffer_index + 1) % config["entropy_buffer_size"])
                bonus["int_b"] = raw
            first = jnp.full(len(milestone_names), -1, jnp.int32)
            succeeded = jnp.zeros(num_envs, jnp.bool_)
            if milestones_of is not None:
                held = jax.vmap(milestones_of)(info["final_state"])  # (N, milestones)
                first = jnp.where(jnp.any(held, axis=0), state.env_steps + num_envs, -1)
                if success_index is not None:
                    succeeded = done & held[:, success_index]
            episode_return = state.episode_return + score
            episode_length = state.episode_length + 1
            per_episode_rooms = jnp.zeros(num_envs, jnp.int32)
            if visitation is not None:
                visits, per_episode_rooms = visitation.close_episodes(visits, done)
            record = {"obs": state.obs, "action": actions, "log_prob": log_probs, "values": values,
                      "reward": reward.astype(jnp.float32), "done": done, "bonus": bonus,
                      "ended_return": jnp.where(done, episode_return, 0.0),
                      "ended_length": jnp.where(done, episode_length, 0), "ended_rooms": per_episode_rooms,
                      "succeeded": succeeded, "first": first}
            state = state.replace(env_state=env_state, obs=obs, started=done, distill=d, visits=visits,
                                  episode_return=jnp.where(done, 0.0, episode_return),
                                  episode_length=jnp.where(done, 0, episode_length),
                                  env_steps=state.env_steps + num_envs)
            return state, record

        return jax.lax.scan(step, state, (act_keys, env_keys, resets))

    # --- advantages (the RND/SND author's code) -----------------------------------------------------------------------
    def rewards_and_advantages(state: PPOState, record, hp: PPOHyperparams):
        _, last_values = net.apply(state.params, state.obs)
        streams = [("ext", record["reward"], hp.gamma_ext, hp.ext_adv_coeff, True)]
        d, stats = state.distill, {}
        if variant != "none":
            raw = record["bonus"]["int"]
            if config["int_reward_norm"] == "return_std":  # the RND paper: a per-environment forward filter
                def discount(total, reward):
                    total = total * hp.gamma_int + reward
                    return total, total
                filter_end, filtered = jax.lax.scan(discount, d.return_filter, raw)
                d = d.replace(return_filter=filter_end, return_moments=d.return_moments.update(filtered))
                raw = raw / jnp.sqrt(d.return_moments.var)
            clipped = jnp.clip(raw, 0.0, 1.0)
            stats = {"int_reward_mean": jnp.mean(raw), "int_reward_std": jnp.std(raw), "int_reward_max": jnp.max(raw),
                     "int_reward_clipped_mean": jnp.mean(clipped), "int_reward_clip_fraction": jnp.mean(raw >= 1.0)}
            streams.append(("int", clipped, hp.gamma_int, hp.int_adv_coeff, config["int_episodic"]))
        else:
            streams.append(("int", jnp.zeros_like(record["reward"]), hp.gamma_int, hp.int_adv_coeff, True))
        if variant == "snd_entropy":
            clipped = jnp.clip(record["bonus"]["int_b"], 0.0, 1.0)
            stats["int_b_reward_mean"] = jnp.mean(clipped)
            streams.append(("int_b", clipped, hp.gamma_int_b, hp.entropy_adv_coeff, True))
        advantage, returns = 0.0, []
        for index, (_, rewards, gamma, coefficient, episodic) in enumerate(streams):
            a, r = gae(rewards, record["values"][..., index], record["done"], last_values[:, index], gamma,
                       hp.gae_lambda, episodic, config["fix_bootstrap_last"])
            advantage, returns = advantage + coefficient * a, returns + [r]
        returns = jnp.stack(returns, axis=-1)
        stats["explained_variance_ext"] = explained_variance(record["values"][..., 0], returns[..., 0])
        stats["explained_variance_int"] = explained_variance(record["values"][..., 1], returns[..., 1])
        return state.replace(distill=d), advantage, returns, stats

    # --- the update (the RND/SND author's code) ---------------------------------------------------------------------
    def update(state: PPOState, record, advantage, returns, key, hp: PPOHyperparams):
        flat = jax.tree.map(lambda x: x.reshape((per_update,) + x.shape[2:]),
                            {"obs": record["obs"], "action": record["action"], "log_prob": record["log_prob"],
                             "advantage": advantage, "returns": returns, "values": record["values"]})
        if variant == "rnd":  # a frozen target: its features of the rollout once, not in every epoch's minibatches
            def target_features(obs, d=state.distill):
                return target_net.apply(d.target, distill_input(d.obs_stats, obs[None]))[0]
            flat["target"] = jax.lax.map(target_features, flat["obs"], batch_size=minibatch)
        step_size = hp.learning_rate * (1.0 - state.updates / total_updates if config["anneal_learning_rate"]
                                        else 1.0)
        order_keys = jax.random.split(key, config["epochs"] + 1)
        if config["minibatch_sampling"] == "permutation":
            orders = jax.vmap(lambda k: jax.random.permutation(k, per_update))(order_keys[1:])
        else:
            orders = jax.random.randint(order_keys[1], (config["epochs"], per_update), 0, per_update)
        indices = orders.reshape(steps_per_update, minibatch)
        step_keys = jax.random.split(order_keys[0], steps_per_update)

        def minibatch_step(carry, inputs):
            params, opt_state, d = carry
            index, step_key = inputs
            batch = jax.tree.map(lambda x: x[index], flat)
            (_, metrics), grads = jax.value_and_grad(ppo_loss, argnums=1, has_aux=True)(
                net.apply, params, batch, hp, config["normalize_advantages"], config["value_clip"])
            metrics["grad_norm"] = optax.tree.norm(grads)
            updates, opt_state = ppo_optimizer(hp).update(grads, opt_state, params)
            params = optax.apply_updates(params, jax.tree.map(lambda u: -step_size * u, updates))
            if distilling:
                d, distill_metrics = distillation_step(d, batch["obs"], flat["obs"], step_key, hp,
                                                       batch.get("target"))
                metrics.update(distill_metrics)
            return (params, opt_state, d), metrics

        (params, opt_state, d), metrics = jax.lax.scan(minibatch_step, (state.params, state.opt_state, state.distill),
                                                       (indices, step_keys))
        metrics = jax.tree.map(jnp.mean, metrics)
        return state.replace(params=params, opt_state=opt_state, distill=d, updates=state.updates + 1), metrics

    def distillation_step(d: Distillation, states, all_states, key, hp: PPOHyperparams, target=None):
        """One predictor step on the minibatch's states (`target`: their target features when already known); for
        SND one target step (and the entropy model's) on pairs drawn from the whole rollout."""
        mask_key, pair_key, augment_key = jax.random.split(key, 3)
        x = distill_input(d.obs_stats, states)
        target = target_net.apply(d.target, x) if target is None else target

        def predictor_loss(params):
            return distill.masked_distillation_loss(mask_key, target, predictor_net.apply(params, x), keep_prob,
                                                    config["mask_mode"])

        (loss, kept), grads = jax.value_and_grad(predictor_loss, has_aux=True)(d.predictor)
        updates, predictor_opt = adam(hp.distill_learning_rate).update(grads, d.predictor_opt, d.predictor)
        d = d.replace(predictor=optax.apply_updates(d.predictor, updates), predictor_opt=predictor_opt)
        metrics = {"predictor_loss": loss, "mask_kept_fraction": kept}
        if variant in ("snd", "snd_entropy"):
            anchors, partners, labels = distill.sample_pairs(pair_key, per_update, config["snd_pairs"])
            a_key, b_key = jax.random.split(augment_key)

            def contrastive(params, network, normalise):
                view = (lambda s: distill_input(d.obs_stats, s)) if normalise else (
                    lambda s: newest_frame(unit_float(s)))
                xa = distill.augment(a_key, view(all_states[anchors]), config["snd_augmentation"])
                xb = distill.augment(b_key, view(all_states[partners]), config["snd_augmentation"])
                return distill.contrastive_loss(network.apply(params, xa), network.apply(params, xb), labels,
                                                config["snd_l2_coeff"], config["snd_hinge"])

            (_, diagnostics), grads = jax.value_and_grad(contrastive, has_aux=True)(d.target, target_net, True)
            updates, target_opt = adam(hp.target_learning_rate).update(grads, d.target_opt, d.target)
            d = d.replace(target=optax.apply_updates(d.target, updates), target_opt=target_opt)
            metrics.update(diagnostics)
            if variant == "snd_entropy":
                (_, _), grads = jax.value_and_grad(contrastive, has_aux=True)(d.entropy_model, entropy_net, False)
                updates, entropy_opt = adam(hp.target_learning_rate).update(grads, d.entropy_opt, d.entropy_model)
                d = d.replace(entropy_model=optax.apply_updates(d.entropy_model, updates), entropy_opt=entropy_opt)
        return d, metrics

    # --- the harness contract ---------------------------------------------------------------------------------
    def reset_all(key):
        return jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), env_params)

    def seeded_obs_stats(key, stats: RunningMean):
        """The author's start: obs_norm_init_steps steps of uniformly random actions update the running mean."""
        obs, env_state = reset_all(key)

        def random_step(carry, step_key):
            obs, env_state, stats = carry
            action_key, env_key = jax.random.split(step_key)
            actions = jax.random.randint(action_key, (num_envs,), 0, num_actions)
            next_obs, env_state, *_ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(env_key, num_envs), env_state, actions, env_params)
            stats = stats.update(unit_float(next_obs if stats_on_next else obs))
            return (next_obs, env_state, stats), None

        (_, _, stats), _ = jax.lax.scan(random_step, (obs, env_state, stats),
                                        jax.random.split(key, config["obs_norm_init_steps"]))
        return stats

    def init(key, hp: PPOHyperparams) -> PPOState:
        net_key, target_key, predictor_key, entropy_key, env_key, stats_key = jax.random.split(key, 6)
        obs, env_state = reset_all(env_key)
        params = net.init(net_key, obs)
        example = newest_frame(unit_float(obs))
        d = Distillation(target={}, predictor={}, predictor_opt={}, target_opt={}, entropy_model={}, entropy_opt={},
                         obs_stats=RunningMean.create(obs_shape), return_filter=jnp.zeros(num_envs),
                         return_moments=RunningMoments.create(), feature_buffer=jnp.zeros((0,)),
                         buffer_index=jnp.int32(0))
        if distilling:
            target, predictor = target_net.init(target_key, example), predictor_net.init(predictor_key, example)
            if variant == "rnd" and config["rnd_coupled_init"]:
                target, predictor = distill.coupled_init(jax.random.fold_in(target_key, 1), target, predictor)
            d = d.replace(target=target, predictor=predictor,
                          predictor_opt=adam(hp.distill_learning_rate).init(predictor))
            if config["obs_norm"] != "none" and config["obs_norm_init_steps"]:
                d = d.replace(obs_stats=seeded_obs_stats(stats_key, d.obs_stats))
        if variant in ("snd", "snd_entropy"):
            d = d.replace(target_opt=adam(hp.target_learning_rate).init(d.target))
        if variant == "snd_entropy":
            entropy_model = entropy_net.init(entropy_key, example)
            d = d.replace(entropy_model=entropy_model, entropy_opt=adam(hp.target_learning_rate).init(entropy_model),
                          feature_buffer=jnp.zeros((num_envs, config["entropy_buffer_size"],
                                                    config["entropy_features"])))
        return PPOState(params=params, opt_state=ppo_optimizer(hp).init(params), distill=d, env_state=env_state,
                        obs=obs, started=jnp.ones(num_envs, jnp.bool_), episode_return=jnp.zeros(num_envs),
                        episode_length=jnp.zeros(num_envs, jnp.int32),
                        visits=None if visitation is None else visitation.init(),
                        first_milestone_step=jnp.full(len(milestone_names), -1, jnp.int32), env_steps=jnp.int32(0),
                        updates=jnp.int32(0), last_return=jnp.float32(jnp.nan))

    def one_update(state: PPOState, key, hp: PPOHyperparams):
        rollout_key, update_key = jax.random.split(key)
        state, record = rollout(state, rollout_key, hp)
        state, advantage, returns, stats = rewards_and_advantages(state, record, hp)
        state, metrics = update(state, record, advantage, returns, update_key, hp)
        episodes = {"ended": jnp.sum(record["done"]), "return": jnp.sum(record["ended_return"]),
                    "length": jnp.sum(record["ended_length"]), "rooms": jnp.sum(record["ended_rooms"]),
                    "rooms_max": jnp.max(record["ended_rooms"]), "succeeded": jnp.sum(record["succeeded"])}
        reached = jnp.max(record["first"], axis=0) >= 0  # which milestones some environment reached
        first_step = jnp.min(jnp.where(record["first"] >= 0, record["first"], jnp.iinfo(jnp.int32).max), axis=0)
        state = state.replace(first_milestone_step=jnp.where((state.first_milestone_step < 0) & reached, first_step,
                                                             state.first_milestone_step))
        return state, ({**metrics, **stats}, episodes)

    def interact(state: PPOState, key, hp: PPOHyperparams, train: bool):
        state, (metrics, episodes) = jax.lax.scan(lambda s, k: one_update(s, k, hp), state,
                                                  jax.random.split(key, updates_per_chunk))
        ended = jnp.sum(episodes["ended"])
        mean_return = jnp.sum(episodes["return"]) / jnp.maximum(ended, 1)
        state = state.replace(last_return=jnp.where(ended > 0, mean_return, state.last_return))
        metrics = jax.tree.map(jnp.mean, metrics)
        metrics.update({"return": jnp.where(ended > 0, mean_return, jnp.nan), "episodes_finished": ended,
                        "length": jnp.where(ended > 0, jnp.sum(episodes["length"]) / jnp.maximum(ended, 1),
                                                    jnp.nan)})
        if visitation is not None:
            metrics.update(visitation.counts(state.visits))
            metrics["rooms_per_episode"] = jnp.where(ended > 0, jnp.sum(episodes["rooms"]) / jnp.maximum(ended, 1),
                                                     jnp.nan)
            metrics["rooms_per_episode_max"] = jnp.max(episodes["rooms_max"])
        for index, name in enumerate(milestone_names):
            step = state.first_milestone_step[index]
            metrics[f"first_{name}_step"] = jnp.where(step >= 0, step.astype(jnp.float32), jnp.nan)
        if success_index is not None:
            metrics["success_rate"] = jnp.where(ended > 0, jnp.sum(episodes["succeeded"]) / jnp.maximum(ended, 1),
                                                jnp.nan)
        return state, metrics

    def evaluate(state: PPOState, key, hp: PPOHyperparams):
        return {"reward_rate": state.last_return}

    def saved_params(state: PPOState):
        return {"policy": state.params, "target": state.distill.target, "predictor": state.distill.predictor,
                "obs_mean": state.distill.obs_stats.mean, "obs_std": state.distill.obs_stats.std()}

    return Agent(init=init, interact=interact, evaluate=evaluate, saved_params=saved_params,
                 hparams=hyperparams_from_config(config))
