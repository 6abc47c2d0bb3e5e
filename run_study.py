"""Run the model-based generalisation study: every agent x environment x data regime (or a subset).

    python run_study.py --output-dir study                       # all 30 cells, 30 seeds each (GPU-sized)
    python run_study.py --output-dir study --agents ER perfect_model --environments ProcMaze --regimes low
    python run_study.py --output-dir study --dry-run             # print the commands, one per cell
    python run_study.py --output-dir search --grid-search        # the paper's grid search, one process per cell

Each cell is one process, `python train_scripts/train_X.py --seed S --config configs/<cell>.json --output
<dir>/<cell> --resume`, run one after another; rerunning the same command continues an interrupted study
(complete cells are skipped, a killed cell resumes from its checkpoint). --num-seeds writes derived configs
under <dir>/configs/ (for a laptop); the published settings are used otherwise. Plot with plot_study.py.

--grid-search runs, per cell, the paper's grid search instead of its tuned point: the cell's config with a
'sweep' over 10 step sizes x 11 softmax temperatures (experiment/study.py), all 110 points x num_seeds as one
program, written to <dir>/<cell>_grid.out; rank the points with best_points.py, plot with plot_metric.py
--plot best / sensitivity. --num-seeds makes it fit smaller machines (the run states its memory need first).
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiment import study  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Run the agent x environment x regime study, one process per cell.")
    parser.add_argument("--output-dir", "-o", default="study", help="where <cell>.out and <cell>.params go")
    parser.add_argument("--agents", nargs="+", default=list(study.AGENTS), choices=list(study.AGENTS))
    parser.add_argument("--environments", nargs="+", default=list(study.ENVIRONMENTS), choices=study.ENVIRONMENTS)
    parser.add_argument("--regimes", nargs="+", default=list(study.REGIMES), choices=study.REGIMES)
    parser.add_argument("--seed", "-s", type=int, default=0, help="master seed of every cell")
    parser.add_argument("--num-seeds", type=int, default=None, help="override num_seeds (derived configs)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the commands without running them (derived configs are still written)")
    parser.add_argument("--grid-search", action="store_true",
                        help="per cell, sweep the paper's step-size x temperature grid in one process")
    return parser.parse_args(argv)


def cell_config(agent, environment, regime, output_dir, num_seeds, grid_search=False):
    """The cell's published config, or a derived one under <output_dir>/configs/ with --num-seeds / --grid-search."""
    path = study.config_path(agent, environment, regime)
    if num_seeds is None and not grid_search:
        return path
    if num_seeds is not None and num_seeds < 1:
        raise SystemExit(f"error: --num-seeds must be >= 1, got {num_seeds}")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    if num_seeds is not None:
        config["num_seeds"] = num_seeds
    name = os.path.basename(path)
    if grid_search:
        config["sweep"] = study.grid_search_sweep(agent)
        name = name.replace(".json", "_grid.json")
    derived = os.path.join(output_dir, "configs", name)
    os.makedirs(os.path.dirname(derived), exist_ok=True)
    with open(derived, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1)
    return derived


def main(argv=None) -> int:
    args = parse_args(argv)
    todo = study.cells(args.agents, args.environments, args.regimes)
    if not args.dry_run:
        os.makedirs(args.output_dir, exist_ok=True)
    for number, (agent, environment, regime) in enumerate(todo, 1):
        name = study.cell_name(agent, environment, regime) + ("_grid" if args.grid_search else "")
        config = cell_config(agent, environment, regime, args.output_dir, args.num_seeds, args.grid_search)
        command = [sys.executable, study.train_script(agent), "--seed", str(args.seed), "--config", config,
                   "--output", os.path.join(args.output_dir, name), "--resume"]
        print(f"[{number}/{len(todo)}] {name}: {' '.join(command)}", flush=True)
        if args.dry_run:
            continue
        status = subprocess.call(command)
        if status != 0:
            print(f"error: cell {name} exited with status {status}; rerun the same command to continue", file=sys.stderr)
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
