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
