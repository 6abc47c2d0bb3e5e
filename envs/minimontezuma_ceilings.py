"""MiniMontezuma's reachable ceilings: what a layout lets any policy reach, per phase of the episode (which keys
have been taken), found by breadth-first search over envs/minimontezuma.py's step rules on the host.

    python -m envs.minimontezuma_ceilings                                   # the fixed layout
    python -m envs.minimontezuma_ceilings --layout procedural --layouts 5   # layouts of reset keys 0-4
    python -m envs.minimontezuma_ceilings --start-room 0                    # the fixed layout from room 0

A run's rooms and cells visited read against these: plain exploration that never takes key a on the fixed layout
is capped at 6 rooms.
"""
import argparse

import jax
import numpy as np

from envs.base import GRID_MOVES
from envs.minimontezuma import HAZARD, NUM_COLOURS, ONE_WAY, ROOM, WALL, Layout, MiniMontezuma

KEY_PHASES = ("no key", "key a", "key b", "both keys")


def reachable_ceilings(layout: Layout, room_rows: int, room_cols: int) -> dict:
    """What a layout lets any policy reach, by breadth-first search over MiniMontezuma.step_env's rules (host-side).

    The search state is (room, row, col, keys taken, doors opened); lives are not a limit (a hazard sends the agent
    back to where it entered the room, a cell already reached, so hazard steps add nothing but the cell where a
    room is entered onto a hazard). Per phase of the episode, by the keys taken so far ("no key", "key a", "key b",
    "both keys"; a phase's states are those reached with exactly those keys taken): the rooms, the positions
    (room, row, col) and the `visitation` cells (position and the keys held) it reaches; "any" is their union, the
    ceiling of a whole episode. Also the fewest steps to the first key, to each key and to the treasure (None where
    unreachable)."""
    tiles = np.asarray(layout.tiles)
    key_cell = [tuple(int(v) for v in c) for c in np.asarray(layout.key_cell)]
    door_cell = [tuple(int(v) for v in c) for c in np.asarray(layout.door_cell)]
    treasure = tuple(int(v) for v in np.asarray(layout.treasure_cell))
    start = tuple(int(v) for v in np.asarray(layout.start_cell))
    moves = [tuple(int(v) for v in move) for move in np.asarray(GRID_MOVES)]
    begin = (start, (False,) * NUM_COLOURS, (False,) * NUM_COLOURS)  # (cell, keys taken, doors open)
    distance = {begin: 0}
    frontier = [begin]
    first = {"key a": None, "key b": None, "treasure": None}
    while frontier:
        following = []
        for cell, taken, opened in frontier:
            steps = distance[(cell, taken, opened)] + 1
            room, row, col = cell
            for action in range(1, 5):
                r, c = row + moves[action][0], col + moves[action][1]
                room_row, room_col = divmod(room, room_cols)
                room_row, room_col = room_row + (r >= ROOM) - (r < 0), room_col + (c >= ROOM) - (c < 0)
                if not (0 <= room_row < room_rows and 0 <= room_col < room_cols):
                    continue
                target = (room_row * room_cols + room_col, r % ROOM, c % ROOM)
                tile = int(tiles[target])
                if tile == WALL or (ONE_WAY <= tile <= ONE_WAY + 3 and tile != ONE_WAY + action - 1):
                    continue
                now_open = list(opened)
                for colour in range(NUM_COLOURS):
                    if target == door_cell[colour] and not opened[colour]:
                        if not (taken[colour] and not opened[colour]):  # the key of this colour is held
                            break
                        now_open[colour] = True
                else:
                    if tile == HAZARD and target[0] == room:
                        continue  # back to this room's entry: reached already
                    now_taken = tuple(t or target == key_cell[k] for k, t in enumerate(taken))
                    state = (target, now_taken, tuple(now_open))
                    if state in distance:
                        continue
                    distance[state] = steps
                    for colour, name in enumerate(("key a", "key b")):
                        if now_taken[colour] and not taken[colour] and first[name] is None:
                            first[name] = steps
                    if target == treasure:
                        first["treasure"] = first["treasure"] or steps
                        continue  # the episode ends
                    following.append(state)
        frontier = following
    phases = {name: {"rooms": set(), "positions": set(), "cells": set()} for name in KEY_PHASES + ("any",)}
    for (cell, taken, opened) in distance:
        phase = KEY_PHASES[int(taken[0]) + 2 * int(taken[1])]
        held = tuple(t and not o for t, o in zip(taken, opened))
        for name in (phase, "any"):
            phases[name]["rooms"].add(cell[0])
            phases[name]["positions"].add(cell)
            phases[name]["cells"].add((cell, held))
    keys = [first["key a"], first["key b"]]
    reached = [k for k in keys if k is not None]
    return {"phases": {name: {"rooms": sorted(v["rooms"]), "positions": len(v["positions"]), "cells": len(v["cells"])}
                       for name, v in phases.items()},
            "steps_to_first_key": min(reached) if reached else None, "steps_to_key_a": keys[0],
            "steps_to_key_b": keys[1], "steps_to_treasure": first["treasure"]}


def ceilings_table(env: MiniMontezuma, layouts: list[tuple[str, Layout]]) -> str:
    """A markdown table of reachable_ceilings for each (name, layout)."""
    lines = ["| layout | steps to key a / key b / treasure | " + " | ".join(
        f"{phase}: rooms, positions, cells" for phase in KEY_PHASES + ("any",)) + " |",
        "|---" * (2 + len(KEY_PHASES) + 1) + "|"]
    for name, layout in layouts:
        c = reachable_ceilings(layout, env.room_rows, env.room_cols)
        steps = " / ".join("-" if c[k] is None else str(c[k]) for k in ("steps_to_key_a", "steps_to_key_b",
                                                                        "steps_to_treasure"))
        cells = [f"{len(p['rooms'])}, {p['positions']}, {p['cells']}" for p in c["phases"].values()]
        lines.append(f"| {name} | {steps} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Print the reachable ceilings of the fixed layout, or of procedural layouts drawn from reset keys 0..n-1."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--layout", choices=("fixed", "procedural"), default="fixed")
    parser.add_argument("--layouts", type=int, default=5, help="procedural: how many reset keys (0, 1, ...)")
    parser.add_argument("--room-rows", type=int, default=3)
    parser.add_argument("--room-cols", type=int, default=4)
    parser.add_argument("--hazard-density", type=float, default=None)
    parser.add_argument("--start-room", type=int, default=None, help="fixed layout: start at this room's centre")
    args = parser.parse_args(argv)
    try:
        env = MiniMontezuma(layout=args.layout, room_rows=args.room_rows, room_cols=args.room_cols,
                            hazard_density=args.hazard_density, start_room=args.start_room)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    if args.layout == "fixed":
        layouts = [("fixed", env.fixed_layout)]
    else:
        layouts = [(f"procedural, key {k}", env.procedural_layout(jax.random.PRNGKey(k))) for k in range(args.layouts)]
    print(ceilings_table(env, layouts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
