"""Haiku MLPs as the paper code builds them: L hidden Linear layers + activation, a final Linear."""
from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp



def elu(x: jax.Array) -> jax.Array:
    """ELU as exp(x) - 1 for x <= 0 instead of expm1: within 1.2e-7 of jax.nn.elu, about twice as fast on CPU.

    The elementwise activation and its derivative were a fifth of an ER DQN training step on CPU with
    jax.nn.elu (XLA's expm1 is not vectorised as well as exp); the difference is far below float32
    noise in the learning dynamics.
    """
    return jnp.where(x > 0, x, jnp.exp(jnp.minimum(x, 0.0)) - 1.0)


def unit_float(obs: jax.Array) -> jax.Array:
    """Observations as a network reads them: uint8 images / 255 into [0, 1] (decided by dtype, never by the
    data); bool and float observations as float32 unchanged."""
    if obs.dtype == jnp.uint8:
        return obs.astype(jnp.float32) / 255.0
    return obs.astype(jnp.float32)


ACTIVATIONS = {"relu": jax.nn.relu, "silu": jax.nn.silu, "elu": elu}


class MLP(hk.Module):
    """`num_hidden_layers` x (Linear(width) + activation), then Linear(output_size), no output activation.

    Haiku's default Linear init (truncated normal in [-2, 2] times 1/sqrt(fan_in), zero bias) is kept on
    purpose: the paper's tuned step sizes and early learning curves depend on it. Parameter names follow
    the paper code's files: '<name>/linear', '<name>/linear_1', ... `output_size=None` leaves out the
    final layer (a torso); a tuple of sizes gives one final Linear per entry (a Gaussian head's mean and
    std: '<name>/linear_3', '<name>/linear_4' with three hidden layers, as in the paper's files).
    """

    def __init__(self, output_size: int | tuple | None, num_hidden_layers: int, num_hidden_units: int,
                 activation: str, name=None):
        super().__init__(name=name)
        self.output_size = output_size
        self.num_hidden_layers = num_hidden_layers
        self.num_hidden_units = num_hidden_units
        self.activation = ACTIVATIONS[activation]

    def __call__(self, x: jax.Array) -> jax.Array:
        for _ in range(self.num_hidden_layers):
            x = self.activation(hk.Linear(self.num_hidden_units)(x))
        if self.output_size is None:
            return x
        if isinstance(self.output_size, tuple):  # several heads on the last hidden layer, in this module
            return tuple(hk.Linear(size)(x) for size in self.output_size)
        return hk.Linear(self.output_size)(x)


def mlp_layer_names(module_params: dict) -> list:
    """One Haiku MLP module's layer names in order: '<name>/linear', '<name>/linear_1', ..."""
    def layer_index(name):
        suffix = name.rsplit("/", 1)[1]
        return 0 if suffix == "linear" else int(suffix.rsplit("_", 1)[1])
    return sorted(module_params, key=layer_index)


def mlp_layers(module_params: dict) -> list:
    """The module's layers ({'w', 'b'}) in order."""
    return [module_params[name] for name in mlp_layer_names(module_params)]


class SavedForward(NamedTuple):
    """An MLP's output on a batch and what its parameter gradients need: each layer's input and each hidden
    layer's pre-activation (rows: samples)."""
    output: jax.Array
    layer_inputs: tuple
    pre_activations: tuple


def linear_on_hot_rows(layer: dict, hot_rows: jax.Array) -> jax.Array:
    """A Linear layer on 0/1 inputs given as the indices of their ones (..., k): the sum of those weight rows,
    the dense product's value without its arithmetic (Q's one-hot latent input is 1024 wide with 32 ones)."""
    return jnp.sum(layer["w"][hot_rows], axis=-2) + layer["b"]


def mlp_forward_saving(module_params: dict, x: jax.Array, activation: str, hot_rows: bool = False) -> SavedForward:
    """The MLP's forward pass on rows x (the same products as MLP), keeping what backpropagation needs.
    hot_rows: x (N, k) holds the indices of the ones of 0/1 inputs (see linear_on_hot_rows)."""
    act = ACTIVATIONS[activation]
    layers = mlp_layers(module_params)
    layer_inputs, pre_activations = [], []
    for index, layer in enumerate(layers[:-1]):
        layer_inputs.append(x)
        pre_activations.append(linear_on_hot_rows(layer, x) if hot_rows and index == 0
                               else jnp.dot(x, layer["w"]) + layer["b"])
        x = act(pre_activations[-1])
    layer_inputs.append(x)
    return SavedForward(jnp.dot(x, layers[-1]["w"]) + layers[-1]["b"], tuple(layer_inputs), tuple(pre_activations))


