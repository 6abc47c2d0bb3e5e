"""PETS's dynamics model: an ensemble of B fully connected networks trained as one (Chua et al. 2018; kchua/handful-of-trials).

`make_ensemble(members, hidden, outputs, probabilistic)` returns a haiku transform whose apply takes the
normalised inputs as [B, M, in] (member b sees only slice b) or [M, in] (broadcast to every member) and gives
(mean, logvar) [B, M, outputs] (logvar None for deterministic nets). Hidden layers are swish; the output is
linear, 2 x outputs wide for a probabilistic net, whose raw log-variance is softly bounded by two trainable
vectors shared by the members (max 0.5, min -10 at the start): l1 = max - softplus(max - l),
logvar = min + softplus(l1 - min). Weights start N(0, (1 / (2 sqrt(fan_in)))^2) truncated at two standard
deviations, biases 0, independently per member.

`ensemble_loss` is the published loss, summed over members: mean (mu - y)^2 exp(-logvar) + mean logvar
(no 1/2, no log 2 pi), plus lambda_l / 2 |W_l|^2 per layer over all members (an explicit loss term through
Adam, not decoupled decay), plus 0.01 (sum max - sum min); deterministic: mean (mu - y)^2 / 2 + the decay.
`fit_scaler` gives the per-column mean and population std of the first N rows (std < 1e-12 becomes 1).
"""
import haiku as hk
import jax
import jax.numpy as jnp


class EnsembleLinear(hk.Module):
    def __init__(self, members: int, size: int, name=None):
        super().__init__(name=name)
        self.members, self.size = members, size

    def __call__(self, x):
        fan_in = x.shape[-1]
        init = hk.initializers.TruncatedNormal(stddev=1.0 / (2.0 * fan_in ** 0.5))
        w = hk.get_parameter("w", (self.members, fan_in, self.size), init=init)
        b = hk.get_parameter("b", (self.members, 1, self.size), init=jnp.zeros)
        if x.ndim == 2:  # the same rows for every member
            return jnp.einsum("mi,bio->bmo", x, w) + b
        return jnp.einsum("bmi,bio->bmo", x, w) + b


def bounded_logvar(raw, max_logvar, min_logvar):
    upper = max_logvar - jax.nn.softplus(max_logvar - raw)
    return min_logvar + jax.nn.softplus(upper - min_logvar)


def make_ensemble(members: int, hidden: tuple, outputs: int, probabilistic: bool = True) -> hk.Transformed:
    def forward(inputs):
        x = inputs
        for index, width in enumerate(hidden):
            x = jax.nn.swish(EnsembleLinear(members, width, name=f"layer_{index}")(x))
        out = EnsembleLinear(members, 2 * outputs if probabilistic else outputs, name="output")(x)
        if not probabilistic:
            return out, None
        max_logvar = hk.get_parameter("max_logvar", (outputs,), init=hk.initializers.Constant(0.5))
        min_logvar = hk.get_parameter("min_logvar", (outputs,), init=hk.initializers.Constant(-10.0))
        return out[..., :outputs], bounded_logvar(out[..., outputs:], max_logvar, min_logvar)

    return hk.without_apply_rng(hk.transform(forward))


def layer_weights(params) -> list:
    """The weight arrays in layer order (hidden layers, then the output layer)."""
    hidden = sorted((name for name in params if name.startswith("layer_")), key=lambda n: int(n.split("_")[-1]))
    return [params[name]["w"] for name in hidden] + [params["output"]["w"]]


def ensemble_loss(model: hk.Transformed, params, inputs, targets, mask, weight_decays, probabilistic: bool = True):
    """inputs [B, n, in] (normalised), targets [B, n, out], mask [B, n] (1 for real rows: the last minibatch may
    be short); weight_decays: one lambda per layer in order. Returns the scalar loss."""
    mean, logvar = model.apply(params, inputs)
    rows = jnp.maximum(jnp.sum(mask, axis=1), 1)[:, None, None]
    weight = mask[..., None] / (rows * targets.shape[-1])  # a mean over (rows, outputs) per member
    if probabilistic:
        fit = jnp.sum(((mean - targets) ** 2 * jnp.exp(-logvar) + logvar) * weight)
        bounds = 0.01 * (jnp.sum(params["~"]["max_logvar"]) - jnp.sum(params["~"]["min_logvar"]))
    else:
        fit, bounds = jnp.sum((mean - targets) ** 2 / 2 * weight), 0.0
    decay = sum(l * 0.5 * jnp.sum(w ** 2) for l, w in zip(weight_decays, layer_weights(params)))
    return fit + decay + bounds


def fit_scaler(inputs, count):
    """(mean, std) per column over the first `count` rows of inputs [N_max, in] (population std; a std below
    1e-12 becomes 1)."""
    mask = (jnp.arange(inputs.shape[0]) < count)[:, None]
    n = jnp.maximum(count, 1)
    mean = jnp.sum(jnp.where(mask, inputs, 0.0), axis=0) / n  # where, not *: rows past count may hold anything
    std = jnp.sqrt(jnp.sum(jnp.where(mask, inputs - mean, 0.0) ** 2, axis=0) / n)
    return mean, jnp.where(std < 1e-12, 1.0, std)
