"""PSDRL's networks (Sasso et al. 2023; remosasso/PSDRL), initialised as PyTorch initialises them.

- Autoencoder: 4 convs (kernel 4, stride 2, VALID, ReLU after every layer, the last included) from a 64 x 64 x 1
  frame to a latent of conv_feat * 8 * 2 * 2 (1536); the decoder mirrors it with transposed convs, the last
  one kernel 5 with PyTorch's output_padding=1 (its last row and column receive only the bias), linear output.
- GRU cell, PyTorch's formula (not hk.GRU: the reset gate multiplies the hidden product, two biases).
- Transition head on [h, s, onehot a]: 3 x (Linear L + tanh), Linear L (the feature vector phi, no activation),
  Linear E + 1 (next latent and reward), L = hidden_dim + gru_dim.
- Terminal net on a latent: 3 x (Linear hidden + tanh), Linear 1, raw output (terminal when >= 0.5).
- Value net on [s, h]: 4 x (Linear L + tanh), Linear 1.

PyTorch's defaults: weights and biases U(+-1/sqrt(fan_in)); VarianceScaling(1/3, fan_in, uniform) gives the
weight bound, and biases get the explicit uniform. A transposed conv's fan_in is out_channels * k^2 (PyTorch
reads it from the weight's dimension 1), which haiku's (k, k, out, in) layout also gives.

`sliced=True` runs the autoencoder's convolutions as slices and matmuls (networks.SlicedConv2D and
SlicedConv2DTranspose, under hk.Conv2D's parameter names, so the parameters are interchangeable): psdrl.networks
asks for it on CPU where the autoencoder is trained, since XLA:CPU's convolution gradients inside the trainer's
loop are its bottleneck there; forward-only encodes (acting, the refit) keep lax convolutions, faster there. Both
give the same values to float rounding.
"""
import haiku as hk
import jax
import jax.numpy as jnp

from agents.components.networks import SlicedConv2D, SlicedConv2DTranspose

TORCH_WEIGHTS = hk.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")


def torch_bias(fan_in: int):
    bound = 1.0 / fan_in ** 0.5
    return hk.initializers.RandomUniform(-bound, bound)


def linear(size: int, fan_in: int, name=None) -> hk.Linear:
    return hk.Linear(size, w_init=TORCH_WEIGHTS, b_init=torch_bias(fan_in), name=name)


def latent_size(conv_feat: int) -> int:
    """The encoder's output width for 64 x 64 frames: conv_feat * 8 channels on a 2 x 2 map."""
    return conv_feat * 8 * 2 * 2


def conv(channels: int, kernel: int, stride: int, w_init, b_init, sliced: bool) -> hk.Module:
    """A 'VALID' convolution, sliced or lax (see the module's docstring); params named as hk.Conv2D's."""
    if sliced:
        return SlicedConv2D(channels, kernel, stride, 0, w_init=w_init, b_init=b_init, name="conv2_d")
    return hk.Conv2D(channels, kernel, stride, padding="VALID", w_init=w_init, b_init=b_init)


def conv_transpose(channels: int, kernel: int, stride: int, padding, w_init, b_init, sliced: bool) -> hk.Module:
    """A transposed convolution, sliced or lax; params named as hk.Conv2DTranspose's."""
    if sliced:
        return SlicedConv2DTranspose(channels, kernel, stride, padding, w_init=w_init, b_init=b_init,
                                     name="conv2_d_transpose")
    return hk.Conv2DTranspose(channels, kernel, stride, padding=padding, w_init=w_init, b_init=b_init)


class Encoder(hk.Module):
    def __init__(self, conv_feat: int = 48, sliced: bool = False, name="encoder"):
        super().__init__(name=name)
        self.channels = [conv_feat, 2 * conv_feat, 4 * conv_feat, 8 * conv_feat]
        self.sliced = sliced

    def __call__(self, frames: jax.Array) -> jax.Array:
        """(..., 64, 64, 1) float frames in [0, 1] -> (..., latent) >= 0."""
        x = frames.reshape((-1,) + frames.shape[-3:])
        in_channels = x.shape[-1]
        for channels in self.channels:
            x = jax.nn.relu(conv(channels, 4, 2, TORCH_WEIGHTS, torch_bias(in_channels * 16), self.sliced)(x))
            in_channels = channels
        return x.reshape(frames.shape[:-3] + (-1,))


