"""PETS runs against the random-action and zero-action baselines: one figure, one table (docs/pets.md).

    python benchmarks/pets_results.py -o docs/figures/pets_results --episodes 5 10 15 \\
        --panel "cartpole swing-up" "PE-TSinf-CEM, reduced=swingup.out"

Each --panel is a title and its series, LABEL=PATH[,PATH...] (a series' .out files are pooled as seeds; every file
must be a PETS run of the panel's task). Per planned episode (1 = the first after the random ones) a series gives
its seeds' episode return and running maximum of planned returns (the .out's `return` and `return_running_max`).
Each panel also gets two baselines, run here on the panel's task for --baseline-seeds episodes of the series'
task_hor steps each from the task's own reset: uniformly random actions in the action box (what the random first
episodes do) and the zero action (holding still; the box midpoint for every task here). Writes O.png (top row:
return per planned episode, bottom row: running maximum; mean of seeds with a 95% percentile-bootstrap band over
seeds, or the seeds' range below 5 seeds; the baselines as horizontal bands), O.md (a table at --episodes) and
O.json. Bad input prints one line "error: ..." and exits with status 2.
"""
import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from plot_metric import PlotInputError, bootstrap_band, write_report  # noqa: E402

MIN_SEEDS_FOR_CI = 5


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panel", nargs="+", action="append", required=True, metavar="TITLE LABEL=PATHS",
                        help="a panel's title, then its series as LABEL=PATH[,PATH...]")
    parser.add_argument("-o", "--output", required=True, help="writes OUTPUT.png, OUTPUT.md and OUTPUT.json")
    parser.add_argument("--episodes", type=int, nargs="+", default=[5, 10, 15],
                        help="planned episodes (1-based) in the table (5 10 15)")
    parser.add_argument("--baseline-seeds", type=int, default=20, help="episodes per baseline (20)")
    args = parser.parse_args(argv)
    if args.baseline_seeds < 2 or min(args.episodes) < 1:
        parser.error("--baseline-seeds must be >= 2 and --episodes >= 1")
    return args


def load_series(paths: list[str]) -> tuple[np.ndarray, np.ndarray, dict]:
    """(returns (planned episodes, seeds), running maxima (same), config) pooled over paths."""
    from experiment.files import FileFormatError, load_metrics

    returns, maxima, config = [], [], None
    for path in paths:
        try:
            data = load_metrics(path)
        except (OSError, FileFormatError) as e:
            raise PlotInputError(f"cannot read '{path}': {e}") from None
        metrics, this = data["metrics"], data["config"]
        if "return_running_max" not in metrics or "ninit_rollouts" not in this:
            raise PlotInputError(f"'{path}' is not a PETS run's .out (no return_running_max)")
        if config is not None and any(this[k] != config[k] for k in ("environment", "env_config", "task_hor",
                                                                     "ninit_rollouts")):
            raise PlotInputError(f"'{path}' is a different task or protocol from '{paths[0]}'")
        config = config or this
        random_episodes = this["ninit_rollouts"]
        returns.append(metrics["return"][random_episodes:])
        maxima.append(metrics["return_running_max"][random_episodes:])
    episodes = min(len(r) for r in returns)
    if episodes == 0:
        raise PlotInputError(f"'{paths[0]}' holds no planned episode yet")
    return (np.concatenate([r[:episodes] for r in returns], axis=1),
            np.concatenate([m[:episodes] for m in maxima], axis=1), config)


def baselines(config: dict, seeds: int) -> dict:
    """{'random actions': returns (seeds,), 'zero action': returns (seeds,)}: whole task_hor-step episodes."""
    import jax
    import jax.numpy as jnp

    import envs

    env, env_params = envs.make_from_config(config)
    space = env.action_space(env_params)
    lower, upper = jnp.broadcast_to(space.low, space.shape), jnp.broadcast_to(space.high, space.shape)

    def episode(key, random: bool):
        reset_key, loop_key = jax.random.split(key)
        _, env_state = env.reset_env(reset_key, env_params)

        def control(env_state, step_key):
            action_key, env_key = jax.random.split(step_key)
            action = (jax.random.uniform(action_key, space.shape, minval=lower, maxval=upper) if random
                      else (lower + upper) / 2)
            _, env_state, reward, _, _ = env.step_env(env_key, env_state, action, env_params)
            return env_state, jnp.reshape(reward, ()).astype(jnp.float32)

        return jnp.sum(jax.lax.scan(control, env_state, jax.random.split(loop_key, config["task_hor"]))[1])

    keys = jax.random.split(jax.random.PRNGKey(12345), seeds)
    return {name: np.asarray(jax.jit(jax.vmap(lambda k: episode(k, random)))(keys))
            for name, random in (("uniformly random actions", True), ("zero action", False))}


