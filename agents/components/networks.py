"""Haiku MLPs as the paper code builds them: L hidden Linear layers + activation, a final Linear."""
import haiku as hk
import jax
import jax.numpy as jnp

ACTIVATIONS = {"relu": jax.nn.relu, "silu": jax.nn.silu, "elu": jax.nn.elu}


class MLP(hk.Module):
    """Flatten, `num_hidden_layers` x (Linear(width) + activation), Linear(output_size), no output activation.

    Haiku's default Linear init (truncated normal in [-2, 2] times 1/sqrt(fan_in), zero bias) is kept on
    purpose: the paper's tuned step sizes and early learning curves depend on it. Parameter names follow
    the paper code's files: '<name>/linear', '<name>/linear_1', ...
    """

    def __init__(self, output_size: int, num_hidden_layers: int, num_hidden_units: int, activation: str, name=None):
        super().__init__(name=name)
        self.output_size = output_size
        self.num_hidden_layers = num_hidden_layers
        self.num_hidden_units = num_hidden_units
        self.activation = ACTIVATIONS[activation]

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[:-1] + (-1,)) if x.ndim > 1 else x
        for _ in range(self.num_hidden_layers):
            x = self.activation(hk.Linear(self.num_hidden_units)(x))
        return hk.Linear(self.output_size)(x)


def q_network(num_actions: int, num_hidden_layers: int, num_hidden_units: int, activation: str) -> hk.Transformed:
    """Q(obs) -> (num_actions,), with module name 'q_function' as in the paper's .params files."""
    def forward(obs):
        return MLP(num_actions, num_hidden_layers, num_hidden_units, activation, name="q_function")(obs.astype(jnp.float32))

    return hk.without_apply_rng(hk.transform(forward))
