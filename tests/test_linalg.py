"""The factorisations that run one matrix per LAPACK call under vmap (agents/components/linalg.py): their values
against numpy, their batching as a loop, the orthogonal initialiser equal to haiku's, and the case that hangs
jaxlib's batched QR (8 independent vmapped QRs of 4 x 256 x 256 in one program) finishing."""
import os
import subprocess
import sys
from pathlib import Path

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.components import linalg


def test_vmapped_cholesky_runs_one_matrix_per_lapack_call():
    """Under vmap the factorisation loops over the batch; the factors and the inverse are numpy's."""
    rng = np.random.default_rng(0)
    roots = rng.normal(size=(3, 5, 5))
    matrices = roots @ np.transpose(roots, (0, 2, 1)) + 5 * np.eye(5)
    batched = jax.vmap(linalg.cholesky)
    jaxpr = str(jax.make_jaxpr(batched)(jnp.asarray(matrices, jnp.float32)))
    assert "scan" in jaxpr and "f32[3,5,5] = cholesky" not in jaxpr.replace("lax.linalg.", "")
    np.testing.assert_allclose(np.asarray(batched(jnp.asarray(matrices, jnp.float32))), np.linalg.cholesky(matrices),
                               rtol=1e-4, atol=1e-5)
    inverse = jax.vmap(linalg.inverse_from_cholesky)(jnp.asarray(np.linalg.cholesky(matrices), jnp.float32))
    np.testing.assert_allclose(np.asarray(inverse), np.linalg.inv(matrices), rtol=1e-3, atol=1e-5)


def test_vmapped_qr_runs_one_matrix_per_lapack_call():
    rng = np.random.default_rng(1)
    matrices = jnp.asarray(rng.normal(size=(3, 6, 4)), jnp.float32)
    jaxpr = str(jax.make_jaxpr(jax.vmap(linalg.qr))(matrices))
    assert "scan" in jaxpr and "f32[3,6,4] f32[3,4,4] = qr[" not in jaxpr.replace("c:f32", "f32")
    assert "qr[" in jaxpr.split("scan[")[1]  # the factorisation sits inside the loop, one (6, 4) matrix at a time
    q, r = jax.vmap(linalg.qr)(matrices)
    np.testing.assert_allclose(np.asarray(q @ r), np.asarray(matrices), atol=1e-5)
    np.testing.assert_allclose(np.asarray(jnp.swapaxes(q, 1, 2) @ q), np.broadcast_to(np.eye(4), (3, 4, 4)),
                               atol=1e-5)


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (16, 16), (3, 3, 8, 16), (3, 3, 2, 40)])
def test_orthogonal_equals_haikus_initialiser(shape):
    """The same key gives haiku's Orthogonal weights (the same draw and QR, factorised alone)."""
    def weights(initializer):
        return hk.transform(lambda: hk.get_parameter("w", shape, init=initializer)).init(jax.random.PRNGKey(3))["~"]["w"]

    ours, haikus = weights(linalg.Orthogonal(0.5)), weights(hk.initializers.Orthogonal(0.5))
    np.testing.assert_allclose(np.asarray(ours), np.asarray(haikus), atol=1e-6)
    flat = np.asarray(ours).reshape(-1, shape[-1])
    gram = flat.T @ flat if flat.shape[1] <= flat.shape[0] else flat @ flat.T
    np.testing.assert_allclose(gram, 0.25 * np.eye(min(flat.shape)), atol=1e-5)


HANGING_PROGRAM = """
import jax, jax.numpy as jnp
from agents.components import linalg
def eight_batched_qrs(key):
    return sum(jax.vmap(linalg.qr)(jax.random.normal(k, (4, 256, 256)))[0].sum() for k in jax.random.split(key, 8))
print(float(jax.jit(eight_batched_qrs)(jax.random.PRNGKey(0))))
"""


def test_independent_batched_qrs_in_one_program_finish():
    """With jnp.linalg.qr this program hangs for ever on a 2-core CPU (jaxlib 0.10: each batched QR blocks a
    pool thread waiting for its share); factorised one matrix at a time it finishes. In a child process with a
    timeout, so that a regression fails instead of hanging the suite."""
    done = subprocess.run([sys.executable, "-c", HANGING_PROGRAM], capture_output=True, text=True, timeout=240,
                          cwd=Path(__file__).resolve().parents[1], env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert np.isfinite(float(done.stdout.strip().splitlines()[-1]))
