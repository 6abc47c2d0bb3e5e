"""PSDRL's building blocks against references (Sasso et al. 2023; remosasso/PSDRL): the PyTorch-formula GRU cell, the
autoencoder's shapes and bias-only border, PyTorch-style initialisation, the Bayesian last layer (ridge
solution, the two sampling rules' covariances, the ridge ladder, the initial prior) and the whole-episode
replay (reconstructed observations, no sequence crossing an episode boundary, FIFO eviction, T_eff)."""
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import psdrl_networks as nets
from agents.components import blr
from agents.components.episode_replay import make_episode_replay


# ------------------------------------------------------------------------------------------ networks
def numpy_gru(x, h, w_input, w_hidden, b_input, b_hidden):
    """PyTorch's GRU formula, written out: gates in the order r, z, n."""
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    gx, gh = x @ w_input + b_input, h @ w_hidden + b_hidden
    size = h.shape[-1]
    r = sig(gx[:, :size] + gh[:, :size])
    z = sig(gx[:, size:2 * size] + gh[:, size:2 * size])
    n = np.tanh(gx[:, 2 * size:] + r * gh[:, 2 * size:])
    return (1 - z) * n + z * h


def test_gru_cell_matches_the_pytorch_formula():
    cell = hk.without_apply_rng(hk.transform(lambda x, h: nets.GRUCell(7)(x, h)))
    rng = np.random.default_rng(0)
    x, h = rng.normal(size=(5, 11)).astype(np.float32), rng.normal(size=(5, 7)).astype(np.float32)
    params = cell.init(jax.random.PRNGKey(0), x, h)
    p = {k: np.asarray(v, np.float64) for k, v in params["gru"].items()}
    expected = numpy_gru(x.astype(np.float64), h.astype(np.float64), p["w_input"], p["w_hidden"], p["b_input"],
                         p["b_hidden"])
    np.testing.assert_allclose(np.asarray(cell.apply(params, x, h)), expected, atol=1e-6)
    bound = 1 / np.sqrt(7)
    assert all(np.abs(v).max() <= bound and np.abs(v).max() > 0.9 * bound for v in p.values())


def test_autoencoder_shapes_at_published_size_and_bias_only_border():
    def autoencoder(frames):
        latent = nets.Encoder(48)(frames)
        return latent, nets.Decoder(48)(latent)

    model = hk.without_apply_rng(hk.transform(autoencoder))
    frames = jax.random.uniform(jax.random.PRNGKey(0), (2, 64, 64, 1))
    params = model.init(jax.random.PRNGKey(1), frames)
    latent, reconstruction = model.apply(params, frames)
    assert latent.shape == (2, 1536) and nets.latent_size(48) == 1536 and bool(jnp.all(latent >= 0))
    assert reconstruction.shape == (2, 64, 64, 1)
    bias = float(params["decoder/conv2_d_transpose_3"]["b"][0])
    np.testing.assert_allclose(reconstruction[:, 63, :, 0], bias, rtol=1e-6)
    np.testing.assert_allclose(reconstruction[:, :, 63, 0], bias, rtol=1e-6)
    assert not np.allclose(reconstruction[:, 62, :, 0], bias)
    count = sum(x.size for x in jax.tree.leaves(params))
    assert 3.0e6 < count < 3.2e6  # 1.55 M each for the encoder and the decoder
    # PyTorch's bounds: conv1 fan_in 16 -> 1/4; the last transposed conv's fan_in is 1 * 5^2 -> 1/5.
    assert 0.2 < float(jnp.abs(params["encoder/conv2_d"]["w"]).max()) <= 0.25
    assert 0.15 < float(jnp.abs(params["decoder/conv2_d_transpose_3"]["w"]).max()) <= 0.2


@pytest.mark.parametrize("kernel, stride, padding, size, channels", [
    (4, 2, "VALID", 2, (12, 6)), (4, 2, "VALID", 6, (6, 3)), (5, 2, ((4, 5), (4, 5)), 30, (3, 1)),
    (3, 1, ((0, 2), (1, 1)), 5, (2, 4)), (3, 3, ((1, 0), (2, 3)), 4, (2, 3))])
