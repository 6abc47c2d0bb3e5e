"""GPU-sized runs: the published ER.json end to end, and the most runs (seeds x grid points) one GPU holds.

One command on a machine with a GPU (JAX with CUDA installed):

    python benchmarks/bench_gpu.py [--config configs/ER.json] [--num-steps 1000000] [--json gpu.json]

(`--num-steps 2000 --max-runs 60 --chunks 1` checks the script itself in a few minutes on a CPU.)

Measures, in one run:
  1. the device and its float32 matmul peak (an 8192^2 product through XLA, median of repeats);
  2. the published ER.json run (30 seeds, 1M steps, ProcMaze G=4) through the real harness: wall time with
     and without compilation, seed-steps per second, and achieved FLOP/s as a fraction of the peak (XLA's
     cost analysis of one training step times the steps, over the training-loop time). The goal: 30 seeds
     x 1M steps in under 10 minutes on one H100;
  3. the largest number of runs (seeds x grid points share one run axis) whose state fits the GPU by the
     harness's own memory estimate, confirmed by compiling and timing one training chunk at that size
     (halved until it runs), with its seed-steps per second and fraction of peak.
"""
import argparse
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402

from agents import dqn  # noqa: E402
from bench_er import Variant, matmul_peak, write_json  # noqa: E402
from experiment import files, runner  # noqa: E402
from experiment.config import load_config  # noqa: E402


def full_run(config: dict, peak: float) -> dict:
    """The published run through runner.run, as train_ER_DQN.py runs it."""
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        runner.run(config, dqn.make, seed=0, output=os.path.join(directory, "ER"), progress=True)
        wall = time.perf_counter() - start
        loop = files.load_metrics(os.path.join(directory, "ER.out"))["meta"]["wall_seconds"]
    seed_steps = config["num_seeds"] * config["num_steps"]
    step_flops = Variant("flops", dict(config, training_start_time=0), dqn.make).step_flops
    chunk = config["eval_frequency"]
    trained_steps = config["num_steps"] - -(-config["training_start_time"] // chunk) * chunk
    # The loop time includes the compilation at the first chunk, so the fraction slightly understates the chunks'.
    return {"num_seeds": config["num_seeds"], "num_steps": config["num_steps"], "wall_seconds": wall,
            "training_loop_seconds": loop, "seed_steps_per_second": seed_steps / loop,
            "fraction_of_peak": step_flops * trained_steps / loop / peak}


def largest_fitting_runs(config: dict, peak: float, chunks: int, max_runs: int | None = None) -> dict:
    """Most runs by the memory estimate (at most max_runs), then halved until a training chunk compiles and runs."""
    probe = runner.Runs(dict(config, num_seeds=1), dqn.make, seed=0)
    per_run = runner.tree_bytes(probe.abstract_state())
    free, _ = runner.free_memory(jax.local_devices()[0])
    runs = int(runner.MEMORY_HEADROOM * free // per_run)
    if max_runs is not None:
        runs = min(runs, max_runs)
    while runs >= 1:
        try:
            variant = Variant("largest", dict(config, num_seeds=runs), dqn.make)
            for index in range(chunks):
                variant.time_one_chunk(index)
            summary = variant.summary(peak)
            return {"estimated_bytes_per_run": per_run, "free_bytes": free, "runs": runs,
                    "examples": f"{runs // 30} grid points x 30 seeds", **summary}
        except Exception as e:  # XLA's out-of-memory error: try half as many runs
            print(f"{runs} runs did not run ({type(e).__name__}: {str(e)[:200]}); halving", flush=True)
            runs //= 2
    raise RuntimeError("not even one run fits")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "ER.json"))
    parser.add_argument("--num-steps", type=int, default=None, help="shorten the full run (default: the config's)")
    parser.add_argument("--chunks", type=int, default=3, help="chunks timed at the largest size")
    parser.add_argument("--max-runs", type=int, default=None, help="cap the largest size (a quick check on a CPU)")
    parser.add_argument("--skip-full-run", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    config = load_config("ER", args.config)
    config.update(save_params=False, checkpoint_frequency=0)
    if args.num_steps:
        config["num_steps"] = args.num_steps
    device = jax.local_devices()[0]
    peak = matmul_peak(n=8192 if device.platform == "gpu" else 2048)
    result = {"device": getattr(device, "device_kind", str(device)), "backend": jax.default_backend(),
              "jax": jax.__version__, "matmul_peak_gflops_per_second": peak / 1e9}
    print(f"{result['device']}: float32 matmul peak {peak / 1e12:.1f} TFLOP/s", flush=True)
    if not args.skip_full_run:
        result["full_run"] = full_run(config, peak)
        r = result["full_run"]
        print(f"ER.json, {r['num_seeds']} seeds x {r['num_steps']} steps: {r['wall_seconds'] / 60:.1f} min end to end, "
              f"{r['training_loop_seconds'] / 60:.1f} min training loop, {r['seed_steps_per_second']:.0f} seed-steps/s, "
              f"{100 * r['fraction_of_peak']:.1f}% of peak", flush=True)
    result["largest"] = largest_fitting_runs(config, peak, args.chunks, args.max_runs)
    r = result["largest"]
    print(f"largest: {r['runs']} runs ({r['examples']}); {r['seed_steps_per_second']:.0f} seed-steps/s, "
          f"{100 * r['fraction_of_peak']:.1f}% of peak")
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
