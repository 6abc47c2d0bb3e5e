"""Plot a logged metric from one or more .out files: mean over seeds with a bootstrapped confidence band.

Usage (the flags of the original paper script are kept as they were):

    python3 plot_metric.py --data A.out B.out ... [--window W] [--frequency F] [--metric M]
                           [--output FIG.png] [--labels LA LB ...] [--bootstrap-seed N] [--title T] [--ylabel Y]
                           [--chunk-start-times]

For each file: values = metric[::F] (shape (T, S): evaluations x seeds) and times = eval_times[::F]; every seed's curve
and the times are smoothed with a length-W moving average in 'valid' mode (W-1 points are lost); the curve is the mean
over seeds at each time, and the band is a percentile bootstrap over seeds (1000 resamples, 95%), as seaborn's
lineplot draws by default, from 5 seeds; with fewer the band is the seeds' range; the legend says which. One curve
per file, labelled with its agent and environment (or --labels); the axes say what the metric and the steps are, as
the .out's meta declares them (experiment/metrics.py); evaluations are drawn at the step they were taken (the end of
their chunk; --chunk-start-times: at its start, as the paper's figures); a metric meaning different things in
different files (a DQN's greedy evaluation against PPO's training episodes) draws a warning. Jobs of
one config run as separate processes pool into one curve: `--data A.out,B.out,C.out` (or `--pool`, every file one
curve; `--group`, one curve per config), refused in one line when their configs differ beyond the seed.

Unlike the original (which only called plt.show()), the figure is saved with --output, and always when no display is
available (then to <metric>.png in the current directory). Files are read only through experiment.files.load_metrics
(experiment.results pools them), which never runs code from a file. Bad input prints one line "error: ..." to stderr and exits with status 2.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiment import metrics as metrics_lib  # noqa: E402
from experiment.files import FileFormatError, atomic_write  # noqa: E402
from experiment.results import group_by_config, load_runs  # noqa: E402

DEFAULT_METRIC = "reward_rates"
NUM_RESAMPLES = 1000  # seaborn's n_boot default
CONFIDENCE = 95.0  # seaborn's errorbar=("ci", 95) default, in percent
MIN_SEEDS_FOR_CI = 5  # below this a bootstrap over seeds says little: the band is the seeds' range, and says so
BAND_ALPHA = 0.2  # seaborn's default alpha for the error band
_NON_INTERACTIVE_BACKENDS = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}


class PlotInputError(ValueError):
    """Bad command-line input or data; the message is printed as one 'error: ...' line."""


# --- computation -----------------------------------------------------------------------------------

def smooth(values, times, window: int):
    """Length-`window` moving average ('valid' mode) of every column of `values` (T, S) and of `times` (T,).

    Returns (values (T-window+1, S) float, times (T-window+1,) float); window=1 returns float copies unchanged.
    """
    values = np.asarray(values, dtype=float)
    times = np.asarray(times, dtype=float)
    if values.ndim != 2 or times.ndim != 1 or len(times) != len(values):
        raise ValueError(f"expected values (T, S) and times (T,), got {values.shape} and {times.shape}")
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be an integer >= 1, got {window!r}")
    if window > len(times):
        raise ValueError(f"window {window} is larger than the number of points ({len(times)})")
    kernel = np.full(window, 1.0 / window)
    smoothed_times = np.convolve(times, kernel, mode="valid")
    smoothed_values = np.lib.stride_tricks.sliding_window_view(values, window, axis=0).mean(axis=-1)
    return smoothed_values, smoothed_times


def bootstrap_band(values, num_resamples: int = NUM_RESAMPLES, confidence: float = CONFIDENCE, rng=None):
    """Mean over seeds and its percentile-bootstrap confidence band, at each row of `values` (N, S).

    Each bootstrap resample draws S seeds with replacement and takes their mean; the band is the
    (50 - confidence/2, 50 + confidence/2) percentiles of the `num_resamples` resampled means (confidence in percent,
    95 -> 2.5 / 97.5), as in seaborn's lineplot. Resamples are drawn as multinomial seed counts shared by all rows
    (each row's marginal band is distributed exactly as with independent resamples per row, as seaborn does), so the
    cost is one (N, S) x (S, B) product. rng: a numpy Generator, or a seed for one.

    Returns (mean, low, high), each of shape (N,). For identical seeds the band collapses exactly onto the mean.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] < 1:
        raise ValueError(f"expected values of shape (N, S) with S >= 1, got {values.shape}")
    if num_resamples < 1:
        raise ValueError(f"num_resamples must be >= 1, got {num_resamples}")
    if not 0 < confidence < 100:
        raise ValueError(f"confidence is a percentage in (0, 100), got {confidence}")
    rng = np.random.default_rng(rng)
    num_seeds = values.shape[1]
    # Means are taken of the deviations from the first seed and shifted back: the same means up to rounding,
    # but exactly the common value (mean and band alike) when every seed agrees.
    reference = values[:, :1]
    deviations = values - reference
    mean = reference[:, 0] + deviations.mean(axis=1)
    counts = rng.multinomial(num_seeds, np.full(num_seeds, 1.0 / num_seeds), size=num_resamples)  # (B, S)
    resampled = reference + deviations @ (counts.T / num_seeds)  # (N, B) resampled means
    low, high = np.percentile(resampled, [50 - confidence / 2, 50 + confidence / 2], axis=1)
    return mean, low, high


