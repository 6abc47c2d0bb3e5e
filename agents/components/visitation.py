"""Exploration bookkeeping any agent can log: which rooms and which cells its runs have visited.

Per run, a bool bitmap over rooms and one over cells (for MiniMontezuma a cell is (room, row, col, keys held))
are updated by scatter-or at every step from every environment of the run, inside jit; counts are sums of
those arrays, so the union over environments and time costs no host round trip. A per-environment bitmap
over rooms gives the rooms of each episode. Cell spaces larger than `max_cells` are hashed into that many
bits (distinct cells may then share a bit, so the count is a lower bound).

Environments opt in with `visitation(state) -> (room, cell)` and the sizes `num_rooms` / `num_cells`
(MiniMontezuma, Atari through its RAM); `visitation_of(env)` finds them through any wrappers.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

MAX_CELLS = 1 << 20


@struct.dataclass
class Visits:
    rooms: jax.Array  # (num_rooms,) bool: ever visited by any environment of the run
    cells: jax.Array  # (cell bits,) bool
    episode_rooms: jax.Array  # (num_envs, num_rooms) bool: rooms of the episode under way, per environment


class Visitation(NamedTuple):
    init: callable
    visit: callable
    close_episodes: callable
    counts: callable
    of_state: callable  # env state (wrapped or not) -> (room, cell)


def cell_bit(cell: jax.Array, num_bits: int, hashed: bool) -> jax.Array:
    """The bit a cell sets: itself, or a multiplicative hash of it into num_bits (a power of two)."""
    if not hashed:
        return cell
    mixed = cell.astype(jnp.uint32) * jnp.uint32(2654435761)
    return (mixed >> jnp.uint32(32 - (num_bits.bit_length() - 1))).astype(jnp.int32)


def visitation_of(env):
    """(innermost env, function from the env's (possibly wrapped) state to its innermost state), or None when
    the environment does not expose rooms and cells."""
    unwrap_state = lambda state: state  # noqa: E731
    inner = env
    while hasattr(inner, "inner") and not hasattr(inner, "visitation"):
        unwrap_state = (lambda outer: lambda state: outer(state).inner)(unwrap_state)
        inner = inner.inner
    if not hasattr(inner, "visitation"):
        return None
    return inner, unwrap_state


def make_visitation(env, num_envs: int, max_cells: int = MAX_CELLS) -> Visitation | None:
    """The bookkeeping bundle for `num_envs` environments per run, or None if `env` has no rooms and cells."""
    found = visitation_of(env)
    if found is None:
        return None
    inner, unwrap_state = found
    num_rooms = inner.num_rooms
    hashed = inner.num_cells > max_cells
    num_bits = 1 << (max_cells - 1).bit_length() if hashed else inner.num_cells

    def of_state(state):
        return inner.visitation(unwrap_state(state))

    def init() -> Visits:
        return Visits(rooms=jnp.zeros(num_rooms, jnp.bool_), cells=jnp.zeros(num_bits, jnp.bool_),
                      episode_rooms=jnp.zeros((num_envs, num_rooms), jnp.bool_))

    def visit(visits: Visits, room: jax.Array, cell: jax.Array) -> Visits:
        """Record one step: room and cell (num_envs,) int (or scalars with one environment)."""
        room, cell = jnp.reshape(room, (num_envs,)), jnp.reshape(cell, (num_envs,))
        return visits.replace(rooms=visits.rooms.at[room].set(True),
                              cells=visits.cells.at[cell_bit(cell, num_bits, hashed)].set(True),
                              episode_rooms=visits.episode_rooms.at[jnp.arange(num_envs), room].set(True))

    def close_episodes(visits: Visits, ended: jax.Array):
        """(visits with the ended environments' episode rooms cleared, rooms in each ended episode (0 elsewhere))."""
        ended = jnp.reshape(ended, (num_envs,))
        per_episode = jnp.where(ended, jnp.sum(visits.episode_rooms, axis=-1), 0)
        return visits.replace(episode_rooms=visits.episode_rooms & ~ended[:, None]), per_episode

    def counts(visits: Visits) -> dict:
        return {"rooms_visited": jnp.sum(visits.rooms), "cells_visited": jnp.sum(visits.cells)}

    return Visitation(init=init, visit=visit, close_episodes=close_episodes, counts=counts, of_state=of_state)