def test_sliced_transposed_convolution_equals_haiku(kernel, stride, padding, size, channels):
    """SlicedConv2DTranspose (phases of sliced correlations) against hk.Conv2DTranspose with the same parameters:
    values and gradients to float rounding, including explicit uneven padding and a stride above the kernel's
    overlap."""
    from agents.components.networks import SlicedConv2DTranspose
    inputs, outputs = channels
    ref = hk.without_apply_rng(hk.transform(lambda x: hk.Conv2DTranspose(outputs, kernel, stride, padding=padding)(x)))
    sliced = hk.without_apply_rng(hk.transform(
        lambda x: SlicedConv2DTranspose(outputs, kernel, stride, padding, name="conv2_d_transpose")(x)))
    x = jax.random.normal(jax.random.PRNGKey(0), (3, size, size, inputs))
    params = jax.tree.map(lambda p: p + 0.1, ref.init(jax.random.PRNGKey(1), x))
    assert jax.tree.structure(sliced.init(jax.random.PRNGKey(1), x)) == jax.tree.structure(params)
    want = ref.apply(params, x)
    np.testing.assert_allclose(sliced.apply(params, x), want, rtol=1e-5, atol=1e-5)
    grad = lambda f: jax.grad(lambda p, x: jnp.sum(jnp.sin(f.apply(p, x))), argnums=(0, 1))(params, x)  # noqa: E731
    for got, expected in zip(jax.tree.leaves(grad(sliced)), jax.tree.leaves(grad(ref))):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_sliced_autoencoder_equals_the_lax_convolutions():
    """The sliced autoencoder (trained on CPU) has the lax one's parameters, initial values included, and, fed
    them, the same reconstructions, loss and gradients."""
    def autoencoder(sliced):
        return hk.without_apply_rng(hk.transform(
            lambda frames: nets.Decoder(8, sliced)(nets.Encoder(8, sliced)(frames))))

    frames = jax.random.uniform(jax.random.PRNGKey(0), (2, 3, 64, 64, 1))
    sliced, lax = autoencoder(True), autoencoder(False)
    params = lax.init(jax.random.PRNGKey(1), frames)
    jax.tree.map(np.testing.assert_array_equal, sliced.init(jax.random.PRNGKey(1), frames), params)
    loss = lambda f: jax.value_and_grad(  # noqa: E731
        lambda p: jnp.mean((f.apply(p, frames) - frames) ** 2))(params)
    (got_loss, got_grads), (want_loss, want_grads) = loss(sliced), loss(lax)
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-5)
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-6), got_grads, want_grads)


