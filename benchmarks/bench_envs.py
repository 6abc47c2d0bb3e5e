"""Environment throughput and the MiniMontezuma random-policy study, measured in one run on this machine.

1. Steps per second of 30 runs x N environments (vmapped twice, uniform random actions, auto-reset with the
   resets drawn before the scan as the harness does, one jitted lax.scan) for rendered ProcMaze, rendered Breakout-MinAtar and MiniMontezuma, each against
   the same environment without pixels (ProcMaze's and MinAtar's symbolic observations; MiniMontezuma's
   observation left unused, so XLA drops the rendering). The variants' repetitions are interleaved; the
   output is each one's median and the ratio pixels / symbolic. Replay memory per stored frame is the
   observation's bytes (uint8 images: one byte per pixel; two observations per DQN transition).
2. MiniMontezuma under a uniform random policy: 8 seeds x 1M steps (64 environments x 15,625 steps per seed):
   the distribution of distinct rooms per seed and per episode, the fraction of episodes that pick up a key,
   open a door and reach the treasure, and the episodes' end causes. A user sees how hard the task is.

    python benchmarks/bench_envs.py [--parts 1 2] [--envs 8] [--steps 200] [--repeats 3] [--json out.json]
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiment.devices import use_every_core  # noqa: E402

use_every_core()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

import envs  # noqa: E402
from agents.components.visitation import make_visitation  # noqa: E402
from envs.autoreset import presample_resets, step_with_reset  # noqa: E402
from bench_er import cpu_name, write_json  # noqa: E402

SETTINGS = {
    "ProcMaze G=10": {"environment": "ProcMaze", "env_config": {"grid_size": 10}},
    "ProcMaze G=10, 64x64 pixels": {"environment": "ProcMaze", "env_config": {"grid_size": 10},
                                    "env_wrappers": {"pixels": 64}},
    "Breakout-MinAtar": {"environment": "Breakout-MinAtar", "env_config": {}},
    "Breakout-MinAtar, 64x64 pixels": {"environment": "Breakout-MinAtar", "env_config": {},
                                       "env_wrappers": {"pixels": 64}},
    "Breakout-MinAtar, 64x64 pixels, Atari protocol": {
        "environment": "Breakout-MinAtar", "env_config": {},
        "env_wrappers": {"pixels": 64, "action_repeat": 4, "max_pool": True, "sticky_action_prob": 0.25,
                         "frame_stack": 4}},
    "MiniMontezuma (observation unused)": {"environment": "MiniMontezuma", "env_config": {}, "unused_obs": True},
    "MiniMontezuma, 80x80 pixels": {"environment": "MiniMontezuma", "env_config": {}},
    "MiniMontezuma, 80x80 pixels, 4-frame stack": {"environment": "MiniMontezuma", "env_config": {},
                                                   "env_wrappers": {"frame_stack": 4}},
}


def sharded_keys(seed: int, count: int):
    """`count` keys split across this machine's devices (one per core on CPU), as the harness shards runs."""
    devices = jax.devices()
    devices = devices[:max(d for d in range(1, len(devices) + 1) if count % d == 0)]
    return jax.device_put(jax.random.split(jax.random.PRNGKey(seed), count),
                          NamedSharding(Mesh(np.array(devices), ("runs",)), PartitionSpec("runs")))


def rollout_program(setting: dict, num_runs: int, num_envs: int, num_steps: int):
    env, params = envs.make_from_config(setting)
    num_actions = env.action_space(params).n
    keep_obs = not setting.get("unused_obs", False)

    def run(key):
        reset_key, action_key, env_key = jax.random.split(key, 3)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_envs), params)
        actions = jax.random.randint(action_key, (num_steps, num_envs), 0, num_actions)
        # The harness's path: each environment's resets for the whole scan drawn before it (envs/autoreset.py).
        env_keys = jax.random.split(env_key, num_envs * num_steps).reshape(num_envs, num_steps, -1)
        step_keys, resets = jax.vmap(presample_resets, in_axes=(None, 0, None))(env, env_keys, params)
        swap = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731  (envs, steps, ...) -> (steps, envs, ...)

        def body(carry, inputs):
            state, checksum = carry
            action, step_key, reset = inputs
            obs, state, reward, _, _, _ = jax.vmap(step_with_reset, in_axes=(None, 0, 0, 0, None, 0))(
                env, step_key, state, action, params, reset)
            # A reduction of every observation keeps the rendering alive (an agent reads every pixel).
            checksum = checksum + jnp.sum(reward) + (jnp.sum(obs.astype(jnp.float32)) if keep_obs else 0.0)
            return (state, checksum), None

        (_, checksum), _ = jax.lax.scan(body, (state, jnp.float32(0)),
                                        (actions, swap(step_keys), jax.tree.map(swap, resets)))
        return checksum

    program = jax.jit(jax.vmap(run))
    obs_space = env.observation_space(params)
    frame_bytes = int(np.prod(obs_space.shape)) * np.dtype(obs_space.dtype).itemsize
    return program, frame_bytes, tuple(obs_space.shape), str(np.dtype(obs_space.dtype))


