"""OpenGrid: an empty grid with the goal in the far corner (in the paper code, in no shipped config)."""
import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from envs.base import GoalGridEnvironment, GridParams, cell_plane, flat_observation, move


@struct.dataclass
class OpenGridState(environment.EnvState):
    pos: jax.Array  # (2,) int32


class OpenGrid(GoalGridEnvironment):
    """One player channel, no walls, goal fixed at (G-1, G-1); dynamics as ProcMaze."""

    num_channels = 1

    def __init__(self, grid_size: int = 10, spontaneous_termination: bool = True, teleport_on_termination: bool = True):
        super().__init__(grid_size, spontaneous_termination, teleport_on_termination, lambda g: 0.1 / g)
        self.goal = jnp.array([grid_size - 1, grid_size - 1], dtype=jnp.int32)

    def step_env(self, key, state: OpenGridState, action, params: GridParams):
        terminal = jnp.all(state.pos == self.goal)
        pos = move(state.pos, action, self.grid_size)
        pos, terminal = self.spontaneous_event(key, pos, self.goal, terminal, params)
        state = state.replace(pos=pos, time=state.time + 1)
        return self.get_obs(state, params), state, jnp.float32(-1.0), terminal, {}

    def reset_env(self, key, params: GridParams):
        state = OpenGridState(time=0, pos=jax.random.randint(key, (2,), 0, self.grid_size))
        return self.get_obs(state, params), state

    def get_obs(self, state: OpenGridState, params=None, key=None) -> jax.Array:
        return flat_observation(cell_plane(state.pos, self.grid_size))
