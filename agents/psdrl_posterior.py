"""PSDRL's posterior refit over every transition kept in the replay (Sasso et al. 2023; remosasso/PSDRL), in lanes.

For every kept episode the GRU runs from h = 0 at the episode's first step along the real (s_t, a_t); each
step's feature vector phi_t and target y_t = [enc(o_{t+1}), tanh r_t] are added to the Gram and cross terms
at once, never materialising the design matrix. The kept episodes are contiguous in the ring (FIFO), so the
logical range [0, n) is cut into `posterior_lanes` lanes, each cut snapped forward to the next episode start;
a while_loop walks all lanes in step (sequential depth about max(n / lanes, longest episode)).
"""
import jax
import jax.numpy as jnp

from agents.components import blr
from agents.components.networks import unit_float


def lane_bounds(replay_state, lanes: int):
    """(ring index of logical position 0, lane starts (lanes,), lane ends (lanes,)) over the kept transitions."""
    ring, episodes = replay_state.action.shape[0], replay_state.valid.shape[0]
    valid = replay_state.valid
    stored = jnp.sum(jnp.where(valid, replay_state.length, 0))
    age_order = (replay_state.current + 1 + jnp.arange(episodes)) % episodes  # oldest first
    first_slot = age_order[jnp.argmax(valid[age_order])]
    first = replay_state.start[first_slot]
    big = jnp.int32(2 ** 30)
    starts = jnp.sort(jnp.where(valid, (replay_state.start - first) % ring, big))
    nominal = (jnp.arange(lanes) * stored) // lanes
    snapped = starts[jnp.clip(jnp.searchsorted(starts, nominal, side="left"), 0, episodes - 1)]
    lane_start = jnp.minimum(jnp.where(snapped >= nominal, snapped, big), stored)
    lane_end = jnp.concatenate([lane_start[1:], stored[None]])
    return first, lane_start, jnp.maximum(lane_end, lane_start)


def refit_posterior(config, replay, replay_state, params, encoder, transition, row_variance) -> blr.Posterior:
    ring = replay_state.action.shape[0]
    lanes, gru = config["posterior_lanes"], config["gru_dim"]
    embed, features = config["embed_dim"], config["transition_hidden_dim"] + config["gru_dim"]
    first, lane_start, lane_end = lane_bounds(replay_state, lanes)

    def body(carry):
        step, hidden, gram, cross = carry
        position = lane_start + step
        active = position < lane_end
        index = (first + position) % ring
        latent = encoder.apply(params["autoencoder"], unit_float(replay.observation(replay_state, index)))
        next_latent = encoder.apply(params["autoencoder"], unit_float(replay_state.next_frame[index]))
        hidden = jnp.where(replay_state.is_start[index][:, None], 0.0, hidden)
        hidden, phi, _ = transition.apply(params["transition"], latent, replay_state.action[index], hidden)
        targets = jnp.concatenate([next_latent, replay_state.reward[index][:, None]], axis=-1)
        gram, cross = blr.accumulate(gram, cross, phi, targets, active.astype(jnp.float32))
        return step + 1, hidden, gram, cross

    longest = jnp.max(lane_end - lane_start)
    carry = (jnp.int32(0), jnp.zeros((lanes, gru)), jnp.zeros((features, features)), jnp.zeros((features, embed + 1)))
    _, _, gram, cross = jax.lax.while_loop(lambda c: c[0] < longest, body, carry)
    return blr.solve(gram, cross, row_variance, config["one_over_lambda"], config["blr_coefficient"],
                     config["solve_in_float64"])
