"""Aggregate many runs over many tasks with the statistics of Agarwal et al. (2021), through their `rliable` library:
IQM, median, mean and optimality gap of normalised scores with stratified bootstrap CIs, performance profiles and
the probability of improvement between every pair of algorithms.

    python aggregate.py --references refs.json -o agg \\
        --algorithm ER "ProcMaze=ER_maze.out" "ButtonGrid=ER_grid_s0.out,ER_grid_s1.out" \\
        --algorithm DQN "ProcMaze=DQN_maze.out" "ButtonGrid=DQN_grid.out" [--metric reward_rates] [--final-window 5]

refs.json gives each task's reference scores: {"ProcMaze": {"random": -40.0, "best": -5.0}, ...}; a run's score is
the mean of its last --final-window evaluations of --metric (default: the last 10%, at least one), normalised as
(score - random) / (best - random), so 0 is the random policy and 1 the best known. Every algorithm needs every task
with the same number of runs per task (its seeds; comma-joined .out files pool one config's jobs). Writes
O.md (a table), O.csv (the same numbers), O_aggregates.png, O_profiles.png and O_improvement.png. Needs the stats
extra (pip install -e ".[stats]"). Bad input prints one line "error: ..." and exits with status 2.
"""
import argparse
import csv
import json
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiment.files import FileFormatError  # noqa: E402
from experiment.results import load_runs  # noqa: E402
from plot_metric import point_scores  # noqa: E402

AGGREGATES = ("IQM", "median", "mean", "optimality gap")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithm", nargs="+", action="append", required=True, metavar="NAME TASK=RUNS",
                        help="an algorithm's name, then TASK=FILE[,FILE...] for every task")
    parser.add_argument("--references", required=True, help="JSON: task -> {\"random\": r, \"best\": b}")
    parser.add_argument("-o", "--output", required=True, help="output prefix")
    parser.add_argument("--metric", default="reward_rates", help="the per-seed metric scored (reward_rates)")
    parser.add_argument("--final-window", type=int, default=None, help="evaluations averaged per run (last 10%%)")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (2000)")
    parser.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap (0)")
    return parser.parse_args(argv)


def final_scores(spec: str, metric: str, window: int | None) -> np.ndarray:
    """Per run (seed; every grid point of a sweep counts as runs too), plot_metric's "final" score: the mean of the
    last `window` evaluations (default: the last 10%, at least one)."""
    data = load_runs(spec)
    if metric not in data["metrics"]:
        raise ValueError(f"'{spec}' has no metric '{metric}'")
    values = np.asarray(data["metrics"][metric], dtype=float)
    return point_scores(values.reshape(values.shape[0], -1), "final", window)  # (evals, runs) -> (runs,)


def normalise(scores: np.ndarray, reference: dict, task: str) -> np.ndarray:
    try:
        low, high = float(reference["random"]), float(reference["best"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"references for task '{task}' need numbers 'random' and 'best'") from None
    if high == low:
        raise ValueError(f"task '{task}': its 'random' and 'best' references are equal ({low})")
    return (scores - low) / (high - low)


def score_matrices(algorithms, references: dict, metric: str, window) -> tuple[dict, list]:
    """{algorithm: normalised scores (runs, tasks)} and the task order."""
    tasks = None
    matrices = {}
    for entry in algorithms:
        if len(entry) < 2:
            raise ValueError(f"--algorithm {entry[0]!r} names no TASK=RUNS")
        name, specs = entry[0], {}
        for item in entry[1:]:
            task, _, spec = item.partition("=")
            if not task or not spec:
                raise ValueError(f"'{item}' is not TASK=FILE[,FILE...]")
            specs[task] = spec
        if tasks is None:
            tasks = list(specs)
        if sorted(specs) != sorted(tasks):
            raise ValueError(f"algorithm '{name}' has tasks {sorted(specs)}, the first has {sorted(tasks)}: every "
                             f"algorithm needs the same tasks")
        columns = []
        for task in tasks:
            if task not in references:
                raise ValueError(f"no reference scores for task '{task}' in the references file")
            columns.append(normalise(final_scores(specs[task], metric, window), references[task], task))
        runs = {len(column) for column in columns}
        if len(runs) != 1:
            raise ValueError(f"algorithm '{name}' has {sorted(runs)} runs on different tasks: give every task the "
                             f"same number of runs")
        matrices[name] = np.stack(columns, axis=1)
    return matrices, tasks


def aggregates(matrices: dict, reps: int, seed: int):
    """(point estimates, interval estimates): {algorithm: (4,)}, {algorithm: (2, 4)} for AGGREGATES, by rliable's
    stratified (per task) percentile bootstrap over runs."""
    from rliable import library as rly
    from rliable import metrics

    def functions(x):
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_median(x), metrics.aggregate_mean(x),
                         metrics.aggregate_optimality_gap(x)])

    return rly.get_interval_estimates(matrices, functions, reps=reps,
                                      random_state=np.random.RandomState(seed))


def improvement(matrices: dict, reps: int, seed: int):
    """{(x, y): (P(X > Y), low, high)} for every ordered pair of algorithms (rliable's probability of improvement)."""
    from rliable import library as rly
    from rliable import metrics

    pairs = {f"{x},{y}": (matrices[x], matrices[y]) for x in matrices for y in matrices if x != y}
    if not pairs:
        return {}
    points, intervals = rly.get_interval_estimates(pairs, metrics.probability_of_improvement, reps=reps,
                                                   random_state=np.random.RandomState(seed))
    flat = {key: (np.ravel(points[key])[0], *np.ravel(intervals[key])) for key in pairs}
    return {tuple(key.split(",", 1)): tuple(float(v) for v in flat[key]) for key in pairs}