def write_report(output: str, lines: list[str], record=None) -> None:
    """A results script's table as OUTPUT.md and, given `record`, its numbers as OUTPUT.json, each written
    atomically (a kill leaves the old file or the new one)."""
    atomic_write(output + ".md", lambda f: f.write(("\n".join(lines) + "\n").encode("utf-8")))
    if record is not None:
        atomic_write(output + ".json", lambda f: f.write(json.dumps(record).encode("utf-8")))


# --- loading ---------------------------------------------------------------------------------------

def load_curve(path: str, metric: str = DEFAULT_METRIC, frequency: int = 1):
    """(values (T, S), times (T,)) of `metric` in the .out file at `path`, keeping every `frequency`-th evaluation.

    Raises PlotInputError (missing/corrupt/unsafe file, unknown metric, mismatched shapes).
    """
    return curve_from_metrics(_load(path)["metrics"], path, metric, frequency)


def curve_from_metrics(metrics: dict, path: str, metric: str, frequency: int = 1):
    """load_curve's checks and slicing on an already loaded 'metrics' dictionary of the file at `path`."""
    if metric not in metrics:
        available = ", ".join(sorted(metrics)) or "none"
        raise PlotInputError(f"'{path}' has no metric '{metric}'; available metrics: {available}")
    if "eval_times" not in metrics:
        raise PlotInputError(f"'{path}' has no 'eval_times' to plot against")
    values, times = np.asarray(metrics[metric]), np.asarray(metrics["eval_times"])
    if values.dtype.kind not in "biuf" or times.dtype.kind not in "biuf":
        raise PlotInputError(f"'{path}': metric '{metric}' or 'eval_times' is not numeric")
    if values.ndim == 1:  # a single seed
        values = values[:, None]
    if values.ndim != 2 or times.ndim != 1 or len(times) != len(values):
        raise PlotInputError(f"'{path}': metric '{metric}' has shape {values.shape}, expected (num_evals, num_seeds) "
                             f"matching eval_times of shape {times.shape}")
    if values.shape[1] == 0:
        raise PlotInputError(f"'{path}': metric '{metric}' has no seeds")
    return values[::frequency], times[::frequency]


# --- sweeps: .out files with a 'grid' (metrics of shape (num_evals, num_points, num_seeds)) ------------------

CRITERIA = ("auc", "final")
FINAL_FRACTION = 0.1  # "final": the mean of the last 10% of the evaluations (at least one) unless --final-window


def load_grid(path: str, metric: str = DEFAULT_METRIC, frequency: int = 1, allow_plain: bool = True):
    """(values (T, P, S), times (T,), grid): a sweep's metric per evaluation, point and seed, and the list of its
    points (dicts of swept values). A file without a sweep is one unnamed point when allow_plain is set. Runs the
    harness marked diverged are NaN from the start (see load_grid_and_divergence)."""
    values, times, grid, _ = load_grid_and_divergence(path, metric, frequency, allow_plain)
    return values, times, grid


