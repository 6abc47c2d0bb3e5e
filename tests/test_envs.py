"""Hand-worked transition tests for the paper's environments (Young et al.; their published code).

Every expected next state, observation, reward and terminal flag is worked out by hand in the test
(a flat index (row*G + col)*C + channel, a literal vector, a literal position), never by calling the
code under test. Spontaneous events are forced through `GridParams(spontaneous_probability=0.0 or 1.0)`.
Each step function is jitted once per environment configuration and reused; statistical checks vmap.
"""
import collections
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import environment

import envs
from envs import GridParams

NEVER = GridParams(spontaneous_probability=0.0)
ALWAYS = GridParams(spontaneous_probability=1.0)
KEY = jax.random.PRNGKey(0)

# (row, col) offsets of the 5 grid actions: 0 no-op, 1 up, 2 left, 3 down, 4 right.
MOVES = {0: (0, 0), 1: (-1, 0), 2: (0, -1), 3: (1, 0), 4: (0, 1)}


# ----------------------------------------------------------------------------------------------- helpers

@functools.lru_cache(maxsize=None)
def built(name, **config):
    """(env, jitted step_env, jitted reset_env, step_env vmapped over actions), built once per config."""
    env, _ = envs.make(name, **config)
    step = jax.jit(env.step_env)
    reset = jax.jit(env.reset_env)
    step_all_actions = jax.jit(jax.vmap(env.step_env, in_axes=(None, None, 0, None)))
    return env, step, reset, step_all_actions


def maze(G=4, teleport=True):
    return built("ProcMaze", grid_size=G, teleport_on_termination=teleport)


def grid_obs(G, C, cells_per_channel):
    """Expected flat observation: `cells_per_channel[ch]` lists the (row, col) cells set in channel ch."""
    obs = np.zeros(G * G * C, dtype=bool)
    for channel, cells in enumerate(cells_per_channel):
        for row, col in cells:
            obs[(row * G + col) * C + channel] = True
    return obs


def walls_from_picture(picture):
    """'#' = wall, '.' = open; one string per row."""
    return np.array([[ch == "#" for ch in row] for row in picture], dtype=bool)


def maze_obs(walls, pos, goal):
    G = walls.shape[0]
    wall_cells = [tuple(c) for c in np.argwhere(walls)]
    open_cells = [tuple(c) for c in np.argwhere(~walls)]
    return grid_obs(G, 4, [[tuple(pos)], [tuple(goal)], wall_cells, open_cells])


def maze_state(walls, pos, goal, time=0):
    return envs.ProcMazeState(time=jnp.int32(time), goal=jnp.array(goal, jnp.int32),
                              walls=jnp.asarray(walls, jnp.bool_), pos=jnp.array(pos, jnp.int32))


def button_state(pos, rows, cols, on, time=0):
    return envs.ButtonGridState(time=jnp.int32(time), pos=jnp.array(pos, jnp.int32),
                                button_rows=jnp.array(rows, jnp.int32), button_cols=jnp.array(cols, jnp.int32),
                                button_on=jnp.array(on, jnp.bool_))


def flute_state(pipes, time=0):
    return envs.PanFluteState(time=jnp.int32(time), pipes=jnp.array(pipes, jnp.bool_))


def grid_state(pos, time=0):
    return envs.OpenGridState(time=jnp.int32(time), pos=jnp.array(pos, jnp.int32))


def as_np(x):
    return np.asarray(jax.device_get(x))


def keys(n, seed=0):
    return jax.random.split(jax.random.PRNGKey(seed), n)


# ---------------------------------------------------------------------------------------------- ProcMaze

OPEN4 = np.zeros((4, 4), dtype=bool)
# Around (1,1): up (0,1) open, left (1,0) wall, down (2,1) open, right (1,2) wall.
CROSS = walls_from_picture(["....",
                            "#.#.",
                            "....",
                            "...."])


@pytest.mark.parametrize("walls, pos, expected", [
    # no walls, centre: every move goes where its offset says
    (OPEN4, (1, 1), {0: (1, 1), 1: (0, 1), 2: (1, 0), 3: (2, 1), 4: (1, 2)}),
    # walls left and right of (1,1) block those moves, the others go through
    (CROSS, (1, 1), {0: (1, 1), 1: (0, 1), 2: (1, 1), 3: (2, 1), 4: (1, 1)}),
    # top-left corner: up and left are clipped onto the agent's own cell
    (OPEN4, (0, 0), {0: (0, 0), 1: (0, 0), 2: (0, 0), 3: (1, 0), 4: (0, 1)}),
    # bottom-right corner: down and right are clipped
    (OPEN4, (3, 3), {0: (3, 3), 1: (2, 3), 2: (3, 2), 3: (3, 3), 4: (3, 3)}),
    # right edge next to a wall: right clipped, left into a wall
    (CROSS, (1, 3), {0: (1, 3), 1: (0, 3), 2: (1, 3), 3: (2, 3), 4: (1, 3)}),
])
def test_procmaze_moves_walls_and_edges(walls, pos, expected):
    env, _, _, step_all = maze()
    goal = (3, 0)
    obs, state, reward, terminal, info = step_all(KEY, maze_state(walls, pos, goal), jnp.arange(5), NEVER)
    for action in range(5):
        assert tuple(as_np(state.pos[action])) == expected[action], f"action {action}"
        np.testing.assert_array_equal(as_np(obs[action]), maze_obs(walls, expected[action], goal))
    np.testing.assert_array_equal(as_np(reward), -np.ones(5))
    assert not as_np(terminal).any()
    # the maze and goal are untouched, and the step counter advances
    np.testing.assert_array_equal(as_np(state.walls), np.broadcast_to(walls, (5, 4, 4)))
    np.testing.assert_array_equal(as_np(state.goal), np.broadcast_to(goal, (5, 2)))
    np.testing.assert_array_equal(as_np(state.time), np.ones(5))


