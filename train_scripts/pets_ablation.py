"""PETS's ablation in one command: model types x propagation methods on one config, then one figure.

    python train_scripts/pets_ablation.py --config configs/pets/CartpoleSwingUp_reduced.json --output DIR
        [--seed S] [--models D P DE PE] [--props E DS MM TS1 TSinf] [--metric return_running_max]
        [--resume | --overwrite] [--no-progress] [--check]

Every allowed combination (Chua et al. 2018; kchua/handful-of-trials: D with E only; P with E, DS, MM; DE and PE with all five) trains as its
own run, DIR/<model>-<prop>.out / .params, with the config's other keys unchanged and the same seed, so every
combination sees the same initial random episode per seed. Combinations already complete in DIR are kept. The
curves (mean over seeds, bootstrapped 95% band) go to DIR/ablation.png through plot_metric.py. A disallowed
combination named explicitly is reported and skipped.
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
    outputs, labels = [], []
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
        outputs.append(output + ".out")
        labels.append(label)
    if not outputs:
        print("error: no allowed combination among the given models and propagations", file=sys.stderr)
        return 2
    if args.check:
        print(f"{len(outputs)} combinations: valid configs; nothing was run")
        return 0
    return plot_metric.main(["--data", *outputs, "--labels", *labels, "--metric", args.metric,
                             "--output", os.path.join(args.output, "ablation.png"), "--title", "PETS ablation"])


if __name__ == "__main__":
    sys.exit(main())
