"""Print a sweep's grid points ranked by a criterion, as a table: the best hyperparameters at a glance.

    python best_points.py -d SWEEP.out [--criterion auc|final] [--final-window K] [--top N] [--metric M] [--minimize]

Each row: rank, the point's swept values, its mean score over seeds with a 95% bootstrap interval over seeds, and
both criteria (auc: the mean over all evaluations; final: the mean of the last --final-window evaluations, by
default the last 10%), and how many of its runs diverged (NaN or infinite parameters or loss: such a point's scores
are NaN and it ranks last). Bad input prints one line "error: ..." and exits with status 2, as plot_metric.py does.
"""
import os
import sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from plot_metric import (CRITERIA, DEFAULT_METRIC, PlotInputError, _Parser, _positive_int,  # noqa: E402
                         bootstrap_band, load_grid_and_divergence, point_scores, ranked_points)


def best_points_table(path: str, metric: str = DEFAULT_METRIC, criterion: str = "auc", final_window=None,
                      top=None, minimize: bool = False, seed: int = 0) -> str:
    values, _, grid, diverged = load_grid_and_divergence(path, metric, allow_plain=False)
    order, scores = ranked_points(values, criterion, final_window, minimize)
    both = {name: point_scores(values, name, final_window).mean(axis=1) for name in CRITERIA}
    mean, low, high = bootstrap_band(scores, rng=seed)
    keys = list(grid[0])
    header = ["rank", *keys, f"{criterion} mean", "95% CI", *(name for name in CRITERIA if name != criterion),
              "diverged"]
    rows = []
    for rank, index in enumerate(order[:top] if top else order, start=1):
        rows.append([str(rank), *(f"{grid[index][k]:g}" if isinstance(grid[index][k], float) else str(grid[index][k])
                                  for k in keys),
                     f"{mean[index]:.4g}", f"[{low[index]:.4g}, {high[index]:.4g}]",
                     *(f"{both[name][index]:.4g}" for name in CRITERIA if name != criterion),
                     f"{diverged[index].sum()}/{diverged.shape[1]}"])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"{path}: {values.shape[1]} points x {values.shape[2]} seeds, {values.shape[0]} evaluations of {metric}; "
             f"ranked by {criterion}, {'lower' if minimize else 'higher'} is better"]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = _Parser(prog="best_points.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("-d", "--data", nargs="+", required=True, help=".out files of sweeps")
    parser.add_argument("-m", "--metric", default=DEFAULT_METRIC, help=f"metric to rank by ({DEFAULT_METRIC})")
    parser.add_argument("--criterion", choices=CRITERIA, default="auc", help="auc (default) or final")
    parser.add_argument("--final-window", type=_positive_int("final-window"), default=None,
                        help="evaluations averaged by final (default: the last 10%%, at least one)")
    parser.add_argument("--top", type=_positive_int("top"), default=None, help="print only the N best points")
    parser.add_argument("--minimize", action="store_true", help="lower is better (losses)")
    try:
        args = parser.parse_args(argv)
        tables = [best_points_table(path, args.metric, args.criterion, args.final_window, args.top, args.minimize)
                  for path in args.data]
    except PlotInputError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