def test_procmaze_observation_layout_by_index():
    env, _, _, _ = maze()
    walls = CROSS
    state = maze_state(walls, pos=(2, 3), goal=(0, 1))
    obs = as_np(env.get_obs(state))
    assert obs.dtype == np.bool_ and obs.shape == (64,) == (env.observation_size,)
    # index = (row*G + col)*C + channel, channels player, goal, wall, empty
    assert obs[(2 * 4 + 3) * 4 + 0] and obs[(0 * 4 + 1) * 4 + 1]
    assert obs[0::4].sum() == 1 and obs[1::4].sum() == 1
    np.testing.assert_array_equal(obs[2::4], walls.reshape(-1))
    np.testing.assert_array_equal(obs[3::4], ~walls.reshape(-1))
    # wall (1,0) -> index (1*4+0)*4+2 = 18; the empty bit of the same cell (19) is off
    assert obs[18] and not obs[19]
    assert obs.sum() == 1 + 1 + 16


def test_procmaze_player_and_goal_bits_both_set_when_they_coincide():
    env, _, _, _ = maze()
    obs = as_np(env.get_obs(maze_state(OPEN4, pos=(3, 2), goal=(3, 2))))
    cell = (3 * 4 + 2) * 4
    assert obs[cell + 0] and obs[cell + 1] and not obs[cell + 2] and obs[cell + 3]
    assert obs[0::4].sum() == 1 and obs[1::4].sum() == 1


def test_procmaze_terminal_judged_on_incoming_state_and_agent_still_moves():
    env, step, _, _ = maze()
    # On the goal: terminal this step, even though the action moves the agent off it.
    obs, state, reward, terminal, _ = step(KEY, maze_state(OPEN4, pos=(1, 1), goal=(1, 1)), 4, NEVER)
    assert bool(terminal) and float(reward) == -1.0
    assert tuple(as_np(state.pos)) == (1, 2)
    np.testing.assert_array_equal(as_np(obs), maze_obs(OPEN4, (1, 2), (1, 1)))
    # Next to the goal, moving onto it: not terminal yet; the observation shows the agent on the goal.
    obs, state, reward, terminal, _ = step(KEY, maze_state(OPEN4, pos=(1, 0), goal=(1, 1)), 4, NEVER)
    assert not bool(terminal) and float(reward) == -1.0
    assert tuple(as_np(state.pos)) == (1, 1)
    np.testing.assert_array_equal(as_np(obs), maze_obs(OPEN4, (1, 1), (1, 1)))


CORRIDOR = walls_from_picture(["....",
                               "###.",
                               "###.",
                               "###."])


def run_episode(step, state, actions, params=NEVER):
    rewards, terminals, positions, observations = [], [], [], []
    for i, action in enumerate(actions):
        obs, state, reward, terminal, _ = step(jax.random.PRNGKey(i), state, action, params)
        rewards.append(float(reward))
        terminals.append(bool(terminal))
        positions.append(tuple(as_np(state.pos)))
        observations.append(as_np(obs))
    return rewards, terminals, positions, observations


def test_procmaze_corridor_episode_return_is_minus_k_plus_one():
    _, step, _, _ = maze()
    start, goal = (0, 0), (3, 3)
    # a bump into the wall below (0,1) first, then the k = 6 moves of the corridor, then one more (up) action
    actions = [4, 3, 4, 4, 3, 3, 3, 1]
    rewards, terminals, positions, observations = run_episode(step, maze_state(CORRIDOR, start, goal), actions)
    assert positions == [(0, 1), (0, 1), (0, 2), (0, 3), (1, 3), (2, 3), (3, 3), (2, 3)]
    assert terminals == [False] * 7 + [True]
    assert rewards == [-1.0] * 8
    # 7 moves/bumps to reach the goal, then the terminal step: -(7+1); with the bump removed k=6 gives -7
    assert sum(rewards) == -(7 + 1)
    np.testing.assert_array_equal(observations[6], maze_obs(CORRIDOR, (3, 3), goal))  # sees itself on the goal
    np.testing.assert_array_equal(observations[7], maze_obs(CORRIDOR, (2, 3), goal))  # moved on the terminal step

    rewards, terminals, _, _ = run_episode(step, maze_state(CORRIDOR, start, goal), [4, 4, 4, 3, 3, 3, 0])
    assert terminals.index(True) == 6 and sum(rewards[:7]) == -7  # k = 6 moves -> return -(k+1)

    rewards, terminals, _, _ = run_episode(step, maze_state(CORRIDOR, goal, goal), [2])
    assert terminals == [True] and sum(rewards) == -1  # starting on the goal: return -1


def test_procmaze_spontaneous_teleport_then_terminal_next_step():
    _, step, _, _ = maze(teleport=True)
    state = maze_state(CROSS, pos=(2, 0), goal=(0, 3))
    obs, state, reward, terminal, _ = step(KEY, state, 4, ALWAYS)
    assert not bool(terminal) and float(reward) == -1.0
    assert tuple(as_np(state.pos)) == (0, 3)
    np.testing.assert_array_equal(as_np(obs), maze_obs(CROSS, (0, 3), (0, 3)))
    obs, state, reward, terminal, _ = step(KEY, state, 3, NEVER)
    assert bool(terminal) and float(reward) == -1.0
    assert tuple(as_np(state.pos)) == (1, 3)