def summary(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, low, high) over the last axis: a 95% bootstrap interval from 5 seeds, else the seeds' range."""
    values = np.asarray(values, float).reshape(1, -1)
    if values.shape[1] >= MIN_SEEDS_FOR_CI:
        mean, low, high = bootstrap_band(values, rng=0)
        return float(mean[0]), float(low[0]), float(high[0])
    return float(values.mean()), float(values.min()), float(values.max())


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        panels = []
        for title, *series in args.panel:
            if not series:
                raise PlotInputError(f"panel '{title}' has no series")
            loaded = []
            for item in series:
                label, sep, paths = item.partition("=")
                if not sep or not paths:
                    raise PlotInputError(f"series '{item}' is not LABEL=PATH[,PATH...]")
                loaded.append((label, *load_series(paths.split(","))))
            panels.append((title, loaded, baselines(loaded[0][3], args.baseline_seeds)))
    except (PlotInputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(2, len(panels), figsize=(5.5 * len(panels), 7), squeeze=False)
    record, lines = {}, []
    for column, (title, loaded, base) in enumerate(panels):
        lines += [f"### {title}", "", "| series | seeds | " + " | ".join(
            f"planned episode {e}: return / running max" for e in args.episodes) + " |",
                  "|---|---|" + "---|" * len(args.episodes)]
        record[title] = {"series": {}, "baselines": {name: values.tolist() for name, values in base.items()}}
        for row, (name, values_of) in enumerate((("return", 1), ("running maximum of planned returns", 2))):
            axis = axes[row, column]
            for label, *data in loaded:
                values = data[values_of - 1]
                mean, low, high = (bootstrap_band(values, rng=0) if values.shape[1] >= MIN_SEEDS_FOR_CI else
                                   (values.mean(1), values.min(1), values.max(1)))
                band = "95% bootstrap CI" if values.shape[1] >= MIN_SEEDS_FOR_CI else "range"
                x = np.arange(1, len(mean) + 1)
                axis.plot(x, mean, label=f"{label} ({values.shape[1]} seeds, {band})")
                axis.fill_between(x, low, high, alpha=0.25)
            for (base_name, base_values), color in zip(base.items(), ("grey", "black")):
                mean, low, high = summary(base_values)
                axis.axhline(mean, color=color, linestyle="--", linewidth=1,
                             label=f"{base_name} ({len(base_values)} episodes, 95% bootstrap CI)")
                axis.axhspan(low, high, color=color, alpha=0.12)
            axis.set(xlabel="planned episode", ylabel=f"episode {name}\n(mean of seeds)",
                     title=title if row == 0 else None)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0, column].legend(fontsize=7, loc="best")
        for label, returns, maxima, _ in loaded:
            cells = []
            for episode in args.episodes:
                if episode > len(returns):
                    cells.append("not run")
                    continue
                (r, rl, rh), (m, ml, mh) = summary(returns[episode - 1]), summary(maxima[episode - 1])
                cells.append(f"{r:.1f} ({rl:.1f}, {rh:.1f}) / {m:.1f} ({ml:.1f}, {mh:.1f})")
            lines.append(f"| {label} | {returns.shape[1]} | " + " | ".join(cells) + " |")
            record[title]["series"][label] = {"return": returns.tolist(), "running_max": maxima.tolist()}
        for base_name, values in base.items():
            mean, low, high = summary(values)
            lines.append(f"| {base_name} (one episode each) | {len(values)} | "
                         + " | ".join([f"{mean:.1f} ({low:.1f}, {high:.1f})"] * len(args.episodes)) + " |")
        lines += ["", "Mean of seeds (95% bootstrap interval over seeds; the seeds' range below 5 seeds).", ""]
    figure.tight_layout()
    figure.savefig(args.output + ".png", dpi=110)
    write_report(args.output, lines, record)
    print("\n".join(lines))
    print(f"wrote {args.output}.png, .md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
