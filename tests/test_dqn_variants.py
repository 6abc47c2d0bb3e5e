"""The DQN family's extensions: dueling heads, prioritized replay, epsilon schedules, gymnax tasks, episode logs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents import dqn
from agents.components.exploration import scheduled_epsilon
from agents.components.networks import aggregate_dueling, q_network
from agents.components.replay import make_prioritized_replay_buffer
from experiment import runner
from experiment.config import ConfigError, validate
from tests.test_harness import TINY


# --- dueling ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_dueling_aggregation_is_per_state_over_actions(aggregation):
    rng = np.random.default_rng(0)
    value, advantage = rng.normal(size=(4, 1)).astype(np.float32), rng.normal(size=(4, 5)).astype(np.float32)
    centre = advantage.mean(-1, keepdims=True) if aggregation == "mean" else advantage.max(-1, keepdims=True)
    q = np.asarray(aggregate_dueling(jnp.asarray(value), jnp.asarray(advantage), aggregation))
    np.testing.assert_allclose(q, value + advantage - centre, rtol=1e-6)
    # Another state's advantages never change this state's Q (no aggregation over the batch).
    other = advantage.copy()
    other[1:] += 100.0
    np.testing.assert_allclose(np.asarray(aggregate_dueling(jnp.asarray(value), jnp.asarray(other), aggregation))[0],
                               q[0], rtol=1e-6)
    # Invariant to a per-state constant added to the advantage stream.
    shifted = advantage + rng.normal(size=(4, 1)).astype(np.float32) * 10
    np.testing.assert_allclose(np.asarray(aggregate_dueling(jnp.asarray(value), jnp.asarray(shifted), aggregation)),
                               q, atol=1e-4)


@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_dueling_network_streams_and_advantage_bias_invariance(aggregation):
    net = q_network(5, 2, 32, "relu", obs_shape=(8,), dueling=True, dueling_aggregation=aggregation)
    obs = jax.random.normal(jax.random.PRNGKey(1), (6, 8))
    params = net.init(jax.random.PRNGKey(0), obs)
    assert sorted(params) == ["advantage_stream/linear", "advantage_stream/linear_1", "q_function/linear",
                              "q_function/linear_1", "value_stream/linear", "value_stream/linear_1"]
    assert params["value_stream/linear_1"]["w"].shape == (32, 1)
    assert params["advantage_stream/linear_1"]["w"].shape == (32, 5)
    q = net.apply(params, obs)
    assert q.shape == (6, 5)
    bumped = jax.tree.map(lambda x: x, params)
    bumped["advantage_stream/linear_1"] = dict(params["advantage_stream/linear_1"],
                                               b=params["advantage_stream/linear_1"]["b"] + 3.0)
    np.testing.assert_allclose(net.apply(bumped, obs), q, atol=1e-5)
    np.testing.assert_allclose(net.apply(params, obs[2]), q[2], atol=1e-6)  # an unbatched observation


def test_conv_torso_on_minatar_observations():
    env, env_params = envs.make("Breakout-MinAtar")
    obs, _ = env.reset(jax.random.PRNGKey(0), env_params)
    net = q_network(env.num_actions, 1, 32, "relu", obs_shape=obs.shape, torso="conv", conv_channels=(16,),
                    conv_kernel_sizes=(3,), conv_strides=(1,))
    params = net.init(jax.random.PRNGKey(0), obs)
    assert params["conv_torso/conv2_d"]["w"].shape == (3, 3, 4, 16)
    assert params["q_function/linear"]["w"].shape == (8 * 8 * 16, 32)  # VALID 3x3 on 10x10
    batch = jnp.stack([obs, obs * 0])
    np.testing.assert_allclose(net.apply(params, batch)[0], net.apply(params, obs), atol=1e-6)


# --- prioritized replay ----------------------------------------------------------------------------

def filled_prioritized_buffer(priorities, capacity=16, batch_size=40000, alpha=0.6):
    buffer = make_prioritized_replay_buffer(capacity, batch_size)
    state = buffer.init({"x": jnp.int32(0)}, alpha)
    add = jax.jit(buffer.add)
    for i in range(len(priorities)):
        state = add(state, {"x": jnp.int32(i)})
    state = buffer.update_priorities(state, jnp.arange(len(priorities)), jnp.asarray(priorities, jnp.float32), 0.0)
    return buffer, state


@pytest.mark.parametrize("alpha", [0.6, 1.0, 0.0])
def test_prioritized_sampling_frequencies_and_weights(alpha):
    priorities = np.array([0.1, 2.0, 0.5, 1.0, 4.0, 0.05, 1.5, 3.0, 0.2, 1.0])  # 10 of 16 slots written
    buffer, state = filled_prioritized_buffer(priorities, alpha=alpha)
    batch, indices, weights = jax.jit(buffer.sample)(state, jax.random.PRNGKey(0), 0.4)
    indices = np.asarray(indices)
    np.testing.assert_array_equal(np.asarray(batch["x"]), indices)
    assert indices.max() < 10  # never an unwritten slot
    expected = priorities**alpha / np.sum(priorities**alpha)
    counts = np.bincount(indices, minlength=10)
    chi_square = np.sum((counts - 40000 * expected) ** 2 / (40000 * expected))
    assert chi_square < 27.9  # 9 degrees of freedom: p = 0.001
    w = np.asarray(weights)
    reference = (10 * expected[indices]) ** -0.4
    np.testing.assert_allclose(w, reference / reference.max(), rtol=1e-5)
    assert abs(w.max() - 1.0) < 1e-6


def test_prioritized_new_items_get_max_priority_and_updates_are_in_place():
    buffer = make_prioritized_replay_buffer(4, 8)
    state = buffer.init({"x": jnp.int32(0)}, 0.5)
    state = buffer.add(state, {"x": jnp.int32(0)})
    assert float(state.priorities[0]) == 1.0  # the first item: priority 1
    state = buffer.update_priorities(state, jnp.array([0]), jnp.array([2.5]), 0.5)
    np.testing.assert_allclose(np.asarray(state.priorities), [3.0, 0, 0, 0])
    np.testing.assert_allclose(np.asarray(state.tree[4:8]), [np.sqrt(3.0), 0, 0, 0], rtol=1e-6)  # leaves hold p^alpha
    assert float(state.tree[1]) == pytest.approx(np.sqrt(3.0))  # the root holds their sum
    state = buffer.add(state, {"x": jnp.int32(1)})
    assert float(state.priorities[1]) == 3.0 and float(state.max_priority) == 3.0
    for value in range(2, 5):  # FIFO ring: item 4 overwrites slot 0 whatever its priority
        state = buffer.add(state, {"x": jnp.int32(value)})
    np.testing.assert_array_equal(np.asarray(state.items["x"]), [4, 1, 2, 3])
    assert float(state.priorities[0]) == 3.0


def test_prioritized_never_samples_zero_or_unwritten_slots_with_tiny_priorities():
    # One huge priority beside tiny ones: float32 round-off in the prefix sum must not reach empty slots.
    priorities = np.array([1e6, 1e-6, 1e-6])
    buffer, state = filled_prioritized_buffer(priorities, capacity=1000, batch_size=100000, alpha=1.0)
    _, indices, _ = buffer.sample(state, jax.random.PRNGKey(3), 0.4)
    assert np.asarray(indices).max() <= 2


def test_prioritized_sampling_across_many_blocks():
    """Capacity 1000 (a 1024-leaf tree): frequencies over slots spread across the tree."""
    priorities = np.zeros(700)
    priorities[[3, 130, 400, 699]] = [1.0, 2.0, 3.0, 4.0]  # the rest are written with a tiny priority
    priorities[priorities == 0] = 1e-12
    buffer, state = filled_prioritized_buffer(priorities, capacity=1000, batch_size=50000, alpha=1.0)
    _, indices, _ = buffer.sample(state, jax.random.PRNGKey(5), 0.0)
    counts = np.bincount(np.asarray(indices), minlength=1000)
    np.testing.assert_allclose(counts[[3, 130, 400, 699]] / 50000, [0.1, 0.2, 0.3, 0.4], atol=0.01)
    assert counts[700:].sum() == 0


def test_prioritized_sampling_vmaps_over_seeds():
    buffer, state = filled_prioritized_buffer(np.ones(4), batch_size=4000, alpha=1.0)
    states = jax.tree.map(lambda x: jnp.stack([x, x]), state)
    new = jnp.array([[1.0, 1.0, 1.0, 1.0], [1.0, 1e-9, 1e-9, 1e-9]])  # seed 1: nearly all mass on slot 0
    states = jax.vmap(buffer.update_priorities, in_axes=(0, None, 0, None))(states, jnp.arange(4), new, 0.0)
    _, indices, _ = jax.vmap(buffer.sample, in_axes=(0, 0, None))(states, jax.random.split(jax.random.PRNGKey(0)), 0.4)
    counts = [np.bincount(np.asarray(i), minlength=4) / 4000 for i in indices]
    np.testing.assert_allclose(counts[0], 0.25, atol=0.03)
    assert counts[1][0] > 0.999


# --- epsilon schedules -----------------------------------------------------------------------------

def test_epsilon_schedules_follow_their_formulas():
    config = validate("ER", dict(TINY, exploration_strat="epsilon_greedy", epsilon_schedule="linear",
                                 epsilon_start=1.0, epsilon_end=0.05, epsilon_decay_steps=1000, epsilon_decay=0.9))
    hp = dqn.hyperparams_from_config(config)
    for step, expected in [(0, 1.0), (500, 0.525), (1000, 0.05), (5000, 0.05)]:
        assert abs(float(scheduled_epsilon("linear", hp, 0, step)) - expected) < 1e-6
    for episodes in (0, 3, 10, 100):
        assert abs(float(scheduled_epsilon("power", hp, episodes, 0)) - max(0.9**episodes, 0.05)) < 1e-6
    assert float(scheduled_epsilon("constant", hp.replace(epsilon=0.3), 7, 7)) == pytest.approx(0.3)


def test_per_beta_schedules():
    config = validate("ER", dict(TINY, prioritized_replay=True, per_beta0=0.4, per_beta_rate=0.01))
    hp = dqn.hyperparams_from_config(config)
    assert float(dqn.per_beta("linear", hp, 0, 0, 1000)) == pytest.approx(0.4)
    assert float(dqn.per_beta("linear", hp, 500, 0, 1000)) == pytest.approx(0.7)
    assert float(dqn.per_beta("linear", hp, 2000, 0, 1000)) == pytest.approx(1.0)
    assert float(dqn.per_beta("exponential", hp, 0, 50, 1000)) == pytest.approx(1 - np.exp(-0.5), rel=1e-6)


@pytest.mark.parametrize("changes, message", [
    ({"epsilon_schedule": "power"}, "applies to exploration_strat 'epsilon_greedy' only"),
    ({"exploration_strat": "epsilon_greedy", "epsilon_schedule": "linear"}, "needs the key 'epsilon_decay_steps'"),
    ({"dueling_aggregation": "median"}, "must be one of mean, max"),
    ({"torso": "conv"}, "needs image observations"),
    ({"conv_channels": [16, 32]}, "one entry per conv layer"),
    ({"conv_strides": [0]}, "a list of 1 to 64 integers >= 1"),
    ({"per_alpha": -1}, "must be a number >= 0"),
    ({"duelling": True}, "did you mean 'dueling'"),
])
def test_extension_config_errors(changes, message):
    with pytest.raises(ConfigError, match=message):
        validate("ER", dict(TINY, **changes))


# --- the agent on gymnax tasks and its episode records ---------------------------------------------

def test_truncation_bootstraps_only_termination_cuts():
    """CartPole with a 7-step time limit: truncated steps are stored as non-terminal transitions."""
    config = validate("ER", dict(TINY, environment="CartPole-v1", env_config={}, episodic_env=True, eval_frequency=60,
                                 num_steps=60, fix_stale_obs_after_reset=True))
    env, env_params = envs.make("CartPole-v1")
    env_params = env_params.replace(max_steps_in_episode=7)
    agent = dqn.make(config, env, env_params)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0), agent.hparams)
    state, record = jax.jit(agent.interact, static_argnums=3)(state, jax.random.PRNGKey(1), agent.hparams, False)
    lengths = np.asarray(record["episode_length"])[np.asarray(record["episode_ended"])]
    terminal = np.asarray(state.replay.items.terminal[:60])
    ends = np.nonzero(np.asarray(record["episode_ended"]))[0]
    truncated_ends = ends[lengths == 7]
    assert len(truncated_ends) >= 3
    assert not terminal[truncated_ends].any()
    assert terminal.sum() == np.sum(lengths < 7)  # true terminations, and only those, cut the target


def test_training_episodes_are_recorded_per_seed(tmp_path):
    config = validate("ER", dict(TINY, save_params=False, checkpoint_frequency=0))
    result = runner.run(config, dqn.make, seed=1, output=str(tmp_path / "episodes"), progress=False)
    table = result["episodes"]
    assert len(table["return"]) > 20
    np.testing.assert_array_equal(table["return"], -table["length"])  # ProcMaze pays -1 on every step
    for seed in range(config["num_seeds"]):
        mine = table["seed"] == seed
        end_steps, lengths = table["end_step"][mine], table["length"][mine]
        # Episodes of one seed follow each other without gaps: each ends `length` steps after the last.
        np.testing.assert_array_equal(np.diff(end_steps), lengths[1:])
        assert end_steps[0] == lengths[0] and end_steps[-1] <= config["num_steps"]


def test_first_step_reaching_target_by_hand():
    table = {"seed": np.array([0, 0, 0, 0, 1, 1]), "return": np.array([1.0, 3.0, 5.0, 1.0, 9.0, 9.0]),
             "end_step": np.array([10, 20, 30, 40, 5, 6]), "length": np.ones(6)}
    # window 2: seed 0 rolling means 2, 4, 3 -> reaches 4 at its third episode (step 30); seed 1 at step 6.
    np.testing.assert_array_equal(runner.first_step_reaching(table, 3, 4.0, window=2), [30, 6, -1])
    np.testing.assert_array_equal(runner.first_step_reaching(table, 3, 100.0, window=2), [-1, -1, -1])


@pytest.mark.slow  # a learning run: `-m "not slow"` leaves it out
def test_rainbow_lite_learns_cartpole_quickly(tmp_path):
    """Double + dueling + prioritized replay on CartPole-v1, 2 seeds, 15k steps: the greedy policy must hold the
    pole far longer than a random one (about 22 steps) and the episode log must show training improve.

    Measured (seed 0): greedy evaluation 94 and 125 at 15k steps (200/60 at 5k, 100/310 at 10k); the last 10
    training episodes average about 105 and 110, the first 20 about 20.
    """
    config = validate("ER", dict(
        TINY, environment="CartPole-v1", env_config={}, num_seeds=2, num_steps=15000, eval_frequency=5000,
        training_start_time=1000, num_hidden_layers=2, num_hidden_units=64, activation="relu", alpha_adam=1e-3,
        b2_adam=0.999, eps_adam=1e-8, wd_adam=0.0, exploration_strat="epsilon_greedy", epsilon_schedule="linear",
        epsilon_start=1.0, epsilon_end=0.02, epsilon_decay_steps=8000, batch_size=64, buffer_size=15000,
        target_update_frequency=250, gamma=0.99, eval_steps=500, eval_batch_size=4, save_params=False,
        checkpoint_frequency=0, fix_stale_obs_after_reset=True, double_DQN=True, dueling=True,
        prioritized_replay=True, target_score=40.0))
    result = runner.run(config, dqn.make, seed=0, output=str(tmp_path / "cartpole"), progress=False)
    final = result["metrics"]["reward_rates"][-1]
    table = result["episodes"]
    assert np.all(final > 60), f"final greedy returns {final}"
    for seed in range(2):
        returns = table["return"][table["seed"] == seed]
        assert returns[:20].mean() < 40 and returns[-10:].mean() > 70, returns
    reached = result["target_reached_step"]
    assert np.all((reached > 0) & (reached <= 15000)), reached  # each seed's last-100 mean reached 40 in the run


@pytest.mark.parametrize("name, torso", [("Acrobot-v1", "mlp"), ("Breakout-MinAtar", "conv"),
                                         ("SpaceInvaders-MinAtar", "conv")])
def test_gymnax_tasks_train_and_evaluate(name, torso):
    """A training chunk and an evaluation on gymnax tasks through envs.make; MinAtar frames stored as bool.
    Two of the five MinAtar games (every game takes the same path; each costs 15-40 s of compilation here)."""
    config = validate("ER", dict(TINY, environment=name, env_config={}, torso=torso, conv_channels=[4],
                                 num_hidden_units=16, replay_obs_dtype="bool" if torso == "conv" else "auto",
                                 eval_frequency=30, num_steps=30, buffer_size=40, batch_size=4, eval_steps=10,
                                 eval_batch_size=2, exploration_strat="epsilon_greedy", epsilon=0.5,
                                 fix_stale_obs_after_reset=True))
    env, env_params = envs.make(name)
    agent = dqn.make(config, env, env_params)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0), agent.hparams)
    obs_dtype = state.replay.items.obs.dtype
    assert obs_dtype == (jnp.bool_ if torso == "conv" else jnp.float32)
    before = state.params
    state, record = jax.jit(agent.interact, static_argnums=3)(state, jax.random.PRNGKey(1), agent.hparams, True)
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.any(a != b)), before, state.params))
    assert all(moved)  # every parameter was trained
    score = jax.jit(agent.evaluate)(state, jax.random.PRNGKey(2), agent.hparams)["reward_rate"]
    assert np.isfinite(float(score)) and int(state.env_steps) == 30