def profiles(matrices: dict, taus: np.ndarray, reps: int):
    from rliable import library as rly
    return rly.create_performance_profile(matrices, taus, reps=reps)


def main(argv=None) -> int:
    args = parse_args(argv)
    # rliable hands arch a RandomState, which arch 7 deprecates loudly; the resampling is unchanged
    warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)
    try:
        try:
            import rliable  # noqa: F401
        except ImportError:
            raise ValueError("aggregate.py needs the stats extra: pip install -e \".[stats]\"") from None
        try:
            with open(args.references, encoding="utf-8") as f:
                references = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read the references file '{args.references}': {e}") from None
        if not isinstance(references, dict):
            raise ValueError("the references file must hold a JSON object: task -> {\"random\": r, \"best\": b}")
        if args.final_window is not None and args.final_window < 1:
            raise ValueError("--final-window must be at least 1")
        matrices, tasks = score_matrices(args.algorithm, references, args.metric, args.final_window)
    except (ValueError, FileFormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    points, intervals = aggregates(matrices, args.reps, args.bootstrap_seed)
    pairs = improvement(matrices, args.reps, args.bootstrap_seed)
    taus = np.linspace(min(0.0, min(m.min() for m in matrices.values())),
                       max(1.0, max(m.max() for m in matrices.values())), 101)
    profile, profile_ci = profiles(matrices, taus, args.reps)
    write_tables(args.output, matrices, tasks, points, intervals, pairs)
    draw(args.output, matrices, points, intervals, pairs, taus, profile, profile_ci)
    print(open(args.output + ".md", encoding="utf-8").read())
    print(f"wrote {args.output}.md, .csv, _aggregates.png, _profiles.png, _improvement.png")
    return 0


def write_tables(output, matrices, tasks, points, intervals, pairs) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    lines = [f"Normalised scores ((score - random) / (best - random)) over {len(tasks)} task(s): "
             f"{', '.join(tasks)}; point estimate and 95% stratified bootstrap CI.", "",
             "| algorithm | runs per task | " + " | ".join(AGGREGATES) + " |", "|---|---|" + "---|" * len(AGGREGATES)]
    rows = []
    for name, matrix in matrices.items():
        cells = [f"{points[name][i]:.3f} ({intervals[name][0][i]:.3f}, {intervals[name][1][i]:.3f})"
                 for i in range(len(AGGREGATES))]
        lines.append(f"| {name} | {matrix.shape[0]} | " + " | ".join(cells) + " |")
        rows += [(name, aggregate, points[name][i], intervals[name][0][i], intervals[name][1][i])
                 for i, aggregate in enumerate(AGGREGATES)]
    if pairs:
        lines += ["", "| P(X > Y) | estimate (95% CI) |", "|---|---|"]
        for (x, y), (p, low, high) in pairs.items():
            lines.append(f"| {x} > {y} | {p:.3f} ({low:.3f}, {high:.3f}) |")
            rows.append((f"{x} > {y}", "probability of improvement", p, low, high))
    with open(output + ".md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(output + ".csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("algorithm", "statistic", "estimate", "ci_low", "ci_high"))
        writer.writerows(rows)


def draw(output, matrices, points, intervals, pairs, taus, profile, profile_ci) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(matrices)
    figure, axes = plt.subplots(1, len(AGGREGATES), figsize=(3.2 * len(AGGREGATES), 0.5 + 0.45 * len(names)),
                                squeeze=False)
    for i, (axis, aggregate) in enumerate(zip(axes[0], AGGREGATES)):
        for row, name in enumerate(names):
            low, high = intervals[name][0][i], intervals[name][1][i]
            axis.barh(row, high - low, left=low, height=0.6, color=f"C{row}", alpha=0.6)
            axis.plot([points[name][i]] * 2, [row - 0.3, row + 0.3], color="k")
        axis.set_yticks(range(len(names)), names if i == 0 else [""] * len(names))
        axis.set_title(aggregate)
        axis.set_xlabel("normalised score")
    figure.tight_layout()
    figure.savefig(output + "_aggregates.png", dpi=110, bbox_inches="tight")
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(6, 4))
    for row, name in enumerate(names):
        axis.plot(taus, profile[name], color=f"C{row}", label=f"{name} ({matrices[name].shape[0]} runs per task)")
        axis.fill_between(taus, profile_ci[name][0], profile_ci[name][1], color=f"C{row}", alpha=0.2)
    axis.set(xlabel="normalised score tau", ylabel="fraction of runs with score > tau\n(95% bootstrap CI)")
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    figure.savefig(output + "_profiles.png", dpi=110, bbox_inches="tight")
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(6, 0.6 + 0.4 * max(1, len(pairs))))
    for row, ((x, y), (p, low, high)) in enumerate(pairs.items()):
        axis.barh(row, high - low, left=low, height=0.6, color="C0", alpha=0.6)
        axis.plot([p, p], [row - 0.3, row + 0.3], color="k")
    axis.set_yticks(range(len(pairs)), [f"P({x} > {y})" for x, y in pairs])
    axis.axvline(0.5, color="grey", linestyle=":")
    axis.set(xlim=(0, 1), xlabel="probability of improvement (95% bootstrap CI)")
    figure.savefig(output + "_improvement.png", dpi=110, bbox_inches="tight")
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