class Decoder(hk.Module):
    def __init__(self, conv_feat: int = 48, sliced: bool = False, name="decoder"):
        super().__init__(name=name)
        self.conv_feat, self.sliced = conv_feat, sliced

    def __call__(self, latents: jax.Array) -> jax.Array:
        """(..., latent) -> (..., 64, 64, 1), linear output."""
        feat = self.conv_feat
        x = latents.reshape((-1, 2, 2, 8 * feat))
        for channels in (4 * feat, 2 * feat, feat):  # 6, 14, 30
            x = jax.nn.relu(conv_transpose(channels, 4, 2, "VALID", TORCH_WEIGHTS, torch_bias(channels * 16),
                                           self.sliced)(x))
        # Kernel 5, stride 2 from 30 to 64 with PyTorch's output_padding=1: row and column 63 get only the bias.
        x = conv_transpose(1, 5, 2, ((4, 5), (4, 5)), TORCH_WEIGHTS, torch_bias(25), self.sliced)(x)
        return x.reshape(latents.shape[:-1] + (64, 64, 1))


class GRUCell(hk.Module):
    """h' = (1 - z) n + z h, r = sig(W_ir x + b_ir + W_hr h + b_hr), z likewise, n = tanh(W_in x + b_in +
    r (W_hn h + b_hn)); every weight and bias U(+-1/sqrt(hidden))."""

    def __init__(self, hidden: int, name="gru"):
        super().__init__(name=name)
        self.hidden = hidden

    def __call__(self, x: jax.Array, h: jax.Array) -> jax.Array:
        bound = 1.0 / self.hidden ** 0.5
        init = hk.initializers.RandomUniform(-bound, bound)
        w_input = hk.get_parameter("w_input", (x.shape[-1], 3 * self.hidden), init=init)
        w_hidden = hk.get_parameter("w_hidden", (self.hidden, 3 * self.hidden), init=init)
        b_input = hk.get_parameter("b_input", (3 * self.hidden,), init=init)
        b_hidden = hk.get_parameter("b_hidden", (3 * self.hidden,), init=init)
        gates_x = jnp.dot(x, w_input) + b_input
        gates_h = jnp.dot(h, w_hidden) + b_hidden
        xr, xz, xn = jnp.split(gates_x, 3, axis=-1)
        hr, hz, hn = jnp.split(gates_h, 3, axis=-1)
        r = jax.nn.sigmoid(xr + hr)
        z = jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        return (1.0 - z) * n + z * h


class TransitionHead(hk.Module):
    """[h, s, onehot a] -> (phi (L), prediction (E + 1) = W_last phi + b); phi is the 4th layer's linear output."""

    def __init__(self, width: int, output: int, name="transition_head"):
        super().__init__(name=name)
        self.width, self.output = width, output

    def features(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        for index in range(3):
            x = jnp.tanh(linear(self.width, fan_in, name=f"linear_{index}")(x))
            fan_in = self.width
        return linear(self.width, fan_in, name="features")(x)

    def __call__(self, x: jax.Array):
        phi = self.features(x)
        return phi, linear(self.output, self.width, name="last")(phi)


def mlp_head(x: jax.Array, width: int, depth: int, name: str) -> jax.Array:
    """depth x (Linear width + tanh), then Linear 1; the raw scalar (..., )."""
    with hk.experimental.name_scope(name):
        fan_in = x.shape[-1]
        for index in range(depth):
            x = jnp.tanh(linear(width, fan_in, name=f"linear_{index}")(x))
            fan_in = width
        return linear(1, fan_in, name="out")(x)[..., 0]
