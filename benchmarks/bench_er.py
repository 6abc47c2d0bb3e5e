"""ER DQN throughput at the published ER.json sizes (30 seeds, ProcMaze G=4, batch 320).

Measures, in one run on this machine:
  - the float32 matmul peak (a 2048x2048 product through XLA, median of repeats);
  - compile time of the training chunk, the warm-up chunk and the evaluation;
  - seconds per 500-step training chunk and per evaluation, seed-steps per second;
  - achieved FLOP/s: XLA's cost analysis of one training step (a scan of length 1, since XLA counts a
    loop body once), times the chunk length, over the measured chunk time; and the fraction of the peak.

    python benchmarks/bench_er.py [--config configs/ER.json] [--chunks 3] [--num-seeds 30] [--json out.json]
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import envs  # noqa: E402
from agents import dqn  # noqa: E402
from experiment import runner  # noqa: E402
from experiment.config import load_config  # noqa: E402


def timed(fn, *args):
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - start


def matmul_peak(n=2048, repeats=20) -> float:
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    product = jax.jit(lambda a, b: a @ b)
    jax.block_until_ready(product(a, b))
    times = [timed(product, a, b)[1] for _ in range(repeats)]
    return 2 * n**3 / statistics.median(times)


def flops_of(compiled) -> float:
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    return float(analysis.get("flops", 0.0))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure(config: dict, chunks: int, make_agent=dqn.make) -> dict:
    env, env_params = envs.make(config["environment"], **config["env_config"])
    agent = make_agent(config, env, env_params)
    run = runner.CompiledRun(agent, config["num_seeds"])
    keys = runner.SeedKeys(0, config["num_seeds"])
    hp = agent.hparams
    state = jax.block_until_ready(run.init(keys.init, hp))

    start = time.perf_counter()
    interact_warmup = run.interact.lower(state, keys.chunk(0), hp, False).compile()
    interact_train = run.interact.lower(state, keys.chunk(0), hp, True).compile()
    evaluate = run.evaluate.lower(state, keys.evaluation(0), hp).compile()
    compile_seconds = time.perf_counter() - start

    # FLOPs of one training step: the same agent with a chunk of one step.
    one_step_agent = make_agent(dict(config, eval_frequency=1), env, env_params)
    one_step = runner.CompiledRun(one_step_agent, config["num_seeds"])
    step_flops = flops_of(one_step.interact.lower(state, keys.chunk(0), hp, True).compile())
    eval_flops_body = flops_of(evaluate)

    # Fill the buffer past the training start as the real run does, then time training chunks.
    warmup_chunks = -(-config["training_start_time"] // config["eval_frequency"])
    for i in range(warmup_chunks):
        state, _ = interact_warmup(state, keys.chunk(i), hp)
    jax.block_until_ready(state)
    chunk_times, eval_times = [], []
    for i in range(chunks):
        (state, _), seconds = timed(interact_train, state, keys.chunk(100 + i), hp)
        chunk_times.append(seconds)
        _, seconds = timed(evaluate, state, keys.evaluation(i), hp)
        eval_times.append(seconds)

    chunk_seconds = statistics.median(chunk_times)
    eval_seconds = statistics.median(eval_times)
    chunk_flops = step_flops * config["eval_frequency"]
    return {
        "num_seeds": config["num_seeds"], "eval_frequency": config["eval_frequency"], "batch_size": config["batch_size"],
        "compile_seconds": compile_seconds,
        "train_chunk_seconds": chunk_seconds, "train_chunk_seconds_all": chunk_times,
        "eval_seconds": eval_seconds, "chunk_plus_eval_seconds": chunk_seconds + eval_seconds,
        "seed_steps_per_second": config["num_seeds"] * config["eval_frequency"] / chunk_seconds,
        "flops_per_train_step": step_flops, "train_chunk_gflops_per_second": chunk_flops / chunk_seconds / 1e9,
        "eval_loop_body_flops": eval_flops_body,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "..", "configs", "ER.json"))
    parser.add_argument("--chunks", type=int, default=3, help="training chunks to time (median reported)")
    parser.add_argument("--num-seeds", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    config = load_config("ER", args.config)
    if args.num_seeds:
        config["num_seeds"] = args.num_seeds
    peak = matmul_peak()
    result = measure(config, args.chunks)
    result.update({"machine": f"{cpu_name()}, {os.cpu_count()} cores, {jax.default_backend()}",
                   "jax": jax.__version__, "matmul_peak_gflops_per_second": peak / 1e9,
                   "fraction_of_peak": result["train_chunk_gflops_per_second"] * 1e9 / peak})
    print(f"machine: {result['machine']}, jax {result['jax']}")
    print(f"float32 matmul peak: {peak / 1e9:.0f} GFLOP/s")
    print(f"compile (warm-up chunk + training chunk + evaluation): {result['compile_seconds']:.1f} s")
    print(f"training chunk ({config['eval_frequency']} steps x {config['num_seeds']} seeds): "
          f"{result['train_chunk_seconds']:.2f} s  ({result['seed_steps_per_second']:.0f} seed-steps/s)")
    print(f"evaluation ({config['eval_batch_size']} episodes x {config['eval_steps']} steps per seed): "
          f"{result['eval_seconds']:.2f} s")
    print(f"achieved: {result['train_chunk_gflops_per_second']:.0f} GFLOP/s = "
          f"{100 * result['fraction_of_peak']:.0f}% of the measured matmul peak "
          f"({result['flops_per_train_step'] / 1e9:.2f} GFLOP per training step)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