def test_procmaze_spontaneous_termination_without_teleport():
    _, step, _, _ = maze(teleport=False)
    state = maze_state(CROSS, pos=(2, 0), goal=(0, 3))
    obs, state, reward, terminal, _ = step(KEY, state, 4, ALWAYS)
    assert bool(terminal) and float(reward) == -1.0
    assert tuple(as_np(state.pos)) == (2, 1)  # an ordinary move, no teleport
    np.testing.assert_array_equal(as_np(obs), maze_obs(CROSS, (2, 1), (0, 3)))


@pytest.mark.parametrize("teleport", [True, False])
def test_procmaze_no_spontaneous_event_with_probability_zero(teleport):
    env, _, _, _ = maze(teleport=teleport)
    state = maze_state(OPEN4, pos=(0, 0), goal=(3, 3))
    step = jax.jit(jax.vmap(env.step_env, in_axes=(0, None, None, None)))
    _, states, rewards, terminals, _ = step(keys(500), state, 0, NEVER)
    assert not as_np(terminals).any()
    np.testing.assert_array_equal(as_np(states.pos), np.zeros((500, 2)))
    np.testing.assert_array_equal(as_np(rewards), -np.ones(500))


@pytest.mark.parametrize("G, p", [(4, 0.01), (5, 0.1 / 17), (10, 0.1 / 55), (3, 0.1 / 7), (1, 0.1)])
def test_procmaze_spontaneous_probability(G, p):
    # p = 0.1 / ((G+1)*ceil(G/2) - G mod 2): G=4 -> 10, G=5 -> 17, G=10 -> 55, G=3 -> 7, G=1 -> 1
    env, params = envs.make("ProcMaze", grid_size=G)
    assert env.spontaneous_probability == pytest.approx(p, rel=1e-6)
    assert float(params.spontaneous_probability) == pytest.approx(p, rel=1e-6)
    env, params = envs.make("ProcMaze", grid_size=G, spontaneous_termination=False)
    assert float(params.spontaneous_probability) == 0.0


def test_procmaze_constructor_defaults():
    env, params = envs.make("ProcMaze")
    assert env.grid_size == 10 and env.teleport_on_termination
    assert env.num_actions == 5 and env.observation_size == 400
    assert float(params.spontaneous_probability) == pytest.approx(0.1 / 55)


# ------------------------------------------------------------------------------------------ maze generator

def open_edges(open_cells):
    """Number of 4-adjacent pairs of open cells."""
    return int((open_cells[:, 1:] & open_cells[:, :-1]).sum() + (open_cells[1:, :] & open_cells[:-1, :]).sum())


def connected(open_cells):
    G = open_cells.shape[0]
    cells = [tuple(c) for c in np.argwhere(open_cells)]
    seen, queue = {cells[0]}, collections.deque([cells[0]])
    while queue:
        r, c = queue.popleft()
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            n = (r + dr, c + dc)
            if 0 <= n[0] < G and 0 <= n[1] < G and open_cells[n] and n not in seen:
                seen.add(n)
                queue.append(n)
    return len(seen) == len(cells)


def open_neighbour_counts(open_cells):
    padded = np.pad(open_cells.astype(int), 1)
    return padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]


@functools.lru_cache(maxsize=None)
def generated_mazes(G, n):
    return as_np(jax.jit(jax.vmap(lambda k: envs.generate_maze(k, G)))(keys(n, seed=G)))


@pytest.mark.parametrize("G, n", [(4, 400), (5, 200), (10, 100)])
def test_generated_maze_is_a_maximal_induced_tree(G, n):
    walls = generated_mazes(G, n)
    assert walls.shape == (n, G, G) and walls.dtype == np.bool_
    for w in walls:
        open_cells = ~w
        nodes = int(open_cells.sum())
        assert nodes >= 1
        assert connected(open_cells)
        assert open_edges(open_cells) == nodes - 1  # a connected graph with n-1 edges is a tree
        blocks = open_cells[:-1, :-1] & open_cells[1:, :-1] & open_cells[:-1, 1:] & open_cells[1:, 1:]
        assert not blocks.any()
        # The backtracker stops only when no wall cell has exactly one open 4-neighbour.
        assert not (w & (open_neighbour_counts(open_cells) == 1)).any()


def test_generated_maze_sizes():
    sizes4 = (~generated_mazes(4, 400)).sum(axis=(1, 2))
    assert sizes4.min() >= 7 and sizes4.max() <= 12
    assert 11.1 < sizes4.mean() < 11.8  # spec: mean 11.45
    sizes10 = (~generated_mazes(10, 100)).sum(axis=(1, 2))
    assert sizes10.min() >= 55 and sizes10.max() <= 70  # spec: 57-68 over 2000 draws
    assert 62.5 < sizes10.mean() < 65.5  # spec: mean 64
    assert len({w.tobytes() for w in generated_mazes(10, 100)}) > 90  # essentially always new at G=10


@pytest.fixture(scope="module")
def procmaze_resets():
    env, _, _, _ = maze()
    obs, states = jax.jit(jax.vmap(env.reset_env, in_axes=(0, None)))(keys(2000, seed=7), NEVER)
    return as_np(obs), jax.tree.map(as_np, states)


