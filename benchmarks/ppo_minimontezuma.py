"""Intrinsic motivation on the MiniMontezuma bed, with controls that rule out the cheap explanations (docs/ppo.md).

    python benchmarks/ppo_minimontezuma.py --runs RUNS --train -o docs/figures/ppo_minimontezuma_bed

The bed (configs/ppo/MiniMontezuma_bed_<variant>.json): the fixed layout started in room 0, 26 steps from key a
behind a one-way drop (the random policy row's 51,000 or so episodes never take it), 10 x 10 pixels, 5
lives, 5 seeds vmapped, 1,048,576 steps per seed. Rows, all at that budget and on those seeds:
- PPO, PPO + RND, PPO + SND, PPO + SND + entropy: the four variants (their configs);
- constant bonus: PPO paid RND's mean clipped bonus on every step, whatever the state (RND's run must exist; the
  bonus is its mean `int_reward_clipped_mean` over periods and seeds): more reward for staying alive, no novelty;
- RND, non-episodic: RND with the intrinsic stream not cut at episode ends (`int_episodic` false, the RND paper's
  choice), so dying costs future bonus;
- random policy: uniformly random actions, the same environments per seed and steps (bench_envs.py's study).

With --train, the rows whose RUNS/<variant>.out is missing or unfinished are trained first (one process each; a
killed one resumes from its checkpoint on the next call). Then per row and seed: whether and when (steps of the
seed, all its environments) any environment first took key a; over the last quarter of the run, the extrinsic
return, the rooms visited and the length of the training episodes; at the end, the unions of rooms and cells.
Writes O.png (six panels over the run), O.md (the table: mean of seeds with a 95% bootstrap interval over seeds,
or the range below 5 seeds) and O.json. Bad input prints one line "error: ..." and exits with status 2.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiment.files import run_complete  # noqa: E402
from plot_metric import PlotInputError, band_of, write_report  # noqa: E402

CONFIG = os.path.join(REPO, "configs", "ppo", "MiniMontezuma_bed_{}.json")
# (variant, label, how its config is made: a shipped config, or RND's with the changes given)
ROWS = [("none", "PPO", None), ("rnd", "PPO + RND", None), ("snd", "PPO + SND", None),
        ("snd_entropy", "PPO + SND + entropy", None),
        ("constant", "constant bonus (RND's mean, every step)", {"distillation": "constant"}),
        ("rnd_nonepisodic", "PPO + RND, non-episodic intrinsic returns", {"int_episodic": False})]
TAIL = 0.25  # the share of the run, at its end, that the episode statistics average over
PANELS = [("key_fraction", "seeds that have taken key a"), ("return", "extrinsic return per episode"),
          ("rooms_per_episode", "rooms per episode"), ("rooms_visited", "rooms visited (run union, of 12)"),
          ("cells_visited", "cells visited (run union)"), ("length", "episode length (steps)")]


def row_config(variant: str, changes: dict | None, runs: str) -> str:
    """The config file of a row: shipped, or RND's with `changes` written to RUNS/<variant>.json."""
    if changes is None:
        return CONFIG.format(variant)
    with open(CONFIG.format("rnd"), encoding="utf-8") as f:
        config = json.load(f)
    config.update(changes)
    if variant == "constant":
        rnd = load_row(os.path.join(runs, "rnd.out"))
        config["constant_bonus"] = round(float(np.mean(rnd["int_reward_clipped_mean"])), 6)
    path = os.path.join(runs, f"{variant}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f)
    return path


def train(runs: str, variants: list[str], progress: bool) -> None:
    """Train each missing row (RND before the constant control, which reads RND's bonus)."""
    order = sorted(ROWS, key=lambda row: row[0] == "constant")
    for variant, _, changes in order:
        output = os.path.join(runs, variant)
        if variant not in variants or run_complete(output):
            continue
        command = [sys.executable, os.path.join(REPO, "train_scripts", "train_PPO.py"), "--seed", "0",
                   "--config", row_config(variant, changes, runs), "--output", output]
        if os.path.exists(output + ".ckpt.npz"):
            command.append("--resume")
        if not progress:
            command.append("--no-progress")
        print("running", " ".join(command), flush=True)
        if subprocess.run(command).returncode != 0:
            raise PlotInputError(f"training {variant} failed (its output above)")


def load_row(path: str) -> dict:
    """A run's metrics as (periods, seeds) arrays, and `times` (periods,)."""
    from experiment.files import FileFormatError, load_metrics
    try:
        data = load_metrics(path)
    except (OSError, FileFormatError) as e:
        raise PlotInputError(f"cannot read '{path}': {e}") from None
    metrics = data["metrics"]
    if data["config"].get("environment") != "MiniMontezuma" or "first_key_step" not in metrics:
        raise PlotInputError(f"'{path}' is not a PPO run on MiniMontezuma")
    return {"times": np.asarray(metrics["eval_times"], float),
            **{k: np.asarray(v, float) for k, v in metrics.items() if k != "eval_times"}}


def row_values(run: dict) -> dict:
    """Per seed: first key step (NaN: never), the last quarter's episode statistics, the final unions; and the
    curves of each panel, (periods, seeds)."""
    periods = len(run["times"])
    tail = slice(periods - max(1, int(round(TAIL * periods))), periods)
    first_key = run["first_key_step"][-1]
    with np.errstate(all="ignore"):  # a seed with no episode ended in the tail has a NaN mean
        per_seed = {name: np.nanmean(run[name][tail], axis=0) for name in ("return", "rooms_per_episode", "length")}
    per_seed.update(rooms_visited=run["rooms_visited"][-1], cells_visited=run["cells_visited"][-1],
                    first_key_step=first_key)
    if "int_reward_clipped_mean" in run:
        per_seed["bonus"] = np.mean(run["int_reward_clipped_mean"], axis=0)
    curves = {name: run[name] for name, _ in PANELS if name in run}
    curves["key_fraction"] = np.isfinite(run["first_key_step"]).astype(float)  # taken by the period's end
    return {"per_seed": per_seed, "curves": curves, "times": run["times"]}


def random_row(config_path: str) -> dict:
    """The random policy on the bed's environment, the variants' environments per seed and steps per seed."""
    from bench_envs import random_policy_study
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    study = random_policy_study(num_seeds=config["num_seeds"], num_envs=config["num_envs"],
                                num_steps=config["num_steps"] // config["num_envs"], env_config=config["env_config"])
    first = np.array([np.nan if k is None else k for k in study["first_key_step_per_seed"]], float)
    per_seed = {"return": np.array(study["return_per_episode_per_seed"]),
                "rooms_per_episode": np.array(study["rooms_per_episode_per_seed"]),
                "length": np.array(study["length_per_episode_per_seed"]),
                "rooms_visited": np.array(study["rooms_visited_per_seed"], float),
                "cells_visited": np.array(study["cells_visited_per_seed"], float), "first_key_step": first}
    return {"per_seed": per_seed, "study": study}


def interval_text(values, rng, digits: int) -> str:
    mean, low, high, _ = band_of(np.asarray(values, float)[None, :], rng)
    return f"{mean[0]:.{digits}f} ({low[0]:.{digits}f}, {high[0]:.{digits}f})"


def table(rows: dict, rng) -> list[str]:
    lines = ["| agent | seeds | took key a | steps to key a (each seed) | extrinsic return per episode | rooms per "
             "episode | episode length | rooms visited (union) | cells visited (union) | bonus per step |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for label, row in rows.items():
        seeds = row["per_seed"]
        first = seeds["first_key_step"]
        steps = ", ".join("-" if np.isnan(k) else f"{k / 1e3:.0f}k" for k in first)
        bonus = interval_text(seeds["bonus"], rng, 4) if "bonus" in seeds else "-"
        cells = [interval_text(seeds[name], rng, digits) for name, digits in (
            ("return", 3), ("rooms_per_episode", 2), ("length", 0), ("rooms_visited", 1), ("cells_visited", 0))]
        lines.append(f"| {label} | {len(first)} | {int(np.isfinite(first).sum())} of {len(first)} | {steps} | "
                     + " | ".join(cells) + f" | {bonus} |")
    seeds = len(next(iter(rows.values()))["per_seed"]["first_key_step"])
    lines += ["", f"Mean of seeds ({'95% bootstrap interval over seeds' if seeds >= 5 else 'range of the seeds'}); "
              f"episode statistics over the last {TAIL:.0%} of the run, unions at its end; steps to key a in "
              "thousands of the seed's environment steps (all its environments), - where never taken."]
    return lines


def figure(rows: dict, output: str, rng) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    for axis, (name, ylabel) in zip(axes.flat, PANELS):
        for label, row in rows.items():
            if "curves" in row:
                mean, low, high, words = band_of(row["curves"][name], rng)
                (line,) = axis.plot(row["times"], mean, label=f"{label} ({words})")
                axis.fill_between(row["times"], low, high, color=line.get_color(), alpha=0.2, linewidth=0)
            elif name != "key_fraction":  # the random policy: its per-seed values as a horizontal band
                mean, low, high, words = band_of(row["per_seed"][name][None, :], rng)
                axis.axhline(mean[0], color="black", linestyle="--", linewidth=1, label=f"{label} ({words})")
                axis.axhspan(low[0], high[0], color="black", alpha=0.1)
        axis.set(xlabel="environment steps per seed (all its environments)", ylabel=ylabel)
        axis.grid(True, alpha=0.3)
    handles, labels = axes[0, 1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    fig.suptitle("MiniMontezuma bed (fixed layout from room 0, key a 26 steps away): intrinsic motivation and its "
                 "controls")
    fig.tight_layout(rect=(0, 0.08, 1, 0.96))
    fig.savefig(output + ".png", dpi=100)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, help="folder of the rows' runs: RUNS/<variant>.out")
    parser.add_argument("-o", "--output", required=True, help="writes OUTPUT.png, OUTPUT.md and OUTPUT.json")
    parser.add_argument("--train", action="store_true", help="train the rows whose run is missing first")
    parser.add_argument("--variants", nargs="+", default=[row[0] for row in ROWS],
                        choices=[row[0] for row in ROWS], help="the rows to train and show (all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars while training")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    try:
        if not os.path.isdir(args.runs):
            raise PlotInputError(f"--runs '{args.runs}' is not a folder")
        if args.train:
            train(args.runs, args.variants, not args.no_progress)
        rows = {}
        for variant, label, _ in ROWS:
            output = os.path.join(args.runs, variant)
            if variant in args.variants and run_complete(output):
                rows[label] = row_values(load_row(output + ".out"))
            elif variant in args.variants:
                print(f"note: no finished run at '{output}.out' yet; its row is left out (--train runs or resumes it)",
                      file=sys.stderr)
        rows["random policy"] = random_row(CONFIG.format("none"))
    except (PlotInputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    lines = table(rows, rng)
    figure(rows, args.output, rng)
    write_report(args.output, lines, {label: {name: np.asarray(v).tolist() for name, v in row["per_seed"].items()}
                                      for label, row in rows.items()})
    print("\n".join(lines))
    print(f"wrote {args.output}.png, .md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