def mlp_parameter_gradients(module_params: dict, saved: SavedForward, output_cotangent: jax.Array,
                            activation: str) -> dict:
    """d loss / d module_params by backpropagation from a saved forward pass, given d loss / d output (rows:
    samples); the module's own layout, as jax.grad of the forward pass would give up to float rounding. A
    first layer fed hot rows (integer inputs) gets its weight gradient by adding each row's delta to its k rows."""
    act = ACTIVATIONS[activation]
    names = mlp_layer_names(module_params)
    layers = [module_params[name] for name in names]
    delta, grads = output_cotangent, [None] * len(layers)
    for index in reversed(range(len(layers))):
        inputs = saved.layer_inputs[index]
        if jnp.issubdtype(inputs.dtype, jnp.integer):
            hot = inputs.shape[-1]
            w_grad = jnp.zeros_like(layers[index]["w"]).at[inputs.reshape(-1)].add(jnp.repeat(delta, hot, axis=0))
        else:
            w_grad = jnp.dot(inputs.T, delta)
        grads[index] = {"w": w_grad, "b": jnp.sum(delta, axis=0)}
        if index:
            _, activation_vjp = jax.vjp(act, saved.pre_activations[index - 1])
            delta = activation_vjp(jnp.dot(delta, layers[index]["w"].T))[0]
    return dict(zip(names, grads))


class ConvTorso(hk.Module):
    """Conv2D layers (NHWC, 'VALID' padding, activation after each), flattened: MinAtar's DQN trunk by default."""

    def __init__(self, channels, kernel_sizes, strides, activation: str, name="conv_torso"):
        super().__init__(name=name)
        self.layers = list(zip(channels, kernel_sizes, strides))
        self.activation = ACTIVATIONS[activation]

    def __call__(self, images: jax.Array) -> jax.Array:
        x = images
        for channels, kernel, stride in self.layers:
            x = self.activation(hk.Conv2D(channels, kernel, stride, padding="VALID")(x))
        return x.reshape(x.shape[:-3] + (-1,))


