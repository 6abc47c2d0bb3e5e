"""PanFlute (continuing): play the pipes in the order P-1, ..., 1, 0 to be paid on the next step."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment

from envs.base import BoolObsEnvironment, GridParams, require_bool, require_int


@struct.dataclass
class PanFluteState(environment.EnvState):
    pipes: jax.Array  # flat bool: pipe 0 (length 1) ++ pipe 1 (length 2) ++ ... ; element j of pipe i = "i played j steps ago"


class PanFlute(BoolObsEnvironment):
    """P pipes, pipe i of length i+1; the observation is the concatenated pipes.

    Reward 1 when the last element of every pipe is set in the incoming state. With small probability
    the last element of every pipe is set spontaneously.
    """

    num_channels = 1

    def __init__(self, num_pipes: int = 5, spontaneous_reward: bool = True):
        super().__init__()
        require_int("num_pipes", num_pipes, 1)
        require_bool("spontaneous_reward", spontaneous_reward)
        self._num_actions = num_pipes
        self.num_pipes = num_pipes
        self.spontaneous_probability = 1.0 / num_pipes**2 if spontaneous_reward else 0.0
        starts = np.cumsum([0] + list(range(1, num_pipes)))
        self._pipe_starts = starts.astype(np.int32)
        self._pipe_ends = (starts + np.arange(num_pipes)).astype(np.int32)
        self._pipe_of_element = np.repeat(np.arange(num_pipes), np.arange(1, num_pipes + 1)).astype(np.int32)

    @property
    def observation_size(self) -> int:
        return self.num_pipes * (self.num_pipes + 1) // 2

    def step_env(self, key, state: PanFluteState, action, params: GridParams):
        reward = jnp.all(state.pipes[self._pipe_ends]).astype(jnp.float32)
        spontaneous = jax.random.bernoulli(key, params.spontaneous_probability)
        # Shift every pipe one place towards its end; element 0 records whether this pipe was played.
        shifted = jnp.roll(state.pipes, 1)
        played = self._pipe_of_element == action
        pipes = shifted.at[self._pipe_starts].set(played[self._pipe_starts])
        pipes = pipes.at[self._pipe_ends].set(pipes[self._pipe_ends] | spontaneous)
        state = state.replace(pipes=pipes, time=state.time + 1)
        return self.get_obs(state, params), state, reward, jnp.array(False), {}

    def reset_env(self, key, params: GridParams):
        state = PanFluteState(time=0, pipes=jnp.zeros(self.observation_size, jnp.bool_))
        return self.get_obs(state, params), state

    def observation_planes(self, obs: jax.Array) -> jax.Array:
        """The pipes as a (P, P, 1) triangle for the pixel renderer: row i holds pipe i, oldest element last."""
        rows = self._pipe_of_element
        cols = np.arange(self.observation_size) - self._pipe_starts[rows]
        return jnp.zeros((self.num_pipes, self.num_pipes, 1), jnp.bool_).at[rows, cols, 0].set(obs.astype(jnp.bool_))

    def get_obs(self, state: PanFluteState, params=None, key=None) -> jax.Array:
        return state.pipes
