"""The agent-environment loop shared by the DQN family and the model-based agents: one chunk of
training steps in a `lax.scan`, and the greedy evaluation protocol (spec sections 2.4 and 2.7).

The agent supplies what differs (how it acts, what it stores, how it learns); the loop owns the
environment, the auto-reset, the per-episode records and the quirk Q1 of acting on a stale observation.
An agent's state must carry the fields `env_state`, `replay`, `env_steps`, `episodes_done`,
`episode_return` and `episode_length`.
"""
import jax
import jax.numpy as jnp

from envs.autoreset import presample_resets, step_with_reset


def interaction_chunk(env, env_params, chunk_length: int, fix_stale_obs: bool, state, key, train: bool, *,
                      act, store, learn, learn_metric_names=(), visitation=None):
    """chunk_length environment steps of one run; returns (state, metrics).

    act(state, obs, key) -> action
    store(state, obs, action, reward, next_obs, terminated) -> replay  (`state` is the one before this step,
        so its env_state is the state the action was taken in)
    learn(state, key) -> (state, {name: scalar})  (only when train; called after storing, before t += 1)

    metrics: 'train_reward_rates' (mean score over the chunk, before any reward transform), the per-step episode records
    'episode_ended' / 'episode_return' / 'episode_length', and each of learn_metric_names averaged over
    the chunk's steps (NaN when the chunk did not train). With a `visitation` bundle (environments with
    rooms, agents/components/visitation.py) the state's `visits` records every state acted from, and the
    metrics gain the run's cumulative 'rooms_visited' and 'cells_visited'.
    """

    def env_step(carry, step):
        state, obs = carry
        act_key, env_key, learn_key, reset = step
        action = act(state, obs, act_key)
        if visitation is not None:
            state = state.replace(visits=visitation.visit(state.visits, *visitation.of_state(state.env_state)))
        if external:  # the environment resets itself (on the host): no presampled resets
            next_obs, env_state, reward, terminated, truncated, info = env.step(env_key, state.env_state, action,
                                                                                env_params)
        else:
            next_obs, env_state, reward, terminated, truncated, info = step_with_reset(
                env, env_key, state.env_state, action, env_params, reset)
        last_obs = info["final_observation"]  # the post-step observation, before any auto-reset
        reward = reward.astype(jnp.float32)
        score = game_score(info, reward)
        replay = store(state, obs, action, reward, last_obs, terminated)
        episode_return, episode_length = state.episode_return + score, state.episode_length + 1
        ended = terminated | truncated
        state = state.replace(env_state=env_state, replay=replay, episodes_done=state.episodes_done + ended,
                              episode_return=jnp.where(ended, 0.0, episode_return),
                              episode_length=jnp.where(ended, 0, episode_length))
        learn_metrics = {}
        if train:
            state, learn_metrics = learn(state, learn_key)
        state = state.replace(env_steps=state.env_steps + 1)
        record = {"reward": score, "episode_ended": ended, "episode_return": episode_return,
                  "episode_length": episode_length}
        # Quirk Q1: the paper code acts next on the old episode's post-terminal observation.
        return (state, next_obs if fix_stale_obs else last_obs), (record, learn_metrics)

    act_keys, env_keys, learn_keys = jnp.moveaxis(
        jax.vmap(lambda k: jax.random.split(k, 3))(jax.random.split(key, chunk_length)), 1, 0)
    external = getattr(env, "external_state", False)
    resets = jnp.zeros(chunk_length) if external else None
    if not external:
        env_keys, resets = presample_resets(env, env_keys, env_params)
    # The observation is recomputed from the env state at every chunk start, as in the paper code.
    first_obs = env.get_obs(state.env_state, env_params)
    (state, _), (record, learn_metrics) = jax.lax.scan(env_step, (state, first_obs),
                                                       (act_keys, env_keys, learn_keys, resets))
    # Per step, so the host can list every finished training episode: (return, length) where it ended.
    metrics = {"train_reward_rates": jnp.mean(record["reward"]), "episode_ended": record["episode_ended"],
               "episode_return": record["episode_return"], "episode_length": record["episode_length"]}
    if visitation is not None:
        metrics.update(visitation.counts(state.visits))
    for name in learn_metric_names:
        metrics[name] = jnp.mean(learn_metrics[name]) if train else jnp.float32(jnp.nan)
    return state, metrics


def game_score(info: dict, reward: jax.Array) -> jax.Array:
    """The environment's own reward, which returns and reward rates report: a reward transform (clipping,
    tanh) changes only what the agent learns from and keeps the score in info["raw_reward"]."""
    return info.get("raw_reward", reward).astype(jnp.float32)


def make_greedy_evaluation(env, env_params, config, q_values, input_needs_key: bool = False):
    """eval_batch_size episodes from fresh resets, greedy in q_values, eval_steps steps each.

    q_values(state, obs) -> (num_actions,), or q_values(state, obs, key) with input_needs_key (the latent
    agent acts on a fresh encoder sample of every observation; that step's key is split for it).
    Episodic: the return up to and including the first terminal step (no reset, later rewards masked;
    a policy that never terminates scores -eval_steps on ProcMaze). Continuing: reward per step.
    """
    episodic, num_steps, num_episodes = config["episodic_env"], config["eval_steps"], config["eval_batch_size"]

    def episode(state, key):
        reset_key, loop_key = jax.random.split(key)
        obs, env_state = env.reset(reset_key, env_params)

        def step(carry, step_key):
            env_state, obs, terminated, total = carry
            if input_needs_key:
                input_key, step_key = jax.random.split(step_key)
                action = jnp.argmax(q_values(state, obs, input_key))
            else:
                action = jnp.argmax(q_values(state, obs))
            obs, env_state, reward, terminal, info = env.step_env(step_key, env_state, action, env_params)
            reward = game_score(info, reward)
            if episodic:
                total = total + reward * ~terminated
                # A time limit ends a gymnax task's episode too (the paper's environments have none).
                terminated = terminated | terminal | env.is_truncated(env_state, env_params)
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


def refreshed_target(params, target_params, env_steps, target_update_frequency, use_target: bool):
    """The target for this training step's updates: a copy of the online params whenever
    env_steps % frequency == 0 (keyed on environment steps, before the updates: quirk Q10); without a
    target network, the online params as they are at the start of the step."""
    if not use_target:
        return params
    refresh = env_steps % target_update_frequency == 0
    return jax.tree.map(lambda p, t: jnp.where(refresh, p, t), params, target_params)
