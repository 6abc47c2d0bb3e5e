"""DeepSea at increasing sizes for the PPO variants: the largest size each one solves.

    python train_scripts/ppo_deepsea.py --config configs/ppo/DeepSea_cpu.json --output DIR
        [--sizes 8 12 16 20 24 32] [--variants none rnd snd snd_entropy] [--seed S]
        [--resume | --overwrite] [--no-progress] [--check]

Each (variant, size) trains as its own run, DIR/<variant>-<size>.out / .params: the config with `distillation`
and env_config.size replaced, everything else (budget, seeds) unchanged. A seed SOLVES a size when at least half
of its episodes in the last evaluation period reach the treasure; the size is solved when every seed solves it.
Once a variant has a size where no seed found the treasure even once, its larger sizes are not run (a random
walk finds the treasure with probability 2^-size per episode; what missed it at size n misses it at n + 4) and
count as unsolved. Runs already complete in DIR are kept. Prints a table (success rate of the last period per
seed, the step of the first treasure) and writes it to DIR/deepsea.md; the success-rate curves of the largest
size go to DIR/deepsea_<size>.png.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a plain checkout too

from experiment.devices import use_every_core  # noqa: E402

use_every_core()  # one CPU device per core, before anything starts JAX (importing gymnax does)

import numpy as np  # noqa: E402

import plot_metric  # noqa: E402
from agents import ppo  # noqa: E402
from experiment import cli, config as config_lib, files  # noqa: E402

SOLVED_SUCCESS_RATE = 0.5


def summary(out_path: str) -> dict:
    """Per seed: the last period's success rate and the step of the first treasure (NaN: never)."""
    metrics = files.load_metrics(out_path)["metrics"]
    return {"success": np.asarray(metrics["success_rate"])[-1], "first": np.asarray(metrics["first_treasure_step"])[-1]}


def solved(result: dict) -> bool:
    return bool(np.all(np.nan_to_num(result["success"]) >= SOLVED_SUCCESS_RATE))


def table(results: dict, sizes) -> str:
    lines = ["| agent | " + " | ".join(f"N={n}" for n in sizes) + " | largest solved |",
             "|---|" + "---|" * (len(sizes) + 1)]
    for variant, by_size in results.items():
        cells, largest = [], "none"
        for n in sizes:
            if n not in by_size:
                cells.append("not run")
                continue
            r = by_size[n]
            rates = "/".join(f"{x:.2f}" for x in np.nan_to_num(r["success"]))
            found = "/".join("-" if np.isnan(f) else f"{f / 1000:.0f}k" for f in r["first"])
            cells.append(f"{rates} ({found})")
            if solved(r):
                largest = str(n)
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {largest} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("-o", "--output", required=True, help="a directory for the runs, the table and the figure")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 12, 16, 20, 24, 32])
    parser.add_argument("--variants", nargs="+", default=["none", "rnd", "snd", "snd_entropy"],
                        choices=ppo.DISTILLATIONS)
    parser.add_argument("--seed", type=int, default=0)
    cli.add_series_flags(parser)
    args = parser.parse_args(argv)
    if cli.series_flags_conflict(args):
        return 2
    try:
        base = config_lib.load_json(args.config)
        if base.get("environment") != "DeepSea":
            raise config_lib.ConfigError(f"environment must be DeepSea, the config names {base.get('environment')!r}")
        configs = {(v, n): config_lib.validate("PPO", {**base, "distillation": v,
                                                       "env_config": {**base.get("env_config", {}), "size": n}})
                   for v in args.variants for n in sorted(args.sizes)}
    except (config_lib.ConfigError, files.FileFormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.check:
        status = max(cli.run_in_series(f"{v}-{n}", config, ppo.make, args.seed, "", args)
                     for (v, n), config in configs.items())
        if status == 0:
            print(f"{len(configs)} runs: valid configs; nothing was run")
        return status
    os.makedirs(args.output, exist_ok=True)
    sizes, results = sorted(args.sizes), {}
    for variant in args.variants:
        results[variant] = {}
        for n in sizes:
            output = os.path.join(args.output, f"{variant}-{n}")
            status = cli.run_in_series(f"{variant}-{n}", configs[variant, n], ppo.make, args.seed, output, args)
            if status:
                return status
            results[variant][n] = summary(output + ".out")
            if np.all(np.isnan(results[variant][n]["first"])):
                break  # never found at this size: larger ones are not run
    text = table(results, sizes)
    print(text)
    files.atomic_write(os.path.join(args.output, "deepsea.md"), lambda f: f.write(text.encode() + b"\n"))
    largest = max(n for by_size in results.values() for n in by_size)
    outputs = [os.path.join(args.output, f"{v}-{largest}.out") for v in args.variants if largest in results[v]]
    return plot_metric.main(["--data", *outputs, "--labels", *[os.path.basename(o)[:-4] for o in outputs],
                             "--metric", "success_rate", "--title", f"DeepSea {largest}",
                             "--output", os.path.join(args.output, f"deepsea_{largest}.png")])


if __name__ == "__main__":
    sys.exit(main())
