"""PSDRL against conv ER DQN, the published code and the random policy: one figure, one table (docs/psdrl.md).

    python benchmarks/psdrl_results.py -o docs/figures/psdrl_results \\
        --panel "Catch" "PSDRL, 3 iterations=catch_moves.json" "PSDRL, 12 iterations=catch_12.json" \\
                "published code, 3 iterations=original_seed0.json,...,original_seed4.json" "conv ER DQN=dqn_catch.out" \\
        --panel "ProcMaze G=3" "PSDRL, 3 iterations=maze.out" "conv ER DQN=dqn_maze.out"

Each --panel is a title and its series, LABEL=PATH[,PATH...]; a series' paths are pooled as seeds. A path is a
.out of a run with log_episodes true (any agent of ours), a psdrl_moves.py log, or a benchmarks/psdrl_original.py
log (one seed). Every series is reduced to the same statistic: per seed, the mean return of the training episodes
that ended in each block of --block steps (the configs' eval_frequency by default). Each panel also gets a uniformly
random policy, run here on the panel's environment without rendering (the rewards do not depend on it) with the
episode cap of the panel's first PSDRL config (time_limit + 1 agent steps, as its training episodes), --random-seeds
seeds over the same number of steps. Writes O.png (mean of seeds, 95% percentile-bootstrap band over seeds), O.md
(a table per 1,000 steps: mean and 95% bootstrap interval of the seeds' means) and O.json. Bad input prints one line
"error: ..." and exits with status 2.
"""
import argparse
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from plot_metric import PlotInputError, bootstrap_band, load_episodes  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panel", nargs="+", action="append", required=True, metavar="TITLE LABEL=PATHS",
                        help="a panel's title, then its series as LABEL=PATH[,PATH...]")
    parser.add_argument("-o", "--output", required=True, help="writes OUTPUT.png, OUTPUT.md and OUTPUT.json")
    parser.add_argument("--block", type=int, default=None, help="steps per point (default: the eval_frequency)")
    parser.add_argument("--random-seeds", type=int, default=10, help="seeds of the random policy (10)")
    parser.add_argument("--table-block", type=int, default=1000, help="steps per row of the table (1000)")
    return parser.parse_args(argv)


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise PlotInputError(f"cannot read '{path}': {e}") from None


def episode_blocks(path: str, block: int | None):
    """(returns (points, seeds), block, config) from one file of any of the three kinds."""
    if path.endswith(".out"):
        from experiment.files import load_metrics

        table, num_seeds = load_episodes(path)
        config = load_metrics(path)["config"]
        block = block or config["eval_frequency"]
        points = config["num_steps"] // block
        values = np.full((points, num_seeds), np.nan)
        index = (np.asarray(table["end_step"]) - 1) // block  # an episode ending at step k*block is in block k-1
        for seed in range(num_seeds):
            for point in range(points):
                mine = (table["seed"] == seed) & (index == point)
                if mine.any():
                    values[point, seed] = np.mean(table["return"][mine])
        return values, block, config
    log = _read_json(path)
    if "chunks" in log:  # psdrl_moves.py
        steps = [chunk["step"] for chunk in log["chunks"]]
        values = np.array([chunk["train_return"] for chunk in log["chunks"]], float)
    elif "train_return" in log:  # benchmarks/psdrl_original.py, one seed
        steps = log["chunk_steps"]
        values = np.array(log["train_return"], float)[:, None]
    else:
        raise PlotInputError(f"'{path}' is neither a psdrl_moves.py log nor a psdrl_original.py log")
    logged = steps[0] if steps else None
    if block is not None and logged != block:
        raise PlotInputError(f"'{path}' logs every {logged} steps, not every --block {block}")
    return values, logged, log["config"]


def load_series(paths: list[str], block: int | None):
    parts = [episode_blocks(path, block) for path in paths]
    blocks = {b for _, b, _ in parts}
    if len(blocks) != 1:
        raise PlotInputError(f"{', '.join(paths)}: their points are {sorted(blocks)} steps apart; pass --block")
    points = min(len(values) for values, _, _ in parts)
    return np.concatenate([values[:points] for values, _, _ in parts], axis=1), blocks.pop(), parts[0][2]


