"""Shared building blocks against hand-written numpy references: optimizer, TD loss, replay, exploration, MLP."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from agents import dqn
from agents.components.exploration import epsilon_greedy_action, softmax_action
from agents.components.networks import q_network
from agents.components.optimizers import adamw
from agents.components.replay import make_replay_buffer


def numpy_paper_adamw(x, grads, alpha, b1, b2, eps, wd, scaled):
    """Spec section 2.8, step by step in float64."""
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    for i, g in enumerate(grads):
        m = (1 - b1) * g + b1 * m
        v = (1 - b2) * g**2 + b2 * v
        m_hat = m / (1 - b1 ** (i + 1))
        v_hat = v / (1 - b2 ** (i + 1))
        adam = m_hat / (np.sqrt(v_hat) + eps)
        x = x - alpha * (adam + wd * x) if scaled else x - alpha * adam - wd * x
    return x


@pytest.mark.parametrize("scaled", [False, True])
def test_adamw_matches_the_paper_formula(scaled):
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(5)]
    alpha, b1, b2, eps, wd = 1e-2, 0.9, 0.99, 1e-5, 1e-2  # a large wd so the decay term is visible
    opt = adamw(alpha, b1, b2, eps, wd, decay_scaled_by_learning_rate=scaled)
    x = jnp.asarray(x0, jnp.float32)
    state = opt.init(x)
    for g in grads:
        updates, state = opt.update(jnp.asarray(g, jnp.float32), state, x)
        x = optax.apply_updates(x, updates)
    expected = numpy_paper_adamw(x0, grads, alpha, b1, b2, eps, wd, scaled)
    np.testing.assert_allclose(np.asarray(x), expected, rtol=1e-5, atol=1e-6)
    # The two decay conventions really differ at these settings.
    other = numpy_paper_adamw(x0, grads, alpha, b1, b2, eps, wd, not scaled)
    assert np.abs(other - expected).max() > 1e-3


def test_adamw_decay_is_not_scaled_by_step_size():
    """Zero gradients: x shrinks by exactly (1 - wd) per update, whatever alpha is (quirk Q7)."""
    opt = adamw(1e-6, 0.9, 0.99, 1e-5, 0.1)
    x = jnp.ones(2)
    state = opt.init(x)
    for _ in range(3):
        updates, state = opt.update(jnp.zeros(2), state, x)
        x = optax.apply_updates(x, updates)
    np.testing.assert_allclose(np.asarray(x), 0.9**3, rtol=1e-6)


def tiny_q(params, obs):
    """A linear 'network' so the numpy reference is exact: Q = obs @ W + b."""
    return obs @ params["w"] + params["b"]


@pytest.mark.parametrize("double", [False, True])
def test_td_loss_matches_numpy(double):
    rng = np.random.default_rng(1)
    B, D, A = 6, 4, 3
    params = {"w": rng.normal(size=(D, A)).astype(np.float32), "b": rng.normal(size=A).astype(np.float32)}
    target = {"w": rng.normal(size=(D, A)).astype(np.float32), "b": rng.normal(size=A).astype(np.float32)}
    batch = dqn.Transition(obs=rng.normal(size=(B, D)).astype(np.float32), action=rng.integers(0, A, B).astype(np.int32),
                           reward=rng.normal(size=B).astype(np.float32), next_obs=rng.normal(size=(B, D)).astype(np.float32),
                           terminal=np.array([False, True, False, False, True, False]))
    gamma = 0.9
    q = batch.obs @ params["w"] + params["b"]
    q_next_target = batch.next_obs @ target["w"] + target["b"]
    if double:
        greedy = np.argmax(batch.next_obs @ params["w"] + params["b"], axis=1)
        next_value = q_next_target[np.arange(B), greedy]
    else:
        next_value = q_next_target.max(axis=1)
    y = batch.reward + gamma * np.where(batch.terminal, 0.0, next_value)
    expected = np.mean((q[np.arange(B), batch.action] - y) ** 2)  # no 1/2 factor (quirk Q11)
    loss = dqn.td_loss(tiny_q, params, target, jax.tree.map(jnp.asarray, batch), gamma, double)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    # The target carries no gradient: d loss / d b = mean 2 (q_a - y) onehot(a).
    grad_b = jax.grad(lambda p: dqn.td_loss(tiny_q, p, target, jax.tree.map(jnp.asarray, batch), gamma, double))(params)["b"]
    onehot = np.eye(A)[batch.action]
    np.testing.assert_allclose(np.asarray(grad_b), (2 * (q[np.arange(B), batch.action] - y)[:, None] * onehot).mean(0),
                               rtol=1e-4, atol=1e-6)


def test_replay_wraps_around_and_samples_only_written_slots():
    buffer = make_replay_buffer(capacity=5, batch_size=2000)
    state = buffer.init({"x": jnp.int32(0), "obs": jnp.zeros(3, jnp.bool_)})
    assert state.items["obs"].dtype == jnp.bool_  # stored as given: bool, not float32
    add = jax.jit(buffer.add)
    for value in range(3):
        state = add(state, {"x": jnp.int32(value), "obs": jnp.ones(3, jnp.bool_)})
    assert int(buffer.size(state)) == 3 and not bool(state.full)
    sampled = np.asarray(buffer.sample(state, jax.random.PRNGKey(0))["x"])
    assert set(np.unique(sampled)) == {0, 1, 2}  # never an unwritten slot, and the newest item is included
    for value in range(3, 7):
        state = add(state, {"x": jnp.int32(value), "obs": jnp.ones(3, jnp.bool_)})
    # 7 items into 5 slots: slots hold 5, 6, 2, 3, 4 and the next write goes to slot 2.
    np.testing.assert_array_equal(np.asarray(state.items["x"]), [5, 6, 2, 3, 4])
    assert int(state.position) == 2 and bool(state.full) and int(buffer.size(state)) == 5
    sampled = np.asarray(buffer.sample(state, jax.random.PRNGKey(1))["x"])
    counts = np.array([np.sum(sampled == v) for v in (2, 3, 4, 5, 6)])
    assert counts.min() > 0 and np.all(np.abs(counts / 2000 - 0.2) < 0.05)  # uniform, +-5 points at n=2000


def test_replay_full_flag_set_on_last_slot():
    buffer = make_replay_buffer(capacity=3, batch_size=1)
    state = buffer.init(jnp.float32(0))
    for value in range(3):
        assert not bool(state.full)
        state = buffer.add(state, jnp.float32(value))
    assert bool(state.full) and int(state.position) == 0


def test_softmax_action_frequencies():
    q = jnp.array([1.0, 0.0, -1.0])
    temperature = 0.5
    actions = jax.vmap(lambda k: softmax_action(k, q, temperature))(jax.random.split(jax.random.PRNGKey(0), 20000))
    freq = np.bincount(np.asarray(actions), minlength=3) / 20000
    expected = np.exp(np.array([2.0, 0.0, -2.0]))
    np.testing.assert_allclose(freq, expected / expected.sum(), atol=0.015)


def test_epsilon_greedy_frequencies_and_ties():
    q = jnp.array([0.0, 2.0, 2.0, 1.0])  # tie between 1 and 2: greedy picks the lowest index
    actions = jax.vmap(lambda k: epsilon_greedy_action(k, q, 0.2))(jax.random.split(jax.random.PRNGKey(0), 20000))
    freq = np.bincount(np.asarray(actions), minlength=4) / 20000
    np.testing.assert_allclose(freq, [0.05, 0.85, 0.05, 0.05], atol=0.015)


def test_q_network_names_and_haiku_truncated_normal_init():
    net = q_network(num_actions=5, num_hidden_layers=3, num_hidden_units=200, activation="elu")
    params = net.init(jax.random.PRNGKey(0), jnp.zeros(64, jnp.bool_))
    assert sorted(params) == ["q_function/linear", "q_function/linear_1", "q_function/linear_2", "q_function/linear_3"]
    assert params["q_function/linear"]["w"].shape == (64, 200) and params["q_function/linear_3"]["w"].shape == (200, 5)
    w = np.asarray(params["q_function/linear_1"]["w"])
    # Truncated normal in [-2, 2] times 1/sqrt(fan_in), uncorrected: std = 0.8796/sqrt(200).
    assert np.abs(w).max() <= 2 / np.sqrt(200) + 1e-7
    assert abs(w.std() * np.sqrt(200) - 0.8796) < 0.01
    assert all(np.all(np.asarray(params[k]["b"]) == 0) for k in params)
