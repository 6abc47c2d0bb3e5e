"""MiniMontezuma transitions worked by hand on the fixed layout (envs/minimontezuma.py docstring), renders of
hand-built states, solvability of the fixed and procedural layouts, and the visitation bitmaps."""
from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents.components import visitation as visitation_lib
from envs import minimontezuma as mm

NOOP, UP, LEFT, DOWN, RIGHT = range(5)
ENV = mm.MiniMontezuma()
PARAMS = ENV.default_params
STEP = jax.jit(ENV.step_env)


@pytest.fixture(scope="module")
def start():
    return ENV.reset_env(jax.random.PRNGKey(0), PARAMS)[1]


def at(state, room, row, col, **changes):
    """The state moved to (room, row, col), entered there, with any other fields changed."""
    return state.replace(room=jnp.int32(room), pos=jnp.array([row, col], jnp.int32),
                         entry=jnp.array([row, col], jnp.int32), **changes)


def step(state, action):
    obs, state, reward, terminated, _ = STEP(jax.random.PRNGKey(0), state, action, PARAMS)
    return state, float(reward), bool(terminated)


def where(state):
    return int(state.room), tuple(int(x) for x in state.pos)


def test_fixed_layout_cells():
    tiles, cells = mm.parse_fixed_layout()
    assert cells == {"key": [(8, 6, 2), (3, 3, 4)], "door": [(5, 4, 8), (7, 8, 4)], "treasure": (11, 4, 4),
                     "start": (1, 4, 4)}
    assert tiles.shape == (12, 9, 9) and tiles[4, 8, 4] == mm.ONE_WAY + 2 and tiles[8, 4, 8] == mm.ONE_WAY + 3


def test_start_state(start):
    assert where(start) == (1, (4, 4)) and int(start.lives) == 5
    assert start.keys_held.tolist() == [0, 0] and not start.doors_open.any() and not bool(start.treasure_taken)


def test_walls_block_and_noop_stays(start):
    state, reward, terminated = step(at(start, 1, 1, 1), UP)  # (0, 1) is wall
    assert where(state) == (1, (1, 1)) and reward == 0 and not terminated
    state, _, _ = step(at(start, 1, 4, 4), NOOP)
    assert where(state) == (1, (4, 4))


def test_room_change_at_an_exit_lands_on_the_facing_edge_and_sets_the_entry(start):
    state, reward, _ = step(at(start, 1, 4, 0), LEFT)
    assert where(state) == (0, (4, 8)) and state.entry.tolist() == [4, 8] and reward == 0
    state, _, _ = step(at(start, 1, 8, 4), DOWN)
    assert where(state) == (5, (0, 4))
    state, _, _ = step(at(start, 5, 0, 4), UP)
    assert where(state) == (1, (8, 4))


def test_key_pickup_rewards_once_and_fills_the_inventory(start):
    state, reward, _ = step(at(start, 8, 6, 3), LEFT)
    assert where(state) == (8, (6, 2)) and reward == 1.0
    assert state.keys_held.tolist() == [1, 0] and state.keys_taken.tolist() == [True, False]
    state, _, _ = step(state, RIGHT)
    state, reward, _ = step(state, LEFT)  # back onto the key's tile: nothing left to take
    assert reward == 0 and state.keys_held.tolist() == [1, 0]


def test_door_needs_the_key_of_its_colour_and_uses_it_up(start):
    before = at(start, 5, 4, 7)
    state, reward, _ = step(before, RIGHT)
    assert where(state) == (5, (4, 7)) and reward == 0 and not state.doors_open.any()  # no key: blocked
    state, reward, _ = step(before.replace(keys_held=jnp.array([0, 1])), RIGHT)
    assert where(state) == (5, (4, 7)) and reward == 0  # key b does not open door A
    state, reward, _ = step(before.replace(keys_held=jnp.array([1, 0])), RIGHT)
    assert where(state) == (5, (4, 8)) and reward == 1.0
    assert state.doors_open.tolist() == [True, False] and state.keys_held.tolist() == [0, 0]
    state, reward, _ = step(state, RIGHT)  # through the open door into room 6, no second reward
    assert where(state) == (6, (4, 0)) and reward == 0


