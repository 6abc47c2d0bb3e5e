"""Log-likelihoods, KL divergences and the straight-through categorical sample of the model-based agents.

All elementwise unless stated; callers sum over features and average over the batch (spec section 0).
"""
import jax
import jax.numpy as jnp

HALF_LOG_TWO_PI = 0.5 * jnp.log(2.0 * jnp.pi)


def gaussian_log_prob(x, mean, std):
    """log N(x; mean, std), the constant 0.5 log 2pi included (a unit std keeps it, as the paper code does)."""
    return -(jnp.log(std) + HALF_LOG_TWO_PI + 0.5 * ((x - mean) / std) ** 2)


def bernoulli_log_prob(x, logit):
    """log p(x) for a 0/1 (or bool) x under Bernoulli(sigmoid(logit)), in the stable log-sigmoid form."""
    return jnp.where(x.astype(jnp.bool_), jax.nn.log_sigmoid(logit), jax.nn.log_sigmoid(-logit))


def gaussian_kl(mean1, std1, mean2, std2):
    """KL(N(mean1, std1) || N(mean2, std2))."""
    return jnp.log(std2) - jnp.log(std1) + (std1**2 + (mean1 - mean2) ** 2) / (2.0 * std2**2) - 0.5


def categorical_kl(logits1, logits2):
    """KL(p1 || p2) over the last (class) axis, from logits: sum_k p1 (log p1 - log p2)."""
    log_p1 = jax.nn.log_softmax(logits1, axis=-1)
    return jnp.sum(jnp.exp(log_p1) * (log_p1 - jax.nn.log_softmax(logits2, axis=-1)), axis=-1)


def categorical_kl_to_uniform(logits):
    """KL(p || uniform over the K classes of the last axis)."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return jnp.sum(jnp.exp(log_p) * (log_p + jnp.log(logits.shape[-1])), axis=-1)


def sample_categorical(key, logits):
    """One class per row of `logits` (..., K), drawn from softmax(logits) by inverting its CDF.

    The same law as jax.random.categorical, with one uniform per row instead of K Gumbel draws: for the
    categorical latent (30 seeds x 32 starts x 32 groups of 32 per imagined step) about 4x faster on CPU.
    A class of probability 0 is never drawn; the clip guards the last class against CDF round-off.
    """
    uniform = jax.random.uniform(key, logits.shape[:-1] + (1,))
    cdf = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)
    return jnp.minimum(jnp.sum(cdf < uniform, axis=-1), logits.shape[-1] - 1)


def straight_through_one_hot(key, logits):
    """One class per row of `logits` (..., K), returned as probs + stop_gradient(one_hot - probs).

    Its value is the one-hot sample (up to float rounding); its gradient is that of the softmax
    probabilities, so the encoder learns through the sampled latent.
    """
    probs = jax.nn.softmax(logits, axis=-1)
    one_hot = jax.nn.one_hot(sample_categorical(key, logits), logits.shape[-1], dtype=probs.dtype)
    return probs + jax.lax.stop_gradient(one_hot - probs)
