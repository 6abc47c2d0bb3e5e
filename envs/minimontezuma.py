"""MiniMontezuma: a hard-exploration grid of rooms rendered natively to pixels (ours, a small stand-in for Montezuma's Revenge).

Rooms of 9 x 9 tiles sit on a grid of rooms; the agent sees only the room it is in, plus a strip showing the
keys it holds and a column showing its lives. Keys open the locked doors of their colour (a key is used up),
hazard tiles cost a life and send the agent back to where it entered the room, one-way tiles can be entered
only moving in their direction, and the treasure ends the episode. Rewards are sparse: +1 per key, +1 per
opened door, +10 for the treasure. Five actions: no-op, up, left, down, right (as the grid environments).

The layout is fixed by default (Montezuma's Revenge is fixed): 12 rooms in 3 rows x 4 columns whose
shortest solution takes 122 steps through 11 rooms (key a, a one-way drop, door a, key b, door b);
`start_room` moves its start to another key-free room's centre (room 0: key a 26 steps away instead of 33).
`layout="procedural"` draws a new layout from each reset key: a random spanning tree of rooms, the treasure
in the room farthest from the start behind door a, key a behind door b, key b outside both, random hazards.

The state exposes the room id and the (room, row, col, keys held) cell (`visitation`) so agents can count
rooms and cells visited (agents/components/visitation.py), and the milestones reached (`milestones`).
"""
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from envs.base import GRID_MOVES, require_int

ROOM = 9  # tiles per room side
SCREEN = ROOM + 1  # the room, a strip of held keys below it, a column of lives to its right
NUM_COLOURS = 2  # key / door colours a and b

# Static tile codes of a room.
FLOOR, WALL, HAZARD = 0, 1, 2
ONE_WAY = 3  # ONE_WAY + (move index - 1): 3 up, 4 left, 5 down, 6 right (enter only moving that way)
# Screen codes add the dynamic things on top of the tiles.
DOOR, KEY = 7, 9  # + colour
TREASURE, AGENT, LIFE = 11, 12, 13
NUM_CODES = 14

# Gray level of each screen code: the centre pixel of every glyph has it, so a test can read a tile.
INTENSITY = np.array([0, 90, 130, 50, 50, 50, 50, 150, 175, 200, 220, 240, 255, 255], np.uint8)

ASCII = {".": FLOOR, "#": WALL, "x": HAZARD, "^": ONE_WAY, "<": ONE_WAY + 1, "v": ONE_WAY + 2, ">": ONE_WAY + 3}

# The fixed layout: rooms 0-3 top row, 4-7 middle, 8-11 bottom. a/b keys, A/B doors (locked, colour a/b),
# T treasure, S start. Exits are the middle tiles of the walls. Solution: 1 -> 0 -> 4 -> (drop) 8 (key a) -> 9 ->
# 5 -> door A -> 6 -> 2 -> 3 (key b) -> 2 -> 6 -> 7 -> door B -> 11 (treasure).
FIXED_ROOMS = [
    # 0              1              2              3
    ["#########", "#########", "#########", "#########"],
    ["#.......#", "#.......#", "#...x...#", "#.x...x.#"],
    ["#.x...x.#", "#.......#", "#.......#", "#...x...#"],
    ["#...#...#", "#..x.x..#", "#.##.##.#", "#.x.b.x.#"],
    ["#........", "....S...#", "#........", "....x...#"],
    ["#.x...x.#", "#.......#", "#.##.##.#", "#.x...x.#"],
    ["#...#...#", "#...x...#", "#.......#", "#...x...#"],
    ["#.......#", "#.......#", "#.x...x.#", "#.......#"],
    ["####.####", "####.####", "####.####", "#########"],
    # 4              5              6              7
    ["####.####", "####.####", "####.####", "#########"],
    ["#.......#", "#.......#", "#.......#", "#.x...x.#"],
    ["#.x.x.x.#", "#..x.x..#", "#..x.x..#", "#.......#"],
    ["#.x...x.#", "#.......#", "#.......#", "#...x...#"],
    ["#.......#", "#.......A", ".........", "........#"],
    ["#.x...x.#", "#.......#", "#.......#", "#...x...#"],
    ["#.......#", "#..x.x..#", "#..x.x..#", "#.......#"],
    ["#.x...x.#", "#.......#", "#.......#", "#.x...x.#"],
    ["####v####", "####.####", "####.####", "####B####"],
    # 8              9              10             11
    ["####.####", "####.####", "####.####", "####.####"],
    ["#.......#", "#.......#", "#x.x.x.x#", "#.......#"],
    ["#..x.x..#", "#.x...x.#", "#.......#", "#.x.x.x.#"],
    ["#.......#", "#.......#", "#.x.x.x.#", "#.......#"],
    ["#.......>", "........#", "#.......#", "#.x.T.x.#"],
    ["#.x.....#", "#.x...x.#", "#.x.x.x.#", "#.......#"],
    ["#.a...x.#", "#.......#", "#.......#", "#.x.x.x.#"],
    ["#.......#", "#...x...#", "#x.x.x.x#", "#.......#"],
    ["#########", "#########", "#########", "#########"],
]
FIXED_ROOM_ROWS, FIXED_ROOM_COLS = 3, 4
# Rooms the fixed layout may start in (`start_room`): reachable from S without a key, but not key a's room 8; room
# 1's centre is S. Key a is 33 steps from S, 26 from room 0's centre, 13 from room 4's (envs/minimontezuma_ceilings.py).
FIXED_START_ROOMS = (0, 1, 4, 5, 9)


