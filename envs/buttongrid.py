"""ButtonGrid (continuing): toggle every button on, then collect +1 on the next step."""
import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from envs.base import GridEnvironment, GridParams, cell_plane, flat_observation, move, require_bool, require_int


@struct.dataclass
class ButtonGridState(environment.EnvState):
    pos: jax.Array  # (2,) int32
    button_rows: jax.Array  # (num_buttons,) int32
    button_cols: jax.Array  # (num_buttons,) int32
    button_on: jax.Array  # (num_buttons,) bool


class ButtonGrid(GridEnvironment):
    """Observation channels: player, button_on, button_off. Never terminal.

    Moving onto a button toggles it (a no-op or a bump into the edge toggles nothing). The step after
    all buttons are on pays +1 and the whole layout is redrawn. With small probability every button
    turns on at once (activate_on_reset) or the layout is redrawn (without it).
    """

    num_channels = 3
    plane_intensities = (255, 170, 85)  # gray levels when rendered: player, button on, button off

    def __init__(self, grid_size: int = 10, num_buttons: int = 3, spontaneous_reset: bool = True,
                 activate_on_reset: bool = True):
        super().__init__()
        require_int("grid_size", grid_size, 1)
        require_int("num_buttons", num_buttons, 1)
        require_bool("spontaneous_reset", spontaneous_reset)
        require_bool("activate_on_reset", activate_on_reset)
        if not 1 <= num_buttons <= grid_size * grid_size:
            raise ValueError(f"num_buttons must be between 1 and grid_size**2 = {grid_size * grid_size}, got {num_buttons}")
        self._num_actions = 5
        self.grid_size = grid_size
        self.num_buttons = num_buttons
        self.activate_on_reset = activate_on_reset
        self.spontaneous_probability = 1.0 / (10 * grid_size * grid_size) if spontaneous_reset else 0.0

    def step_env(self, key, state: ButtonGridState, action, params: GridParams):
        spontaneous_key, layout_key = jax.random.split(key)
        success = jnp.all(state.button_on)  # judged before this step changes anything
        pos = move(state.pos, action, self.grid_size)
        moved = jnp.any(pos != state.pos)
        on_button = (pos[0] == state.button_rows) & (pos[1] == state.button_cols)
        button_on = jnp.where(moved & on_button, ~state.button_on, state.button_on)
        spontaneous = jax.random.bernoulli(spontaneous_key, params.spontaneous_probability)
        redraw = success
        if self.activate_on_reset:
            button_on = button_on | spontaneous  # all on at once, so the next step succeeds
        else:
            redraw = redraw | spontaneous
        stepped = state.replace(pos=pos, button_on=button_on, time=state.time + 1)
        # The paper code draws a fresh layout on every step and keeps it only on a redraw.
        _, fresh = self.reset_env(layout_key, params)
        fresh = fresh.replace(time=stepped.time)  # a redraw is not a new episode: the step count goes on
        state = jax.tree.map(lambda new, old: jnp.where(redraw, new, old), fresh, stepped)
        reward = jnp.where(success, 1.0, 0.0).astype(jnp.float32)
        return self.get_obs(state, params), state, reward, jnp.array(False), {}

    def reset_env(self, key, params: GridParams):
        pos_key, button_key = jax.random.split(key)
        pos = jax.random.randint(pos_key, (2,), 0, self.grid_size)
        cells = jax.random.choice(button_key, self.grid_size * self.grid_size, (self.num_buttons,), replace=False)
        rows, cols = jnp.divmod(cells.astype(jnp.int32), self.grid_size)
        state = ButtonGridState(time=0, pos=pos, button_rows=rows, button_cols=cols,
                                button_on=jnp.zeros(self.num_buttons, jnp.bool_))
        return self.get_obs(state, params), state

    def get_obs(self, state: ButtonGridState, params=None, key=None) -> jax.Array:
        shape = (self.grid_size, self.grid_size)
        on = jnp.zeros(shape, jnp.bool_).at[state.button_rows, state.button_cols].set(state.button_on)
        off = jnp.zeros(shape, jnp.bool_).at[state.button_rows, state.button_cols].set(~state.button_on)
        return flat_observation(cell_plane(state.pos, self.grid_size), on, off)
