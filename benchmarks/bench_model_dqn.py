"""Model-based DQN throughput at the published config sizes (30 seeds, ProcMaze G=4, batch 32, H = 10).

For each agent (perfect, simple, categorical latent, Gaussian latent), in one run on this machine: compile
time, seconds per training chunk and per evaluation, seed-steps per second, achieved FLOP/s (XLA's cost
analysis of one training step) against the measured float32 matmul peak, for seedsuite as the train
scripts run it (one CPU device per core), the same program on one device, and the paper-style baseline on
one device (bench_er.paper_style_computation), chunks interleaved, and the ratio to the baseline.

The per-step cost does not depend on the chunk length, so chunks of --chunk-length steps (default 100) are
timed and scaled to the published 500-step chunk; "per published chunk" adds one evaluation, as the
published per-chunk figures do.

    python benchmarks/bench_model_dqn.py [--agents perfect_model simple_model ...] [--chunk-length 100]
                                         [--chunks 2] [--num-seeds 30] [--no-baseline] [--json out.json]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiment.devices import use_every_core  # noqa: E402

use_every_core()  # as the train scripts do: one CPU device per core (the baselines are given one device)

import jax  # noqa: E402

from agents import model_dqn  # noqa: E402
from bench_er import VARIANTS, cpu_name, measure, write_json  # noqa: E402
from experiment.config import load_config  # noqa: E402

CONFIGS = {"perfect_model": ("perfect_model", "perfect_model.json"),
           "simple_model": ("simple_model", "simple_model.json"),
           "categorical_latent_model": ("latent_model", "categorical_latent_model.json"),
           "gaussian_latent_model": ("latent_model", "gaussian_latent_model.json")}
PUBLISHED_CHUNK = 500


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--chunk-length", type=int, default=100, help="environment steps per timed chunk")
    parser.add_argument("--chunks", type=int, default=2, help="training chunks to time per variant (median)")
    parser.add_argument("--num-seeds", type=int, default=None)
    parser.add_argument("--no-baseline", action="store_true", help="skip the paper-style baseline")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    machine = f"{cpu_name()}, {os.cpu_count()} cores, {jax.default_backend()}"
    print(f"machine: {machine}, jax {jax.__version__}")
    results = {"machine": machine, "jax": jax.__version__}
    for name in args.agents:
        agent_type, file = CONFIGS[name]
        config = load_config(agent_type, os.path.join(os.path.dirname(__file__), "..", "configs", file))
        config.update(eval_frequency=args.chunk_length, num_steps=args.chunk_length * 100)
        if args.num_seeds:
            config["num_seeds"] = args.num_seeds
        result = measure(config, args.chunks, make_agent=model_dqn.make, baseline=not args.no_baseline)
        print(f"== {name} (float32 matmul peak {result['matmul_peak_gflops_per_second']:.0f} GFLOP/s)")
        scale = PUBLISHED_CHUNK / args.chunk_length
        for variant in VARIANTS:
            if variant not in result:
                continue
            r = result[variant]
            r["published_chunk_seconds"] = r["train_chunk_seconds"] * scale + r["eval_seconds"]
            print(f"[{variant}] {r['num_devices']} devices; compile {r['compile_seconds']:.0f} s; {PUBLISHED_CHUNK}-step chunk x {r['num_seeds']} "
                  f"seeds {r['train_chunk_seconds'] * scale:.1f} s + evaluation {r['eval_seconds']:.2f} s = "
                  f"{r['published_chunk_seconds']:.1f} s per published chunk; {r['seed_steps_per_second']:.0f} "
                  f"seed-steps/s; {r['train_chunk_gflops_per_second']:.0f} GFLOP/s = {100 * r['fraction_of_peak']:.0f}% "
                  f"of peak ({r['flops_per_train_step'] / 1e9:.2f} GFLOP per step)")
        if "paper-style" in result:
            result["speedup_over_paper_style"] = (result["paper-style"]["train_chunk_seconds"]
                                                  / result["seedsuite"]["train_chunk_seconds"])
            print(f"seedsuite / paper-style throughput, same run: {result['speedup_over_paper_style']:.2f}x")
        results[name] = result
    write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
