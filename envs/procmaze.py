"""ProcMaze: a new procedurally generated maze every episode; reach the goal (-1 per step)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment

from envs.base import GRID_MOVES, GoalGridEnvironment, GridParams, cell_plane, flat_observation, move


@struct.dataclass
class ProcMazeState(environment.EnvState):
    goal: jax.Array  # (2,) int32, (row, col)
    walls: jax.Array  # (G, G) bool, True = wall
    pos: jax.Array  # (2,) int32


def _neighbour_table(grid_size: int) -> tuple[np.ndarray, np.ndarray]:
    """For every flat cell, its 5 move-map neighbours (itself first) as flat indices, and which are on the grid."""
    rows, cols = np.divmod(np.arange(grid_size * grid_size), grid_size)
    neighbour_rows = rows[:, None] + np.asarray(GRID_MOVES)[None, :, 0]
    neighbour_cols = cols[:, None] + np.asarray(GRID_MOVES)[None, :, 1]
    on_grid = (neighbour_rows >= 0) & (neighbour_rows < grid_size) & (neighbour_cols >= 0) & (neighbour_cols < grid_size)
    flat = np.clip(neighbour_rows, 0, grid_size - 1) * grid_size + np.clip(neighbour_cols, 0, grid_size - 1)
    return flat.astype(np.int32), on_grid


def generate_maze(key: jax.Array, grid_size: int) -> jax.Array:
    """Randomised depth-first maze ("recursive backtracker") with one-cell-wide corridors.

    A cell may be opened only if exactly one of its on-grid 4-neighbours is already open, so the open
    cells form an induced tree: connected, acyclic, never a 2x2 open block. Returns walls (G, G) bool.
    """
    num_cells = grid_size * grid_size
    neighbours, on_grid = _neighbour_table(grid_size)
    neighbours, on_grid = jnp.asarray(neighbours), jnp.asarray(on_grid)

    start_key, loop_key = jax.random.split(key)
    start = jax.random.randint(start_key, (2,), 0, grid_size)
    start_flat = start[0] * grid_size + start[1]
    visited = jnp.zeros(num_cells, jnp.bool_).at[start_flat].set(True)
    stack = jnp.zeros(num_cells, jnp.int32).at[0].set(start_flat)

    def expandable(cell, visited):
        # The cell itself is in its own neighbour list but is unvisited whenever it qualifies.
        open_neighbours = jnp.sum(visited[neighbours[cell]] & on_grid[cell])
        return ~visited[cell] & (open_neighbours == 1)

    def body(carry):
        visited, stack, top, key = carry
        key, choice_key = jax.random.split(key)
        top = top - 1
        current = stack[top]
        candidates = neighbours[current]
        can_open = jax.vmap(expandable, in_axes=(0, None))(candidates, visited) & on_grid[current]
        any_open = jnp.any(can_open)
        chosen = candidates[jax.random.categorical(choice_key, jnp.where(can_open, 0.0, -jnp.inf))]
        # Expanding pushes the current cell back, then the new one; otherwise the pop is the backtrack.
        stack = jnp.where(any_open, stack.at[top].set(current).at[top + 1].set(chosen), stack)
        visited = jnp.where(any_open, visited.at[chosen].set(True), visited)
        top = jnp.where(any_open, top + 2, top)
        return visited, stack, top, key

    visited, _, _, _ = jax.lax.while_loop(lambda c: c[2] > 0, body, (visited, stack, jnp.int32(1), loop_key))
    return ~visited.reshape(grid_size, grid_size)


def worst_case_tenth(grid_size: int) -> float:
    """The spontaneous probability: one tenth of the worst-case optimal solve time, as in the paper code."""
    return 0.1 / ((grid_size + 1) * math.ceil(grid_size / 2) - grid_size % 2)


class ProcMaze(GoalGridEnvironment):
    """Procedurally generated maze (Young et al.). Observation channels: player, goal, wall, empty.

    Each step costs -1, the terminal step included; termination is judged on the incoming state
    (standing on the goal), so the agent sees itself on the goal before the episode ends. With small
    probability the agent is teleported to the goal (or, without teleporting, the episode just ends).
    """

    num_channels = 4
    plane_intensities = (255, 170, 85, 0)  # gray levels when rendered: player, goal, wall, empty

    def __init__(self, grid_size: int = 10, spontaneous_termination: bool = True, teleport_on_termination: bool = True):
        super().__init__(grid_size, spontaneous_termination, teleport_on_termination, worst_case_tenth)

    def step_env(self, key, state: ProcMazeState, action, params: GridParams):
        terminal = jnp.all(state.pos == state.goal)
        candidate = move(state.pos, action, self.grid_size)
        pos = jnp.where(state.walls[candidate[0], candidate[1]], state.pos, candidate)
        pos, terminal = self.spontaneous_event(key, pos, state.goal, terminal, params)
        state = state.replace(pos=pos, time=state.time + 1)
        return self.get_obs(state, params), state, jnp.float32(-1.0), terminal, {}

    def reset_env(self, key, params: GridParams):
        maze_key, pos_key, goal_key = jax.random.split(key, 3)
        walls = generate_maze(maze_key, self.grid_size)
        open_logits = jnp.where(walls.reshape(-1), -jnp.inf, 0.0)
        # Start and goal are drawn independently, so they may coincide (an immediate terminal).
        pos = jnp.stack(jnp.divmod(jax.random.categorical(pos_key, open_logits), self.grid_size)).astype(jnp.int32)
        goal = jnp.stack(jnp.divmod(jax.random.categorical(goal_key, open_logits), self.grid_size)).astype(jnp.int32)
        state = ProcMazeState(time=0, goal=goal, walls=walls, pos=pos)
        return self.get_obs(state, params), state

    def get_obs(self, state: ProcMazeState, params=None, key=None) -> jax.Array:
        return flat_observation(cell_plane(state.pos, self.grid_size), cell_plane(state.goal, self.grid_size),
                                state.walls, ~state.walls)
