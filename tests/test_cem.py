"""PETS's optimisers (agents/components/cem.py): CEM on a known quadratic cost converges to its minimum inside
the box, respects the box, stops on small variance, the two variance rules, random shooting's arg-min, and the
shifted warm start."""
import jax
import jax.numpy as jnp
import numpy as np

from agents.components import cem

TARGET = jnp.array([[0.7, -1.2], [1.5, 0.1], [-0.4, -2.0]])  # (horizon 3, action dim 2), inside [-3, 3]
# (Near a bound the box shrinks the sampling variance, so CEM stops short of a minimum close to it: faithful.)


def quadratic(key, candidates):
    return jnp.sum((candidates - TARGET) ** 2, axis=(1, 2))


def test_cem_converges_to_the_minimum_of_a_quadratic():
    solution, _, steps = jax.jit(lambda k: cem.cem(k, quadratic, jnp.zeros((3, 2)), -3.0, 3.0, population=400,
                                                elites=40, iterations=30, alpha=0.1))(jax.random.PRNGKey(0))
    np.testing.assert_allclose(solution, TARGET, atol=0.02)
    assert int(steps) < 30  # stopped once every variance fell below epsilon


def test_cem_keeps_samples_inside_the_box_and_a_minimum_outside_is_pushed_to_the_bound():
    outside = jnp.full((2, 1), 5.0)
    largest = []

    def cost(key, candidates):
        jax.debug.callback(lambda c: largest.append(float(np.abs(c).max())), candidates)
        return jnp.sum((candidates - outside) ** 2, axis=(1, 2))

    solution, _, steps = cem.cem(jax.random.PRNGKey(1), cost, jnp.zeros((2, 1)), -3.0, 3.0, population=200, elites=20,
                              iterations=8, alpha=0.1)
    jax.effects_barrier()
    assert len(largest) == int(steps) >= 1 and max(largest) <= 3.0  # every sample of every iteration in the box
    assert float(jnp.max(solution)) <= 3.0 and float(jnp.min(solution)) > 2.5


def test_published_cartpole_settings_take_five_iterations_and_start_from_a_quarter_range():
    np.testing.assert_allclose(cem.initial_variance(-3.0, 3.0), 2.25)  # sigma0 = 1.5
    _, _, steps = cem.cem(jax.random.PRNGKey(2), quadratic, jnp.zeros((3, 2)), -3.0, 3.0, population=400, elites=40,
                       iterations=5, alpha=0.1)
    assert int(steps) == 5


def test_variance_update_with_and_without_smoothing():
    """One iteration from the same key (the same samples and elites): smoothed var = alpha var0 + (1 - alpha) v_e,
    unsmoothed var = v_e (the code before its variance-damping fix)."""
    results = {smoothing: cem.cem(jax.random.PRNGKey(3), quadratic, jnp.zeros((3, 2)), -3.0, 3.0, population=100,
                                  elites=10, iterations=1, alpha=0.3, epsilon=0.0, var_smoothing=smoothing)
               for smoothing in (True, False)}
    elite_var = results[False][1]
    np.testing.assert_allclose(results[True][1], 0.3 * 2.25 + 0.7 * elite_var, rtol=1e-6)
    np.testing.assert_array_equal(results[True][0], results[False][0])  # the mean update is the same
    assert float(elite_var.max()) < 2.25


def test_random_shooting_returns_the_cheapest_sample():
    key = jax.random.PRNGKey(4)
    best = cem.random_shooting(key, quadratic, (3, 2), -3.0, 3.0, population=2000)
    samples = jax.random.uniform(jax.random.split(key)[0], (2000, 3, 2), minval=-3.0, maxval=3.0)
    np.testing.assert_array_equal(best, samples[jnp.argmin(quadratic(None, samples))])


def test_warm_start_shifts_left_and_appends_zeros():
    solution = jnp.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(cem.shift_warm_start(solution), [[2, 3], [4, 5], [0, 0]])
