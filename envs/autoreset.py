"""gymnax's auto-reset step with every reset of a chunk drawn in advance, in one batched call.

gymnax's `Environment.step` computes a fresh reset on every step and keeps it only when the episode
ended. Inside a `lax.scan` that reset is on the sequential critical path (for ProcMaze a maze-generating
while-loop of about 2n-1 iterations per step). Drawing all of a chunk's resets before the scan, vmapped
over the steps, does the same work in one wide loop and leaves the scan body short. The outputs are
identical to `env.step(key, ...)` for the same keys: the key is split as gymnax splits it.
"""
import jax
import jax.numpy as jnp


def presample_resets(env, keys, params):
    """For a chunk's per-step env keys (T, 2): (step_keys (T, 2), resets) where resets = (obs, state), each (T, ...)."""
    split = jax.vmap(jax.random.split)(keys)  # (T, 2, 2): gymnax's key_step, key_reset per step
    step_keys, reset_keys = split[:, 0], split[:, 1]
    return step_keys, jax.vmap(env.reset_env, in_axes=(0, None))(reset_keys, params)


def step_with_reset(env, step_key, state, action, params, reset):
    """`env.step` with the reset given: returns (obs, state, reward, terminated, truncated, info) as gymnax does;
    info also holds the observation and state the step reached before any reset (final_observation, final_state)."""
    reset_obs, reset_state = reset
    obs_stepped, state_stepped, reward, terminated, info = env.step_env(step_key, state, action, params)
    truncated = env.is_truncated(state_stepped, params)
    done = jnp.logical_or(terminated, truncated)
    state = jax.tree.map(lambda r, s: jax.lax.select(done, r, s), reset_state, state_stepped)
    obs = jax.tree.map(lambda r, s: jax.lax.select(done, r, s), reset_obs, obs_stepped)
    info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs_stepped,
            "final_state": state_stepped}
    return obs, state, reward, terminated, truncated, info
