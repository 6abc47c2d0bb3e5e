"""Matrix factorisations that stay one matrix per LAPACK call, also under vmap.

jaxlib's CPU LAPACK kernels (QR, Cholesky, triangular solves) split a batch of matrices over XLA's shared
intra-op thread pool and block until their share is done. When as many such kernels run at once as the pool
has threads (several vmapped factorisations in one program, or one per device on a CPU split into one
device per core), every pool thread blocks waiting for work queued behind it and the process hangs, idle,
for ever. Seen twice here: PSDRL's posterior solve on 2 devices x 2 cores, and PPO's orthogonal
initialisation of 2 or more seeds on one device (8 independent batched QRs of 256 x 256 hang the same way in a
ten-line script). A single matrix runs inline on the calling thread, so these wrappers factorise the matrices
of a batch one after another (`jax.custom_batching.sequential_vmap`). On a GPU the loop costs little next to
the program around it; the initialisation runs once.

The batching rule traces the body again later, outside any `enable_x64` block: each body sets x64 itself
from its input's dtype, so a float64 factorisation stays float64.
"""
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np


@jax.custom_batching.sequential_vmap
def cholesky(matrix):
    with jax.enable_x64(matrix.dtype == jnp.float64):
        return jnp.linalg.cholesky(matrix)


@jax.custom_batching.sequential_vmap
def inverse_from_cholesky(chol):
    with jax.enable_x64(chol.dtype == jnp.float64):
        return jax.scipy.linalg.cho_solve((chol, True), jnp.eye(chol.shape[0], dtype=chol.dtype))


@jax.custom_batching.sequential_vmap
def qr(matrix):
    """The reduced QR factorisation (q, r) of one matrix."""
    return jnp.linalg.qr(matrix)


def orthogonal(key, shape, dtype=jnp.float32, gain: float = 1.0):
    """An orthogonal weight of norm `gain` (PyTorch's orthogonal_, haiku's Orthogonal) whose QR factorises one
    matrix per LAPACK call: Q of a Gaussian matrix's QR, its columns' signs set by R's diagonal so that Q is
    uniformly (Haar) distributed; the rows of the weight (its output axis last) orthonormal when there are
    fewer of them than columns, else the columns."""
    if len(shape) < 2:
        raise ValueError(f"an orthogonal initialiser needs a weight of at least 2 axes, not shape {shape}")
    outputs = shape[-1]
    inputs = int(np.prod(shape)) // outputs
    tall = (max(outputs, inputs), min(outputs, inputs))
    q, r = qr(jax.random.normal(key, tall, dtype))
    q = q * jnp.sign(jnp.diag(r))
    q = q.T if outputs < inputs else q  # (outputs, inputs)
    return gain * jnp.moveaxis(q.reshape((outputs,) + tuple(shape[:-1])), 0, -1).astype(dtype)


class Orthogonal(hk.initializers.Initializer):
    """`orthogonal` as a haiku initialiser."""

    def __init__(self, gain: float = 1.0):
        self.gain = gain

    def __call__(self, shape, dtype):
        return orthogonal(hk.next_rng_key(), shape, dtype, self.gain)