def random_policy(config: dict, cap: int, num_steps: int, block: int, num_seeds: int, seed: int = 0):
    """Per seed, the mean return of a uniformly random policy's episodes per block, episodes cut after `cap` steps."""
    import jax
    import jax.numpy as jnp

    import envs

    env, params = envs.make(config["environment"], **config.get("env_config", {}))
    num_actions = env.action_space(params).n

    def run(key):
        reset_key, key = jax.random.split(key)
        _, state = env.reset(reset_key, params)

        def step(carry, key):
            state, length, total = carry
            action_key, step_key, reset_key = jax.random.split(key, 3)
            action = jax.random.randint(action_key, (), 0, num_actions)
            _, next_state, reward, terminated, truncated, _ = env.step(step_key, state, action, params)
            done = terminated | truncated  # gymnax's step has already reset next_state then
            total, length = total + reward, length + 1
            ended = done | (length >= cap)
            _, fresh = env.reset(reset_key, params)
            next_state = jax.tree.map(lambda a, b: jnp.where(ended & ~done, a, b), fresh, next_state)
            return (next_state, jnp.where(ended, 0, length), jnp.where(ended, 0.0, total)), (ended, total)

        keys = jax.random.split(key, num_steps)
        _, (ended, returns) = jax.lax.scan(step, (state, jnp.int32(0), jnp.float32(0.0)), keys)
        return ended, returns

    ended, returns = jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(seed), num_seeds))
    ended = np.asarray(ended).reshape(num_seeds, -1, block)
    returns = np.asarray(returns).reshape(num_seeds, -1, block)
    sums, counts = (returns * ended).sum(-1), ended.sum(-1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).T  # (points, seeds)


def band(values: np.ndarray, rng):
    """bootstrap_band per row over the seeds that finished an episode in it."""
    rows = [bootstrap_band(row[np.isfinite(row)][None, :], rng=rng) if np.isfinite(row).any() else ([np.nan],) * 3
            for row in values]
    return tuple(np.array([r[i][0] for r in rows]) for i in range(3))


def interval(values: np.ndarray, rng, resamples: int = 10000):
    """Mean of the seeds' values and its 95% percentile-bootstrap interval (resampling seeds)."""
    values = values[np.isfinite(values)]
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(1)
    return values.mean(), *np.percentile(means, [2.5, 97.5])


def panel_cap(series_configs) -> int:
    for config in series_configs:
        if "time_limit" in config and "warmup_length" in config:  # a PSDRL config: training episodes of T + 1 steps
            return config["time_limit"] + 1
    raise PlotInputError("a panel needs one PSDRL series (its time_limit sets the random policy's episode cap)")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        panels = []
        for entry in args.panel:
            if len(entry) < 2:
                raise PlotInputError(f"--panel {entry[0]!r} has no series (LABEL=PATH[,PATH...])")
            title, series = entry[0], []
            for spec in entry[1:]:
                label, _, paths = spec.partition("=")
                if not label or not paths:
                    raise PlotInputError(f"'{spec}' is not LABEL=PATH[,PATH...]")
                values, block, config = load_series(paths.split(","), args.block)
                series.append((label, values, block, config))
            blocks = {block for _, _, block, _ in series}
            if len(blocks) != 1:
                raise PlotInputError(f"panel '{title}': series' points are {sorted(blocks)} steps apart; pass --block")
            block = blocks.pop()
            steps = min(len(values) for _, values, _, _ in series) * block
            cap = panel_cap([config for *_, config in series])
            random = random_policy(series[0][3], cap, steps, block, args.random_seeds)
            series.append((f"uniformly random policy (episodes cut at {cap} steps)", random, block, series[0][3]))
            panels.append((title, block, steps, [(label, values[: steps // block]) for label, values, _, _ in series]))
    except (PlotInputError, ValueError, KeyError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    figure, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    lines, summary = ["| panel | series | seeds | " + " | ".join(
        f"{k * args.table_block // 1000}k-{(k + 1) * args.table_block // 1000}k"
        for k in range(max(p[2] for p in panels) // args.table_block)) + " |"], {}
    lines.append("|" + "---|" * (3 + max(p[2] for p in panels) // args.table_block))
    for axis, (title, block, steps, series) in zip(axes[0], panels):
        x = block * np.arange(1, steps // block + 1)
        for colour, (label, values) in enumerate(series):
            mean, low, high = band(values, rng)
            seeds = values.shape[1]
            axis.plot(x, mean, color=f"C{colour}", label=f"{label} ({seeds} seeds)")
            axis.fill_between(x, low, high, color=f"C{colour}", alpha=0.18)
            per_row = args.table_block // block
            cells = []
            for row in range(steps // args.table_block):
                seed_means = np.nanmean(values[row * per_row:(row + 1) * per_row], axis=0)
                mean_value, low_value, high_value = interval(seed_means, rng)
                cells.append(f"{mean_value:+.2f} ({low_value:+.2f}, {high_value:+.2f})")
                summary.setdefault(title, {}).setdefault(label, []).append([mean_value, low_value, high_value])
            lines.append(f"| {title} | {label} | {seeds} | " + " | ".join(cells) + " |")
        axis.set(title=title, xlabel="environment steps per seed",
                 ylabel=f"training-episode return per {block} steps\n(mean of seeds, 95% bootstrap CI)")
        axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    figure.savefig(args.output + ".png", dpi=110, bbox_inches="tight")
    with open(args.output + ".md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(args.output + ".json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    print("\n".join(lines))
    print(f"wrote {args.output}.png, .md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
