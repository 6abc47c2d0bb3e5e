"""Behaviour policies over a vector of action values."""
import jax
import jax.numpy as jnp

STRATEGIES = ("softmax", "epsilon_greedy")


def softmax_action(key, q_values, temperature):
    """a ~ Categorical(softmax(q / temperature)), drawn with the Gumbel-max trick."""
    return jax.random.categorical(key, q_values / temperature)


def epsilon_greedy_action(key, q_values, epsilon):
    """Uniform over all actions with probability epsilon, else argmax (ties to the lowest index)."""
    explore_key, action_key = jax.random.split(key)
    random_action = jax.random.randint(action_key, (), 0, q_values.shape[-1])
    return jnp.where(jax.random.bernoulli(explore_key, epsilon), random_action, jnp.argmax(q_values))


def behaviour_action(strategy: str, key, q_values, hparams):
    """Dispatch on the static strategy name; hparams carries softmax_temp and epsilon (traced)."""
    if strategy == "softmax":
        return softmax_action(key, q_values, hparams.softmax_temp)
    if strategy == "epsilon_greedy":
        return epsilon_greedy_action(key, q_values, hparams.epsilon)
    raise ValueError(f"unknown exploration_strat '{strategy}' (known: {', '.join(STRATEGIES)})")