def test_procmaze_reset_positions_on_open_cells(procmaze_resets):
    obs, states = procmaze_resets
    n = len(obs)
    rows = np.arange(n)
    assert not states.walls[rows, states.pos[:, 0], states.pos[:, 1]].any()
    assert not states.walls[rows, states.goal[:, 0], states.goal[:, 1]].any()
    np.testing.assert_array_equal(states.time, np.zeros(n))
    for i in range(0, n, 97):  # the observation matches the drawn state
        np.testing.assert_array_equal(obs[i], maze_obs(states.walls[i], states.pos[i], states.goal[i]))
    sizes = (~states.walls).sum(axis=(1, 2))
    assert sizes.min() >= 7 and sizes.max() <= 12
    assert 11.2 < sizes.mean() < 11.7  # spec: mean 11.45
    distinct = len({w.tobytes() for w in states.walls})
    assert 130 < distinct < 250  # spec: only ~188 distinct layouts in 2000 draws


def test_procmaze_reset_start_on_goal_sometimes(procmaze_resets):
    _, states = procmaze_resets
    same = np.all(states.pos == states.goal, axis=1)
    # Independent uniform draws over n open cells coincide with probability E[1/n], about 8% at G=4.
    assert 0.05 < same.mean() < 0.12
    expected = np.mean(1.0 / (~states.walls).sum(axis=(1, 2)))
    assert abs(same.mean() - expected) < 0.025
    # pos and goal are each spread over the open cells (not, e.g., always the maze's start cell)
    assert len({tuple(p) for p in states.pos}) == 16 and len({tuple(g) for g in states.goal}) == 16


# -------------------------------------------------------------------------------------------- ButtonGrid

def buttons(activate=True, G=4):
    return built("ButtonGrid", grid_size=G, num_buttons=3, activate_on_reset=activate)


ROWS, COLS = (0, 2, 3), (1, 2, 0)  # buttons at (0,1), (2,2), (3,0)


def button_obs(G, pos, on, rows=ROWS, cols=COLS):
    cells = list(zip(rows, cols))
    return grid_obs(G, 3, [[pos], [c for c, o in zip(cells, on) if o], [c for c, o in zip(cells, on) if not o]])


def test_buttongrid_moving_onto_a_button_toggles_it_on():
    _, step, _, _ = buttons()
    obs, state, reward, terminal, _ = step(KEY, button_state((0, 0), ROWS, COLS, [False] * 3), 4, NEVER)
    assert tuple(as_np(state.pos)) == (0, 1)
    np.testing.assert_array_equal(as_np(state.button_on), [True, False, False])
    np.testing.assert_array_equal(as_np(state.button_rows), ROWS)
    np.testing.assert_array_equal(as_np(state.button_cols), COLS)
    assert float(reward) == 0.0 and not bool(terminal)
    obs = as_np(obs)
    assert obs.dtype == np.bool_ and obs.shape == (48,)
    np.testing.assert_array_equal(obs, button_obs(4, (0, 1), [True, False, False]))
    # by index: player at (0,1) -> 3, button_on at (0,1) -> 4, button_off at (2,2) -> 32 and (3,0) -> 38
    assert set(np.flatnonzero(obs)) == {3, 4, (2 * 4 + 2) * 3 + 2, (3 * 4 + 0) * 3 + 2}


def test_buttongrid_no_toggle_on_noop_or_edge_bump():
    _, _, _, step_all = buttons()
    # standing on button 0 at (0,1), which is on: up bumps the top edge, no-op stays; neither toggles
    obs, state, reward, _, _ = step_all(KEY, button_state((0, 1), ROWS, COLS, [True, False, False]), jnp.arange(5), NEVER)
    expected_pos = {0: (0, 1), 1: (0, 1), 2: (0, 0), 3: (1, 1), 4: (0, 2)}
    for action in range(5):
        assert tuple(as_np(state.pos[action])) == expected_pos[action]
        np.testing.assert_array_equal(as_np(state.button_on[action]), [True, False, False])
        np.testing.assert_array_equal(as_np(obs[action]), button_obs(4, expected_pos[action], [True, False, False]))
    np.testing.assert_array_equal(as_np(reward), np.zeros(5))
    # standing on button 2 at the bottom-left corner (3,0): down and left both bump
    _, state, _, _, _ = step_all(KEY, button_state((3, 0), ROWS, COLS, [False, False, False]), jnp.arange(5), NEVER)
    for action in (0, 2, 3):
        np.testing.assert_array_equal(as_np(state.button_on[action]), [False, False, False])


def test_buttongrid_stepping_on_again_toggles_back_off():
    _, step, _, _ = buttons()
    state = button_state((2, 1), ROWS, COLS, [False] * 3)
    expected = [((2, 2), [False, True, False]),   # right onto button 1: on
                ((2, 3), [False, True, False]),   # right off it
                ((2, 2), [False, False, False]),  # left back onto it: off again
                ((1, 2), [False, False, False])]
    for i, (action, (pos, on)) in enumerate(zip([4, 4, 2, 1], expected)):
        obs, state, reward, terminal, _ = step(jax.random.PRNGKey(i), state, action, NEVER)
        assert tuple(as_np(state.pos)) == pos
        np.testing.assert_array_equal(as_np(state.button_on), on)
        np.testing.assert_array_equal(as_np(obs), button_obs(4, pos, on))
        assert float(reward) == 0.0 and not bool(terminal)


