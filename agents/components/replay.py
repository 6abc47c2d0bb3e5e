"""A uniform circular replay buffer as a bundle of pure functions over a state pytree.

Items are any pytree of arrays; each leaf is stored with its own dtype, so bool observations stay
bool in memory (lossless, 4x smaller than float32) and the learner casts them when it uses them.
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct


def empty_items(example_item, capacity: int):
    """One (capacity, ...) array per leaf of the example item, in the leaf's own dtype."""
    return jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example_item)


def write_item(items, position, item):
    """Write one item into slot `position` of every leaf, cast to the stored dtype."""
    return jax.tree.map(lambda store, x: store.at[position].set(jnp.asarray(x, store.dtype)), items, item)


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
        items = empty_items(example_item, capacity)
        return ReplayState(items=items, position=jnp.int32(0), full=jnp.bool_(False))

    def add(state: ReplayState, item) -> ReplayState:
        items = write_item(state.items, state.position, item)
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
    priorities: jax.Array  # (capacity,) p_i = |delta_i| + eps_p, 0 for never-written slots
    tree: jax.Array  # (2 * leaves,) sum tree of p_i^alpha: node n holds tree[2n] + tree[2n+1], leaves from `leaves`
    max_priority: jax.Array  # the largest priority so far: what a new item gets (1.0 at the start)
    alpha: jax.Array  # the priority exponent, fixed for the buffer's life (may differ between vmapped runs)
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

    init(example_item, alpha); add(state, item) writes at the ring position (the oldest item goes,
    whatever its priority) with the largest priority so far; sample(state, key, beta) -> (batch, indices,
    weights) draws indices with replacement with P(i) = p_i^alpha / sum_k p_k^alpha, and weights
    (N P(i))^-beta normalised by their largest value in the batch; update_priorities(state, indices,
    abs_td_errors, eps) writes p = |delta| + eps.

    A sum tree over p^alpha makes a draw and a priority write O(log N) (a loop over the tree's levels,
    the whole batch at once), so the exponent is applied only to the priorities written. A draw descends
    only into children of positive sum, so a slot of priority 0 (never written) cannot be drawn, whatever
    the float32 round-off.
    """
    leaves = 1 << max(capacity - 1, 1).bit_length()  # a power of two >= capacity
    depth = leaves.bit_length() - 1

    def init(example_item, alpha=0.6) -> PrioritizedReplayState:
        items = empty_items(example_item, capacity)
        return PrioritizedReplayState(items=items, priorities=jnp.zeros(capacity, jnp.float32),
                                      tree=jnp.zeros(2 * leaves, jnp.float32), max_priority=jnp.float32(1.0),
                                      alpha=jnp.asarray(alpha, jnp.float32), position=jnp.int32(0),
                                      full=jnp.bool_(False))

    def write_priorities(state, indices, priorities):
        """Set p at `indices` (duplicates: one of their values, the same in p and in the tree), then re-sum
        the tree along their paths to the root."""
        stored = state.priorities.at[indices].set(priorities)
        node = indices + leaves
        tree = state.tree.at[node].set(stored[indices] ** state.alpha)

        def level_up(_, carry):
            tree, node = carry
            node = node // 2
            return tree.at[node].set(tree[2 * node] + tree[2 * node + 1]), node

        tree, _ = jax.lax.fori_loop(0, depth, level_up, (tree, node))
        return state.replace(priorities=stored, tree=tree)

    def add(state: PrioritizedReplayState, item) -> PrioritizedReplayState:
        items = write_item(state.items, state.position, item)
        state = write_priorities(state, state.position[None], state.max_priority[None])
        return state.replace(items=items, position=(state.position + 1) % capacity,
                             full=state.full | (state.position == capacity - 1))

    def size(state) -> jax.Array:
        return jnp.where(state.full, capacity, state.position)

    def sample(state: PrioritizedReplayState, key, beta):
        tree = state.tree
        targets = jax.random.uniform(key, (batch_size,), jnp.float32) * tree[1]

        def level_down(_, carry):
            node, target = carry
            left, right = tree[2 * node], tree[2 * node + 1]
            go_right = ((target >= left) & (right > 0)) | (left <= 0)
            return jnp.where(go_right, 2 * node + 1, 2 * node), jnp.where(go_right, target - left, target)

        node, _ = jax.lax.fori_loop(0, depth, level_down, (jnp.ones(batch_size, jnp.int32), targets))
        indices = (node - leaves).astype(jnp.int32)
        probabilities = tree[node] / tree[1]
        weights = (size(state) * probabilities) ** (-beta)
        batch = jax.tree.map(lambda store: store[indices], state.items)
        return batch, indices, weights / jnp.max(weights)

    def update_priorities(state: PrioritizedReplayState, indices, abs_td_errors, eps) -> PrioritizedReplayState:
        new = (abs_td_errors + eps).astype(jnp.float32)
        state = write_priorities(state, indices, new)
        return state.replace(max_priority=jnp.maximum(state.max_priority, jnp.max(new)))

    return PrioritizedReplayBuffer(init=init, add=add, sample=sample, update_priorities=update_priorities, size=size)
