"""PPO's networks and losses (the RND/SND author's code): the author's model C or PureJaxRL's MLP pair, the
clipped PPO loss, what the distillation networks read, and explained variance. agents/ppo.py builds the agent
from them."""
import haiku as hk
import jax
import jax.numpy as jnp

from agents.components import distillation as distill
from agents.components.networks import unit_float


# --- networks (the RND/SND author's code) -----------------------------------------------------------------------------
def policy_network(config, num_actions: int, num_streams: int):
    """apply(params, obs (B, ...)) -> (logits (B, A), values (B, streams)): model C, or PureJaxRL's MLP pair."""
    relu, linear = jax.nn.relu, distill.linear

    def forward(obs):
        x = unit_float(obs)
        if config["network"] == "conv":
            h = distill.conv_stack(x, config["conv_channels"], config["conv_strides"], relu)
            h = relu(linear(config["hidden_width"], distill.SQRT2)(h))
            logits = linear(num_actions, 0.01)(relu(linear(config["hidden_width"], 0.01)(h)))
            critic = relu(linear(config["hidden_width"], 0.1)(h))
            values = jnp.concatenate([linear(1, 0.01)(critic) for _ in range(num_streams)], axis=-1)
            return logits, values
        # runs written before mlp_activation existed were tanh
        activation = {"tanh": jnp.tanh, "relu": relu}[config.get("mlp_activation", "tanh")]
        actor = critic = x.reshape(x.shape[0], -1)
        for width in config["mlp_widths"]:
            actor = activation(linear(width, distill.SQRT2)(actor))
            critic = activation(linear(width, distill.SQRT2)(critic))
        values = jnp.concatenate([linear(1, 1.0)(critic) for _ in range(num_streams)], axis=-1)
        return linear(num_actions, 0.01)(actor), values

    return hk.without_apply_rng(hk.transform(forward))


def ppo_loss(apply, params, batch, hp, normalize_advantages: bool = False, value_clip: bool = False):
    """(loss, diagnostics) on a minibatch {obs, action, log_prob (the behaviour policy's), advantage (combined),
    returns (B, streams), values (B, streams): the rollout's}, with hp's clip_epsilon, entropy_coeff and critic_coeff:
    the clipped surrogate, minus beta times the entropy, plus critic_coeff times the summed value losses, each the
    mean squared error (the author's); with value_clip, PureJaxRL's: per sample the larger of the squared errors of
    the prediction and of the prediction clipped to within clip_epsilon of the rollout's value."""
    logits, values = apply(params, batch["obs"])
    log_probs = jax.nn.log_softmax(logits)
    log_prob = jnp.take_along_axis(log_probs, batch["action"][:, None], axis=1)[:, 0]
    ratio = jnp.exp(log_prob - batch["log_prob"])
    advantage = batch["advantage"]
    if normalize_advantages:
        advantage = (advantage - jnp.mean(advantage)) / (jnp.std(advantage) + 1e-8)
    clipped = jnp.clip(ratio, 1.0 - hp.clip_epsilon, 1.0 + hp.clip_epsilon)
    policy_loss = -jnp.mean(jnp.minimum(ratio * advantage, clipped * advantage))
    entropy = -jnp.mean(jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1))
    squared = (batch["returns"] - values) ** 2
    if value_clip:
        old = batch["values"]
        clipped_values = old + jnp.clip(values - old, -hp.clip_epsilon, hp.clip_epsilon)
        squared = jnp.maximum(squared, (batch["returns"] - clipped_values) ** 2)
    value_losses = jnp.mean(squared, axis=0)
    loss = policy_loss - hp.entropy_coeff * entropy + hp.critic_coeff * jnp.sum(value_losses)
    return loss, {"policy_loss": policy_loss, "entropy": entropy, "value_loss_ext": value_losses[0],
                  "value_loss_int": value_losses[1], "approx_kl": jnp.mean(ratio - 1.0 - jnp.log(ratio)),
                  "clip_fraction": jnp.mean(jnp.abs(ratio - 1.0) > hp.clip_epsilon)}


def distillation_view(config, obs_shape: tuple):
    """view(obs, mean, std) -> what the distillation networks read: the observation in [0, 1], normalised as
    obs_norm says by the running statistics, and of a frame stack only the newest frame (the RND/SND author's code).
    newest_frame(x) alone picks that frame."""
    wrappers = config.get("env_wrappers") or {}
    stacked = wrappers.get("frame_stack", 1) > 1 and len(obs_shape) == 3
    newest = slice(0, 1) if wrappers.get("frame_stack_order") == "newest_first" else slice(-1, None)

    def newest_frame(x):
        return x[..., newest] if stacked else x

    def view(obs, mean, std):
        x = unit_float(obs)
        if config["obs_norm"] == "mean":
            x = x - mean
        elif config["obs_norm"] == "mean_std":
            x = jnp.clip((x - mean) / std, -1.0, 1.0)
        return newest_frame(x)

    return view, newest_frame


def explained_variance(values, returns):
    return 1.0 - jnp.var(returns - values) / (jnp.var(returns) + 1e-8)
