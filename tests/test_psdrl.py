"""PSDRL as an agent (agents/psdrl.py): its config keys, the chunk schedule, the look-ahead's value targets on a
hand-made model, the posterior refit in lanes against a per-episode reference, an update skipped before the
first episode ends leaving every parameter and Adam state bit-identical, and a tiny run through the harness
that resumes to the same result."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents import psdrl
from agents.components.episode_replay import make_episode_replay
from agents.psdrl_posterior import lane_bounds, refit_posterior
from experiment import config as config_lib
from experiment import runner

TINY = "configs/psdrl/tiny_test.json"


def tiny(**changes):
    raw = config_lib.load_json(TINY)
    return config_lib.validate("PSDRL", {**raw, **changes})


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize("changes, message", [
    ({"env_wrappers": {"pixels": 32}}, "PSDRL needs 64 x 64 x 1 frames"),
    ({"embed_dim": 100}, "embed_dim \\(100\\) must equal conv_feat \\* 32 = 64"),
    ({"warmup_freq": 30}, "warmup_freq \\(30\\) must divide eval_frequency"),
    ({"warmup_length": 150, "num_steps": 300}, "must divide warmup_length"),
    ({"policy_noise": 1.5}, "'policy_noise' must be a number in \\[0, 1\\]"),
    ({"gru_dims": 8}, "unknown config key 'gru_dims' for PSDRL; did you mean 'gru_dim'"),
])
def test_bad_configs_are_refused_naming_the_key(changes, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        tiny(**changes)


def test_published_defaults_and_the_chunk_schedule():
    config = tiny()
    assert config_lib.SCHEMAS["PSDRL"].keys["gru_dim"].default == 756
    assert config_lib.SCHEMAS["PSDRL"].keys["update_freq"].default == 1000
    env, params = envs.make_from_config(config)
    agent = psdrl.make(config, env, params)
    # warmup_length 100, warmup_freq 50, update_freq 100 (tiny_test.json)
    assert agent.chunk_phase(0, True) == (True, 50) and agent.chunk_phase(100, True) == (True, 100)
    assert agent.chunk_phase(0, False) == (False, 50)
    with pytest.raises(config_lib.ConfigError, match="sweep over 'gru_dim' is refused: it shapes the networks"):
        tiny(sweep={"gru_dim": [8, 16]})
    assert len(tiny(sweep={"value_learning_rate": [1e-4, 3e-4]})["sweep"]) == 2


# ------------------------------------------------------------------------------------------ look-ahead
def test_action_values_through_a_hand_made_model():
    """Q_a = r_a + gamma V(s'_a, h'_a) 1(terminal(s'_a) < 0.5), with r_a and s'_a = W phi_a (no bias): checked
    against the networks applied one action at a time, with the terminal forced above and below 0.5."""
    config = tiny()
    num_actions = 3
    _, _, transition, terminal, value = psdrl.networks(config, num_actions)
    predict, action_values = psdrl.lookahead(config, num_actions, transition, terminal, value)
    embed, gru = config["embed_dim"], config["gru_dim"]
    features = config["transition_hidden_dim"] + gru
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    latent, hidden = jax.random.normal(keys[0], (embed,)), jax.random.normal(keys[1], (gru,))
    params = {"transition": transition.init(keys[2], latent[None], jnp.zeros(1, jnp.int32), hidden[None]),
              "terminal": terminal.init(keys[3], latent[None])}
    value_params = value.init(keys[4], latent[None], hidden[None])
    weights = jax.random.normal(jax.random.PRNGKey(9), (embed + 1, features)) * 0.1
    for bias, continues in [(0.7, 0.0), (-0.3, 1.0)]:  # the terminal net's output is its last bias
        term = jax.tree.map(jnp.zeros_like, params["terminal"])
        term["terminal/out"]["b"] = jnp.array([bias])
        model = {**params, "terminal": term}
        q, next_hidden = action_values(model, value_params, weights, latent, hidden, 0.9)
        for a in range(num_actions):
            h, phi, _ = transition.apply(params["transition"], latent[None], jnp.array([a]), hidden[None])
            out = phi[0] @ weights.T
            expected = out[embed] + 0.9 * value.apply(value_params, out[None, :embed], h)[0] * continues
            np.testing.assert_allclose(q[a], expected, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(next_hidden[a], h[0], rtol=1e-6)


# ------------------------------------------------------------------------------------------ posterior
def test_posterior_lanes_equal_a_per_episode_reference():
    """Mixed episode lengths, a wrapped ring and an episode in progress: the lanes' Gram and cross terms (seen
    through the posterior mean and scale) equal running each kept episode from h = 0 on its own."""
    config = tiny(posterior_lanes=3)
    num_actions = 5
    autoencoder, encoder, transition, _, _ = psdrl.networks(config, num_actions)
    embed, gru = config["embed_dim"], config["gru_dim"]
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    params = {"autoencoder": autoencoder.init(keys[0], jnp.zeros((1, 64, 64, 1))),
              "transition": transition.init(keys[1], jnp.zeros((1, embed)), jnp.zeros(1, jnp.int32),
                                            jnp.zeros((1, gru)))}
    replay = make_episode_replay(ring=40, episodes=8, capacity=20, batch=2, sequence=4)
    rng = np.random.default_rng(0)
    frame = lambda: jnp.asarray(rng.integers(0, 256, (64, 64, 1)), jnp.uint8)  # noqa: E731
    state = replay.init(frame())
    episodes = []
    for length in [9, 5, 7, 4, 6, 3, -4]:  # 38 steps with the one in progress: the ring wraps
        state = replay.begin(state, first := frame())
        steps = []
        for step in range(abs(length)):
            action, reward, nxt = int(rng.integers(num_actions)), float(rng.normal()), frame()
            state = replay.add(state, action, np.tanh(reward), nxt, step == length - 1, reward)
            steps.append((action, np.tanh(reward), nxt))
        if length > 0:
            state = replay.commit(state)
        episodes.append((first, steps, length > 0))
    kept = np.asarray(state.valid)
    first_pos, starts, ends = lane_bounds(state, 3)
    assert int(ends[-1]) == int(replay.stored(state)) >= 20
    features = config["transition_hidden_dim"] + gru
    gram, cross = np.zeros((features, features)), np.zeros((features, embed + 1))
    slot_of = {}
    for index, (first, steps, committed) in enumerate(episodes):
        slot_of[index] = index % 8
        if not committed or not kept[index % 8]:
            continue
        h, obs = jnp.zeros((1, gru)), first
        for action, reward, nxt in steps:
            s = encoder.apply(params["autoencoder"], obs[None].astype(jnp.float32) / 255)
            s1 = encoder.apply(params["autoencoder"], nxt[None].astype(jnp.float32) / 255)
            h, phi, _ = transition.apply(params["transition"], s, jnp.array([action]), h)
            phi = np.asarray(phi, np.float64)
            gram += phi.T @ phi
            cross += phi.T @ np.concatenate([np.asarray(s1, np.float64), [[reward]]], axis=1)
            obs = nxt
    expected = refit_posterior(config, replay, state, params, encoder, transition, jnp.ones(embed + 1))
    phi_ref = np.linalg.inv(gram + 100 * np.eye(features))
    np.testing.assert_allclose(expected.scale, phi_ref, rtol=2e-3, atol=1e-7)
    np.testing.assert_allclose(expected.mean, (phi_ref @ cross).T, rtol=2e-3, atol=2e-5)


# ------------------------------------------------------------------------------------------ schedule and runs
def test_update_before_the_first_episode_ends_leaves_everything_bit_identical():
    """ButtonGrid never terminates and the time limit is far: no episode ends, so the update is skipped (the
    published `ep > 0`) and every parameter, target and Adam state is exactly as before; its metrics are NaN."""
    config = tiny(environment="ButtonGrid", env_config={"grid_size": 3}, time_limit=500)
    env, params = envs.make_from_config(config)
    agent = psdrl.make(config, env, params)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0), agent.hparams)
    after, metrics = jax.jit(agent.interact, static_argnums=3)(state, jax.random.PRNGKey(1), agent.hparams, (True, 50))
    assert int(after.episodes_done) == 0 and int(after.env_steps) == 100
    for before_tree, after_tree in [(state.params, after.params), (state.opt_states, after.opt_states),
                                    (state.target_value, after.target_value), (state.weights, after.weights)]:
        for x, y in zip(jax.tree.leaves(before_tree), jax.tree.leaves(after_tree)):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert np.isnan(float(metrics["loss_value"])) and np.isnan(float(metrics["ridge"]))


@pytest.mark.slow  # a whole run, killed and resumed: ~80 s here
def test_tiny_run_through_the_harness_updates_and_resumes_exactly(tmp_path, monkeypatch):
    """A whole run, and one stopped by SIGTERM during its first chunk (checkpoint and .out written) then resumed:
    the same metrics and parameters."""
    import signal

    from test_signals import signal_during_first_chunk
    config = tiny()
    whole = runner.run(config, psdrl.make, seed=3, output=str(tmp_path / "whole"), progress=False)
    metrics = whole["metrics"]
    assert np.asarray(metrics["reward_rates"]).shape == (2, 2)
    assert np.isfinite(np.asarray(metrics["loss_ae"])[-1]).all() and (np.asarray(metrics["ridge"])[-1] == 100).all()
    assert (np.asarray(metrics["posterior_transitions"])[-1] > 0).all()
    signal_during_first_chunk(monkeypatch, signal.SIGTERM)
    with pytest.raises(runner.Interrupted, match="run again with --resume"):
        runner.run(config, psdrl.make, seed=3, output=str(tmp_path / "split"), progress=False)
    monkeypatch.undo()
    assert runner.files.load_metrics(str(tmp_path / "split.out"))["meta"]["chunks_done"] == 1
    resumed = runner.run(config, psdrl.make, seed=3, output=str(tmp_path / "split"), resume=True, progress=False)
    for name in ("reward_rates", "loss_ae", "loss_value", "ridge"):
        np.testing.assert_array_equal(np.asarray(resumed["metrics"][name]), np.asarray(metrics[name]))
    saved = [runner.files.load_pickle(str(tmp_path / f"{p}.params")) for p in ("whole", "split")]
    for x, y in zip(jax.tree.leaves(saved[0]), jax.tree.leaves(saved[1])):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("fixed", [False, True])
def test_fix_flags_initial_prior_and_time_limit_terminal(fixed):
    """Q2: the first sampled W is all ones plus unit noise by default, near zero with fix_initial_prior. Q6: a
    time-limit cut (time_limit 9: ten steps, Q7) is stored as done by default, as not done with the fix."""
    config = tiny(environment="ButtonGrid", env_config={"grid_size": 3}, time_limit=9, fix_initial_prior=fixed,
                  fix_time_limit_terminal=fixed, transition_prior=2e-3, reward_prior=5e-3)
    env, params = envs.make_from_config(config)
    agent = psdrl.make(config, env, params)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0), agent.hparams)
    weights = np.asarray(state.weights)  # 65 x 24 entries
    priors = np.array([2e-3] * 64 + [5e-3], np.float32)  # the configured priors, per output row
    if fixed:  # mean 0, standard deviation sigma^2 (the faithful rule on the fixed prior)
        np.testing.assert_allclose(state.posterior.row_variance, priors)
        assert not np.asarray(state.posterior.shift).any() and np.abs(weights).max() < 0.03
    else:  # mean 1, standard deviation about 1 (eps @ (I + p 1 1^T))
        np.testing.assert_allclose(state.posterior.shift, priors)
        assert abs(weights.mean() - 1.0) < 0.1 and 0.9 < weights.std() < 1.1
    after, record = jax.jit(agent.interact, static_argnums=3)(state, jax.random.PRNGKey(1), agent.hparams,
                                                              (False, 50))
    ended = np.flatnonzero(np.asarray(record["episode_ended"]))
    assert ended.tolist() == [9, 19, 29, 39, 49, 59, 69, 79, 89, 99]  # every 10 steps (ButtonGrid never ends)
    stored_done = np.asarray(after.replay.done)[:100]
    assert stored_done[ended].tolist() == [not fixed] * 10 and not stored_done[np.setdiff1d(np.arange(100), ended)].any()


def test_an_exhausted_ridge_ladder_marks_the_run_diverged():
    """Features of 1e30 overflow the Gram to infinity: no rung of the ridge ladder factors it, the sampled W is not
    finite, and the check the harness runs after every chunk marks the run diverged (its results are then flagged
    in the .out, never silently kept as a policy that always takes action 0)."""
    config = tiny(environment="ButtonGrid", env_config={"grid_size": 3}, time_limit=9)
    env, params = envs.make_from_config(config)
    agent = psdrl.make(config, env, params)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0), agent.hparams)
    huge = jax.tree_util.tree_map_with_path(
        lambda path, x: x * 1e30 if "features" in jax.tree_util.keystr(path) else x, state.params["transition"])
    state = state.replace(params={**state.params, "transition": huge})
    assert bool(runner.all_finite(agent.saved_params(state)))
    after, metrics = jax.jit(agent.interact, static_argnums=3)(state, jax.random.PRNGKey(1), agent.hparams, (True, 50))
    assert int(after.episodes_done) > 0 and float(metrics["ridge"]) == 1e8  # the top of the ladder: 100 * 10^6
    assert not np.isfinite(np.asarray(after.weights)).all()
    finite = runner.all_finite(agent.saved_params(after))
    assert runner.diverged_runs(np.zeros(1, bool), np.asarray(finite)[None], {}).tolist() == [True]


def test_the_oracle_lookahead_takes_the_true_reward_and_terminal():
    """oracle_lookahead on rendered Catch, one step before the ball lands: the true terminal masks V and the true
    reward (tanh of +-1) decides, so the act is the catching move whenever the ball is within reach, whatever the
    (untrained) model says; ball_x 1, 2, 3 from the middle column need left, stay, right."""
    config = tiny(environment="Catch-bsuite", env_config={}, env_wrappers={"pixels": 64}, time_limit=20,
                  oracle_lookahead=True, policy_noise=0.0)
    env, params = envs.make_from_config(config)
    agent = psdrl.make(config, env, params)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0), agent.hparams)

    @jax.jit
    def act_before_landing(state, key):
        frame, env_state = env.reset(key, params)
        for _ in range(8):  # the paddle stays in the middle column; the ball falls to row 8
            frame, env_state, _, _, _ = env.step_env(key, env_state, 1, params)
        action, _ = agent.act(state.replace(frame=frame, env_state=env_state, episode_step=jnp.int32(8)),
                              jax.random.PRNGKey(3), agent.hparams)
        return env.unwrapped_state(env_state).ball_x, action

    reachable = {}
    for seed in range(40):
        ball_x, action = act_before_landing(state, jax.random.PRNGKey(seed))
        if abs(int(ball_x) - 2) <= 1:
            reachable.setdefault(int(ball_x), set()).add(int(action))
    assert reachable == {1: {0}, 2: {1}, 3: {2}}, reachable


class CountingExternalCatch:
    """Rendered Catch posing as an environment that lives outside JAX (as EnvPool's Atari does): `step` resets an
    ended episode itself, and every reset -- a fresh one through reset_env, or an automatic one in `step` -- is
    counted on the host through a callback whose result the step uses (so it is never compiled away)."""

    external_state = True

    def __init__(self, env, params):
        self.env, self.params, self.resets = env, params, 0

    def __getattr__(self, name):  # action_space, observation_space, is_truncated, name, ...
        return getattr(self.env, name)

    def count(self, mask, x):
        """Adds the number of True entries of mask to the host counter; returns x unchanged (through the host, so
        the callback sits on the data path and runs exactly once per call)."""
        def host(mask, x):  # vmapped: x has the batch axes in front, mask too or size-1 axes where not batched
            self.resets += int(np.sum(np.broadcast_to(mask, x.shape[:x.ndim - event_ndim])))
            return x

        event_ndim = x.ndim
        return jax.pure_callback(host, jax.ShapeDtypeStruct(x.shape, x.dtype), mask, x, vmap_method="expand_dims")

    def reset_env(self, key, params):
        obs, state = self.env.reset_env(key, params)
        return self.count(jnp.bool_(True), obs), state

    def reset(self, key, params=None):
        return self.reset_env(key, params)

    def step_env(self, key, state, action, params):
        return self.env.step_env(key, state, action, params)

    def step(self, key, state, action, params=None):
        step_key, reset_key = jax.random.split(key)
        obs, stepped, reward, terminated, info = self.env.step_env(step_key, state, action, params)
        truncated = self.env.is_truncated(stepped, params)
        done = terminated | truncated
        reset_obs, reset_state = self.env.reset_env(reset_key, params)
        reset_obs = self.count(done, reset_obs)
        state = jax.tree.map(lambda r, x: jnp.where(done, r, x), reset_state, stepped)
        info = {**info, "final_observation": obs}
        return jnp.where(done, reset_obs, obs), state, reward, terminated, truncated, info


def test_an_external_environment_is_reset_once_per_episode_and_evaluation():
    """Through an environment that resets itself (the Atari path), 2 seeds x 100 steps of rendered Catch (episodes
    of 9 steps) and one test episode each: resets = the 2 initial ones + the episodes ended + the 2 evaluations,
    not one per step. The replay keeps each step's own next frame: the post-step frame within an episode, the last
    frame (not the next episode's first) at its end."""
    config = tiny(environment="Catch-bsuite", env_config={}, env_wrappers={"pixels": 64}, time_limit=1000)
    inner, params = envs.make_from_config(config)
    env = CountingExternalCatch(inner, params)
    with pytest.raises(config_lib.ConfigError, match=r"time_limit \(20\) is below Catch-bsuite's own episode cap "
                                                     r"\(1000 agent steps\)"):
        psdrl.make({**config, "time_limit": 20}, env, params)
    agent = psdrl.make(config, env, params)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    hparams = jax.tree.map(lambda x: jnp.stack([x, x]), agent.hparams)
    state = jax.jit(jax.vmap(agent.init))(keys, hparams)
    interact = jax.jit(jax.vmap(lambda s, k, h: agent.interact(s, k, h, (True, 50))))
    state, metrics = interact(state, jax.random.split(jax.random.PRNGKey(1), 2), hparams)
    scores = jax.jit(jax.vmap(agent.evaluate))(state, jax.random.split(jax.random.PRNGKey(2), 2), hparams)
    jax.block_until_ready(scores)  # the host counter is up to date once the programs have run
    episodes = int(np.sum(np.asarray(state.episodes_done)))
    assert episodes == 2 * (100 // 9) and np.asarray(metrics["episode_ended"]).sum() == episodes
    assert env.resets == 2 + episodes + 2
    replay = jax.tree.map(lambda x: np.asarray(x)[0], state.replay)
    for t in range(98):  # seed 0's first 99 steps sit in ring slots 0..98 (the ring has not wrapped)
        following = np.asarray(make_replay_observation(config, replay, t + 1))
        if replay.done[t]:
            assert not np.array_equal(replay.next_frame[t], following) and replay.is_start[t + 1]
        else:
            np.testing.assert_array_equal(replay.next_frame[t], following)
    assert replay.done[:99].sum() == 99 // 9


def make_replay_observation(config, replay_state, index):
    """The observation the replay reconstructs at ring slot `index` (its reset frame at an episode's start)."""
    replay = make_episode_replay(ring=replay_state.action.shape[0], episodes=replay_state.valid.shape[0],
                                 capacity=config["replay_capacity"], batch=1, sequence=1)
    return replay.observation(replay_state, jnp.asarray(index))


def published(**changes):
    """The published network sizes and priors (every default), on rendered ProcMaze, at a tiny schedule."""
    raw = {"environment": "ProcMaze", "env_config": {"grid_size": 4}, "env_wrappers": {"pixels": 64},
           "num_seeds": 1, "num_steps": 50, "eval_frequency": 50, "training_start_time": 0, "warmup_length": 50,
           "warmup_freq": 50, "time_limit": 30, **changes}
    return config_lib.validate("PSDRL", raw)


def test_published_sizes_state_memory_and_refusal():
    """At the published sizes the state of one seed is 1.29 GB (our earlier estimate was 1.5-2 GB; the ring stores
    one frame per step, not two); the run states it and refuses with the numbers when it does not fit."""
    config = published()
    env, params = envs.make_from_config(config)
    agent = psdrl.make(config, env, params)
    abstract = jax.eval_shape(agent.init, jax.random.PRNGKey(0), agent.hparams)
    per_seed = runner.tree_bytes(abstract)
    assert 1.2e9 < per_seed < 2.2e9, per_seed
    parameters = sum(x.size for x in jax.tree.leaves((abstract.params, abstract.target_value)))
    assert 78e6 < parameters < 86e6  # about 82 M floats with the value target (the published networks)
    assert abstract.weights.shape == (1537, 2292) and abstract.posterior.scale.shape == (2292, 2292)
    axis = runner.RunAxis(1, 1, jax.devices()[:1])
    with pytest.raises(runner.RunError, match=r"would not fit: estimated memory .*\(100000 transitions .* "
                                              r"a smaller replay_capacity"):
        runner.check_memory(abstract, axis, config, free=(1 << 30, False))


@pytest.mark.slow  # compiles the published networks: ~35 s here
def test_published_network_sizes_act_and_update_at_a_tiny_step_count():
    """Every network at its published size (1536 latent, 756 GRU, 2292-wide heads, 1537 x 2292 W): 50 acting steps
    and one model update on batches of 2 sequences of 5 steps, with a 30-step episode cap so episodes end."""
    config = published(replay_capacity=200, batch_size=2, sequence_length=5, posterior_lanes=4,
                       episode_table_size=16)
    env, params = envs.make_from_config(config)
    agent = psdrl.make(config, env, params)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0), agent.hparams)
    state, metrics = jax.jit(agent.interact, static_argnums=3)(state, jax.random.PRNGKey(1), agent.hparams, (True, 50))
    assert int(state.episodes_done) >= 1
    assert all(np.isfinite(float(metrics[name])) for name in ("loss_ae", "loss_transition", "loss_value", "ridge"))
    assert np.isfinite(np.asarray(state.weights)).all()


def test_reward_loss_weight_changes_only_the_transition_loss():
    """The extension key weights the reward's squared error among the transition model's outputs: with the same
    keys the autoencoder's update is identical and the transition loss is not (1.0 is the published mean). It is a
    hyperparameter (sweepable): one compiled program serves both weights."""
    config = tiny()
    agent = psdrl.make(config, *envs.make_from_config(config))
    state = jax.jit(agent.init)(jax.random.PRNGKey(0), agent.hparams)
    interact = jax.jit(agent.interact, static_argnums=3)
    losses = []
    for weight in (1.0, 50.0):
        _, metrics = interact(state, jax.random.PRNGKey(1), agent.hparams.replace(reward_loss_weight=weight), (True, 50))
        losses.append((float(metrics["loss_ae"]), float(metrics["loss_transition"])))
    assert interact._cache_size() == 1
    assert losses[0][0] == losses[1][0] and np.isfinite(losses[0][1])
    assert losses[1][1] != pytest.approx(losses[0][1], rel=1e-3)