def throughput(num_runs: int, num_envs: int, num_steps: int, repeats: int) -> dict:
    programs = {name: rollout_program(s, num_runs, num_envs, num_steps) for name, s in SETTINGS.items()}
    keys = sharded_keys(0, num_runs)
    for program, *_ in programs.values():
        jax.block_until_ready(program(keys))  # compile
    times = {name: [] for name in programs}
    for repeat in range(repeats):
        for name in (list(programs) if repeat % 2 == 0 else list(programs)[::-1]):
            start = time.perf_counter()
            jax.block_until_ready(programs[name][0](sharded_keys(repeat + 1, num_runs)))
            times[name].append(time.perf_counter() - start)
    result = {}
    for name, (_, frame_bytes, shape, dtype) in programs.items():
        seconds = statistics.median(times[name])
        result[name] = {"steps_per_second": num_runs * num_envs * num_steps / seconds, "seconds": seconds,
                        "observation": f"{shape} {dtype}", "bytes_per_stored_observation": frame_bytes}
    pairs = [("ProcMaze G=10, 64x64 pixels", "ProcMaze G=10"), ("Breakout-MinAtar, 64x64 pixels", "Breakout-MinAtar"),
             ("Breakout-MinAtar, 64x64 pixels, Atari protocol", "Breakout-MinAtar"),
             ("MiniMontezuma, 80x80 pixels", "MiniMontezuma (observation unused)"),
             ("MiniMontezuma, 80x80 pixels, 4-frame stack", "MiniMontezuma (observation unused)")]
    for rendered, plain in pairs:
        result[rendered]["time_ratio_to"] = {plain: result[rendered]["seconds"] / result[plain]["seconds"]}
    return result