def load_grid_and_divergence(path: str, metric: str = DEFAULT_METRIC, frequency: int = 1, allow_plain: bool = True):
    """load_grid's (values, times, grid) and diverged (P, S) bool: the runs whose parameters or loss became NaN
    or infinite (the .out's 'diverged_step' >= 0). Their values are NaN throughout, so no mean, band or ranking
    takes them in; a point with a diverged run ranks last."""
    data = _load(path)
    grid = data.get("grid")
    metrics = data["metrics"]
    if grid is None:
        if not allow_plain:
            raise PlotInputError(f"'{path}' holds no sweep (no 'grid'); run a config with a 'sweep' block")
        values, times = curve_from_metrics(metrics, path, metric, frequency)
        values, grid = values[:, None, :], [{}]
    else:
        if metric not in metrics:
            raise PlotInputError(f"'{path}' has no metric '{metric}'; available metrics: "
                                 f"{', '.join(sorted(metrics))}")
        values, times = np.asarray(metrics[metric]), np.asarray(metrics["eval_times"])
        if values.ndim != 3 or values.shape[1] != len(grid) or len(times) != len(values):
            raise PlotInputError(f"'{path}': metric '{metric}' has shape {values.shape}, expected (num_evals, "
                                 f"{len(grid)} points, num_seeds) matching eval_times of shape {times.shape}")
        values, times, grid = values[::frequency], times[::frequency], [dict(point) for point in grid]
    diverged = np.zeros(values.shape[1:], bool)
    if data.get("diverged_step") is not None:
        steps = np.asarray(data["diverged_step"])
        if steps.dtype.kind not in "iu" or steps.size != diverged.size:
            raise PlotInputError(f"'{path}': 'diverged_step' has shape {steps.shape}, expected one integer per run "
                                 f"({diverged.shape})")
        diverged = steps.reshape(diverged.shape) >= 0
    values = np.where(diverged, np.nan, np.asarray(values, dtype=float))
    return values, times, grid, diverged


def point_scores(values, criterion: str, final_window: int | None = None):
    """Each run's score (P, S) from its curve in values (T, P, S): "auc" the mean over all evaluations (the area
    under the curve divided by its length, for evenly spaced evaluations); "final" the mean of the last
    final_window evaluations (default: the last 10%, at least one)."""
    values = np.asarray(values, dtype=float)
    if criterion == "auc":
        return values.mean(axis=0)
    if criterion != "final":
        raise PlotInputError(f"unknown criterion '{criterion}' (known: {', '.join(CRITERIA)})")
    window = final_window or max(1, int(round(FINAL_FRACTION * len(values))))
    if window > len(values):
        raise PlotInputError(f"final window {window} is longer than the {len(values)} evaluations")
    return values[-window:].mean(axis=0)


def ranked_points(values, criterion: str, final_window=None, minimize: bool = False):
    """Point indices from best to worst by the mean over seeds of point_scores, and those scores (P, S)."""
    scores = point_scores(values, criterion, final_window)
    means = scores.mean(axis=1)
    return np.argsort(means if minimize else -means, kind="stable"), scores


def point_label(point: dict) -> str:
    return ", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                     for name, value in point.items()) or "no sweep"


def sensitivity_lines(values, grid, x_key: str, line_key: str | None, criterion: str, final_window=None,
                      minimize: bool = False):
    """Final performance against one swept key: {line value (None without line_key): (xs, scores (X, S))}.

    Swept keys other than x_key and line_key are set, per x and line value, to the point whose mean score is
    best (what a tuned run would pick)."""
    for key in (x_key, line_key):
        if key is not None and not all(key in point for point in grid):
            swept = sorted(grid[0]) if grid and grid[0] else []
            raise PlotInputError(f"'{key}' is not a swept key of this file (swept: {', '.join(swept) or 'none'})")
    scores = point_scores(values, criterion, final_window)
    means = scores.mean(axis=1) * (-1 if minimize else 1)
    best = {}  # (line value, x value) -> index of the best point
    for index, point in enumerate(grid):
        cell = (point[line_key] if line_key else None, point[x_key])
        if cell not in best or means[index] > means[best[cell]]:
            best[cell] = index
    lines = {}
    for line_value in dict.fromkeys(cell[0] for cell in best):
        xs = sorted(x for (lv, x) in best if lv == line_value)
        lines[line_value] = (np.asarray(xs, dtype=float), scores[[best[(line_value, x)] for x in xs]])
    return lines


def _load(path: str) -> dict:
    try:
        return load_runs(path)
    except FileFormatError as e:
        raise PlotInputError(str(e)) from None