@struct.dataclass
class Layout:
    tiles: jax.Array  # (rooms, 9, 9) int8 static tile codes
    key_cell: jax.Array  # (colours, 3) int32 (room, row, col) of key a, key b
    door_cell: jax.Array  # (colours, 3) int32 of door A, door B (a door opens with the key of its colour)
    treasure_cell: jax.Array  # (3,) int32
    start_cell: jax.Array  # (3,) int32


@struct.dataclass
class MiniMontezumaState(environment.EnvState):
    layout: Layout
    room: jax.Array  # int32
    pos: jax.Array  # (2,) int32 (row, col) in the room
    entry: jax.Array  # (2,) int32: where the agent entered this room (or started): where it respawns
    lives: jax.Array  # int32
    keys_held: jax.Array  # (colours,) int32
    keys_taken: jax.Array  # (colours,) bool: picked up this episode
    doors_open: jax.Array  # (colours,) bool
    treasure_taken: jax.Array  # bool


@struct.dataclass
class MiniMontezumaParams(environment.EnvParams):
    max_steps_in_episode: int = 2000


def parse_fixed_layout() -> tuple[np.ndarray, dict]:
    """The fixed layout's tile array (rooms, 9, 9) and the cells of its keys, doors, treasure and start."""
    tiles = np.zeros((FIXED_ROOM_ROWS * FIXED_ROOM_COLS, ROOM, ROOM), np.int8)
    cells = {}
    for room_row in range(FIXED_ROOM_ROWS):
        for row in range(ROOM):
            line_row = FIXED_ROOMS[room_row * ROOM + row]
            for room_col, line in enumerate(line_row):
                room = room_row * FIXED_ROOM_COLS + room_col
                for col, char in enumerate(line):
                    if char in "abABTS":
                        cells.setdefault(char, []).append((room, row, col))
                    tiles[room, row, col] = ASCII.get(char, FLOOR)
    return tiles, {"key": [cells["a"][0], cells["b"][0]], "door": [cells["A"][0], cells["B"][0]],
                   "treasure": cells["T"][0], "start": cells["S"][0]}


