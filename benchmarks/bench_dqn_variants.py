"""The DQN family's costs, measured in one run on this machine (ratios are the output; absolute numbers are noisy).

1. Extensions at the published ER.json sizes (30 seeds, ProcMaze G=4, batch 320, buffer 100k): seconds per
   training chunk for uniform replay, prioritized replay, dueling, and all of double + dueling + PER, their
   chunks interleaved; the ratio of each to uniform replay.
2. Replay buffers alone, at the sizes of the anchors' buffer microbenchmark (capacity 10k, CartPole
   transitions; per iteration add 10 and sample 128; 10k iterations; 1 and 30 seeds vmapped): ours
   (uniform and prioritized, with the priority write-back) against flashbax's flat and prioritised flat
   buffers, when flashbax is installed (`pip install -e ".[bench]"`).
3. CartPole-v1 DQN (configs/dqn_variants/CartPole-v1_DQN.json): environment steps and gradient updates per
   second for 1 and 30 seeds, to set beside PureJaxRL's DQN figures measured on the same kind of machine.

    python benchmarks/bench_dqn_variants.py [--parts 1 2 3] [--chunks 3] [--json out.json]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from agents import dqn  # noqa: E402
from agents.components.replay import make_prioritized_replay_buffer, make_replay_buffer  # noqa: E402
from bench_er import Variant, cpu_name  # noqa: E402
from experiment.config import load_config  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# PureJaxRL dqn.py on CartPole-v1, 2-core CPU, jax 0.10.2 (our earlier measurement of PureJaxRL's dqn.py):
# (seeds, environment steps per second over all seeds, gradient updates per second over all seeds).
PUREJAXRL_DQN = {"A7 (1 seed, 5e5 steps, 49,000 updates in 28.7 s)": (1, 17.4e3, 49000 / 28.7),
                 "A8 (30 seeds, 1e5 steps, 9,000 updates each in 111.5 s)": (30, 26.9e3, 30 * 9000 / 111.5)}


def extension_costs(chunks: int, chunk_length: int) -> dict:
    config = load_config("ER", os.path.join(REPO, "configs", "ER.json"))
    config["eval_frequency"] = chunk_length
    settings = {"uniform": {}, "prioritized": {"prioritized_replay": True}, "dueling": {"dueling": True},
                "double+dueling+PER": {"double_DQN": True, "dueling": True, "prioritized_replay": True}}
    variants = [Variant(name, dict(config, **changes), dqn.make) for name, changes in settings.items()]
    for i in range(chunks):
        for variant in (variants if i % 2 == 0 else variants[::-1]):
            variant.time_one_chunk(i)
    result = {v.name: v.summary(peak=1.0) for v in variants}
    for name in settings:
        result[name]["ratio_to_uniform"] = result[name]["train_chunk_seconds"] / result["uniform"]["train_chunk_seconds"]
    return result


def cartpole_transition():
    return dqn.Transition(obs=jnp.zeros(4, jnp.float32), action=jnp.int32(0), reward=jnp.float32(0),
                          next_obs=jnp.zeros(4, jnp.float32), terminal=jnp.bool_(False))


def random_transitions(key, count):
    keys = jax.random.split(key, 3)
    return dqn.Transition(obs=jax.random.normal(keys[0], (count, 4)), action=jax.random.randint(keys[1], (count,), 0, 2),
                          reward=jnp.ones(count), next_obs=jax.random.normal(keys[2], (count, 4)),
                          terminal=jnp.zeros(count, jnp.bool_))


def time_buffer(name, init, iteration, num_seeds, iterations):
    """Compile and run `iterations` of iteration(state, key) in one scan, vmapped over seeds; iterations/s."""
    def run(key):
        state = init()
        state, _ = jax.lax.scan(lambda s, k: (iteration(s, k), None), state, jax.random.split(key, iterations))
        return state

    program = jax.jit(jax.vmap(run))
    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    start = time.perf_counter()
    compiled = program.lower(keys).compile()
    compile_seconds = time.perf_counter() - start
    jax.block_until_ready(compiled(keys))  # warm
    start = time.perf_counter()
    jax.block_until_ready(compiled(keys))
    seconds = time.perf_counter() - start
    return {"buffer": name, "seeds": num_seeds, "compile_seconds": compile_seconds, "run_seconds": seconds,
            "iterations_per_second": num_seeds * iterations / seconds}


def buffer_throughput(iterations: int, capacity=10000, adds=10, batch=128) -> list:
    example = cartpole_transition()
    uniform = make_replay_buffer(capacity, batch)
    prioritized = make_prioritized_replay_buffer(capacity, batch)

    def add_all(add, state, items):
        return jax.lax.scan(lambda s, item: (add(s, item), None), state, items)[0]

    def ours_uniform(state, key):
        add_key, sample_key = jax.random.split(key)
        state = add_all(uniform.add, state, random_transitions(add_key, adds))
        sampled = uniform.sample(state, sample_key)
        # Keep the sample alive without changing the state's contents.
        return state.replace(position=state.position + (jnp.sum(sampled.reward) < -1).astype(jnp.int32))

    def ours_prioritized(state, key):
        add_key, sample_key = jax.random.split(key)
        state = add_all(prioritized.add, state, random_transitions(add_key, adds))
        sampled, indices, weights = prioritized.sample(state, sample_key, 0.4)
        return prioritized.update_priorities(state, indices, jnp.abs(sampled.reward * weights), 1e-6)

    cases = [("seedsuite uniform", lambda: uniform.init(example), ours_uniform),
             ("seedsuite prioritized", lambda: prioritized.init(example, 0.6), ours_prioritized)]
    try:
        import flashbax as fbx
    except ImportError:
        fbx = None
        print("flashbax not installed: pip install -e '.[bench]' to compare against it")
    if fbx is not None:
        flat = fbx.make_flat_buffer(max_length=capacity, min_length=batch, sample_batch_size=batch,
                                    add_sequences=False, add_batch_size=adds)
        prio = fbx.make_prioritised_flat_buffer(max_length=capacity, min_length=batch, sample_batch_size=batch,
                                                add_sequences=False, add_batch_size=adds, priority_exponent=0.6,
                                                device="cpu")

        def flashbax_flat(state, key):
            add_key, sample_key = jax.random.split(key)
            state = flat.add(state, random_transitions(add_key, adds))
            sampled = flat.sample(state, sample_key)
            return state.replace(current_index=state.current_index
                                 + (jnp.sum(sampled.experience.first.reward) < -1).astype(jnp.int32))

        def flashbax_prioritised(state, key):
            add_key, sample_key = jax.random.split(key)
            state = prio.add(state, random_transitions(add_key, adds))
            sampled = prio.sample(state, sample_key)
            return prio.set_priorities(state, sampled.indices, jnp.abs(sampled.experience.first.reward) + 1e-6)

        cases += [("flashbax flat", lambda: flat.init(example), flashbax_flat),
                  ("flashbax prioritised flat", lambda: prio.init(example), flashbax_prioritised)]
    results = []
    for num_seeds in (1, 30):
        for name, init, iteration in cases:
            results.append(time_buffer(name, init, iteration, num_seeds, iterations))
            r = results[-1]
            print(f"  {name:28s} {num_seeds:2d} seeds: {r['iterations_per_second']:9.0f} iterations/s "
                  f"(compile {r['compile_seconds']:.1f} s, run {r['run_seconds']:.2f} s)")
    return results


def cartpole_throughput(chunk_length: int) -> list:
    config = load_config("ER", os.path.join(REPO, "configs", "dqn_variants", "CartPole-v1_DQN.json"))
    results = []
    for num_seeds in (1, 30):
        variant = Variant(f"CartPole DQN x{num_seeds}", dict(config, num_seeds=num_seeds, eval_frequency=chunk_length),
                          dqn.make)
        for i in range(2):
            variant.time_one_chunk(i)
        summary = variant.summary(peak=1.0)
        updates = num_seeds * chunk_length * config["updates_per_step"] / summary["train_chunk_seconds"]
        results.append({"seeds": num_seeds, "compile_seconds": summary["compile_seconds"],
                        "env_steps_per_second": summary["seed_steps_per_second"], "updates_per_second": updates})
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--chunks", type=int, default=3, help="timed chunks per variant in part 1 (median)")
    parser.add_argument("--chunk-length", type=int, default=100, help="environment steps per timed chunk, part 1")
    parser.add_argument("--buffer-iterations", type=int, default=10000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    result = {"machine": f"{cpu_name()}, {os.cpu_count()} cores, {jax.default_backend()}", "jax": jax.__version__}
    print(f"machine: {result['machine']}, jax {result['jax']}")
    if 1 in args.parts:
        print(f"1. extensions at ER.json sizes ({args.chunk_length}-step training chunks, 30 seeds, median of "
              f"{args.chunks}):")
        result["extensions"] = extension_costs(args.chunks, args.chunk_length)
        for name, r in result["extensions"].items():
            print(f"  {name:20s} {r['train_chunk_seconds']:7.2f} s per chunk = {r['seed_steps_per_second']:6.0f} "
                  f"seed-steps/s; {r['ratio_to_uniform']:.2f}x the time of uniform replay")
    if 2 in args.parts:
        print("2. replay buffers: capacity 10k, add 10 + sample 128 per iteration:")
        result["buffers"] = buffer_throughput(args.buffer_iterations)
    if 3 in args.parts:
        print("3. CartPole-v1 DQN (configs/dqn_variants/CartPole-v1_DQN.json, one update per environment step):")
        result["cartpole"] = cartpole_throughput(5000)
        for r in result["cartpole"]:
            print(f"  seedsuite, {r['seeds']:2d} seeds: {r['env_steps_per_second']:7.0f} env-steps/s, "
                  f"{r['updates_per_second']:7.0f} updates/s (batch 64), compile {r['compile_seconds']:.1f} s")
        for name, (seeds, steps, updates) in PUREJAXRL_DQN.items():
            print(f"  PureJaxRL {name}: {steps:7.0f} env-steps/s, {updates:7.0f} updates/s (batch 128, 10 envs, "
                  f"one update per 10 env steps)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=float)
    return result


if __name__ == "__main__":
    main()