def _point_index(grid, path: str, point) -> int:
    """The grid point to draw: `point`, checked against the file's grid (None: a file without a sweep)."""
    if grid is None:
        if point not in (None, 0):
            raise PlotInputError(f"--point {point}: '{path}' holds no sweep")
        return 0
    if point is None:
        if len(grid) == 1:
            return 0
        raise PlotInputError(f"'{path}' is a sweep of {len(grid)} grid points; choose one with --point K (or draw "
                             f"them all with --plot best, points or sensitivity)")
    if not 0 <= point < len(grid):
        raise PlotInputError(f"--point {point}: '{path}' has {len(grid)} grid points (0 to {len(grid) - 1})")
    return point


def _one_point(data: dict, path: str, point):
    """A sweep file's data restricted to grid point `point` ({metrics, episodes} as a file without a sweep has);
    files without a sweep pass through (point must then be None or 0)."""
    grid = data.get("grid")
    if grid is None:
        _point_index(grid, path, point)
        return data
    point = _point_index(grid, path, point)
    metrics = {name: values[:, point] if np.ndim(values) == 3 else values for name, values in data["metrics"].items()}
    selected = dict(data, metrics=metrics)
    if data.get("episodes") is not None:
        mine = data["episodes"]["point"] == point
        selected["episodes"] = {name: values[mine] for name, values in data["episodes"].items()}
    return selected


def load_episodes(path: str, point=None):
    """(table, num_seeds): the training episodes recorded in the .out at `path` (seed, return, length, end_step),
    of grid point `point` in a sweep."""
    data = _one_point(_load(path), path, point)
    table = data.get("episodes")
    if not table or len(table.get("return", ())) == 0:
        raise PlotInputError(f"'{path}' records no training episodes (run with log_episodes true)")
    num_seeds = int(data["config"].get("num_seeds", int(np.max(table["seed"])) + 1))
    return table, num_seeds


def rolling_episode_curve(table: dict, num_seeds: int, window: int = 100, num_points: int = 200):
    """Per seed, the mean return of its last `window` training episodes (fewer at the start), read off at
    `num_points` evenly spaced steps from the first step at which every seed has finished an episode.

    Returns (values (num_points, num_seeds), steps (num_points,)).
    """
    per_seed = []
    for seed in range(num_seeds):
        mine = table["seed"] == seed
        if not np.any(mine):
            raise PlotInputError(f"seed {seed} finished no training episode")
        returns = table["return"][mine].astype(float)
        sums = np.concatenate([[0.0], np.cumsum(returns)])
        counts = np.minimum(np.arange(1, len(returns) + 1), window)
        rolling = (sums[1:] - sums[np.arange(1, len(returns) + 1) - counts]) / counts
        per_seed.append((table["end_step"][mine], rolling))
    start = max(steps[0] for steps, _ in per_seed)
    end = max(steps[-1] for steps, _ in per_seed)
    grid = np.linspace(start, end, num_points) if end > start else np.array([start], float)
    values = np.stack([rolling[np.searchsorted(steps, grid, side="right") - 1] for steps, rolling in per_seed], axis=1)
    return values, grid


def gaussian_kde(samples, points):
    """Gaussian kernel density of 1-D `samples` at `points`, Scott's bandwidth (n^-1/5 times the std)."""
    samples = np.asarray(samples, float)
    spread = samples.std(ddof=1) if len(samples) > 1 else 0.0
    bandwidth = max(spread, 1e-3 * max(1.0, np.abs(samples).max())) * len(samples) ** (-1 / 5)
    z = (np.asarray(points, float)[:, None] - samples[None, :]) / bandwidth
    return np.exp(-0.5 * z**2).sum(axis=1) / (len(samples) * bandwidth * np.sqrt(2 * np.pi))


def final_scores(path: str, metric: str, window: int, point=None):
    """The scores a density plot compares: each seed's last `window` training episodes where the file has them,
    else each seed's final evaluation of `metric` (of grid point `point` in a sweep)."""
    data = _one_point(_load(path), path, point)
    table = data.get("episodes")
    if table and len(table.get("return", ())):
        return np.concatenate([table["return"][table["seed"] == seed][-window:] for seed in np.unique(table["seed"])])
    values, _ = curve_from_metrics(data["metrics"], path, metric)
    return values[-1]


# --- plotting --------------------------------------------------------------------------------------

def _display_available() -> bool:
    """Whether plt.show() can open a window: a display on X11/Wayland systems and an interactive backend."""
    if os.name == "posix" and sys.platform != "darwin" and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    import matplotlib
    return matplotlib.get_backend().lower() not in _NON_INTERACTIVE_BACKENDS