def test_hazard_costs_a_life_and_respawns_at_the_room_entry(start):
    entered = at(start, 0, 4, 8)  # entered room 0 from room 1
    state, _, _ = step(entered, LEFT)
    state, _, _ = step(state, LEFT)
    state, _, _ = step(state, UP)  # (3, 6): floor
    state, reward, terminated = step(state.replace(pos=jnp.array([5, 7])), LEFT)  # (5, 6) is a hazard
    assert int(state.lives) == 4 and where(state) == (0, (4, 8)) and reward == 0 and not terminated


def test_last_life_lost_ends_the_episode(start):
    state, reward, terminated = step(at(start, 1, 4, 3, lives=jnp.int32(1)), UP)  # (3, 3) is a hazard
    assert int(state.lives) == 0 and terminated and reward == 0


def test_one_way_tiles_enter_only_in_their_direction(start):
    state, _, _ = step(at(start, 4, 7, 4), DOWN)  # onto the drop 'v'
    assert where(state) == (4, (8, 4))
    state, _, _ = step(state, DOWN)
    assert where(state) == (8, (0, 4))
    state, _, _ = step(state, UP)  # climbing back onto 'v' is refused
    assert where(state) == (8, (0, 4))
    state, _, _ = step(at(start, 9, 4, 0), LEFT)  # room 8's '>' cannot be entered moving left
    assert where(state) == (9, (4, 0))


def test_treasure_pays_ten_and_ends_the_episode_then_gymnax_resets(start):
    before = at(start, 11, 4, 3)
    state, reward, terminated = step(before, RIGHT)
    assert reward == 10.0 and terminated and bool(state.treasure_taken)
    obs, state, reward, terminated, truncated, info = ENV.step(jax.random.PRNGKey(0), before, RIGHT, PARAMS)
    assert bool(terminated) and where(state) == (1, (4, 4)) and int(state.lives) == 5
    assert info["final_observation"].shape == obs.shape


def test_episode_truncated_at_the_step_cap(start):
    *_, truncated, _ = ENV.step(jax.random.PRNGKey(0), start.replace(time=1999), NOOP, PARAMS)
    assert bool(truncated)