def random_policy_study(num_seeds: int = 8, num_envs: int = 64, num_steps: int = 15_625,
                        env_config: dict | None = None) -> dict:
    """Uniform random actions on MiniMontezuma (the fixed layout unless env_config says otherwise); per seed the
    union of rooms and cells and the steps (all its environments) until one first took a key, and per finished
    episode its rooms, return and length, whether it took a key, opened a door, reached the treasure, and how
    it ended."""
    env, params = envs.make("MiniMontezuma", **(env_config or {}))
    bundle = make_visitation(env, num_envs)

    def run(key):
        reset_key, loop_key = jax.random.split(key)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_envs), params)

        def body(carry, inputs):
            step_key, step = inputs
            state, visits, totals, first_key = carry
            visits = bundle.visit(visits, *jax.vmap(env.visitation)(state))
            action_key, env_key = jax.random.split(step_key)
            actions = jax.random.randint(action_key, (num_envs,), 0, 5)
            stepped = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(jax.random.split(env_key, num_envs), state,
                                                                       actions, params)
            _, after, reward, terminated, _ = stepped
            visits = bundle.visit(visits, *jax.vmap(env.visitation)(after))  # the final state of an episode too
            truncated = after.time >= params.max_steps_in_episode
            ended = terminated | truncated
            visits, rooms = bundle.close_episodes(visits, ended)
            hist = jnp.zeros(env.num_rooms + 1, jnp.int32).at[rooms].add(ended.astype(jnp.int32))
            milestones = jax.vmap(env.milestones)(after)
            first_key = jnp.where((first_key < 0) & jnp.any(milestones["key"]), (step + 1) * num_envs, first_key)
            returns = totals["running_return"] + reward  # each environment's return of the episode so far
            totals = {"running_return": jnp.where(ended, 0.0, returns),
                      "return": totals["return"] + jnp.sum(jnp.where(ended, returns, 0.0)),
                      "length": totals["length"] + jnp.sum(jnp.where(ended, after.time, 0)),
                      "episodes": totals["episodes"] + jnp.sum(ended),
                      "rooms_per_episode": totals["rooms_per_episode"] + hist,
                      "key": totals["key"] + jnp.sum(ended & milestones["key"]),
                      "door": totals["door"] + jnp.sum(ended & milestones["door"]),
                      "treasure": totals["treasure"] + jnp.sum(ended & milestones["treasure"]),
                      "lives_lost_out": totals["lives_lost_out"] + jnp.sum(ended & (after.lives <= 0)),
                      "time_limit": totals["time_limit"] + jnp.sum(truncated & ~terminated)}
            _, fresh = jax.vmap(env.reset_env, in_axes=(0, None))(jax.random.split(step_key, num_envs), params)
            state = jax.tree.map(lambda f, s: jnp.where(ended.reshape((-1,) + (1,) * (s.ndim - 1)), f, s), fresh, after)
            return (state, visits, totals, first_key), None

        totals = {"running_return": jnp.zeros(num_envs), "return": jnp.float32(0), "length": jnp.int32(0),
                  "episodes": jnp.int32(0), "rooms_per_episode": jnp.zeros(env.num_rooms + 1, jnp.int32),
                  "key": jnp.int32(0), "door": jnp.int32(0), "treasure": jnp.int32(0), "lives_lost_out": jnp.int32(0),
                  "time_limit": jnp.int32(0)}
        (_, visits, totals, first_key), _ = jax.lax.scan(
            body, (state, bundle.init(), totals, jnp.int32(-1)),
            (jax.random.split(loop_key, num_steps), jnp.arange(num_steps)))
        return bundle.counts(visits), totals, first_key

    start = time.perf_counter()
    counts, totals, first_key = jax.device_get(jax.jit(jax.vmap(run))(sharded_keys(0, num_seeds)))
    seconds = time.perf_counter() - start
    episodes = int(totals["episodes"].sum())
    per_episode = totals["rooms_per_episode"].sum(axis=0)
    return {"seeds": num_seeds, "steps_per_seed": num_envs * num_steps, "wall_seconds": seconds,
            "rooms_visited_per_seed": counts["rooms_visited"].tolist(),
            "cells_visited_per_seed": counts["cells_visited"].tolist(),
            "first_key_step_per_seed": [None if k < 0 else int(k) for k in first_key],
            "episodes_per_seed": totals["episodes"].tolist(),
            "return_per_episode_per_seed": (totals["return"] / np.maximum(totals["episodes"], 1)).tolist(),
            "length_per_episode_per_seed": (totals["length"] / np.maximum(totals["episodes"], 1)).tolist(),
            "rooms_per_episode_per_seed": ((totals["rooms_per_episode"] * np.arange(env.num_rooms + 1)).sum(1)
                                           / np.maximum(totals["episodes"], 1)).tolist(),
            "episodes": episodes,
            "episodes_by_rooms_visited": {str(k): int(v) for k, v in enumerate(per_episode) if v},
            "episode_fraction_key": int(totals["key"].sum()) / episodes,
            "episode_fraction_door": int(totals["door"].sum()) / episodes,
            "episode_fraction_treasure": int(totals["treasure"].sum()) / episodes,
            "episode_fraction_out_of_lives": int(totals["lives_lost_out"].sum()) / episodes,
            "episode_fraction_time_limit": int(totals["time_limit"].sum()) / episodes}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    result = {"machine": f"{cpu_name()}, {os.cpu_count()} cores, {len(jax.devices())} JAX devices",
              "jax": jax.__version__}
    if 1 in args.parts:
        result["throughput"] = {"runs": args.runs, "envs_per_run": args.envs, "steps": args.steps,
                                **throughput(args.runs, args.envs, args.steps, args.repeats)}
    if 2 in args.parts:
        result["minimontezuma_random_policy"] = random_policy_study()
    print(json.dumps(result, indent=1))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