def _finish(fig, ax, xlabel: str, ylabel: str, title):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    # below the axes, never over the data; savefig's tight bounding box keeps it in the file
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize="small", frameon=False)
    ax.grid(True)
    return fig


def band_of(values, rng):
    """(mean, low, high, words): the 95% bootstrap band over seeds with >= MIN_SEEDS_FOR_CI seeds, else the
    seeds' range; words say which, for the legend."""
    seeds = values.shape[1]
    if seeds >= MIN_SEEDS_FOR_CI:
        mean, low, high = bootstrap_band(values, rng=rng)
        return mean, low, high, f"mean of {seeds} seeds, {CONFIDENCE:.0f}% bootstrap CI"
    with np.errstate(invalid="ignore"):
        return (np.nanmean(values, axis=1), np.nanmin(values, axis=1), np.nanmax(values, axis=1),
                f"mean and range of {seeds} seed{'s' * (seeds != 1)}")


def make_figure(curves, labels, metric: str, seed: int = 0, title=None, ylabel=None,
                xlabel: str = metrics_lib.DEFAULT_X_AXIS):
    """One mean line plus band per (values, times) curve (band_of: a bootstrap CI from 5 seeds, the range below),
    the band's meaning in each legend entry; returns the matplotlib Figure."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    draw_curves(ax, curves, labels, np.random.default_rng(seed))
    return _finish(fig, ax, xlabel, ylabel if ylabel is not None else metric, title)


def draw_curves(ax, curves, labels, rng) -> None:
    """Each (values, times) curve's mean line and band (band_of) on `ax`, the band's meaning in its label."""
    import matplotlib.pyplot as plt
    if len(curves) > 10:  # beyond the default cycle's 10 colours, tab20's 20 keep every curve distinct
        ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)
    for (values, times), label in zip(curves, labels):
        mean, low, high, words = band_of(values, rng)
        (line,) = ax.plot(times, mean, label=f"{label} ({words})")
        ax.fill_between(times, low, high, color=line.get_color(), alpha=BAND_ALPHA, linewidth=0)


def make_sensitivity_figure(line_sets, x_key: str, line_key, ylabel: str, seed: int = 0, title=None,
                            references=()):
    """Score against x_key, one line per (file, line value), each with a bootstrap band over seeds; a log x axis
    when every x is positive and they span a factor of 4 or more (step-size grids double). Each (label, scores
    (S,)) reference, a run without the swept key, is a dashed horizontal line with its band (band_of)."""
    import matplotlib.pyplot as plt
    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots()
    for (label, scores), style in zip(references, ("--", ":", "-.") * len(references)):
        mean, low, high, words = band_of(np.asarray(scores, float)[None, :], rng)
        ax.axhline(mean[0], color="black", linestyle=style, linewidth=1, label=f"{label} ({words})")
        ax.axhspan(low[0], high[0], color="black", alpha=BAND_ALPHA / 2, linewidth=0)
    all_xs = []
    for label, lines in line_sets:
        for line_value, (xs, scores) in lines.items():
            mean, low, high, words = band_of(scores, rng)
            value = f"{line_value:g}" if isinstance(line_value, float) else f"{line_value}"
            name = label if line_key is None else f"{label}, {line_key}={value}"
            (line,) = ax.plot(xs, mean, marker="o", label=f"{name} ({words})")
            ax.fill_between(xs, low, high, color=line.get_color(), alpha=BAND_ALPHA, linewidth=0)
            all_xs.extend(xs)
    if min(all_xs) > 0 and max(all_xs) >= 4 * min(all_xs):
        ax.set_xscale("log")
    return _finish(fig, ax, x_key, ylabel, title)


def make_episode_figure(tables, labels, window: int, seed: int = 0, title=None):
    """Every training episode's return (dots) and the mean over seeds of each seed's `window`-episode rolling
    mean, with a bootstrap band over seeds, per file."""
    import matplotlib.pyplot as plt
    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots()
    for (table, num_seeds), label in zip(tables, labels):
        values, steps = rolling_episode_curve(table, num_seeds, window)
        mean, low, high = bootstrap_band(values, rng=rng)
        (line,) = ax.plot(steps, mean, label=f"{label} ({window}-episode mean)")
        ax.scatter(table["end_step"], table["return"], s=2, color=line.get_color(), alpha=0.15, linewidths=0)
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=BAND_ALPHA, linewidth=0)
    return _finish(fig, ax, "environment steps", "training episode return", title)


def make_density_figure(score_sets, labels, symlog: bool = False, title=None, xlabel="score"):
    """A Gaussian kernel density of each file's scores, on one axis."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    low = min(float(np.min(s)) for s in score_sets)
    high = max(float(np.max(s)) for s in score_sets)
    margin = 0.1 * max(high - low, 1.0)
    points = np.linspace(low - margin, high + margin, 400)
    for scores, label in zip(score_sets, labels):
        ax.plot(points, gaussian_kde(scores, points), label=f"{label} (n={len(scores)})")
    if symlog:
        ax.set_xscale("symlog")
    return _finish(fig, ax, xlabel, "density", title)


