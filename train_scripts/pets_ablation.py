"""PETS's ablation in one command: model types x propagation methods on one config, then one figure.

    python train_scripts/pets_ablation.py --config configs/pets/CartpoleSwingUp_reduced.json --output DIR
        [--seed S] [--models D P DE PE] [--props E DS MM TS1 TSinf] [--metric return_running_max]
        [--resume | --overwrite] [--no-progress] [--check]

Every allowed combination (Chua et al. 2018; kchua/handful-of-trials: D with E only; P with E, DS, MM; DE and PE with all five) trains as its
own run, DIR/<model>-<prop>.out / .params, with the config's other keys unchanged and the same seed, so every
combination sees the same initial random episode per seed. Combinations already complete in DIR are kept, so the
same command again redraws the figure from them. The figure, DIR/ablation.png, has one panel per model type with
a curve per propagation method (mean over seeds; a 95% bootstrap band from 5 seeds, the seeds' range below), the
legends under the panels. A disallowed combination named explicitly is reported and skipped.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a plain checkout too

from experiment.devices import use_every_core  # noqa: E402

use_every_core()  # one CPU device per core, before anything starts JAX (importing gymnax does)

import plot_metric  # noqa: E402
from agents import pets  # noqa: E402
from agents.components import propagation  # noqa: E402
from experiment import cli, config as config_lib, files  # noqa: E402


def ablation_figure(outputs: dict, metric: str, path: str, title: str = "PETS ablation") -> None:
    """One panel per model type, one curve per propagation method (at most 5 a panel), legends below the panels
    so none covers data; axes and band wording as plot_metric.py's (mean of N seeds with a 95% bootstrap CI from 5
    seeds, the seeds' range below)."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    models = list(dict.fromkeys(model for model, _ in outputs))
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 4.6), sharey=True, squeeze=False)
    rng = np.random.default_rng(0)
    for ax, model in zip(axes[0], models):
        mine = [(prop, out) for (m, prop), out in outputs.items() if m == model]
        described = plot_metric.describe_inputs([out for _, out in mine], metric, chunk_start_times=False)
        curves = [plot_metric.load_curve(out, metric) for _, out in mine]
        curves = [(values, times + d.time_shift) for (values, times), d in zip(curves, described)]
        plot_metric.draw_curves(ax, curves, [prop for prop, _ in mine], rng)
        ax.set_title(f"model {model}")
        ax.set_xlabel(described[0].x_axis)
        ax.grid(True)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize="small", frameon=False)
    axes[0][0].set_ylabel(described[0].metric.label)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"saved {path}")


def combinations(models, props):
    for model in models:
        for prop in props:
            yield model, prop


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("-o", "--output", required=True, help="a directory for the runs and the figure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=list(pets.MODEL_TYPES), choices=pets.MODEL_TYPES)
    parser.add_argument("--props", nargs="+", default=list(propagation.PROPAGATIONS), choices=propagation.PROPAGATIONS)
    parser.add_argument("--metric", default="return_running_max", choices=("return_running_max", "reward_rates"))
    cli.add_series_flags(parser)
    args = parser.parse_args(argv)
    if cli.series_flags_conflict(args):
        return 2
    try:
        base = config_lib.load_json(args.config)
    except (config_lib.ConfigError, files.FileFormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    outputs = {}
    for model, prop in combinations(args.models, args.props):
        label = f"{model}-{prop}"
        try:
            config = config_lib.validate("PETS", {**base, "model_type": model, "prop_type": prop})
        except config_lib.ConfigError as e:
            print(f"{label}: skipped ({e})")
            continue
        output = os.path.join(args.output, label)
        status = cli.run_in_series(label, config, pets.make, args.seed, output, args)
        if status:
            return status
        outputs[model, prop] = output + ".out"
    if not outputs:
        print("error: no allowed combination among the given models and propagations", file=sys.stderr)
        return 2
    if args.check:
        print(f"{len(outputs)} combinations: valid configs; nothing was run")
        return 0
    try:
        ablation_figure(outputs, args.metric, os.path.join(args.output, "ablation.png"))
    except plot_metric.PlotInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