def sliced_correlation(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    """x (..., H, W, C) correlated with w (kh, kw, C, O) over x's whole extent (no padding): kh * kw strided
    slices concatenated into patches and one matmul."""
    kh, kw, s = w.shape[0], w.shape[1], stride
    rows, cols = (x.shape[-3] - kh) // s + 1, (x.shape[-2] - kw) // s + 1
    patches = jnp.concatenate([x[..., i:i + s * (rows - 1) + 1:s, j:j + s * (cols - 1) + 1:s, :]
                               for i in range(kh) for j in range(kw)], axis=-1)
    return patches @ w.reshape(-1, w.shape[-1])


class SlicedConv2D(hk.Module):
    """A k x k convolution (NHWC, symmetric zero padding, stride s) computed as k^2 strided slices concatenated
    into patches and one matmul, with hk.Conv2D's parameters ('w' (k, k, C, O), 'b').

    Why: XLA:CPU runs a convolution's gradient inside a loop body (a lax.scan over minibatches) about 30x slower
    than outside one (jax-ml/jax#12868; measured here: 5.5 s against 0.16 s per step of a 3-layer 3x3 conv
    stack on 512 images of 40 x 40); slices and a matmul run as fast in a loop as out of one (0.21 s).
    Same values as lax.conv_general_dilated to float rounding.
    """

    def __init__(self, channels: int, kernel: int, stride: int, padding: int, w_init=None, b_init=None,
                 name=None):
        super().__init__(name=name)
        self.channels, self.kernel, self.stride, self.padding = channels, kernel, stride, padding
        self.w_init, self.b_init = w_init, b_init or jnp.zeros

    def __call__(self, x: jax.Array) -> jax.Array:
        k, p = self.kernel, self.padding
        w = hk.get_parameter("w", (k, k, x.shape[-1], self.channels), x.dtype,
                             self.w_init or hk.initializers.VarianceScaling(1.0, "fan_avg", "truncated_normal"))
        b = hk.get_parameter("b", (self.channels,), x.dtype, self.b_init)
        padded = jnp.pad(x, [(0, 0)] * (x.ndim - 3) + [(p, p), (p, p), (0, 0)])
        return sliced_correlation(padded, w, self.stride) + b


class SlicedConv2DTranspose(hk.Module):
    """A k x k transposed convolution (NHWC, stride s) with hk.Conv2DTranspose's parameters ('w' (k, k, O, C), 'b')
    and padding rule (the input dilated by s, padded by (lo, hi) per side, correlated with the unflipped kernel;
    'VALID' is lo = hi = k - 1), computed as s^2 stride-1 sliced correlations, one per output phase, interleaved.

    Output row o = s q + r sums x[q + m + c_r] w[t_r + s m] over m, with t_r = (lo - r) mod s and
    c_r = (r + t_r - lo) / s: phase r is a correlation of x with every s-th tap. Why not conv_transpose: as for
    SlicedConv2D, XLA:CPU's transposed-convolution gradients run far below its matmul speed; and not one matmul
    scattered into the output: that scatter's gradient, k^2 strided slices of the large output, is slower still.
    """

    def __init__(self, channels: int, kernel: int, stride: int, padding="VALID", w_init=None, b_init=None,
                 name=None):
        super().__init__(name=name)
        self.channels, self.kernel, self.stride = channels, kernel, stride
        self.padding = ((kernel - 1, kernel - 1),) * 2 if padding == "VALID" else tuple(map(tuple, padding))
        self.w_init, self.b_init = w_init, b_init or jnp.zeros

    def __call__(self, x: jax.Array) -> jax.Array:
        k, s = self.kernel, self.stride
        w = hk.get_parameter("w", (k, k, self.channels, x.shape[-1]), x.dtype,
                             self.w_init or hk.initializers.VarianceScaling(1.0, "fan_avg", "truncated_normal"))
        b = hk.get_parameter("b", (self.channels,), x.dtype, self.b_init)
        w = jnp.swapaxes(w, 2, 3)  # (k, k, C, O)
        (lo_h, hi_h), (lo_w, hi_w) = self.padding
        sizes = [(n - 1) * s + 1 + lo + hi - k + 1 for n, lo, hi in
                 ((x.shape[-3], lo_h, hi_h), (x.shape[-2], lo_w, hi_w))]
        blocks = [-(-size // s) for size in sizes]  # outputs per phase, the largest

        def phase(r: int, lo: int, n: int, block: int):
            """(first tap, x's first row, x's padding (before, after)) for phase r of one axis."""
            tap = (lo - r) % s
            first = (r + tap - lo) // s
            taps = len(range(tap, k, s))
            return tap, (max(0, -first), max(0, first + block + taps - 1 - n)), max(0, first)

        rows = []
        for r_h in range(s):
            row = []
            for r_w in range(s):
                (tap_h, pad_h, start_h), (tap_w, pad_w, start_w) = (
                    phase(r_h, lo_h, x.shape[-3], blocks[0]), phase(r_w, lo_w, x.shape[-2], blocks[1]))
                taps = w[tap_h::s, tap_w::s]
                padded = jnp.pad(x, [(0, 0)] * (x.ndim - 3) + [pad_h, pad_w, (0, 0)])
                span_h, span_w = blocks[0] + taps.shape[0] - 1, blocks[1] + taps.shape[1] - 1
                padded = padded[..., start_h:start_h + span_h, start_w:start_w + span_w, :]
                row.append(sliced_correlation(padded, taps))  # (..., block_h, block_w, O)
            rows.append(jnp.stack(row, axis=-2))  # (..., block_h, block_w, s, O)
        out = jnp.stack(rows, axis=-4)  # (..., block_h, s, block_w, s, O)
        out = out.reshape(x.shape[:-3] + (blocks[0] * s, blocks[1] * s, self.channels))
        return out[..., :sizes[0], :sizes[1], :] + b


def aggregate_dueling(value: jax.Array, advantage: jax.Array, aggregation: str) -> jax.Array:
    """Q = V + A - agg_a A, the aggregate taken per state over the action axis only (never over the batch)."""
    if aggregation == "mean":
        baseline = jnp.mean(advantage, axis=-1, keepdims=True)
    elif aggregation == "max":
        baseline = jnp.max(advantage, axis=-1, keepdims=True)
    else:
        raise ValueError(f"unknown dueling_aggregation '{aggregation}' (known: mean, max)")
    return value + advantage - baseline


def q_network(num_actions: int, num_hidden_layers: int, num_hidden_units: int, activation: str,
              obs_shape: tuple | None = None, dueling: bool = False, dueling_aggregation: str = "mean",
              torso: str = "mlp", conv_channels=(16,), conv_kernel_sizes=(3,), conv_strides=(1,)) -> hk.Transformed:
    """Q(obs) -> (..., num_actions) for observations of shape obs_shape (default: vectors), with or without
    leading batch axes.

    torso "mlp": flatten the observation, then the MLP (module 'q_function', the paper code's names).
    torso "conv": ConvTorso on (H, W, C) images, then the MLP's hidden layers.
    dueling: the torso (conv and/or hidden layers) feeds a value stream and an advantage stream, each one
    hidden layer of num_hidden_units then Linear(1) / Linear(num_actions), combined per state.
    """
    obs_rank = 1 if obs_shape is None else len(obs_shape)  # default: flat vector observations

    def forward(obs):
        x = unit_float(obs)
        batch_shape = x.shape[:x.ndim - obs_rank]
        if torso == "conv":
            if obs_rank != 3:
                raise ValueError(f"the conv torso needs (height, width, channels) observations, got shape {obs_shape}")
            x = ConvTorso(conv_channels, conv_kernel_sizes, conv_strides, activation)(x)
        elif torso != "mlp":
            raise ValueError(f"unknown torso '{torso}' (known: mlp, conv)")
        x = x.reshape(batch_shape + (-1,))
        if not dueling:
            return MLP(num_actions, num_hidden_layers, num_hidden_units, activation, name="q_function")(x)
        features = MLP(None, num_hidden_layers, num_hidden_units, activation, name="q_function")(x)
        value = MLP(1, 1, num_hidden_units, activation, name="value_stream")(features)
        advantage = MLP(num_actions, 1, num_hidden_units, activation, name="advantage_stream")(features)
        return aggregate_dueling(value, advantage, dueling_aggregation)

    return hk.without_apply_rng(hk.transform(forward))