# --- command line ----------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and status 2 instead of usage + message + SystemExit
        raise PlotInputError(f"{message} (see --help)")


def _positive_int(name):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= 1, got '{text}'") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= 1, got {value}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="plot_metric.py", description=__doc__.split("\n\n")[0])
    p.add_argument("-d", "--data", nargs="+", required=True,
                   help=".out files to plot, one curve each; A.out,B.out,... pools the seeds of one config's jobs "
                        "(run as separate processes) into one curve")
    p.add_argument("--pool", action="store_true", help="pool every --data file into one curve (one config)")
    p.add_argument("--group", action="store_true",
                   help="pool the --data files into one curve per config (files whose configs differ beyond the "
                        "seed go to different curves)")
    p.add_argument("-w", "--window", type=_positive_int("window"), default=1, help="moving-average length (1)")
    p.add_argument("-f", "--frequency", type=_positive_int("frequency"), default=1,
                   help="keep every F-th evaluation (1)")
    p.add_argument("-m", "--metric", default=DEFAULT_METRIC, help=f"metric to plot ({DEFAULT_METRIC})")
    p.add_argument("-o", "-O", "--output", help="save the figure to this file (default when there is no display: "
                                          "<metric>.png in the current directory)")
    p.add_argument("--labels", nargs="+", help="legend labels, one per --data file (default: the file names)")
    p.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap resampling (0)")
    p.add_argument("--title", help="figure title")
    p.add_argument("--ylabel", help="y axis label (default: the metric's label from the .out)")
    p.add_argument("--chunk-start-times", action="store_true",
                   help="label each evaluation with the step its chunk started at, as the paper's figures do "
                        "(default: the step it was taken at, the chunk's end)")
    p.add_argument("--plot", choices=("curves", "episodes", "density", "best", "points", "sensitivity"),
                   default="curves",
                   help="curves: the evaluation metric over time (default); episodes: every training episode's "
                        "return with a rolling mean; density: a kernel density of final scores per file. Sweeps: "
                        "best: each file's best grid point by --criterion; points: one curve per grid point; "
                        "sensitivity: --criterion score against the swept key --x, one line per value of --lines")
    p.add_argument("--criterion", choices=CRITERIA, default=None,
                   help="how grid points are scored: auc, the mean over all evaluations (default for --plot best), "
                        "or final, the mean of the last --final-window evaluations (default for --plot sensitivity)")
    p.add_argument("--final-window", type=_positive_int("final-window"), default=None,
                   help="evaluations averaged by --criterion final (default: the last 10%%, at least one)")
    p.add_argument("--minimize", action="store_true", help="lower is better (losses); default: higher is better")
    p.add_argument("--point", type=int, default=None,
                   help="a sweep's grid point to draw with --plot curves, episodes or density")
    p.add_argument("--x", help="--plot sensitivity: the swept key on the x axis (e.g. Q_alpha)")
    p.add_argument("--lines", help="--plot sensitivity: the swept key drawn as one line per value (e.g. softmax_temp)")
    p.add_argument("--reference", nargs=2, action="append", default=[], metavar=("LABEL", "OUT"),
                   help="--plot sensitivity: a run without the sweep (e.g. the baseline agent) drawn as a horizontal "
                        "line at its --criterion score; repeatable")
    p.add_argument("--rolling", type=_positive_int("rolling"), default=100,
                   help="episodes in the rolling mean (episodes) or per seed in the density (100)")
    p.add_argument("--symlog", action="store_true", help="symmetric-log x axis for --plot density")
    return p