def test_buttongrid_reward_on_the_step_after_all_on_then_redraw():
    _, step, _, _ = buttons()
    # buttons 0 and 1 on; moving onto button 2 at (3,0) completes the set, but pays nothing yet
    obs, state, reward, terminal, _ = step(KEY, button_state((2, 0), ROWS, COLS, [True, True, False], time=5), 3, NEVER)
    assert float(reward) == 0.0 and not bool(terminal)
    np.testing.assert_array_equal(as_np(state.button_on), [True, True, True])
    np.testing.assert_array_equal(as_np(obs), button_obs(4, (3, 0), [True, True, True]))
    # the following step pays 1.0 whatever the action, and the layout is redrawn with every button off
    layouts = set()
    for i in range(20):
        obs, new, reward, terminal, _ = step(jax.random.PRNGKey(100 + i), state, i % 5, NEVER)
        assert float(reward) == 1.0 and not bool(terminal)
        on = as_np(new.button_on)
        np.testing.assert_array_equal(on, [False, False, False])
        rows, cols, pos = as_np(new.button_rows), as_np(new.button_cols), tuple(as_np(new.pos))
        assert len(set(zip(rows, cols))) == 3
        layouts.add((tuple(rows), tuple(cols), pos))
        np.testing.assert_array_equal(as_np(obs), button_obs(4, pos, on, rows, cols))
        assert not as_np(obs)[1::3].any()
    assert len(layouts) > 10  # a fresh random layout and position each time


def test_buttongrid_spontaneous_activation_turns_all_buttons_on():
    _, step, _, _ = buttons(activate=True)
    obs, state, reward, terminal, _ = step(KEY, button_state((1, 1), ROWS, COLS, [False, True, False]), 4, ALWAYS)
    assert float(reward) == 0.0 and not bool(terminal)
    assert tuple(as_np(state.pos)) == (1, 2)  # the move happens as usual, the layout stays
    np.testing.assert_array_equal(as_np(state.button_on), [True, True, True])
    np.testing.assert_array_equal(as_np(state.button_rows), ROWS)
    np.testing.assert_array_equal(as_np(obs), button_obs(4, (1, 2), [True, True, True]))
    # applied after the toggles: moving onto an on button (which turns it off) still ends all on
    _, state2, _, _, _ = step(KEY, button_state((1, 1), ROWS, COLS, [True, True, False]), 1, ALWAYS)
    assert tuple(as_np(state2.pos)) == (0, 1)
    np.testing.assert_array_equal(as_np(state2.button_on), [True, True, True])
    # so the next step pays
    _, _, reward, _, _ = step(KEY, state, 0, NEVER)
    assert float(reward) == 1.0


def test_buttongrid_spontaneous_redraw_without_activate_on_reset():
    env, _, _, _ = buttons(activate=False)
    start = button_state((1, 1), ROWS, COLS, [True, True, False], time=9)
    step = jax.jit(jax.vmap(env.step_env, in_axes=(0, None, None, None)))
    _, states, rewards, terminals, _ = step(keys(64), start, 0, ALWAYS)
    states = jax.tree.map(as_np, states)
    assert not as_np(rewards).any() and not as_np(terminals).any()
    assert not states.button_on.any()  # redrawn: all off
    layouts = {(tuple(r), tuple(c)) for r, c in zip(states.button_rows, states.button_cols)}
    assert len(layouts) > 32  # fresh random layouts
    # p = 0 leaves it alone
    _, states, _, _, _ = step(keys(64, 1), start, 0, NEVER)
    np.testing.assert_array_equal(as_np(states.button_on), np.tile([True, True, False], (64, 1)))
    np.testing.assert_array_equal(as_np(states.pos), np.tile([1, 1], (64, 1)))


def test_buttongrid_never_terminal_and_probability():
    env, params = envs.make("ButtonGrid")
    assert env.grid_size == 10 and env.num_buttons == 3 and env.num_actions == 5
    assert env.observation_size == 300
    assert float(params.spontaneous_probability) == pytest.approx(0.001)
    _, params = envs.make("ButtonGrid", grid_size=4, spontaneous_reset=False)
    assert float(params.spontaneous_probability) == 0.0
    env, _, _, _ = buttons()
    step = jax.jit(jax.vmap(env.step_env, in_axes=(0, 0, 0, None)))
    _, states = jax.jit(jax.vmap(env.reset_env, in_axes=(0, None)))(keys(256), ALWAYS)
    for params in (NEVER, ALWAYS):
        _, _, _, terminals, _ = step(keys(256, 1), states, jnp.arange(256) % 5, params)
        assert not as_np(terminals).any()


def test_buttongrid_reset_draws_distinct_buttons_all_off():
    env, _, _, _ = buttons()
    obs, states = jax.jit(jax.vmap(env.reset_env, in_axes=(0, None)))(keys(1000, 3), NEVER)
    obs, states = as_np(obs), jax.tree.map(as_np, states)
    assert not states.button_on.any()
    cells = states.button_rows * 4 + states.button_cols
    assert cells.min() >= 0 and cells.max() < 16
    assert all(len(set(c)) == 3 for c in cells)
    assert len(np.unique(cells)) == 16  # every cell gets used
    assert states.pos.min() == 0 and states.pos.max() == 3
    assert len({tuple(p) for p in states.pos}) == 16
    on_player = np.any(cells == (states.pos[:, 0] * 4 + states.pos[:, 1])[:, None], axis=1)
    assert 0.1 < on_player.mean() < 0.3  # may coincide with the player: P = 3/16
    for i in range(0, 1000, 111):
        np.testing.assert_array_equal(
            obs[i], button_obs(4, tuple(states.pos[i]), [False] * 3, states.button_rows[i], states.button_cols[i]))