# ------------------------------------------------------------------------------------------ rendering
def centre(image, row, col, p=8):
    return int(image[row * p + p // 2, col * p + p // 2, 0])


def test_render_hand_built_states_pixel_values(start):
    image = np.asarray(ENV.get_obs(start))
    assert image.shape == (80, 80, 1) and image.dtype == np.uint8
    assert centre(image, 4, 4) == 255  # the agent
    assert centre(image, 0, 0) == 90 and centre(image, 3, 3) == 130 and centre(image, 4, 1) == 0  # wall, hazard, floor
    assert [centre(image, r, 9) for r in range(9)] == [255] * 5 + [0] * 4  # five lives
    assert [centre(image, 9, c) for c in range(10)] == [0] * 10  # no keys held
    room8 = np.asarray(ENV.get_obs(at(start, 8, 1, 1)))
    assert centre(room8, 6, 2) == 200 and centre(room8, 4, 8) == 50  # key a, the one-way tile
    assert centre(np.asarray(ENV.get_obs(at(start, 5, 1, 1))), 4, 8) == 150  # door A, closed
    assert centre(np.asarray(ENV.get_obs(at(start, 11, 1, 1))), 4, 4) == 240  # the treasure
    holding = np.asarray(ENV.get_obs(at(start, 5, 1, 1, keys_held=jnp.array([1, 2]), lives=jnp.int32(2),
                                        doors_open=jnp.array([True, False]))))
    assert [centre(holding, 9, c) for c in range(4)] == [200, 220, 220, 0]  # key a, then two keys b
    assert [centre(holding, r, 9) for r in range(3)] == [255, 255, 0]
    assert centre(holding, 4, 8) == 0  # the open door is floor


@pytest.mark.parametrize("pixels", [1, 3, 8])
def test_glyph_centres_carry_the_gray_level_at_any_size(pixels):
    drawn = mm.glyphs(pixels)
    for code in range(mm.NUM_CODES):
        if code != mm.FLOOR:
            assert drawn[code, pixels // 2, pixels // 2] == mm.INTENSITY[code], code


# ------------------------------------------------------------------------------------------ solvability
def solve(env, state):
    """Breadth-first search over the environment's own jitted step, never losing a life: the actions to the
    treasure, or None."""
    params = env.default_params
    step_all = jax.jit(jax.vmap(env.step_env, in_axes=(None, None, 0, None)))
    identity = lambda s: (int(s.room), *map(int, s.pos), *map(int, s.keys_held), *map(bool, s.keys_taken),  # noqa: E731
                          *map(bool, s.doors_open))
    seen, queue = {identity(state)}, deque([(state, [])])
    while queue:
        state, path = queue.popleft()
        # one transfer per expansion: slicing host arrays is far cheaper than slicing device arrays
        nexts = jax.device_get(step_all(jax.random.PRNGKey(0), state, jnp.arange(1, 5), params)[1])
        for index in range(4):
            following = jax.tree.map(lambda x: x[index], nexts)
            if bool(following.treasure_taken):
                return path + [index + 1]
            if int(following.lives) < int(state.lives) or identity(following) in seen:
                continue
            seen.add(identity(following))
            queue.append((following, path + [index + 1]))
    return None


def play(env, state, actions):
    total, rooms = 0.0, {int(state.room)}
    step = jax.jit(env.step_env)
    for action in actions:
        _, state, reward, terminated, _ = step(jax.random.PRNGKey(0), state, action, env.default_params)
        total += float(reward)
        rooms.add(int(state.room))
    return total, bool(terminated), rooms


def test_fixed_layout_shortest_solution_collects_everything(start):
    actions = solve(ENV, start)
    assert len(actions) == 122
    total, terminated, rooms = play(ENV, start, actions)
    assert total == 14.0 and terminated and rooms == set(range(12)) - {10}


@pytest.mark.parametrize("seed", [0, 1])
def test_procedural_layouts_are_solvable_and_differ(seed):
    env = mm.MiniMontezuma(layout="procedural")
    _, state = env.reset_env(jax.random.PRNGKey(seed), env.default_params)
    _, other = env.reset_env(jax.random.PRNGKey(seed + 10), env.default_params)
    assert not np.array_equal(np.asarray(state.layout.tiles), np.asarray(other.layout.tiles))
    layout = state.layout
    assert int(layout.treasure_cell[0]) != int(layout.start_cell[0])
    tiles = np.asarray(layout.tiles)
    assert (tiles[:, 4, :] != mm.HAZARD).all() and (tiles[:, :, 4] != mm.HAZARD).all()  # the centre cross is clear
    actions = solve(env, state)
    assert actions is not None
    total, terminated, _ = play(env, state, actions)
    assert total == 14.0 and terminated  # both keys, both doors, the treasure


def test_hazard_density_sets_the_procedural_hazards():
    """The share of hazard tiles off the centre cross follows hazard_density (0: none; 0.3: about 0.3 of the
    free tiles, the same key's layout otherwise)."""
    shares = []
    for density in (0.0, 0.08, 0.3):
        env = mm.MiniMontezuma(layout="procedural", hazard_density=density)
        _, state = env.reset_env(jax.random.PRNGKey(4), env.default_params)
        shares.append(float(np.mean(np.asarray(state.layout.tiles) == mm.HAZARD)))
    assert shares[0] == 0.0 and 0 < shares[1] < shares[2]


def test_bad_constructor_arguments():
    for kwargs, message in [({"layout": "random"}, "layout must be"), ({"room_rows": 2}, "fixed layout has 3 x 4"),
                            ({"layout": "procedural", "room_rows": 1, "room_cols": 2}, "at least 3 rooms"),
                            ({"lives": 0}, "lives must be"), ({"lives": 10}, "at most 9"),
                            ({"layout": "procedural", "hazard_density": 0.9}, "hazard_density must be"),
                            ({"hazard_density": 0.04}, "hazard_density applies to layout 'procedural'"),
                            ({"start_room": 8}, "start_room must be one of"), ({"start_room": -1}, "start_room"),
                            ({"layout": "procedural", "start_room": 0}, "start_room applies to layout 'fixed'")]:
        with pytest.raises(ValueError, match=message):
            envs.make("MiniMontezuma", **kwargs)


# ------------------------------------------------------------------------------------------ visitation
def test_visitation_bitmaps_on_a_scripted_trajectory(start):
    """From the start: left x4 (cells (4,3)..(4,0)), left into room 0, no-op (the same cell again), then the
    episode ends. Rooms {1, 0}; six distinct cells; the episode visited 2 rooms."""
    bundle = visitation_lib.make_visitation(ENV, num_envs=1)
    visits, state = bundle.init(), start
    for action in [LEFT, LEFT, LEFT, LEFT, LEFT, NOOP, NOOP]:
        visits = bundle.visit(visits, *bundle.of_state(state))
        state, _, _ = step(state, action)
    counts = jax.tree.map(int, bundle.counts(visits))
    assert counts == {"rooms_visited": 2, "cells_visited": 6}
    assert np.flatnonzero(np.asarray(visits.rooms)).tolist() == [0, 1]
    visits, per_episode = bundle.close_episodes(visits, jnp.array([True]))
    assert per_episode.tolist() == [2] and not visits.episode_rooms.any() and int(visits.rooms.sum()) == 2


def test_visitation_cells_count_keys_held_and_work_through_wrappers(start):
    env, params = envs.make_from_config({"environment": "MiniMontezuma", "env_config": {},
                                         "env_wrappers": {"frame_stack": 2, "action_repeat": 2}})
    bundle = visitation_lib.make_visitation(env, num_envs=2)
    _, wrapped = jax.vmap(env.reset_env, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), 2), params)
    room, cell = jax.vmap(bundle.of_state)(wrapped)
    assert room.tolist() == [1, 1] and cell[0] == cell[1]
    holding = ENV.visitation(start.replace(keys_held=jnp.array([0, 1])))[1]
    assert int(holding) == int(ENV.visitation(start)[1]) + 2  # the same square with key b held: another cell
    visits = bundle.visit(bundle.init(), room, cell)
    assert int(bundle.counts(visits)["cells_visited"]) == 1


def test_hashed_cells_stay_in_range_and_are_deterministic():
    cells = jnp.arange(0, 10_000_000, 997)
    bits = visitation_lib.cell_bit(cells, 1 << 16, hashed=True)
    assert int(bits.min()) >= 0 and int(bits.max()) < 1 << 16
    np.testing.assert_array_equal(bits, visitation_lib.cell_bit(cells, 1 << 16, hashed=True))
    assert len(np.unique(np.asarray(bits))) > 0.8 * min(len(cells), 1 << 16)


def test_environments_without_rooms_have_no_visitation():
    env, _ = envs.make("ProcMaze", grid_size=3)
    assert visitation_lib.make_visitation(env, 1) is None


def test_reachable_ceilings_of_a_hand_made_two_room_layout():
    """Two rooms side by side, 7 x 7 floor each plus the shared exit tiles: room 0 has the start (4, 2), key a (4, 4)
    and the exit (4, 8); room 1 is entered through door A at (4, 0) and holds the treasure (4, 4), key b (2, 2)
    and door B (6, 6) on its floor. Counted by hand: no key: room 0's 50 positions but the key's own = 49. Key a:
    room 0's 50 holding a, then door A opened (the key used up) room 0's 50 and room 1's 50 less key b and door B
    = 48 holding nothing: 98 positions, 148 cells. Both keys: holding b, room 1's 50 less door B and room 0's 50
    (99), then door B opened, all 100 holding nothing: 100 positions, 199 cells. Any: 100 holding nothing, 50
    holding a, 99 holding b = 249 cells. Steps: key a 2, door A 4 + 1 later, the treasure and key b 4 beyond it."""
    from envs.minimontezuma_ceilings import reachable_ceilings
    tiles = np.full((2, mm.ROOM, mm.ROOM), mm.WALL, np.int8)
    tiles[:, 1:8, 1:8] = mm.FLOOR
    tiles[0, 4, 8] = tiles[1, 4, 0] = mm.FLOOR
    layout = mm.Layout(tiles=jnp.asarray(tiles), key_cell=jnp.array([[0, 4, 4], [1, 2, 2]]),
                       door_cell=jnp.array([[1, 4, 0], [1, 6, 6]]), treasure_cell=jnp.array([1, 4, 4]),
                       start_cell=jnp.array([0, 4, 2]))
    ceilings = reachable_ceilings(layout, room_rows=1, room_cols=2)
    phases = ceilings["phases"]
    assert phases["no key"] == {"rooms": [0], "positions": 49, "cells": 49}
    assert phases["key a"] == {"rooms": [0, 1], "positions": 98, "cells": 148}
    assert phases["key b"] == {"rooms": [], "positions": 0, "cells": 0}  # key b lies behind door A
    assert phases["both keys"] == {"rooms": [0, 1], "positions": 100, "cells": 199}
    assert phases["any"] == {"rooms": [0, 1], "positions": 100, "cells": 249}
    assert (ceilings["steps_to_key_a"], ceilings["steps_to_key_b"], ceilings["steps_to_treasure"]) == (2, 11, 11)
    # column 6 of room 0 made one-way tiles entered only moving left: from the start's side it cannot be crossed,
    # so columns 1-5 (35 positions, the key's among them) are all there is
    tiles[0, 1:8, 6] = mm.ONE_WAY + 1
    blocked = reachable_ceilings(layout.replace(tiles=jnp.asarray(tiles)), room_rows=1, room_cols=2)
    assert blocked["phases"]["any"] == {"rooms": [0], "positions": 35, "cells": 35 - 1 + 35}
    assert blocked["steps_to_treasure"] is None


def test_fixed_layout_ceilings_match_its_documented_solution():
    """The fixed layout's documented shortest solution is 122 steps and its first key 33 (see the module's map);
    without key a only rooms 0, 1, 4, 5, 8 and 9 can be reached (the one-way drop into room 8 leads to key a)."""
    from envs.minimontezuma_ceilings import reachable_ceilings
    env = mm.MiniMontezuma()
    ceilings = reachable_ceilings(env.fixed_layout, env.room_rows, env.room_cols)
    assert ceilings["steps_to_first_key"] == 33 and ceilings["steps_to_treasure"] == 122
    assert ceilings["phases"]["no key"]["rooms"] == [0, 1, 4, 5, 8, 9]
    assert ceilings["phases"]["any"]["rooms"] == list(range(12))


@pytest.mark.parametrize("start_room, steps_to_key_a", [(0, 26), (4, 13)])
def test_start_room_moves_the_start_to_the_rooms_centre(start_room, steps_to_key_a):
    """start_room 0, worked by hand: room 0's centre (4, 4) -> (5, 4) -> around the wall at (6, 4) by column 3 ->
    its bottom exit (8, 4): 6 steps, into room 4: 7; room 4's column 4 has a hazard at (2, 4), so (1, 4) -> (1, 3)
    -> (3, 3) -> (3, 4) -> down to the drop at (8, 4): 10 more, the drop into room 8: 1 (18 in all); then down
    column 4 to (6, 4) and left to key a at (6, 2): 8. 26 steps. start_room 4: 4 down to the drop, 1, 8: 13."""
    from envs.minimontezuma_ceilings import reachable_ceilings
    env = mm.MiniMontezuma(start_room=start_room)
    _, state = env.reset_env(jax.random.PRNGKey(0), env.default_params)
    assert int(state.room) == start_room and state.pos.tolist() == [4, 4] == state.entry.tolist()
    ceilings = reachable_ceilings(env.fixed_layout, env.room_rows, env.room_cols)
    assert ceilings["steps_to_first_key"] == steps_to_key_a
    assert ceilings["phases"]["no key"]["rooms"] == [0, 1, 4, 5, 8, 9]  # the same rooms as from S