def effective_precision(meta: dict):
    """The matmul precision a run computed in, from its .out meta: None for files that predate the field."""
    precision, backend = meta.get("matmul_precision"), meta.get("backend")
    if precision is None:
        return None
    if backend == "cpu" or precision in ("highest", "float32"):
        return "float32"
    return f"{precision} on {backend}"  # JAX's default lets NVIDIA GPUs use TF32 and TPUs bfloat16


def precision_warning(paths) -> str | None:
    """A warning when the files were computed at different matmul precisions (their numbers may differ by it)."""
    seen = {}
    for path in paths:
        precision = effective_precision(_load(path).get("meta", {}))
        if precision is not None:
            seen.setdefault(precision, []).append(path)
    if len(seen) < 2:
        return None
    return "warning: these runs were computed at different matmul precisions: " + "; ".join(
        f"{precision}: {', '.join(files)}" for precision, files in seen.items())


def _pooled_data(args) -> list[str]:
    """args.data after --pool or --group: comma-joined lists of files, one per curve."""
    files = [path for entry in args.data for path in entry.split(",") if path]
    if args.pool and args.group:
        raise PlotInputError("--pool and --group exclude each other")
    if args.pool:
        return [",".join(files)]
    if args.group:
        try:
            return [",".join(group) for group in group_by_config(files)]
        except FileFormatError as e:
            raise PlotInputError(str(e)) from None
    return args.data


def _default_label(spec: str) -> str:
    files = spec.split(",")
    return files[0] if len(files) == 1 else f"{files[0]} + {len(files) - 1} more (pooled)"


class Described:
    """What a --data entry's file says of itself: the metric's label and meaning, the x axis, a legend label
    (agent and environment, not the file name) and the shift that labels evaluations at the step they ran."""

    def __init__(self, spec: str, metric: str, chunk_start_times: bool):
        data = _load(spec)
        config, meta = data.get("config") or {}, data.get("meta") or {}
        self.metric = metrics_lib.of_file(data, metric)
        self.x_axis = metrics_lib.x_axis_of(data)
        agent = meta.get("agent") or config.get("agent_type") or "run"
        environment = config.get("environment")
        self.label = f"{agent} on {environment}" if environment else agent
        self.files = spec.split(",")
        labelled_at_end = bool(config.get("fix_eval_time_label"))
        self.time_shift = 0 if chunk_start_times or labelled_at_end else int(config.get("eval_frequency") or 0)


def describe_inputs(specs, metric: str, chunk_start_times: bool) -> list[Described]:
    """Every --data entry described; legend labels made unique (the file name added where two coincide); a
    warning when the metric means different things in different files."""
    described = [Described(spec, metric, chunk_start_times) for spec in specs]
    labels = [d.label for d in described]
    for d in described:
        if labels.count(d.label) > 1:
            d.label = f"{d.label}, {_default_label(','.join(d.files))}"
    meanings = {d.metric.meaning for d in described if d.metric.meaning}
    if len(meanings) > 1:
        print(f"warning: '{metric}' means different things in these files: "
              + "; ".join(f"{_default_label(','.join(d.files))}: {d.metric.meaning}" for d in described),
              file=sys.stderr)
    return described


