"""Bayesian linear regression over a network's last layer (a neural-linear posterior), as PSDRL fits it
(Sasso et al. 2023; remosasso/PSDRL): one shared precision matrix for every output, a ridge ladder when the Cholesky factor
fails, and a sampled weight matrix W (outputs x features) that replaces the trained last layer.

Pure functions over a small state: `accumulate` adds a batch of features and targets to the Gram and cross
terms (never materialising the design matrix; HIGHEST precision, so no TF32 on GPUs), `solve` turns them
into the posterior, `sample` draws W.

Faithful to the published code by default (quirk Q1): a sample is mean + eps @ Sigma with Sigma = sigma^2 Phi,
so Cov(W_i) = sigma^4 Phi^2. `textbook=True` draws mean + sqrt(sigma^2) eps @ chol(Phi)^T: Cov(W_i) = sigma^2 Phi.
Either way the per-weight standard deviation is tiny at the published priors (sigma^2 = 1e-3) once Phi =
(beta X^T X + c I)^-1 with c >= 100: at most sigma^2 / c = 1e-5 (faithful) or sqrt(sigma^2 / c) ~ 3.2e-3
(textbook), so the agent acts close to greedily on the posterior mean.

The initial prior (quirk Q2, bayes/neural_linear_model.py of the published code) is a mean of all ones and the
"covariance" I + p 1 1^T per output row, p the row's configured prior (transition_prior for the latent rows,
reward_prior for the reward row): `shift` carries p, zero after any solve.
"""
import jax
import jax.numpy as jnp
from flax import struct

from agents.components.linalg import cholesky, inverse_from_cholesky

HIGHEST = jax.lax.Precision.HIGHEST
MAX_RIDGE_STEPS = 7  # c0, 10 c0, ..., 10^6 c0


@struct.dataclass
class Posterior:
    mean: jax.Array  # (outputs, features) mu
    scale: jax.Array  # (features, features): Phi = (beta X^T X + c I)^-1, or the initial prior's matrix
    row_variance: jax.Array  # (outputs,) sigma^2 per output row (the prior variances; 1 for the initial prior)
    ridge: jax.Array  # the c the solve used (c0 before any solve)
    # (outputs,) p: row i's matrix is row_variance_i * scale + p_i 1 1^T. Non-zero only in the initial prior, whose
    # scale is I and row_variance 1 (`sample` relies on that for the textbook rule).
    shift: jax.Array


def initial_posterior(num_outputs: int, num_features: int, ridge: float, row_prior) -> Posterior:
    """Before any data (quirk Q2): a mean of all ones and, for output row i, the matrix I + p_i 1 1^T used as it is,
    p_i = row_prior[i] (the configured transition_prior or reward_prior)."""
    return Posterior(mean=jnp.ones((num_outputs, num_features), jnp.float32),
                     scale=jnp.eye(num_features, dtype=jnp.float32),
                     row_variance=jnp.ones(num_outputs, jnp.float32), ridge=jnp.float32(ridge),
                     shift=jnp.broadcast_to(jnp.asarray(row_prior, jnp.float32), (num_outputs,)))


def accumulate(gram, cross, features, targets, weights):
    """gram + X^T diag(w) X and cross + X^T diag(w) Y for a batch: features (n, F), targets (n, D), weights (n,)
    (0 for padding)."""
    weighted = features * weights[:, None]
    gram = gram + jnp.dot(weighted.T, features, precision=HIGHEST)
    cross = cross + jnp.dot(weighted.T, targets, precision=HIGHEST)
    return gram, cross


def solve(gram, cross, row_variance, beta: float, ridge: float, use_float64: bool) -> Posterior:
    """Phi = (beta gram + c I)^-1 with the smallest c in ridge * 10^k (k < 7) whose Cholesky factor is finite, and
    mu = (Phi beta cross)^T. The factor and Phi in float64 when use_float64 (the published code's solve), else
    float32; Phi is then cast to float32 and mu formed in float32, as the published code does."""
    dtype = jnp.float64 if use_float64 else jnp.float32
    with jax.enable_x64(use_float64):
        precision = (beta * gram).astype(dtype)
        eye = jnp.eye(gram.shape[0], dtype=dtype)

        def factor(step):
            c = jnp.asarray(ridge, dtype) * jnp.asarray(10.0, dtype) ** step
            return cholesky(precision + c * eye), c

        def failed(carry):
            step, chol, _ = carry
            return (step < MAX_RIDGE_STEPS - 1) & ~jnp.all(jnp.isfinite(chol))

        def climb(carry):
            step = carry[0] + 1
            return (step, *factor(step))

        _, chol, c = jax.lax.while_loop(failed, climb, (jnp.int32(0), *factor(jnp.int32(0))))
        phi = inverse_from_cholesky(chol).astype(jnp.float32)
        c = c.astype(jnp.float32)
    # mu in float32, as the published code forms it. (A float64 product here would be re-traced without x64
    # when vmap batches an enclosing scan, and truncated with a warning.)
    mean = jnp.dot(phi, beta * cross.astype(jnp.float32), precision=HIGHEST).T
    row_variance = jnp.asarray(row_variance, jnp.float32)
    return Posterior(mean=mean, scale=phi, row_variance=row_variance, ridge=c, shift=jnp.zeros_like(row_variance))


def sample(key, posterior: Posterior, textbook: bool = False) -> jax.Array:
    """One weight matrix W (outputs, features) from the posterior (see the module doc for the two rules)."""
    noise = jax.random.normal(key, posterior.mean.shape, jnp.float32)
    row_sums = jnp.sum(noise, axis=1, keepdims=True)  # eps @ 1 1^T is each row's sum, repeated
    shift = posterior.shift[:, None]
    if textbook:
        root = cholesky(posterior.scale)
        spread = jnp.sqrt(posterior.row_variance)[:, None] * jnp.dot(noise, root.T, precision=HIGHEST)
        # The symmetric root of I + p 1 1^T is I + q 1 1^T with (1 + qF)^2 = 1 + pF (F features).
        features = posterior.mean.shape[1]
        spread = spread + (jnp.sqrt(1.0 + shift * features) - 1.0) / features * row_sums
    else:
        spread = posterior.row_variance[:, None] * jnp.dot(noise, posterior.scale, precision=HIGHEST)
        spread = spread + shift * row_sums
    return posterior.mean + spread