# --------------------------------------------------------------------------------------------- PanFlute

def flute(P=5):
    return built("PanFlute", num_pipes=P)


def pipes_from_indices(indices, P=5):
    v = np.zeros(P * (P + 1) // 2, dtype=bool)
    v[list(indices)] = True
    return v


# P = 5 layout: pipe0 [0], pipe1 [1,2], pipe2 [3,4,5], pipe3 [6,7,8,9], pipe4 [10..14]
STARTS, ENDS = (0, 1, 3, 6, 10), (0, 2, 5, 9, 14)


def test_panflute_sizes_and_probability():
    for P in (1, 2, 5, 7):
        env, params = envs.make("PanFlute", num_pipes=P)
        assert env.observation_size == P * (P + 1) // 2 and env.num_actions == P
        assert float(params.spontaneous_probability) == pytest.approx(1.0 / P**2)
    _, params = envs.make("PanFlute", spontaneous_reward=False)
    assert float(params.spontaneous_probability) == 0.0
    env, _, reset, _ = flute()
    obs, state = reset(KEY, NEVER)
    assert as_np(obs).dtype == np.bool_ and as_np(obs).shape == (15,)
    assert not as_np(obs).any() and not as_np(state.pipes).any()


def test_panflute_pipes_shift_and_record_the_played_pipe():
    _, step, _, _ = flute()
    state = flute_state(np.zeros(15, bool))
    # play 2, then 0, then 2: element j of pipe i is "pipe i was played j steps ago"
    obs, state, reward, terminal, _ = step(KEY, state, 2, NEVER)
    np.testing.assert_array_equal(as_np(obs), pipes_from_indices([3]))
    obs, state, reward, terminal, _ = step(KEY, state, 0, NEVER)
    np.testing.assert_array_equal(as_np(obs), pipes_from_indices([0, 4]))
    obs, state, reward, terminal, _ = step(KEY, state, 2, NEVER)
    # pipe0 element 0 is also its last, so it is overwritten (0 != 2); pipe2: played now and 2 steps ago
    np.testing.assert_array_equal(as_np(obs), pipes_from_indices([3, 5]))
    obs, state, reward, terminal, _ = step(KEY, state, 4, NEVER)
    # pipe2's last element (5) drops off the end, nothing carries over into pipe3
    np.testing.assert_array_equal(as_np(obs), pipes_from_indices([4, 10]))
    assert float(reward) == 0.0 and not bool(terminal)
    np.testing.assert_array_equal(as_np(state.pipes), as_np(obs))


def test_panflute_descending_sequence_pays_on_the_following_step():
    _, step, _, _ = flute()
    state = flute_state(np.zeros(15, bool))
    rewards = []
    for action in (4, 3, 2, 1, 0):
        obs, state, reward, terminal, _ = step(KEY, state, action, NEVER)
        rewards.append(float(reward))
        assert not bool(terminal)
    assert rewards == [0.0] * 5
    np.testing.assert_array_equal(as_np(obs), pipes_from_indices(ENDS))  # every pipe's last element set
    _, _, _, step_all = flute()
    _, _, reward, terminal, _ = step_all(KEY, state, jnp.arange(5), NEVER)
    np.testing.assert_array_equal(as_np(reward), np.ones(5))  # whatever the action
    assert not as_np(terminal).any()
    # the ascending order pays nothing
    state = flute_state(np.zeros(15, bool))
    for action in (0, 1, 2, 3, 4, 0):
        _, state, reward, _, _ = step(KEY, state, action, NEVER)
        assert float(reward) == 0.0


def test_panflute_reward_depends_on_the_incoming_state_only():
    _, _, _, step_all = flute()
    # all last elements but pipe 0's: no action pays now, even action 0 (which sets pipe 0)
    _, state, reward, _, _ = step_all(KEY, flute_state(pipes_from_indices([2, 5, 9, 14])), jnp.arange(5), NEVER)
    np.testing.assert_array_equal(as_np(reward), np.zeros(5))
    # after action 0 pipe0 is set but the others' last elements dropped off: still no reward next step
    np.testing.assert_array_equal(as_np(state.pipes[0]), pipes_from_indices([0]))
    # all last elements set plus noise elsewhere: every action pays
    _, _, reward, _, _ = step_all(KEY, flute_state(pipes_from_indices(list(ENDS) + [1, 7])), jnp.arange(5), NEVER)
    np.testing.assert_array_equal(as_np(reward), np.ones(5))


def test_panflute_spontaneous_sets_every_last_element():
    _, step, _, step_all = flute()
    obs, state, reward, terminal, _ = step_all(KEY, flute_state(np.zeros(15, bool)), jnp.arange(5), ALWAYS)
    for action in range(5):
        expected = set(ENDS) | {STARTS[action]}
        np.testing.assert_array_equal(as_np(obs[action]), pipes_from_indices(expected))
    np.testing.assert_array_equal(as_np(reward), np.zeros(5))
    _, _, reward, _, _ = step(KEY, jax.tree.map(lambda x: x[3], state), 1, NEVER)
    assert float(reward) == 1.0


# --------------------------------------------------------------------------------------------- OpenGrid

def open_grid(teleport=True, G=4):
    return built("OpenGrid", grid_size=G, teleport_on_termination=teleport)


def test_opengrid_moves_clipped_and_single_channel():
    env, _, _, step_all = open_grid()
    assert env.observation_size == 16 and env.num_actions == 5
    for pos, expected in [((1, 2), {0: (1, 2), 1: (0, 2), 2: (1, 1), 3: (2, 2), 4: (1, 3)}),
                          ((0, 0), {0: (0, 0), 1: (0, 0), 2: (0, 0), 3: (1, 0), 4: (0, 1)}),
                          ((3, 1), {0: (3, 1), 1: (2, 1), 2: (3, 0), 3: (3, 1), 4: (3, 2)})]:
        obs, state, reward, terminal, _ = step_all(KEY, grid_state(pos), jnp.arange(5), NEVER)
        for action in range(5):
            r, c = expected[action]
            assert tuple(as_np(state.pos[action])) == (r, c)
            expected_obs = np.zeros(16, bool)
            expected_obs[r * 4 + c] = True
            np.testing.assert_array_equal(as_np(obs[action]), expected_obs)
        np.testing.assert_array_equal(as_np(reward), -np.ones(5))
        assert not as_np(terminal).any()


def test_opengrid_goal_is_the_far_corner_and_terminal_is_judged_on_incoming_state():
    _, step, _, step_all = open_grid()
    # moving onto (3,3): not terminal yet
    obs, state, reward, terminal, _ = step(KEY, grid_state((3, 2)), 4, NEVER)
    assert not bool(terminal) and float(reward) == -1.0 and tuple(as_np(state.pos)) == (3, 3)
    # on (3,3): terminal whatever the action, and the agent still moves
    _, state, reward, terminal, _ = step_all(KEY, grid_state((3, 3)), jnp.arange(5), NEVER)
    assert as_np(terminal).all()
    np.testing.assert_array_equal(as_np(reward), -np.ones(5))
    np.testing.assert_array_equal(as_np(state.pos), [[3, 3], [2, 3], [3, 2], [3, 3], [3, 3]])
    # other corners are not goals
    for pos in [(0, 0), (0, 3), (3, 0)]:
        assert not bool(step(KEY, grid_state(pos), 0, NEVER)[3])


def test_opengrid_spontaneous_events():
    _, step, _, _ = open_grid(teleport=True)
    _, state, _, terminal, _ = step(KEY, grid_state((0, 0)), 3, ALWAYS)
    assert not bool(terminal) and tuple(as_np(state.pos)) == (3, 3)
    assert bool(step(KEY, state, 0, NEVER)[3])
    _, step, _, _ = open_grid(teleport=False)
    _, state, _, terminal, _ = step(KEY, grid_state((0, 0)), 3, ALWAYS)
    assert bool(terminal) and tuple(as_np(state.pos)) == (1, 0)


def test_opengrid_probability_and_reset():
    for G in (4, 10):
        env, params = envs.make("OpenGrid", grid_size=G)
        assert float(params.spontaneous_probability) == pytest.approx(0.1 / G)
    _, params = envs.make("OpenGrid", spontaneous_termination=False)
    assert float(params.spontaneous_probability) == 0.0
    env, _, _, _ = open_grid()
    obs, states = jax.jit(jax.vmap(env.reset_env, in_axes=(0, None)))(keys(800), NEVER)
    pos = as_np(states.pos)
    assert len({tuple(p) for p in pos}) == 16  # uniform over the grid, the goal included
    np.testing.assert_array_equal(as_np(obs).sum(axis=1), np.ones(800))
    np.testing.assert_array_equal(as_np(obs)[np.arange(800), pos[:, 0] * 4 + pos[:, 1]], np.ones(800, bool))


# ------------------------------------------------------------------------------------ gymnax compatibility

def test_gymnax_step_auto_resets_after_terminal_with_final_observation():
    env, _, _, _ = maze()
    assert isinstance(env, environment.Environment)
    state = maze_state(CORRIDOR, pos=(3, 3), goal=(3, 3), time=4)
    obs, new, reward, terminated, truncated, info = env.step(KEY, state, 1, NEVER)
    assert bool(terminated) and not bool(truncated) and float(reward) == -1.0
    assert bool(info["terminated"]) and not bool(info["truncated"])
    # the post-step observation of the old maze: the agent moved up off the goal
    np.testing.assert_array_equal(as_np(info["final_observation"]), maze_obs(CORRIDOR, (2, 3), (3, 3)))
    # the returned state is a fresh episode, and the returned observation is its observation
    new = jax.tree.map(as_np, new)
    assert int(new.time) == 0
    np.testing.assert_array_equal(as_np(obs), maze_obs(new.walls, new.pos, new.goal))
    assert not new.walls[tuple(new.pos)] and not new.walls[tuple(new.goal)]

    # a non-terminal step: no reset, and final_observation equals the observation
    state = maze_state(CORRIDOR, pos=(0, 0), goal=(3, 3), time=4)
    obs, new, reward, terminated, truncated, info = env.step(KEY, state, 4, NEVER)
    assert not bool(terminated) and not bool(truncated)
    expected = maze_obs(CORRIDOR, (0, 1), (3, 3))
    np.testing.assert_array_equal(as_np(obs), expected)
    np.testing.assert_array_equal(as_np(info["final_observation"]), expected)
    assert int(new.time) == 5 and tuple(as_np(new.pos)) == (0, 1)


def test_gymnax_step_truncates_at_the_time_limit():
    env, _, _, _ = open_grid()
    params = GridParams(spontaneous_probability=0.0, max_steps_in_episode=3)
    _, new, _, terminated, truncated, info = env.step(KEY, grid_state((0, 0), time=2), 4, params)
    assert not bool(terminated) and bool(truncated)
    np.testing.assert_array_equal(as_np(info["final_observation"]), np.eye(16, dtype=bool)[1])
    assert int(new.time) == 0
    _, new, _, terminated, truncated, _ = env.step(KEY, grid_state((0, 0), time=1), 4, params)
    assert not bool(truncated) and int(new.time) == 2
    # the default params never truncate
    _, _, _, _, truncated, _ = env.step(KEY, grid_state((0, 0), time=10**6), 4, env.default_params)
    assert not bool(truncated)


@pytest.mark.parametrize("name, config, D, A", [
    ("ProcMaze", {"grid_size": 4}, 64, 5),
    ("ButtonGrid", {"grid_size": 4}, 48, 5),
    ("PanFlute", {"num_pipes": 5}, 15, 5),
    ("OpenGrid", {"grid_size": 4}, 16, 5),
])
def test_gymnax_vmap_step_and_spaces(name, config, D, A):
    env, params = envs.make(name, **config)
    assert env.action_space(params).n == A and env.num_actions == A
    space = env.observation_space(params)
    assert space.shape == (D,) and space.dtype == jnp.bool_
    n = 16

    @jax.jit
    def batch(key):
        reset_keys, action_keys, step_keys = jax.random.split(key, (3, n))
        obs0, states = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, params)
        actions = jax.vmap(env.action_space(params).sample)(action_keys)
        out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(step_keys, states, actions, params)
        return obs0, actions, out, jax.vmap(space.contains)(out[0])

    obs0, actions, (obs, states, reward, terminated, truncated, info), contained = batch(KEY)
    assert obs0.shape == (n, D) and obs0.dtype == jnp.bool_
    assert actions.shape == (n,) and int(actions.min()) >= 0 and int(actions.max()) < A
    assert obs.shape == (n, D) and obs.dtype == jnp.bool_
    assert reward.shape == terminated.shape == truncated.shape == (n,)
    assert info["final_observation"].shape == (n, D)
    assert bool(jnp.all(contained))


