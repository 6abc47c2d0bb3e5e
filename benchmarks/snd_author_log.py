"""An SND run's target feature magnitude and bonus beside the SND author's own training log, update by update.

    python benchmarks/snd_author_log.py --log result.log --run RUNS/snd.out -o docs/figures/snd_author_log

--log is ppo_cnd_21_0/result/result.log of michalnand/reinforcement_learning
(experiments/atari_hard/montezuma_revenge/models/; the headline SND config, cnd_21, on Montezuma's Revenge).
One line per rollout of its 128 environments x 128 steps; its columns as the repository's utils/plot_utils.py
(plot_cnd) reads them: column 1 the steps per environment (samples = 128 x it), column 9 "target CND
magnitude", mean(z_a^2) + mean(z_b^2) over a batch of augmented pairs, column 12 "internal motivation", the mean
intrinsic reward (k = 0.5 times the distillation error, clipped to [0, 1]).

The comparison's unit is the update: one PPO update (and one target and predictor update) per rollout on both
sides, since the target's features grow with its training steps, not with the environment's. Rows are the log's
updates where the two columns change (--updates); our side reads the evaluation period holding that update
(num_envs x rollout_length steps per update; the period's mean over its updates), our feature_magnitude doubled
to the log's sum over the two views, and int_reward_clipped_mean. Writes O.md and O.png (both quantities
against updates, log scale). Bad input prints one line "error: ..." and exits with status 2.
"""
import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from plot_metric import PlotInputError, band_of, write_report  # noqa: E402

LOG_ENVS = 128  # cnd_21's envs_count: samples per log line = 128 x the steps per environment
STEP, MAGNITUDE, BONUS = 0, 8, 11  # 0-based columns of result.log (plot_cnd's stats.mean[0], [8], [11])
UPDATES = (1, 10, 20, 60, 100, 120, 130, 140, 200, 400)


def read_log(path: str) -> np.ndarray:
    """(updates, 3): steps per environment, magnitude, bonus per log line."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                fields = line.split("{")[0].split()
                if not fields:
                    continue
                try:
                    rows.append([float(fields[STEP]), float(fields[MAGNITUDE]), float(fields[BONUS])])
                except (IndexError, ValueError):
                    raise PlotInputError(f"'{path}' line {number} is not a result.log line of the SND author's "
                                         f"code (fewer than {BONUS + 1} numbers)") from None
    except OSError as e:
        raise PlotInputError(f"cannot read '{path}': {e.strerror}") from None
    if not rows:
        raise PlotInputError(f"'{path}' holds no log line")
    return np.array(rows)


def read_run(path: str) -> dict:
    from experiment.files import FileFormatError, load_metrics
    try:
        data = load_metrics(path)
    except (OSError, FileFormatError) as e:
        raise PlotInputError(f"cannot read '{path}': {e}") from None
    config, metrics = data["config"], data["metrics"]
    if config.get("distillation") not in ("snd", "snd_entropy") or "feature_magnitude" not in metrics:
        raise PlotInputError(f"'{path}' is not a PPO + SND run")
    steps_per_update = config["num_envs"] * config["rollout_length"]
    return {"updates_per_period": config["eval_frequency"] // steps_per_update, "steps_per_update": steps_per_update,
            "magnitude": 2 * np.asarray(metrics["feature_magnitude"], float),
            "bonus": np.asarray(metrics["int_reward_clipped_mean"], float)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", required=True, help="the author's result.log")
    parser.add_argument("--run", required=True, help="our PPO + SND run's .out")
    parser.add_argument("-o", "--output", required=True, help="writes OUTPUT.md and OUTPUT.png")
    parser.add_argument("--updates", type=int, nargs="+", default=list(UPDATES), help="the table's updates")
    args = parser.parse_args(argv)
    try:
        log, run = read_log(args.log), read_run(args.run)
    except PlotInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    periods, seeds = run["magnitude"].shape
    lines = [f"| update | author: samples | author: magnitude | author: bonus | ours: steps per seed | ours: "
             f"magnitude ({seeds} seeds) | ours: bonus |", "|---|---|---|---|---|---|---|"]
    for update in args.updates:
        author = (f"{log[update - 1, 0] * LOG_ENVS / 1e6:.2f}M | {log[update - 1, 1]:.2f} | {log[update - 1, 2]:.4f}"
                  if update <= len(log) else "- | - | -")
        period = (update - 1) // run["updates_per_period"]
        if period < periods:
            cells = []
            for name, digits in (("magnitude", 2), ("bonus", 4)):
                mean, low, high, _ = band_of(run[name][period][None, :], rng)
                cells.append(f"{mean[0]:.{digits}f} ({low[0]:.{digits}f}, {high[0]:.{digits}f})")
            ours = f"{update * run['steps_per_update']:,} | " + " | ".join(cells)
        else:
            ours = "not run | - | -"
        lines.append(f"| {update} | {author} | {ours} |")
    lines += ["", "Magnitude: mean(z_a^2) + mean(z_b^2), the log's sum over a pair's two views (ours: twice "
              "feature_magnitude); bonus: the mean clipped intrinsic reward per step. Ours: the evaluation period "
              "holding the update, mean of seeds (95% bootstrap interval, or the range below 5 seeds)."]

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ours_updates = (np.arange(periods) + 0.5) * run["updates_per_period"]
    for axis, (name, column, ylabel) in zip(axes, (("magnitude", 1, "target feature magnitude (two views)"),
                                                   ("bonus", 2, "intrinsic reward per step (clipped)"))):
        axis.plot(np.arange(1, len(log) + 1), log[:, column], color="black", linewidth=1,
                  label="the SND author's log (cnd_21, Montezuma's Revenge, 1 seed)")
        mean, low, high, words = band_of(run[name], rng)
        (line,) = axis.plot(ours_updates, mean, label=f"ours ({words})")
        axis.fill_between(ours_updates, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
        axis.set(xscale="log", yscale="log", xlabel="PPO updates (one per rollout)", ylabel=ylabel)
        axis.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.output + ".png", dpi=100)
    write_report(args.output, lines)
    print("\n".join(lines))
    print(f"wrote {args.output}.md and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
