"""PETS's probabilistic ensemble (agents/components/ensemble.py): the forward pass and the loss on fixed inputs
against a numpy reference, the log-variance bounds, member-wise vs broadcast inputs, initialisation, and the
masked input scaler."""
import jax
import jax.numpy as jnp
import numpy as np

from agents.components.ensemble import bounded_logvar, ensemble_loss, fit_scaler, make_ensemble

MEMBERS, HIDDEN, IN, OUT = 3, (7, 5), 6, 4


def softplus(x):
    return np.log1p(np.exp(x))


def numpy_forward(params, x):
    """Member-wise forward in float64: swish hidden layers, linear output, bounded log-variance."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    h = x
    for name in ("layer_0", "layer_1"):
        z = np.einsum("bmi,bio->bmo", h, p[name]["w"]) + p[name]["b"]
        h = z / (1 + np.exp(-z))
    out = np.einsum("bmi,bio->bmo", h, p["output"]["w"]) + p["output"]["b"]
    mean, raw = out[..., :OUT], out[..., OUT:]
    hi, lo = p["~"]["max_logvar"], p["~"]["min_logvar"]
    upper = hi - softplus(hi - raw)
    return mean, lo + softplus(upper - lo)


def setup(seed=0):
    model = make_ensemble(MEMBERS, HIDDEN, OUT)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(MEMBERS, 9, IN)).astype(np.float32)
    params = model.init(jax.random.PRNGKey(seed), x)
    params["~"] = {"max_logvar": jnp.array([0.5, 0.2, 0.4, 0.1]), "min_logvar": jnp.array([-10.0, -8, -9, -7])}
    return model, params, x, rng


def test_forward_matches_numpy_and_members_see_their_own_rows():
    model, params, x, _ = setup()
    mean, logvar = model.apply(params, x)
    ref_mean, ref_logvar = numpy_forward(params, x.astype(np.float64))
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logvar, ref_logvar, rtol=1e-5, atol=1e-5)
    shared_mean, _ = model.apply(params, x[0])  # [M, in]: every member on the same rows
    np.testing.assert_allclose(shared_mean[0], mean[0], rtol=1e-5, atol=1e-8)  # float32, another summation order
    assert not np.allclose(shared_mean[1], shared_mean[0])  # independent members


def test_log_variance_bounds_are_soft_and_monotone():
    raw = jnp.linspace(-15.0, 5.0, 401)
    bounded = np.asarray(bounded_logvar(raw, 0.5, -10.0))
    assert bounded.max() < 0.5 and bounded.min() > -10.0 and np.all(np.diff(bounded) > 0)
    extreme = np.asarray(bounded_logvar(jnp.array([-1e4, 1e4]), 0.5, -10.0))
    np.testing.assert_allclose(extreme, [-10.0, 0.5], atol=1e-4)  # saturates at the bounds, never past them
    np.testing.assert_allclose(bounded_logvar(jnp.float32(-3.0), 0.5, -10.0), -3.0, atol=0.05)  # near-identity inside


def test_loss_matches_the_published_formula_on_fixed_inputs():
    model, params, x, rng = setup(1)
    y = rng.normal(size=(MEMBERS, 9, OUT)).astype(np.float32)
    mask = np.ones((MEMBERS, 9), np.float32)
    mask[:, 7:] = 0  # a short last minibatch: rows 7 and 8 are padding
    decays = (1e-4, 2.5e-4, 5e-4)
    loss = float(ensemble_loss(model, params, x, y, mask, decays))
    mean, logvar = numpy_forward(params, x.astype(np.float64))
    fit = sum(np.mean(((mean[b] - y[b]) ** 2 * np.exp(-logvar[b]) + logvar[b])[:7]) for b in range(MEMBERS))
    ws = [np.asarray(params[n]["w"], np.float64) for n in ("layer_0", "layer_1", "output")]
    decay = sum(l * 0.5 * np.sum(w ** 2) for l, w in zip(decays, ws))
    bounds = 0.01 * (np.sum([0.5, 0.2, 0.4, 0.1]) - np.sum([-10.0, -8, -9, -7]))
    np.testing.assert_allclose(loss, fit + decay + bounds, rtol=1e-5)
    det = make_ensemble(MEMBERS, HIDDEN, OUT, probabilistic=False)
    det_params = det.init(jax.random.PRNGKey(2), x)
    det_mean, _ = det.apply(det_params, x)
    det_ws = [np.asarray(det_params[n]["w"], np.float64) for n in ("layer_0", "layer_1", "output")]
    expected = sum(np.mean(((np.asarray(det_mean[b]) - y[b]) ** 2 / 2)[:7]) for b in range(MEMBERS)) + \
        sum(l * 0.5 * np.sum(w ** 2) for l, w in zip(decays, det_ws))
    np.testing.assert_allclose(float(ensemble_loss(det, det_params, x, y, mask, decays, probabilistic=False)),
                               expected, rtol=1e-5)


def test_initialisation_truncated_normal_with_half_inverse_sqrt_fan_in():
    model = make_ensemble(5, (500, 500, 500), 4)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 5)))
    w = np.asarray(params["layer_1"]["w"])  # fan_in 500: sigma = 1 / (2 sqrt(500)) = 0.02236
    sigma = 1 / (2 * np.sqrt(500))
    assert np.abs(w).max() <= 2 * sigma + 1e-7
    assert abs(w.std() / sigma - 0.88) < 0.02  # a normal truncated at 2 sigma keeps 0.88 of its std
    assert float(np.abs(params["layer_1"]["b"]).max()) == 0.0
    assert not np.allclose(w[0], w[1])
    np.testing.assert_array_equal(params["~"]["max_logvar"], 0.5)
    np.testing.assert_array_equal(params["~"]["min_logvar"], -10.0)


def test_scaler_uses_only_the_first_rows_and_guards_zero_std():
    data = np.zeros((10, 3), np.float32)
    data[:4] = [[1, 5, 2], [3, 5, 2], [5, 5, 2], [7, 5, 2]]
    data[4:] = 1000.0  # preallocated rows past the data
    mean, std = fit_scaler(jnp.asarray(data), 4)
    np.testing.assert_allclose(mean, [4, 5, 2])
    np.testing.assert_allclose(std, [np.std([1, 3, 5, 7]), 1.0, 1.0], rtol=1e-6)
