"""Plain PPO against PureJaxRL's PPO in learning: both at PureJaxRL's settings, many seeds each, the mean return of
the training episodes that end in each period, and the parity statistic.

    python benchmarks/ppo_purejaxrl.py --purejaxrl PATH --task cartpole --seeds 16 -o docs/figures/ppo_purejaxrl_cartpole
    python benchmarks/ppo_purejaxrl.py --purejaxrl PATH --task minatar --seeds 16 -o docs/figures/ppo_purejaxrl_minatar
    python benchmarks/ppo_purejaxrl.py --replot OUTPUT          # the figure and statistic again from OUTPUT.json

PATH is a clone of PureJaxRL (github.com/luchris429/purejaxrl; its purejaxrl/ folder); their `make_train` from
purejaxrl/ppo.py is imported from there and run as they run it, vmapped over seeds (needs the bench extra:
distrax). Ours: the agent's init and every chunk's interact in one jitted program, vmapped over the same number of
seeds (the harness's program minus its file writes).

Tasks (PureJaxRL's settings; both sides get the same environment-step budget):
- cartpole: purejaxrl/ppo.py's own config (CartPole-v1, 4 envs x 128 steps, 5e5 steps, tanh); ours
  configs/ppo/CartPole_purejaxrl.json. Periods of 8,192 steps (16 updates).
- minatar: the MinAtar config of PureJaxRL's examples/brax_minatar.ipynb (64 envs x 128 steps, 4 epochs of 8
  minibatches, step size 5e-3 annealed, relu MLP 64-64) on Breakout-MinAtar (the notebook's game is
  SpaceInvaders-MinAtar; Breakout is the MinAtar game of PureJaxRL's README figures), with --steps (default
  2,097,152, the notebook's 1e7 does not fit this CPU at 16 seeds a side); ours
  configs/ppo/Breakout_purejaxrl.json. Periods of 65,536 steps (8 updates).

The metric on both sides: per period and seed, the mean return of the training episodes that ended in that period
(their LogWrapper's returned_episode_returns where returned_episode is set; ours the agent's `return` metric). The
parity statistic: per period, the 95% percentile-bootstrap interval of mean(ours) - mean(PureJaxRL), resampling
each side's seeds; the goal is that it contains 0 at >= 85% of periods. Ours' side is kept in OUTPUT.ours.json
until the end, so a run stopped during PureJaxRL's side starts again there.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402

from bench_ppo import PUREJAXRL_CONFIG, import_purejaxrl_ppo, ours_whole_training  # noqa: E402
from experiment.config import load_config, validate  # noqa: E402
from experiment.files import atomic_write  # noqa: E402

MINATAR_CONFIG = {"LR": 5e-3, "NUM_ENVS": 64, "NUM_STEPS": 128, "TOTAL_TIMESTEPS": 2 ** 21, "UPDATE_EPOCHS": 4,
                  "NUM_MINIBATCHES": 8, "GAMMA": 0.99, "GAE_LAMBDA": 0.95, "CLIP_EPS": 0.2, "ENT_COEF": 0.01,
                  "VF_COEF": 0.5, "MAX_GRAD_NORM": 0.5, "ACTIVATION": "relu", "ENV_NAME": "Breakout-MinAtar",
                  "ANNEAL_LR": True, "DEBUG": False}
TASKS = {"cartpole": (PUREJAXRL_CONFIG, "configs/ppo/CartPole_purejaxrl.json"),
         "minatar": (MINATAR_CONFIG, "configs/ppo/Breakout_purejaxrl.json")}


def period_means(returns: np.ndarray, ended: np.ndarray, updates_per_period: int) -> np.ndarray:
    """(periods, seeds) mean return of the episodes ending in each period, from per-step arrays (seeds, updates,
    steps, envs); NaN where none ended."""
    seeds, updates = returns.shape[:2]
    periods = updates // updates_per_period
    shape = (seeds, periods, -1)
    total = (returns * ended)[:, :periods * updates_per_period].reshape(shape).sum(-1)
    count = ended[:, :periods * updates_per_period].reshape(shape).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).T


def run_purejaxrl(module, config: dict, seeds: int, master_seed: int, period_steps: int) -> np.ndarray:
    train = jax.jit(jax.vmap(module.make_train(dict(config))))
    metrics = jax.device_get(train(jax.random.split(jax.random.PRNGKey(master_seed), seeds))["metrics"])
    per_period = period_steps // (config["NUM_ENVS"] * config["NUM_STEPS"])
    return period_means(np.asarray(metrics["returned_episode_returns"], np.float64),
                        np.asarray(metrics["returned_episode"], np.float64), per_period)


def run_ours(config: dict, seeds: int, master_seed: int) -> np.ndarray:
    train = jax.jit(jax.vmap(ours_whole_training(config)))
    returns = train(jax.random.split(jax.random.PRNGKey(master_seed), seeds))  # (seeds, periods)
    return np.asarray(jax.device_get(returns), np.float64).T


def summarise(data: dict, output: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plot_metric import bootstrap_band
    from psdrl_original import parity

    ours, theirs = np.array(data["ours"], float), np.array(data["purejaxrl"], float)
    points = min(len(ours), len(theirs))
    ours, theirs = ours[:points], theirs[:points]
    steps = np.arange(1, points + 1) * data["period_steps"]
    rng = np.random.default_rng(0)
    difference, low, high = parity(ours, theirs, rng)
    contains = (low <= 0) & (0 <= high)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for values, label, colour in ((ours, f"seedsuite PPO, {ours.shape[1]} seeds", "C0"),
                                  (theirs, f"PureJaxRL PPO, {theirs.shape[1]} seeds", "C1")):
        mean, band_low, band_high = bootstrap_band(values, rng=rng)
        axes[0].plot(steps, mean, color=colour, label=label)
        axes[0].fill_between(steps, band_low, band_high, color=colour, alpha=0.2)
    axes[0].set(xlabel="environment steps (all environments of a seed)",
                ylabel="return of the training episodes ending in the period\n(mean of seeds, 95% bootstrap CI)",
                title=data["environment"])
    axes[0].legend(fontsize=8, loc="lower right")
    axes[1].axhline(0, color="grey", linewidth=0.8)
    axes[1].plot(steps, difference, color="C2")
    axes[1].fill_between(steps, low, high, color="C2", alpha=0.25)
    axes[1].set(xlabel="environment steps (all environments of a seed)",
                ylabel="mean(seedsuite) - mean(PureJaxRL)\n(95% bootstrap CI)",
                title=f"CI contains 0 at {contains.sum()} of {points} periods")
    figure.tight_layout()
    figure.savefig(output + ".png", dpi=110)
    last = parity(ours[-5:].mean(0, keepdims=True), theirs[-5:].mean(0, keepdims=True), rng)
    data.update({"ci_contains_zero": float(contains.mean()), "difference": difference.tolist(),
                 "low": low.tolist(), "high": high.tolist(), "last5_difference": float(last[0][0]),
                 "last5_ci": [float(last[1][0]), float(last[2][0])]})
    with open(output + ".json", "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    return (f"{data['environment']}: the 95% CI of ours - PureJaxRL contains 0 at {contains.sum()} of {points} "
            f"periods ({contains.mean():.0%}; goal 85%); last 5 periods {last[0][0]:+.1f} ({last[1][0]:+.1f}, "
            f"{last[2][0]:+.1f}); final period ours {np.nanmean(ours[-1]):.1f}, PureJaxRL {np.nanmean(theirs[-1]):.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--purejaxrl", help="a clone of PureJaxRL (the folder holding purejaxrl/)")
    parser.add_argument("--task", choices=sorted(TASKS), default="cartpole")
    parser.add_argument("--seeds", type=int, default=16, help="seeds per side, vmapped (default 16)")
    parser.add_argument("--steps", type=int, help="environment steps per seed (default: the task's)")
    parser.add_argument("--seed", type=int, default=0, help="master seed (PureJaxRL's side uses seed + 1)")
    parser.add_argument("-o", "--output", help="OUTPUT.json (both sides' per-period returns, the statistic) and "
                                               "OUTPUT.png")
    parser.add_argument("--replot", metavar="OUTPUT", help="redraw OUTPUT.png and the statistic from OUTPUT.json")
    args = parser.parse_args(argv)
    if args.replot:
        with open(args.replot + ".json", encoding="utf-8") as f:
            print(summarise(json.load(f), args.replot))
        return 0
    if not args.purejaxrl or not args.output:
        parser.error("--purejaxrl and --output are needed (or --replot OUTPUT)")
    if args.seeds < 2:
        parser.error("--seeds must be at least 2 (the statistic resamples seeds)")
    their_config, our_path = TASKS[args.task]
    their_config = dict(their_config)
    raw = load_config("PPO", our_path)
    raw = {k: v for k, v in raw.items() if k not in ("agent_type", "sweep")}
    if args.steps:
        per_update = their_config["NUM_ENVS"] * their_config["NUM_STEPS"]
        if args.steps % raw["eval_frequency"]:
            parser.error(f"--steps must be a multiple of the period, {raw['eval_frequency']} steps")
        their_config["TOTAL_TIMESTEPS"] = args.steps
        raw.update(num_steps=args.steps // per_update * per_update, save_frequency=args.steps)
    config = validate("PPO", raw)
    module = import_purejaxrl_ppo(args.purejaxrl)
    run = {"task": args.task, "seeds": args.seeds, "seed": args.seed, "steps": config["num_steps"]}
    ours_path = args.output + ".ours.json"  # ours' side kept, so a run stopped in PureJaxRL's side resumes there
    kept = json.load(open(ours_path, encoding="utf-8")) if os.path.exists(ours_path) else {}
    if kept.get("run") == run:
        ours, our_seconds = np.array(kept["ours"], float), kept["seconds"]
        print(f"ours: read from {ours_path}", flush=True)
    else:
        started = time.perf_counter()
        ours = run_ours(config, args.seeds, args.seed)
        our_seconds = time.perf_counter() - started
        text = json.dumps({"run": run, "ours": ours.tolist(), "seconds": our_seconds})
        atomic_write(ours_path, lambda f: f.write(text.encode()))
        print(f"ours: {args.seeds} seeds x {config['num_steps']} steps in {our_seconds:.0f} s", flush=True)
    started = time.perf_counter()
    theirs = run_purejaxrl(module, their_config, args.seeds, args.seed + 1, config["eval_frequency"])
    their_seconds = time.perf_counter() - started
    print(f"PureJaxRL: {args.seeds} seeds in {their_seconds:.0f} s", flush=True)
    data = {"task": args.task, "environment": their_config["ENV_NAME"], "seeds": args.seeds,
            "period_steps": config["eval_frequency"], "steps": config["num_steps"], "purejaxrl_config": their_config,
            "ours_config": our_path, "ours_seconds": our_seconds, "purejaxrl_seconds": their_seconds,
            "ours": ours.tolist(), "purejaxrl": theirs.tolist()}
    print(summarise(data, args.output))
    os.remove(ours_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
