"""Behaviour policies over a vector of action values."""
import jax
import jax.numpy as jnp

STRATEGIES = ("softmax", "epsilon_greedy")
EPSILON_SCHEDULES = ("constant", "power", "linear")


def softmax_action(key, q_values, temperature):
    """a ~ Categorical(softmax(q / temperature)), drawn with the Gumbel-max trick."""
    return jax.random.categorical(key, q_values / temperature)


def epsilon_greedy_action(key, q_values, epsilon):
    """Uniform over all actions with probability epsilon, else argmax (ties to the lowest index)."""
    explore_key, action_key = jax.random.split(key)
    random_action = jax.random.randint(action_key, (), 0, q_values.shape[-1])
    return jnp.where(jax.random.bernoulli(explore_key, epsilon), random_action, jnp.argmax(q_values))


def scheduled_epsilon(schedule: str, hparams, episodes_done, env_steps):
    """epsilon for epsilon-greedy: constant `epsilon`; "power": max(epsilon_start * epsilon_decay^episodes,
    epsilon_end), decaying once per finished episode; "linear": epsilon_start to epsilon_end over
    epsilon_decay_steps environment steps, then constant."""
    if schedule == "constant":
        return hparams.epsilon
    if schedule == "power":
        return jnp.maximum(hparams.epsilon_start * hparams.epsilon_decay ** episodes_done, hparams.epsilon_end)
    if schedule == "linear":
        progress = jnp.clip(env_steps / hparams.epsilon_decay_steps, 0.0, 1.0)
        return hparams.epsilon_start + progress * (hparams.epsilon_end - hparams.epsilon_start)
    raise ValueError(f"unknown epsilon_schedule '{schedule}' (known: {', '.join(EPSILON_SCHEDULES)})")


def behaviour_action(strategy: str, key, q_values, temperature, epsilon):
    """Dispatch on the static strategy name; temperature and epsilon may be traced."""
    if strategy == "softmax":
        return softmax_action(key, q_values, temperature)
    if strategy == "epsilon_greedy":
        return epsilon_greedy_action(key, q_values, epsilon)
    raise ValueError(f"unknown exploration_strat '{strategy}' (known: {', '.join(STRATEGIES)})")