def glyphs(tile_pixels: int) -> np.ndarray:
    """(NUM_CODES, p, p) uint8 drawings of every screen code; each glyph's centre pixel has the code's gray level."""
    centres = (np.arange(tile_pixels) + 0.5) / tile_pixels
    v, u = np.meshgrid(centres, centres, indexing="ij")  # v: down, u: right, in [0, 1)
    tol = 0.5 / tile_pixels + 1e-9  # every shape covers the centre pixel, whatever the size
    shapes = np.zeros((NUM_CODES, tile_pixels, tile_pixels), bool)
    shapes[WALL] = True
    shapes[HAZARD] = (np.abs(u - v) < max(0.15, tol)) | (np.abs(u + v - 1) < max(0.15, tol))  # an X
    down = np.abs(u - 0.5) <= (1 - v) / 2 + tol  # a triangle pointing down
    shapes[ONE_WAY + 2] = down
    shapes[ONE_WAY] = down[::-1]  # up
    shapes[ONE_WAY + 3] = down.T  # right
    shapes[ONE_WAY + 1] = down.T[:, ::-1]  # left
    for colour in range(NUM_COLOURS):
        shapes[DOOR + colour] = (u > 0.1) & (u < 0.9) | (tile_pixels < 3)
        shapes[KEY + colour] = (np.abs(u - 0.5) < max(0.15, tol)) | (np.abs(v - 0.5) < max(0.15, tol))  # a plus
    shapes[TREASURE] = np.abs(u - 0.5) + np.abs(v - 0.5) <= 0.45  # a diamond
    shapes[AGENT] = (u > 0.1) & (u < 0.9) & (v > 0.1) & (v < 0.9) | (tile_pixels < 3)
    shapes[LIFE] = (np.abs(u - 0.5) < max(0.3, tol)) & (np.abs(v - 0.5) < max(0.3, tol))
    shapes[FLOOR] = False
    return np.where(shapes, INTENSITY[:, None, None], 0).astype(np.uint8)


