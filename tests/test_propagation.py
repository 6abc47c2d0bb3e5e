"""PETS's propagation (agents/components/propagation.py) on a hand-made ensemble whose member b predicts the
delta b (+ the action) with standard deviation sigma: each mode's particle bookkeeping and statistics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.components import propagation as prop

B = 5


def model(sigma):
    """Member b: mean = b + action (per dim), variance sigma^2 (None: deterministic)."""
    def predict(states, actions):
        offsets = jnp.arange(B, dtype=jnp.float32).reshape((B,) + (1,) * (states.ndim - 1))
        mean = jnp.zeros_like(states) + offsets + actions[..., :1]
        return mean, (None if sigma is None else jnp.full_like(mean, sigma ** 2))
    return predict


def add(states, delta):
    return states + delta


def one_step(mode, sigma, particles=20, seed=0, dims=2):
    states = jnp.zeros((particles, dims))
    return prop.step(jax.random.PRNGKey(seed), mode, model(sigma), B, add, states, jnp.array([0.0]))


def test_expectation_uses_the_member_mean():
    np.testing.assert_allclose(one_step("E", 0.3), 2.0)  # mean of 0..4, no noise


def test_tsinf_keeps_each_particle_on_its_member_for_ever():
    first, second = one_step("TSinf", None, seed=0), one_step("TSinf", None, seed=1)
    np.testing.assert_allclose(first[:, 0], np.arange(20) // 4)  # particle k on member k // (K / B)
    np.testing.assert_array_equal(first, second)


def test_ts1_redraws_members_each_step_with_k_over_b_per_member():
    draws = [np.asarray(one_step("TS1", None, seed=s))[:, 0] for s in range(50)]
    for draw in draws:
        np.testing.assert_array_equal(np.bincount(draw.astype(int), minlength=B), [4] * B)
    assert len({tuple(d) for d in draws}) > 40  # a fresh assignment almost every step
    first_particle = np.array([d[0] for d in draws])
    assert len(set(first_particle.tolist())) == B  # any particle can meet any member


def test_probabilistic_ts_adds_member_noise():
    out = np.asarray(prop.step(jax.random.PRNGKey(3), "TSinf", model(0.5), B, add, jnp.zeros((4000, 1)),
                               jnp.array([0.0])))[:, 0]
    residual = out - np.arange(4000) // 800
    assert abs(residual.std() - 0.5) < 0.03 and abs(residual.mean()) < 0.03


def test_distribution_sampling_matches_the_aggregated_gaussian():
    """DS on a deterministic ensemble: mean 2, variance = the members' disagreement var({0..4}) = 2; with sigma 1
    the variance adds 1."""
    for sigma, variance in [(None, 2.0), (1.0, 3.0)]:
        out = np.asarray(one_step("DS", sigma, particles=20000))
        assert abs(out.mean() - 2.0) < 0.05 and abs(out.var() - variance) < 0.1


def test_moment_matching_redraws_from_the_particles_mean_and_spread():
    """MM (the code's version): the K deltas drawn as in DS are replaced by draws from their own per-dim mean
    and std: with K = 20000 the moments are those of DS, and two seeds share no particle."""
    out = np.asarray(one_step("MM", None, particles=20000))
    assert abs(out.mean() - 2.0) < 0.05 and abs(out.var() - 2.0) < 0.1
    # Exactly, for 3 particles: the DS draw of the same key, then a redraw from its per-dim mean and std.
    small = np.asarray(one_step("MM", None, particles=3, seed=5))
    ds = np.asarray(one_step("DS", None, particles=3, seed=5))
    redraw = np.asarray(jax.random.normal(jax.random.split(jax.random.PRNGKey(5), 3)[1], (3, 2)))
    np.testing.assert_allclose(small, ds.mean(axis=0) + redraw * ds.std(axis=0), rtol=1e-5, atol=1e-6)


def test_trajectory_cost_sums_next_state_costs_and_maps_nan_to_a_large_number():
    actions = jnp.array([[1.0], [0.0], [2.0]])
    cost = prop.trajectory_cost(jax.random.PRNGKey(0), "E", model(None), B, add, jnp.zeros(1), actions, 20,
                                obs_cost=lambda s: s[:, 0], action_cost=lambda a: 0.1 * jnp.sum(a ** 2))
    # E forces one particle: states 3, 5, 9 (each step adds 2 + action); plus 0.1 (1 + 0 + 4)
    np.testing.assert_allclose(cost, 3 + 5 + 9 + 0.5, rtol=1e-6)
    nan_cost = prop.trajectory_cost(jax.random.PRNGKey(0), "TSinf", model(None), B, add, jnp.zeros(1), actions, 20,
                                    obs_cost=lambda s: jnp.where(s[:, 0] > 10, jnp.nan, s[:, 0]),
                                    action_cost=lambda a: 0.0)
    assert float(nan_cost) > 1e5  # members 3 and 4 pass 10: their particles count 1e6


def test_ts_refuses_a_particle_count_not_divisible_by_the_ensemble():
    with pytest.raises(ValueError, match="multiple of the ensemble"):
        one_step("TSinf", None, particles=7)
