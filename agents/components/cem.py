"""Action-sequence optimisers of PETS's model-predictive controller (Chua et al. 2018; kchua/handful-of-trials), as pure functions.

`cem(key, cost, mean, lower, upper, ...)` is the cross-entropy method of the published code: start from the
warm-started mean and the fixed variance (upper - lower)^2 / 16, sample truncated normals kept two standard
deviations inside the box, keep the lowest-cost elites, smooth mean and variance by alpha, stop after
`iterations` or once every variance is below epsilon, and return the final MEAN (not the best sample).
`var_smoothing=False` is the code before its variance-damping fix (the variance replaced by the elites').
`random_shooting` draws uniform sequences in the box and returns the cheapest.

`cost(key, candidates (P, ...)) -> (P,)` evaluates a population (with fresh particle noise per call).
Solutions are arrays of any shape (PETS: (horizon, action_dim), time-major).
"""
import jax
import jax.numpy as jnp


def initial_variance(lower, upper):
    return (upper - lower) ** 2 / 16.0


def cem(key, cost, mean, lower, upper, population: int, elites: int, iterations: int, alpha, epsilon=1e-3,
        var_smoothing: bool = True):
    """(the CEM solution (the final mean), the final sampling variance, how many iterations ran)."""
    lower = jnp.broadcast_to(lower, mean.shape)
    upper = jnp.broadcast_to(upper, mean.shape)

    def running(carry):
        _, var, step, _ = carry
        return (step < iterations) & (jnp.max(var) > epsilon)

    def iteration(carry):
        mean, var, step, key = carry
        key, sample_key, cost_key = jax.random.split(key, 3)
        room = jnp.minimum(((mean - lower) / 2) ** 2, ((upper - mean) / 2) ** 2)
        constrained = jnp.minimum(room, var)
        noise = jax.random.truncated_normal(sample_key, -2.0, 2.0, (population,) + mean.shape)
        samples = mean + jnp.sqrt(constrained) * noise
        costs = cost(cost_key, samples)
        best = samples[jnp.argsort(costs)[:elites]]
        elite_mean, elite_var = jnp.mean(best, axis=0), jnp.var(best, axis=0)
        mean = alpha * mean + (1 - alpha) * elite_mean
        var = alpha * var + (1 - alpha) * elite_var if var_smoothing else elite_var
        return mean, var, step + 1, key

    mean, var, steps, _ = jax.lax.while_loop(running, iteration,
                                             (mean, initial_variance(lower, upper), jnp.int32(0), key))
    return mean, var, steps


def random_shooting(key, cost, shape, lower, upper, population: int):
    """The cheapest of `population` uniform sequences of the given shape in [lower, upper]."""
    sample_key, cost_key = jax.random.split(key)
    samples = jax.random.uniform(sample_key, (population,) + tuple(shape), minval=lower, maxval=upper)
    return samples[jnp.argmin(cost(cost_key, samples))]


def shift_warm_start(solution, steps: int = 1):
    """The next optimisation's starting mean: the solution shifted left by `steps` with zeros appended."""
    return jnp.concatenate([solution[steps:], jnp.zeros_like(solution[:steps])], axis=0)