def test_make_gymnax_builtin():
    env, params = envs.make("CartPole-v1")
    assert isinstance(env, environment.Environment)
    assert env.num_actions == 2
    obs, state = env.reset(KEY, params)
    obs, state, reward, terminated, truncated, info = env.step(KEY, state, 1, params)
    assert obs.shape == (4,)
    assert "CartPole-v1" in envs.available() and "ProcMaze" in envs.available()


def test_make_unknown_environment_name():
    with pytest.raises(ValueError, match="unknown environment 'ProcMaz'.*ProcMaze"):
        envs.make("ProcMaz", grid_size=4)
    with pytest.raises(ValueError, match="unknown environment"):
        envs.make("NoSuchEnvironmentAtAll")


def test_make_unknown_env_config_key():
    with pytest.raises(ValueError, match="grid_sise.*ProcMaze.*grid_size"):
        envs.make("ProcMaze", grid_sise=4)
    with pytest.raises(ValueError, match="colour.*PanFlute"):
        envs.make("PanFlute", colour="red")


@pytest.mark.parametrize("name, config, message", [
    ("ProcMaze", {"grid_size": 0}, "grid_size"),
    ("ProcMaze", {"grid_size": 4.0}, "grid_size"),
    ("ProcMaze", {"teleport_on_termination": "yes"}, "teleport_on_termination"),
    ("ButtonGrid", {"num_buttons": 0}, "num_buttons"),
    ("ButtonGrid", {"grid_size": 2, "num_buttons": 5}, "num_buttons"),
    ("PanFlute", {"num_pipes": 0}, "num_pipes"),
    ("OpenGrid", {"spontaneous_termination": 1}, "spontaneous_termination"),
])
def test_make_bad_env_config_value(name, config, message):
    with pytest.raises(ValueError, match=message):
        envs.make(name, **config)