def test_transition_head_feature_layer_is_linear_and_sizes():
    head = hk.without_apply_rng(hk.transform(lambda x: nets.TransitionHead(20, 9)(x)))
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 13))
    params = head.init(jax.random.PRNGKey(1), x)
    phi, prediction = head.apply(params, x)
    assert phi.shape == (3, 20) and prediction.shape == (3, 9)
    last = params["transition_head/last"]
    np.testing.assert_allclose(prediction, phi @ last["w"] + last["b"], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------ Bayesian last layer
def random_regression(n=300, features=6, outputs=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype(np.float32), rng.normal(size=(n, outputs)).astype(np.float32)


def test_posterior_mean_is_the_ridge_solution_and_accumulates_in_batches():
    x, y = random_regression()
    gram, cross = blr.accumulate(jnp.zeros((6, 6)), jnp.zeros((6, 3)), x[:100], y[:100], jnp.ones(100))
    gram, cross = blr.accumulate(gram, cross, x[100:], y[100:], jnp.ones(200))
    padded = blr.accumulate(gram, cross, np.ones((4, 6), np.float32), np.ones((4, 3), np.float32), jnp.zeros(4))
    np.testing.assert_array_equal(padded[0], gram)  # weight 0 rows change nothing
    posterior = blr.solve(gram, cross, jnp.full(3, 1e-3), 1.0, 100.0, use_float64=True)
    x64 = x.astype(np.float64)
    phi = np.linalg.inv(x64.T @ x64 + 100 * np.eye(6))
    np.testing.assert_allclose(posterior.mean, (phi @ x64.T @ y).T, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(posterior.scale, phi, rtol=1e-5)
    assert float(posterior.ridge) == 100.0 and posterior.mean.dtype == jnp.float32


@pytest.mark.parametrize("textbook", [False, True])
def test_sample_covariance_follows_the_sampling_rule(textbook):
    """20,000 draws of a 2-output, 3-feature posterior: the empirical covariance of each row matches sigma^4 Phi^2
    (faithful, Q1) or sigma^2 Phi (textbook) within 6% of its largest entry."""
    a = np.array([[2.0, 0.5, 0.1], [0.5, 1.0, 0.2], [0.1, 0.2, 0.5]], np.float32)
    posterior = blr.Posterior(mean=jnp.arange(6.0).reshape(2, 3), scale=jnp.asarray(a),
                              row_variance=jnp.array([0.5, 2.0]), ridge=jnp.float32(100), shift=jnp.zeros(2))
    draws = jax.vmap(lambda k: blr.sample(k, posterior, textbook))(jax.random.split(jax.random.PRNGKey(0), 20000))
    for row, variance in enumerate([0.5, 2.0]):
        expected = variance * a if textbook else variance ** 2 * a @ a
        empirical = np.cov(np.asarray(draws[:, row]), rowvar=False)
        assert np.abs(empirical - expected).max() < 0.06 * np.abs(expected).max()
        np.testing.assert_allclose(np.asarray(draws[:, row]).mean(0), np.arange(3.0) + 3 * row,
                                   atol=4 * np.sqrt(np.abs(expected).max() / 20000))


@pytest.mark.parametrize("textbook, bound", [(False, 1e-5), (True, (1e-3 / 100) ** 0.5)])
def test_per_weight_noise_is_at_most_the_documented_bound(textbook, bound):
    """Phi = (beta X^T X + c I)^-1 has eigenvalues <= 1/c, so at sigma^2 = 1e-3 and c = 100 a weight's standard
    deviation is at most sigma^2 / c = 1e-5 (faithful) or sqrt(sigma^2 / c) ~ 3.2e-3 (textbook) (docs/psdrl.md):
    reached with no data (X = 0), below it with data. 4,000 draws; 10% for the estimate's error."""
    x, y = random_regression()
    for gram, cross, at_bound in [(jnp.zeros((6, 6)), jnp.zeros((6, 3)), True),
                                  (*blr.accumulate(jnp.zeros((6, 6)), jnp.zeros((6, 3)), x, y, jnp.ones(300)), False)]:
        posterior = blr.solve(gram, cross, jnp.full(3, 1e-3), 1.0, 100.0, use_float64=True)
        draws = jax.vmap(lambda k: blr.sample(k, posterior, textbook))(jax.random.split(jax.random.PRNGKey(2), 4000))
        spread = np.asarray(draws - posterior.mean, np.float64).std(axis=0)  # float32 std loses these digits
        phi = np.asarray(posterior.scale, np.float64)
        exact = np.sqrt(1e-3 * np.diag(phi)) if textbook else 1e-3 * np.sqrt(np.diag(phi @ phi))
        np.testing.assert_allclose(spread, np.broadcast_to(exact, spread.shape), rtol=0.1)
        assert spread.max() < 1.1 * bound
        if at_bound:
            np.testing.assert_allclose(spread, bound, rtol=0.1)
        else:
            assert spread.max() < 0.6 * bound  # 300 points of data (X^T X ~ 300 I) shrink Phi to about I / 400


@pytest.mark.parametrize("use_float64", [True, False])
def test_ridge_ladder_climbs_until_the_factor_exists(use_float64):
    """beta * gram = -450 I is not positive definite until c > 450: the ladder 100 -> 1000 stops at 1000."""
    cross = jnp.ones((4, 2))
    posterior = blr.solve(-450.0 * jnp.eye(4), cross, jnp.ones(2), 1.0, 100.0, use_float64)
    assert float(posterior.ridge) == 1000.0
    np.testing.assert_allclose(posterior.scale, np.eye(4) / 550.0, rtol=1e-5)
    singular = blr.solve(jnp.zeros((4, 4)).at[0, 0].set(jnp.nan), cross, jnp.ones(2), 1.0, 100.0, use_float64)
    assert float(singular.ridge) == 1e8  # the top of the ladder, reported (never silently a small ridge)


def test_float64_solve_survives_vmap_of_a_scan_without_truncation_warnings():
    """The harness vmaps a scan whose body solves: the float64 steps must stay float64 there (no 'not available,
    truncated' warning) and agree with the unbatched solve."""
    import warnings

    x, y = random_regression()
    gram, cross = blr.accumulate(jnp.zeros((6, 6)), jnp.zeros((6, 3)), x, y, jnp.ones(300))

    def scanned(gram, cross):
        return jax.lax.scan(lambda c, _: (c, blr.solve(gram, cross, jnp.ones(3), 1.0, 100.0, True).mean), 0,
                            None, length=2)[1][-1]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batched = jax.jit(jax.vmap(scanned))(gram[None], cross[None])[0]
    np.testing.assert_allclose(batched, blr.solve(gram, cross, jnp.ones(3), 1.0, 100.0, True).mean, rtol=1e-6)


@pytest.mark.parametrize("textbook", [False, True])
def test_initial_prior_is_all_ones_and_identity_plus_each_rows_configured_prior(textbook):
    """Q2 with row priors p = (0.05, 0.2) over F = 4 features: the mean is all ones and row i's matrix is
    I + p_i 1 1^T, so 40,000 draws have the covariance (I + p 1 1^T)^2 = I + (2p + p^2 F) 1 1^T (faithful, Q1) or
    I + p 1 1^T (textbook), within 0.05 per entry (the estimate's standard error is about 0.01)."""
    priors = np.array([0.05, 0.2], np.float32)
    posterior = blr.initial_posterior(2, 4, 100.0, priors)
    np.testing.assert_array_equal(posterior.mean, np.ones((2, 4)))
    draws = jax.vmap(lambda k: blr.sample(k, posterior, textbook))(jax.random.split(jax.random.PRNGKey(1), 40000))
    for row, p in enumerate(priors):
        off_diagonal = p if textbook else 2 * p + p * p * 4
        expected = np.eye(4) + off_diagonal * np.ones((4, 4))
        empirical = np.cov(np.asarray(draws[:, row]), rowvar=False)
        assert np.abs(empirical - expected).max() < 0.05, (row, textbook, empirical)
        np.testing.assert_allclose(np.asarray(draws[:, row]).mean(0), np.ones(4), atol=0.03)


# ------------------------------------------------------------------------------------------ episode replay
def fill(replay, lengths, frame_shape=(2,)):
    """Episodes of the given lengths; frame value = 1000 * episode + step (the reset frame is step 0), so an
    observation says which episode and step it is. The last episode is left in progress when its length is
    negative."""
    state = replay.init(jnp.zeros(frame_shape, jnp.int32))
    for episode, length in enumerate(lengths):
        state = replay.begin(state, jnp.full(frame_shape, 1000 * episode, jnp.int32))
        for step in range(abs(length)):
            done = step == abs(length) - 1 and length > 0
            state = replay.add(state, step % 3, float(step), jnp.full(frame_shape, 1000 * episode + step + 1),
                               done, 1.0)
        if length > 0:
            state = replay.commit(state)
    return state


def test_observations_are_reconstructed_exactly_across_the_ring_wrap():
    replay = make_episode_replay(ring=20, episodes=8, capacity=10, batch=1, sequence=4)
    state = fill(replay, [7, 6, 5, 4])  # 22 steps: the ring wrapped
    slots = jnp.arange(20)
    obs = np.asarray(replay.observation(state, slots))[:, 0]
    next_frames = np.asarray(state.next_frame)[:, 0]
    owner = np.asarray(state.episode_of)
    for slot in range(20):
        if np.asarray(state.valid)[owner[slot]]:
            assert obs[slot] + 1 == next_frames[slot]  # frame 1000 e + s, then its successor


def test_fifo_eviction_keeps_at_least_capacity_and_drops_whole_oldest_episodes():
    replay = make_episode_replay(ring=64, episodes=8, capacity=10, batch=1, sequence=4)
    state = fill(replay, [5, 4, 6, 3, 2])
    valid = np.asarray(state.valid)
    # Newest first: 2, 3, 6 (11 >= 10): episodes 2, 3, 4 kept; 0 and 1 evicted.
    assert valid[:5].tolist() == [False, False, True, True, True]
    assert int(replay.stored(state)) == 11 >= 10


def test_episode_in_progress_is_never_sampled_and_sequences_stay_inside_episodes():
    replay = make_episode_replay(ring=200, episodes=16, capacity=150, batch=64, sequence=6)
    state = fill(replay, [9, 12, 7, 15, 8, -20])  # the last one is in progress
    for seed in range(5):
        sequences = replay.sample(state, jax.random.PRNGKey(seed))
        assert int(sequences.length) == 6 and bool(sequences.mask.all())
        obs = np.asarray(sequences.obs)[..., 0]
        episode, step = obs // 1000, obs % 1000
        assert (episode == episode[:, :1]).all() and (episode < 5).all()  # one committed episode per sequence
        assert (np.diff(step, axis=1) == 1).all()  # consecutive steps
        np.testing.assert_array_equal(np.asarray(sequences.next_obs)[..., 0], obs + 1)


@pytest.mark.parametrize("lengths, sequence, t_eff", [([30, 12, 40], 25, 25),  # longest > T: T
                                                      ([20, 12, 18], 25, 12),  # longest <= T: the shortest
                                                      ([25, 12, 18], 25, 12)])  # longest == T exactly: shortest (Q9)
def test_effective_sequence_length_and_eligibility(lengths, sequence, t_eff):
    replay = make_episode_replay(ring=200, episodes=8, capacity=150, batch=256, sequence=sequence)
    state = fill(replay, lengths)
    sequences = replay.sample(state, jax.random.PRNGKey(0))
    assert int(sequences.length) == t_eff and sequences.mask.shape == (256, sequence)
    assert (np.asarray(sequences.mask).sum(axis=1) == t_eff).all()
    sampled = np.unique(np.asarray(sequences.obs)[:, 0, 0] // 1000)
    assert set(sampled.tolist()) == {e for e, n in enumerate(lengths) if n >= t_eff}  # shorter ones excluded
