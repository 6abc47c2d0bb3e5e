"""Shared pieces of the seedsuite grid environments, on the gymnax 1.0 base class.

Every environment here is a small `step_env`/`reset_env` class, so gymnax's own `step` (auto-reset,
truncation, `info["final_observation"]`) works unchanged. Observations are flat bool vectors laid out
as the paper code lays them out: (row, col, channel) row-major.
"""
import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

# The paper's environments never truncate; a time limit can still be set through the params.
NO_TIME_LIMIT = 2**31 - 1

# 0 no-op, 1 up, 2 left, 3 down, 4 right, as (row, col) offsets.
GRID_MOVES = jnp.array([[0, 0], [-1, 0], [0, -1], [1, 0], [0, 1]], dtype=jnp.int32)


@struct.dataclass
class GridParams(environment.EnvParams):
    """Traced settings: vmappable, so a test or a sweep can force the spontaneous-event rate."""

    spontaneous_probability: float = 0.0
    max_steps_in_episode: int = NO_TIME_LIMIT


class BoolObsEnvironment(environment.Environment):
    """Base for the paper's environments: discrete actions, flat bool observations, no time limit, and one
    spontaneous event whose probability (set by the constructor) is the traced `spontaneous_probability`."""

    num_channels: int
    spontaneous_probability: float

    @property
    def num_actions(self) -> int:
        return self._num_actions

    @property
    def default_params(self) -> GridParams:
        return GridParams(spontaneous_probability=self.spontaneous_probability)

    @property
    def observation_size(self) -> int:
        raise NotImplementedError

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(False, True, (self.observation_size,), jnp.bool_)

    def observe(self, key, state, action, params) -> jax.Array:
        return self.get_obs(state, params)

    def is_terminated(self, state, params) -> jax.Array:
        # Termination is decided inside step_env from the incoming state; a state alone never says.
        return jnp.array(False)


class GridEnvironment(BoolObsEnvironment):
    """A G x G grid seen as `num_channels` bool planes; 5 actions (no-op, up, left, down, right)."""

    grid_size: int

    @property
    def observation_size(self) -> int:
        return self.grid_size * self.grid_size * self.num_channels

    def observation_planes(self, obs: jax.Array) -> jax.Array:
        """The flat observation as (G, G, channels) planes: what the pixel renderer draws."""
        return obs.reshape(self.grid_size, self.grid_size, self.num_channels)


class GoalGridEnvironment(GridEnvironment):
    """ProcMaze and OpenGrid: -1 per step; the episode ends on the step taken from the goal. With the
    spontaneous probability the agent is teleported to the goal (so the next step ends the episode) or,
    without teleporting, the episode ends at once."""

    def __init__(self, grid_size: int, spontaneous_termination: bool, teleport_on_termination: bool,
                 probability_if_spontaneous):
        super().__init__()
        require_int("grid_size", grid_size, 1)
        require_bool("spontaneous_termination", spontaneous_termination)
        require_bool("teleport_on_termination", teleport_on_termination)
        self._num_actions = 5
        self.grid_size = grid_size
        self.teleport_on_termination = teleport_on_termination
        self.spontaneous_probability = probability_if_spontaneous(grid_size) if spontaneous_termination else 0.0

    def spontaneous_event(self, key, pos, goal, terminal, params: GridParams):
        """(pos, terminal) after this step's spontaneous draw; `terminal` is judged on the incoming state."""
        spontaneous = jax.random.bernoulli(key, params.spontaneous_probability)
        if self.teleport_on_termination:
            return jnp.where(spontaneous, goal, pos), terminal
        return pos, terminal | spontaneous


def require_int(name: str, value, minimum: int) -> int:
    """Constructor argument check with a message naming the argument (bad env_config is a user error)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def require_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def cell_plane(cell: jax.Array, grid_size: int) -> jax.Array:
    """(G, G) bool plane with only `cell` (row, col) set."""
    return jnp.zeros((grid_size, grid_size), dtype=jnp.bool_).at[cell[0], cell[1]].set(True)


def flat_observation(*planes: jax.Array) -> jax.Array:
    """Stack (G, G) channel planes into the flat (row, col, channel) layout of the paper code."""
    return jnp.stack(planes, axis=-1).reshape(-1)


def move(pos: jax.Array, action: jax.Array, grid_size: int) -> jax.Array:
    """Candidate cell after `action`, clipped to the grid."""
    return jnp.clip(pos + GRID_MOVES[action], 0, grid_size - 1)