def _run(argv) -> int:
    args = build_parser().parse_args(argv)
    args.data = _pooled_data(args)
    warning = precision_warning([path for spec in args.data for path in spec.split(",")])
    if warning:
        print(warning, file=sys.stderr)
    if args.labels is not None and len(args.labels) != len(args.data):
        raise PlotInputError(f"{len(args.labels)} label(s) given for {len(args.data)} --data file(s); "
                             f"give one label per file")
    described = describe_inputs(args.data, args.metric, args.chunk_start_times) if args.plot in (
        "curves", "best", "points") else None
    labels = args.labels if args.labels is not None else (
        [d.label for d in described] if described else [_default_label(spec) for spec in args.data])
    if args.criterion is None:  # the sensitivity plot shows final performance; ranking defaults to the whole curve
        args.criterion = "final" if args.plot == "sensitivity" else "auc"
    output = args.output
    if output is None and not _display_available():
        output = f"{args.metric if args.plot == 'curves' else args.plot}.png"
    if args.reference and args.plot != "sensitivity":
        raise PlotInputError("--reference applies to --plot sensitivity")
    if args.plot in ("curves", "best", "points"):
        curves, labels = _grid_curves(args, labels, [d.time_shift for d in described])
    elif args.plot == "sensitivity":
        if args.x is None:
            raise PlotInputError("--plot sensitivity needs --x, the swept key for the x axis")
        line_sets = []
        described = [Described(path, args.metric, True) for path in args.data]
        if args.labels is None:  # the agent and environment, not the file name
            labels = [d.label for d in described]
        for path, label in zip(args.data, labels):
            values, _, grid = load_grid(path, args.metric, args.frequency, allow_plain=False)
            line_sets.append((label,
                              sensitivity_lines(values, grid, args.x, args.lines, args.criterion, args.final_window,
                                                args.minimize)))
        references = []
        for label, path in args.reference:
            values, _, grid = load_grid(path, args.metric, args.frequency)
            if len(grid) != 1:
                raise PlotInputError(f"--reference '{path}' is a sweep of {len(grid)} points; give a plain run")
            references.append((label, point_scores(values, args.criterion, args.final_window)[0]))
    elif args.plot == "episodes":
        tables = [load_episodes(path, args.point) for path in args.data]
    else:
        score_sets = [final_scores(path, args.metric, args.rolling, args.point) for path in args.data]

    import matplotlib
    if output is not None:
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    if args.plot in ("curves", "best", "points"):
        fig = make_figure(curves, labels, args.metric, seed=args.bootstrap_seed, title=args.title,
                          ylabel=args.ylabel or described[0].metric.label, xlabel=described[0].x_axis)
    elif args.plot == "sensitivity":
        final = (f"mean of the last {args.final_window} evaluations" if args.final_window else
                 f"mean of the last {FINAL_FRACTION:.0%} of evaluations, at least one")
        criterion = {"final": final, "auc": "mean over all evaluations"}.get(args.criterion, args.criterion)
        ylabel = args.ylabel or f"{described[0].metric.label}\n({criterion})"
        fig = make_sensitivity_figure(line_sets, args.x, args.lines, ylabel, seed=args.bootstrap_seed, title=args.title,
                                      references=references)
    elif args.plot == "episodes":
        fig = make_episode_figure(tables, labels, args.rolling, seed=args.bootstrap_seed, title=args.title)
    else:
        fig = make_density_figure(score_sets, labels, symlog=args.symlog, title=args.title)
    try:
        if output is None:
            plt.show()
            return 0
        try:
            fig.savefig(output, bbox_inches="tight")
        except (OSError, ValueError) as e:
            raise PlotInputError(f"cannot write '{output}': {e}") from None
        print(f"wrote {output}")
        return 0
    finally:
        plt.close(fig)


def _grid_curves(args, labels, time_shifts):
    """The smoothed (values (T, S), times) curves and their labels for --plot curves / best / points; each file's
    times shifted by its time_shifts entry."""
    curves, curve_labels = [], []
    for path, label, shift in zip(args.data, labels, time_shifts):
        values, times, grid, diverged = load_grid_and_divergence(path, args.metric, args.frequency)
        times = np.asarray(times) + shift
        if args.window > len(times):
            raise PlotInputError(f"window {args.window} is larger than the number of points ({len(times)}) of "
                                 f"'{path}' (after --frequency {args.frequency})")
        if args.plot == "points":
            chosen = range(len(grid))
        elif args.plot == "best":
            chosen = ranked_points(values, args.criterion, args.final_window, args.minimize)[0][:1]
        else:
            chosen = [_point_index(grid if grid[0] else None, path, args.point)]
        for index in chosen:
            described = point_label(grid[index]) if grid[index] else ""
            if args.plot == "best":
                described = f"best by {args.criterion}: {described}"
            lost, seeds = int(diverged[index].sum()), diverged.shape[1]
            if lost == seeds:
                print(f"note: {label}{f' ({described})' if described else ''}: all {seeds} runs diverged; not drawn")
                continue
            if lost:
                described = f"{described}; " if described else ""
                described += f"{lost} of {seeds} runs diverged, excluded"
            curves.append(smooth(values[:, index][:, ~diverged[index]], times, args.window))
            curve_labels.append(f"{label} ({described})" if described else label)
    return curves, curve_labels


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status (0, or 2 after one 'error: ...' line on stderr)."""
    try:
        return _run(argv)
    except PlotInputError as e:
        message = " ".join(str(e).split())  # guaranteed one line
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
