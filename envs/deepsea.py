"""DeepSea (bsuite; gymnax's `DeepSea-bsuite` dynamics) with the exploration bookkeeping the PPO family logs.

An N x N grid: the agent starts top-left, every step moves one row down and one column left or right; "right" is
a per-cell action (gymnax's fixed random mapping), costs 0.01 / N and only N rights in a row reach the
bottom-right cell, which pays 1. A uniformly random policy finds it with probability 2^-N per episode, so the
largest N an agent solves measures its exploration (Osband et al.'s bsuite DeepSea).

Same dynamics, observation (the one-hot position, N x N) and rewards as gymnax's class; added here: `size` as a
constructor keyword of ours, the cells of the grid as the visited-cells bitmap (one "room"), and the treasure as
a milestone, so the agent logs distinct cells visited, the first step that found the treasure and the fraction
of episodes that did.
"""
import jax.numpy as jnp
from gymnax.environments.bsuite.deep_sea import DeepSea as GymnaxDeepSea


class DeepSea(GymnaxDeepSea):
    milestone_names = ("treasure",)

    def __init__(self, size: int = 8):
        if not isinstance(size, int) or isinstance(size, bool) or not 2 <= size <= 256:
            raise ValueError(f"DeepSea size must be an integer in [2, 256], got {size!r}")
        super().__init__(size=size)

    @property
    def name(self) -> str:
        return f"DeepSea-{self.size}"

    num_rooms = 1

    @property
    def num_cells(self) -> int:
        return self.size * self.size

    def visitation(self, state):
        """(room, cell) of the position the agent acts from (rows 0..N-1; the terminal row N is never acted
        from)."""
        row = jnp.minimum(state.row, self.size - 1)
        return jnp.int32(0), (row * self.size + state.column).astype(jnp.int32)

    def milestones(self, state) -> dict:
        """The treasure: the episode's denoised return (1 per reward of the bottom-right cell) is positive."""
        return {"treasure": state.denoised_return >= 1}
