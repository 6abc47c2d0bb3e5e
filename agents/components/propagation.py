"""PETS's particle propagation through an ensemble (Chua et al. 2018; kchua/handful-of-trials): E, DS, MM, TS1, TSinf, and the cost of a
candidate action sequence.

`predict(states [B, N, dO], actions [B, N, dU]) -> (mean [B, N, dT], var [B, N, dT] or None)` is the ensemble,
member b on rows [b] (None: a deterministic ensemble). `postprocess(state, delta) -> next state` turns a model
output into a state (cartpole: s + delta). Particles of one candidate are [K, dO] and share its action.

- Aggregated modes push every particle through all B members: m = mean_b mu_b, v = mean_b (mu_b - m)^2
  (+ mean_b sigma_b^2 when probabilistic). E: delta = m. DS: delta = m + z sqrt(v). MM (the code's version):
  draw as DS, then redraw from the particles' per-dim mean and biased std of those deltas.
- TS modes push each particle through ONE member: TSinf keeps particle k on member k // (K / B) for ever; TS1
  draws a fresh random assignment at every step (each member serving K / B particles). delta = mu_b + z sigma_b
  (mu_b for a deterministic ensemble). Particles are grouped per member, so a step costs one forward pass per
  particle, not B.
"""
import jax
import jax.numpy as jnp

PROPAGATIONS = ("E", "DS", "MM", "TS1", "TSinf")


def aggregated(predict, members: int, states, action):
    """(m, v) of every particle through every member."""
    count = states.shape[0]
    mean, var = predict(jnp.broadcast_to(states, (members,) + states.shape),
                        jnp.broadcast_to(action, (members, count) + action.shape))
    m = jnp.mean(mean, axis=0)
    v = jnp.mean((mean - m) ** 2, axis=0)
    if var is not None:
        v = v + jnp.mean(var, axis=0)
    return m, v


def assignment(key, mode: str, particles: int, members: int):
    """The member serving each particle this step."""
    fixed = jnp.arange(particles) // (particles // members)
    if mode == "TSinf":
        return fixed
    return jnp.zeros(particles, jnp.int32).at[jax.random.permutation(key, particles)].set(fixed)


def step(key, mode: str, predict, members: int, postprocess, states, action):
    """One propagation step of a candidate's K particles [K, dO] under its action [dU]."""
    noise_key, redraw_key, assign_key = jax.random.split(key, 3)
    count = states.shape[0]
    if mode in ("E", "DS", "MM"):
        m, v = aggregated(predict, members, states, action)
        if mode == "E":
            return postprocess(states, m)
        delta = m + jax.random.normal(noise_key, m.shape) * jnp.sqrt(v)
        if mode == "MM":
            centre, spread = jnp.mean(delta, axis=0), jnp.std(delta, axis=0)
            delta = centre + jax.random.normal(redraw_key, delta.shape) * spread
        return postprocess(states, delta)
    if count % members:
        raise ValueError(f"{mode} needs the particle count ({count}) to be a multiple of the ensemble ({members})")
    member = assignment(assign_key, mode, count, members)
    order = jnp.argsort(member, stable=True)  # particles grouped by member: [B, K / B]
    grouped = states[order].reshape((members, count // members) + states.shape[1:])
    mean, var = predict(grouped, jnp.broadcast_to(action, grouped.shape[:2] + action.shape))
    delta = mean if var is None else mean + jax.random.normal(noise_key, mean.shape) * jnp.sqrt(var)
    delta = jnp.zeros((count,) + delta.shape[2:], delta.dtype).at[order].set(delta.reshape((count,) + delta.shape[2:]))
    return postprocess(states, delta)


def trajectory_cost(key, mode: str, predict, members: int, postprocess, state, actions, particles: int,
                    obs_cost, action_cost):
    """Mean over K particles of sum_t obs_cost(s_{t+1}) + action_cost(a_t) for actions [H, dU] from the real state
    [dO]; a particle whose cost is NaN counts 1e6."""
    particles = 1 if mode == "E" else particles
    start = jnp.broadcast_to(state, (particles,) + state.shape)

    def body(carry, inputs):
        states, total = carry
        step_key, action = inputs
        states = step(step_key, mode, predict, members, postprocess, states, action)
        return (states, total + obs_cost(states) + action_cost(action)), None

    (_, total), _ = jax.lax.scan(body, (start, jnp.zeros(particles)), (jax.random.split(key, actions.shape[0]),
                                                                      actions))
    return jnp.mean(jnp.where(jnp.isnan(total), 1e6, total))
