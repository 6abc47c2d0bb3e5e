"""A hyperparameter grid in one process against one process per grid point, same machine, same run.

The grid: 4 step sizes (alpha_adam) x 4 softmax temperatures of ER DQN, 5 seeds per point, on the
quickstart's ProcMaze (G=3). Timed end to end as a user runs it (interpreter start, compilation, training,
evaluation, files), first as one process with a 'sweep' block, then as 16 separate 5-seed processes run one
after another; also each side's training-loop time alone (the .out's meta wall_seconds, compilation excluded).

    python benchmarks/bench_sweep.py [--config configs/quickstart.json] [--num-steps 10000] [--json out.json]
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_er import cpu_name, write_json  # noqa: E402
from experiment import files  # noqa: E402

STEP_SIZES = [2.5e-4, 5e-4, 1e-3, 2e-3]
TEMPERATURES = [0.05, 0.1, 0.2, 0.4]


def train(config: dict, directory: str, name: str) -> tuple[float, float]:
    """(end-to-end seconds, training-loop seconds) of one train_ER_DQN.py process."""
    path = os.path.join(directory, name + ".json")
    with open(path, "w") as f:
        json.dump(config, f)
    start = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(REPO, "train_scripts", "train_ER_DQN.py"), "--config", path,
                    "--output", os.path.join(directory, name), "--no-progress"], check=True, capture_output=True)
    wall = time.perf_counter() - start
    return wall, files.load_metrics(os.path.join(directory, name + ".out"))["meta"]["wall_seconds"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "quickstart.json"))
    parser.add_argument("--num-steps", type=int, default=10000)
    parser.add_argument("--num-seeds", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    with open(args.config) as f:
        base = json.load(f)
    base.update(num_seeds=args.num_seeds, num_steps=args.num_steps, eval_frequency=args.num_steps // 4,
                save_frequency=args.num_steps, checkpoint_frequency=0)
    points = [{"alpha_adam": a, "softmax_temp": t} for a, t in itertools.product(STEP_SIZES, TEMPERATURES)]
    seed_steps = len(points) * args.num_seeds * args.num_steps
    with tempfile.TemporaryDirectory() as directory:
        sweep_wall, sweep_loop = train({**base, "sweep": {"alpha_adam": STEP_SIZES, "softmax_temp": TEMPERATURES}},
                                       directory, "sweep")
        print(f"one process, {len(points)} points x {args.num_seeds} seeds: {sweep_wall:.1f} s end to end "
              f"({sweep_loop:.1f} s training loop)", flush=True)
        separate = [train({**base, **point}, directory, f"point{i}") for i, point in enumerate(points)]
    separate_wall, separate_loop = sum(w for w, _ in separate), sum(loop for _, loop in separate)
    print(f"{len(points)} processes one after another, {args.num_seeds} seeds each: {separate_wall:.1f} s end to end "
          f"({separate_loop:.1f} s in training loops)")
    result = {
        "machine": f"{cpu_name()}, {os.cpu_count()} cores", "num_points": len(points), "num_seeds": args.num_seeds,
        "num_steps": args.num_steps, "config": os.path.relpath(args.config, REPO),
        "sweep_seconds": sweep_wall, "sweep_loop_seconds": sweep_loop,
        "separate_seconds": separate_wall, "separate_loop_seconds": separate_loop,
        "separate_seconds_each": [w for w, _ in separate],
        "sweep_seed_steps_per_second": seed_steps / sweep_wall, "separate_seed_steps_per_second": seed_steps / separate_wall,
        "speedup_end_to_end": separate_wall / sweep_wall, "speedup_training_loop": separate_loop / sweep_loop,
    }
    print(f"sweep / separate throughput, end to end: {result['speedup_end_to_end']:.2f}x "
          f"({result['sweep_seed_steps_per_second']:.0f} vs {result['separate_seed_steps_per_second']:.0f} seed-steps/s); "
          f"training loops alone: {result['speedup_training_loop']:.2f}x")
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