class MiniMontezuma(environment.Environment):
    """Observation: (10 p, 10 p, 1) uint8 grayscale, p = tile_pixels (8: 80 x 80). The room's 9 x 9 tiles at the
    top left, the keys held along the bottom row, one lit tile per life down the right column."""

    def __init__(self, layout: str = "fixed", room_rows: int = 3, room_cols: int = 4, tile_pixels: int = 8,
                 lives: int = 5, hazard_density: float | None = None, start_room: int | None = None):
        super().__init__()
        if layout not in ("fixed", "procedural"):
            raise ValueError(f"layout must be 'fixed' or 'procedural', got {layout!r}")
        require_int("room_rows", room_rows, 1)
        require_int("room_cols", room_cols, 1)
        require_int("tile_pixels", tile_pixels, 1)
        require_int("lives", lives, 1)
        if lives > ROOM:
            raise ValueError(f"lives must be at most {ROOM} (one lit tile each), got {lives}")
        if layout == "fixed" and hazard_density is not None:
            raise ValueError("hazard_density applies to layout 'procedural'; the fixed layout's hazards are drawn in "
                             "its map")
        hazard_density = 0.08 if hazard_density is None else hazard_density
        if isinstance(hazard_density, bool) or not isinstance(hazard_density, (int, float)) \
                or not 0 <= hazard_density <= 0.5:
            raise ValueError(f"hazard_density must be a number in [0, 0.5], got {hazard_density!r}")
        if layout == "fixed" and (room_rows, room_cols) != (FIXED_ROOM_ROWS, FIXED_ROOM_COLS):
            raise ValueError(f"the fixed layout has {FIXED_ROOM_ROWS} x {FIXED_ROOM_COLS} rooms; room_rows and "
                             f"room_cols apply to layout 'procedural'")
        if layout == "procedural" and start_room is not None:
            raise ValueError("start_room applies to layout 'fixed'; a procedural layout draws its start")
        if start_room is not None:
            require_int("start_room", start_room, 0)
            if start_room not in FIXED_START_ROOMS:
                raise ValueError(f"start_room must be one of {FIXED_START_ROOMS} (the rooms reachable without a key, "
                                 f"key a's room aside), got {start_room}")
        if layout == "procedural" and room_rows * room_cols < 3:
            raise ValueError(f"a procedural layout needs at least 3 rooms, got {room_rows} x {room_cols}")
        self.layout_kind = layout
        self.room_rows, self.room_cols = room_rows, room_cols
        self.num_rooms = room_rows * room_cols
        self.tile_pixels = tile_pixels
        self.max_lives = lives
        self.hazard_density = float(hazard_density)
        self.glyphs = jnp.asarray(glyphs(tile_pixels))
        if layout == "fixed":
            tiles, cells = parse_fixed_layout()
            if start_room is not None:  # a nearer start sizes the bed: the first key's distance (docs/environments.md)
                cells["start"] = (start_room, ROOM // 2, ROOM // 2)
            self.fixed_layout = Layout(tiles=jnp.asarray(tiles), key_cell=jnp.asarray(cells["key"], jnp.int32),
                                       door_cell=jnp.asarray(cells["door"], jnp.int32),
                                       treasure_cell=jnp.asarray(cells["treasure"], jnp.int32),
                                       start_cell=jnp.asarray(cells["start"], jnp.int32))

    # ---------------------------------------------------------------------------------------------- API
    @property
    def name(self) -> str:
        return "MiniMontezuma"

    @property
    def num_actions(self) -> int:
        return 5

    @property
    def default_params(self) -> MiniMontezumaParams:
        return MiniMontezumaParams()

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(5)

    def observation_space(self, params=None) -> spaces.Box:
        side = SCREEN * self.tile_pixels
        return spaces.Box(0, 255, (side, side, 1), jnp.uint8)

    def is_terminated(self, state, params) -> jax.Array:
        return state.treasure_taken | (state.lives <= 0)

    @property
    def num_cells(self) -> int:
        """Distinct (room, row, col, keys held) cells: what `visitation` indexes."""
        return self.num_rooms * ROOM * ROOM * (1 << NUM_COLOURS)

    def visitation(self, state: MiniMontezumaState):
        """(room id, cell index) of the state: the cell is (room, row, col, which colours of key are held)."""
        held = jnp.sum((state.keys_held > 0).astype(jnp.int32) << jnp.arange(NUM_COLOURS))
        cell = ((state.room * ROOM + state.pos[0]) * ROOM + state.pos[1]) * (1 << NUM_COLOURS) + held
        return state.room, cell

    milestone_names = ("key", "door", "treasure")

    def milestones(self, state: MiniMontezumaState) -> dict:
        return {"key": jnp.any(state.keys_taken), "door": jnp.any(state.doors_open), "treasure": state.treasure_taken}

    # ---------------------------------------------------------------------------------------------- dynamics
    def step_env(self, key, state: MiniMontezumaState, action, params):
        layout = state.layout
        candidate = state.pos + GRID_MOVES[action]
        # Leaving the room through its edge lands on the facing edge tile of the neighbouring room.
        room_step = jnp.where(candidate < 0, -1, jnp.where(candidate >= ROOM, 1, 0))
        room_row, room_col = jnp.divmod(state.room, self.room_cols)
        next_room_row, next_room_col = room_row + room_step[0], room_col + room_step[1]
        on_map = (next_room_row >= 0) & (next_room_row < self.room_rows) & (next_room_col >= 0) \
            & (next_room_col < self.room_cols)
        room = jnp.where(on_map, next_room_row * self.room_cols + next_room_col, state.room)
        target = jnp.mod(candidate, ROOM)
        tile = layout.tiles[room, target[0], target[1]]
        cell = jnp.concatenate([room[None], target])

        door_here = jnp.all(layout.door_cell == cell, axis=-1) & ~state.doors_open  # (colours,)
        has_key = state.keys_held > 0
        one_way_ok = (tile < ONE_WAY) | (tile > ONE_WAY + 3) | (tile == ONE_WAY + action - 1)
        moves = on_map & (action != 0) & (tile != WALL) & one_way_ok & ~jnp.any(door_here & ~has_key)
        opened = moves & door_here  # a door opens (using up its key) when the agent walks into it with the key
        entered_room = moves & jnp.any(room_step != 0)
        room = jnp.where(moves, room, state.room)
        pos = jnp.where(moves, target, state.pos)
        entry = jnp.where(entered_room, target, state.entry)

        picked = moves & jnp.all(layout.key_cell == cell, axis=-1) & ~state.keys_taken
        treasure = moves & jnp.all(layout.treasure_cell == cell) & ~state.treasure_taken
        hurt = moves & (tile == HAZARD)
        lives = state.lives - hurt.astype(jnp.int32)
        pos = jnp.where(hurt, entry, pos)  # respawn where the agent entered this room

        keys_held = state.keys_held + picked.astype(jnp.int32) - opened.astype(jnp.int32)
        reward = (jnp.sum(picked) + jnp.sum(opened) + 10 * treasure).astype(jnp.float32)
        state = state.replace(room=room, pos=pos, entry=entry, lives=lives, keys_held=keys_held,
                              keys_taken=state.keys_taken | picked, doors_open=state.doors_open | opened,
                              treasure_taken=state.treasure_taken | treasure, time=state.time + 1)
        return self.get_obs(state), state, reward, self.is_terminated(state, params), {}

    def reset_env(self, key, params):
        layout = self.fixed_layout if self.layout_kind == "fixed" else self.procedural_layout(key)
        start = layout.start_cell
        state = MiniMontezumaState(
            time=0, layout=layout, room=start[0], pos=start[1:], entry=start[1:], lives=jnp.int32(self.max_lives),
            keys_held=jnp.zeros(NUM_COLOURS, jnp.int32), keys_taken=jnp.zeros(NUM_COLOURS, jnp.bool_),
            doors_open=jnp.zeros(NUM_COLOURS, jnp.bool_), treasure_taken=jnp.bool_(False))
        return self.get_obs(state), state

    # ---------------------------------------------------------------------------------------------- pixels
    def screen_codes(self, state: MiniMontezumaState) -> jax.Array:
        """(10, 10) screen codes: the room with its keys, closed doors, treasure and the agent; keys held
        along the bottom row (colour a first); lives down the right column."""
        layout = state.layout
        room = layout.tiles[state.room].astype(jnp.int32)

        def draw(codes, cell, code, visible):
            here = visible & (cell[0] == state.room)
            return codes.at[cell[1], cell[2]].set(jnp.where(here, code, codes[cell[1], cell[2]]))

        for colour in range(NUM_COLOURS):
            room = draw(room, layout.door_cell[colour], DOOR + colour, ~state.doors_open[colour])
            room = draw(room, layout.key_cell[colour], KEY + colour, ~state.keys_taken[colour])
        room = draw(room, layout.treasure_cell, TREASURE, ~state.treasure_taken)
        room = room.at[state.pos[0], state.pos[1]].set(AGENT)

        slots = jnp.arange(SCREEN)
        held_until = jnp.cumsum(jnp.clip(state.keys_held, 0, SCREEN))
        slot_colour = jnp.sum(slots[:, None] >= held_until[None, :], axis=-1)  # colour of the key in each slot
        inventory = jnp.where(slot_colour < NUM_COLOURS, KEY + slot_colour, FLOOR)
        lives = jnp.where(jnp.arange(ROOM) < state.lives, LIFE, FLOOR)
        screen = jnp.concatenate([jnp.concatenate([room, lives[:, None]], axis=1), inventory[None, :]], axis=0)
        return screen

    def render_image(self, state: MiniMontezumaState) -> jax.Array:
        """(10 p, 10 p) uint8: every screen code drawn as its glyph."""
        tiles = self.glyphs[self.screen_codes(state)]  # (10, 10, p, p)
        side = SCREEN * self.tile_pixels
        return tiles.transpose(0, 2, 1, 3).reshape(side, side)

    def get_obs(self, state: MiniMontezumaState, params=None, key=None) -> jax.Array:
        return self.render_image(state)[:, :, None]

    # ---------------------------------------------------------------------------------------------- layouts
    def procedural_layout(self, key) -> Layout:
        """A random spanning tree of rooms (Kruskal on random edge weights); the start room at random with the
        agent in its centre; the treasure in the room farthest from it behind door a; key a in another room
        behind door b; key b in a room behind neither door; hazards on tiles off the centre cross (so every
        exit of a room stays reachable from every other)."""
        rows, cols, num_rooms = self.room_rows, self.room_cols, self.num_rooms
        edges = [(r * cols + c, r * cols + c + 1) for r in range(rows) for c in range(cols - 1)] \
            + [(r * cols + c, (r + 1) * cols + c) for r in range(rows - 1) for c in range(cols)]
        edge_a, edge_b = (jnp.asarray(x, jnp.int32) for x in zip(*edges))
        tree_key, start_key, treasure_key, key_a_key, key_b_key, spot_key, hazard_key = jax.random.split(key, 7)

        def kruskal(carry, edge):
            label, open_edges = carry
            a, b = edge_a[edge], edge_b[edge]
            join = label[a] != label[b]
            label = jnp.where(join & (label == label[b]), label[a], label)
            return (label, open_edges.at[edge].set(join)), None

        order = jax.random.permutation(tree_key, len(edges))
        (_, open_edges), _ = jax.lax.scan(kruskal, (jnp.arange(num_rooms), jnp.zeros(len(edges), jnp.bool_)), order)
        adjacent = jnp.zeros((num_rooms, num_rooms), jnp.bool_).at[edge_a, edge_b].set(open_edges)
        adjacent = adjacent | adjacent.T

        start = jax.random.randint(start_key, (), 0, num_rooms)
        big = jnp.int32(num_rooms + 1)
        depth = jnp.where(jnp.arange(num_rooms) == start, 0, big)
        depth = jax.lax.fori_loop(0, num_rooms, lambda _, d: jnp.minimum(
            d, jnp.min(jnp.where(adjacent, d[None, :] + 1, big), axis=1)), depth)
        parent = jnp.argmax(adjacent & (depth[None, :] == depth[:, None] - 1), axis=1)  # start: itself (unused)

        def behind(room):
            """Rooms whose path from the start passes through `room` (room included)."""
            ancestor, found = jnp.arange(num_rooms), jnp.zeros(num_rooms, jnp.bool_)
            for _ in range(num_rooms):
                found = found | (ancestor == room)
                ancestor = parent[ancestor]
            return found

        noise = jax.random.uniform(treasure_key, (num_rooms,), maxval=0.5)
        treasure_room = jnp.argmax(depth + noise)  # the farthest (a leaf), ties at random
        rooms = jnp.arange(num_rooms)
        allowed_a = (rooms != start) & (rooms != treasure_room)
        key_a_room = jax.random.choice(key_a_key, rooms, p=allowed_a / jnp.sum(allowed_a))
        allowed_b = ~behind(key_a_room) & (rooms != treasure_room)
        key_b_room = jax.random.choice(key_b_key, rooms, p=allowed_b / jnp.sum(allowed_b))

        # Tiles: walls around, an opening in the middle of each wall with an open edge, hazards off the cross.
        row_index, col_index = jnp.meshgrid(jnp.arange(ROOM), jnp.arange(ROOM), indexing="ij")
        border = (row_index == 0) | (row_index == ROOM - 1) | (col_index == 0) | (col_index == ROOM - 1)
        mid = ROOM // 2
        cross = (row_index == mid) | (col_index == mid)
        room_row, room_col = jnp.divmod(rooms, cols)

        def neighbour_open(dr, dc):
            other_row, other_col = room_row + dr, room_col + dc
            inside = (other_row >= 0) & (other_row < rows) & (other_col >= 0) & (other_col < cols)
            other = jnp.clip(other_row, 0, rows - 1) * cols + jnp.clip(other_col, 0, cols - 1)
            return inside & adjacent[rooms, other]

        exits = jnp.zeros((num_rooms, ROOM, ROOM), jnp.bool_)
        for (dr, dc), (r, c) in zip(((-1, 0), (0, -1), (1, 0), (0, 1)), ((0, mid), (mid, 0), (ROOM - 1, mid), (mid, ROOM - 1))):
            exits = exits.at[:, r, c].set(neighbour_open(dr, dc))
        hazards = jax.random.bernoulli(hazard_key, self.hazard_density, (num_rooms, ROOM, ROOM)) & ~cross & ~border
        tiles = jnp.where(border & ~exits, WALL, jnp.where(hazards, HAZARD, FLOOR)).astype(jnp.int8)

        def door_into(room):
            """The parent's exit tile towards `room` (the door is seen before it is passed)."""
            above = parent[room]
            dr, dc = room // cols - above // cols, room % cols - above % cols
            row = jnp.where(dr < 0, 0, jnp.where(dr > 0, ROOM - 1, mid))
            col = jnp.where(dc < 0, 0, jnp.where(dc > 0, ROOM - 1, mid))
            return jnp.stack([above, row, col]).astype(jnp.int32)

        # Keys and the treasure on the centre cross, off the centre (where the agent starts) and off the walls.
        spots = jnp.array([(mid, c) for c in range(1, ROOM - 1) if c != mid] + [(r, mid) for r in range(1, ROOM - 1) if r != mid])
        spot = spots[jax.random.randint(spot_key, (3,), 0, len(spots))]
        key_cell = jnp.stack([jnp.concatenate([key_a_room[None], spot[0]]), jnp.concatenate([key_b_room[None], spot[1]])])
        return Layout(tiles=tiles, key_cell=key_cell.astype(jnp.int32),
                      door_cell=jnp.stack([door_into(treasure_room), door_into(key_a_room)]),
                      treasure_cell=jnp.concatenate([treasure_room[None], spot[2]]).astype(jnp.int32),
                      start_cell=jnp.stack([start, mid, mid]).astype(jnp.int32))