@pytest.mark.parametrize("name, config, params_change", [
    ("ProcMaze", {"grid_size": 4}, {"spontaneous_probability": 0.3}),  # many terminals
    ("ButtonGrid", {"grid_size": 3, "num_buttons": 2}, {"max_steps_in_episode": 3}),  # truncations
    ("CartPole-v1", {}, {}),
])
def test_presampled_resets_step_exactly_as_gymnax_step(name, config, params_change):
    """The scan-friendly auto-reset (resets drawn in advance) must equal gymnax's env.step for the same keys."""
    from envs.autoreset import presample_resets, step_with_reset

    env, params = envs.make(name, **config)
    params = params.replace(**params_change)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    keys = jax.random.split(jax.random.PRNGKey(1), 60)
    actions = jax.random.randint(jax.random.PRNGKey(2), (60,), 0, env.action_space(params).n)

    def run(use_presampled):
        step_keys, resets = presample_resets(env, keys, params)

        def body(state, xs):
            key, step_key, action, reset = xs
            if use_presampled:
                out = step_with_reset(env, step_key, state, action, params, reset)
            else:
                out = env.step(key, state, action, params)
            obs, state, reward, terminated, truncated, info = out
            return state, (obs, reward, terminated, truncated, info["final_observation"])

        return jax.lax.scan(body, state, (keys, step_keys, actions, resets))[1]

    expected, got = jax.jit(lambda: run(False))(), jax.jit(lambda: run(True))()
    done = np.asarray(expected[2] | expected[3])
    assert done.sum() >= 2  # the test crosses episode ends
    jax.tree.map(np.testing.assert_array_equal, got, expected)
