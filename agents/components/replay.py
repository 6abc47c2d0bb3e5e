"""A uniform circular replay buffer as a bundle of pure functions over a state pytree.

Items are any pytree of arrays; each leaf is stored with its own dtype, so bool observations stay
bool in memory (lossless, 4x smaller than float32) and the learner casts them when it uses them.
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ReplayState:
    items: Any  # pytree, each leaf (capacity, ...)
    position: jax.Array  # next slot to write
    full: jax.Array  # every slot written at least once


class ReplayBuffer(NamedTuple):
    init: Any
    add: Any
    sample: Any
    size: Any


def make_replay_buffer(capacity: int, batch_size: int) -> ReplayBuffer:
    """init(example_item) / add(state, item) / sample(state, key) -> batch / size(state).

    Sampling is uniform with replacement over the written slots [0, position) or, once full, [0, capacity);
    the item added last is among them. Sampling from an empty buffer is not defined (learners add first).
    """

    def init(example_item) -> ReplayState:
        items = jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example_item)
        return ReplayState(items=items, position=jnp.int32(0), full=jnp.bool_(False))

    def add(state: ReplayState, item) -> ReplayState:
        items = jax.tree.map(lambda store, x: store.at[state.position].set(jnp.asarray(x, store.dtype)), state.items, item)
        return ReplayState(items=items, position=(state.position + 1) % capacity,
                           full=state.full | (state.position == capacity - 1))

    def size(state: ReplayState) -> jax.Array:
        return jnp.where(state.full, capacity, state.position)

    def sample(state: ReplayState, key):
        indices = jax.random.randint(key, (batch_size,), 0, size(state))
        return jax.tree.map(lambda store: store[indices], state.items)

    return ReplayBuffer(init=init, add=add, sample=sample, size=size)


@struct.dataclass
class PrioritizedReplayState:
    items: Any  # pytree, each leaf (capacity, ...)
    priorities: jax.Array  # (capacity,) float32 p_i = |delta_i| + eps_p; 0 for never-written slots
    max_priority: jax.Array  # the largest priority so far: what a new item gets (1.0 at the start)
    position: jax.Array
    full: jax.Array


class PrioritizedReplayBuffer(NamedTuple):
    init: Any
    add: Any
    sample: Any
    update_priorities: Any
    size: Any


def make_prioritized_replay_buffer(capacity: int, batch_size: int) -> PrioritizedReplayBuffer:
    """Proportional prioritized replay (Schaul et al. 2016) on a FIFO ring, as pure functions over a state.

    sample(state, key, alpha, beta) -> (batch, indices, weights): indices drawn with replacement with
    P(i) = p_i^alpha / sum_k p_k^alpha over the written slots; weights (N P(i))^-beta normalised by their
    largest value in the batch. update_priorities(state, indices, abs_td_errors, eps) writes |delta| + eps.

    Sampling inverts a float32 prefix sum with searchsorted (O(N) per draw, vectorised; measured against
    uniform replay in benchmarks/). Unwritten slots have priority 0, so their prefix-sum step is empty and
    a draw can never land on them; the draw is clamped to the last written slot against round-off.
    """

    def init(example_item) -> PrioritizedReplayState:
        items = jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example_item)
        return PrioritizedReplayState(items=items, priorities=jnp.zeros(capacity, jnp.float32),
                                      max_priority=jnp.float32(1.0), position=jnp.int32(0), full=jnp.bool_(False))

    def add(state: PrioritizedReplayState, item) -> PrioritizedReplayState:
        """Write at the ring position (the oldest item goes, whatever its priority) with the max priority."""
        items = jax.tree.map(lambda store, x: store.at[state.position].set(jnp.asarray(x, store.dtype)), state.items, item)
        return state.replace(items=items, priorities=state.priorities.at[state.position].set(state.max_priority),
                             position=(state.position + 1) % capacity,
                             full=state.full | (state.position == capacity - 1))

    def size(state) -> jax.Array:
        return jnp.where(state.full, capacity, state.position)

    def sample(state: PrioritizedReplayState, key, alpha, beta):
        scaled = jnp.where(state.priorities > 0, state.priorities ** alpha, 0.0)  # alpha = 0: uniform over written
        cumulative = jnp.cumsum(scaled)
        total = cumulative[-1]
        targets = jax.random.uniform(key, (batch_size,), jnp.float32) * total
        indices = jnp.searchsorted(cumulative, targets, side="right").astype(jnp.int32)
        indices = jnp.minimum(indices, size(state) - 1)
        probabilities = scaled[indices] / total
        weights = (size(state) * probabilities) ** (-beta)
        batch = jax.tree.map(lambda store: store[indices], state.items)
        return batch, indices, weights / jnp.max(weights)

    def update_priorities(state: PrioritizedReplayState, indices, abs_td_errors, eps) -> PrioritizedReplayState:
        new = (abs_td_errors + eps).astype(jnp.float32)
        return state.replace(priorities=state.priorities.at[indices].set(new),
                             max_priority=jnp.maximum(state.max_priority, jnp.max(new)))

    return PrioritizedReplayBuffer(init=init, add=add, sample=sample, update_priorities=update_priorities, size=size)
