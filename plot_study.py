"""Plot the model-based generalisation study written by run_study.py: one panel per environment and data
regime (rows: ProcMaze, ButtonGrid, PanFlute; columns: high, low data), one curve per agent (mean over
seeds with a 95% bootstrap band, as plot_metric.py draws them). Cells without an .out file are left out.

    python plot_study.py --input-dir study --output study.png [--window 10]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiment import study  # noqa: E402
from plot_metric import BAND_ALPHA, PlotInputError, bootstrap_band, load_curve, smooth  # noqa: E402

REGIME_TITLES = {"high": "high data (1M steps)", "low": "low data (100k steps, 10 updates/step)"}


def study_curves(input_dir: str, window: int, agents=tuple(study.AGENTS)):
    """{(environment, regime): [(agent, values (T, S), times (T,))]} for every cell with an .out file."""
    found = {}
    for agent, environment, regime in study.cells(agents):
        path = os.path.join(input_dir, study.cell_name(agent, environment, regime) + ".out")
        if os.path.exists(path):
            values, times = load_curve(path)
            found.setdefault((environment, regime), []).append((agent, *smooth(values, times, min(window, len(times)))))
    return found


def make_study_figure(found: dict, seed: int = 0):
    import matplotlib.pyplot as plt
    rng = np.random.default_rng(seed)
    environments = [e for e in study.ENVIRONMENTS if any(key[0] == e for key in found)]
    fig, axes = plt.subplots(len(environments), 2, figsize=(11, 3.2 * len(environments)), squeeze=False)
    colours = dict(zip(study.AGENTS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for row, environment in enumerate(environments):
        for col, regime in enumerate(study.REGIMES):
            ax = axes[row, col]
            for agent, values, times in found.get((environment, regime), []):
                mean, low, high = bootstrap_band(values, rng=rng)
                ax.plot(times, mean, color=colours[agent], label=agent)
                ax.fill_between(times, low, high, color=colours[agent], alpha=BAND_ALPHA, linewidth=0)
            ax.set_title(f"{environment}, {REGIME_TITLES[regime]}", fontsize=9)
            ax.set_xlabel("environment steps")
            ax.set_ylabel("return" if environment == "ProcMaze" else "reward per step")
            ax.grid(True)
            if found.get((environment, regime)):
                ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Plot the study's learning curves, one panel per cell group.")
    parser.add_argument("-d", "--data", "--input-dir", "-i", dest="input_dir", default="study",
                        help="the directory of the study's .out files (run_study.py's --output-dir)")
    parser.add_argument("--output", "-o", default="study.png")
    parser.add_argument("--window", "-w", type=int, default=1, help="moving-average length over evaluations")
    args = parser.parse_args(argv)
    try:
        if args.window < 1:
            raise PlotInputError(f"--window must be >= 1, got {args.window}")
        found = study_curves(args.input_dir, args.window)
        if not found:
            raise PlotInputError(f"no study .out files in '{args.input_dir}' (run run_study.py first)")
    except PlotInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import matplotlib
    matplotlib.use("Agg")
    make_study_figure(found).savefig(args.output, dpi=120)
    print(f"wrote {args.output} ({sum(len(v) for v in found.values())} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
