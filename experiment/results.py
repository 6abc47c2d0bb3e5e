"""Result files as data: pool the .out files of one config trained as separate processes (one --seed or
--seed-offset per job), group many files by config, and flatten them to tidy rows for CSV.

    from experiment.results import load_runs, tidy_rows
    data = load_runs("runs/ER_s0.out,runs/ER_s1.out,runs/ER_s2.out")  # one pooled result: 3 jobs' seeds side by side
    data["metrics"]["reward_rates"]  # (num_evals, num_seeds), or (num_evals, num_points, num_seeds) for a sweep

A pooled result is a .out dictionary (experiment.files.load_metrics) whose seed axis holds every file's seeds in the
order given, whose config counts them all (num_seeds) and whose `runs` lists, per seed column, the file it came
from, its master seed and its seed index (seed_offset + column). Files pool only when their configs agree on every
key but the seed keys; files that hold the same seeds twice, or were evaluated at other steps, are refused.
"""
import numpy as np

from experiment.files import FileFormatError, load_metrics

SEED_KEYS = ("seed", "seed_offset", "num_seeds")  # what may differ between the jobs of one config


def config_differences(a: dict, b: dict) -> list[str]:
    """'key: A vs B' for every key but the seed keys on which two configs differ."""
    keys = sorted((set(a) | set(b)) - set(SEED_KEYS), key=str)
    return [f"{key}: {a.get(key, '(absent)')!r} vs {b.get(key, '(absent)')!r}" for key in keys
            if a.get(key) != b.get(key)]


def seed_columns(data: dict, path: str) -> list[dict]:
    """Per seed column of one file: its file, master seed and seed index."""
    config = data["config"]
    offset = int(config.get("seed_offset", 0) or 0)
    count = int(config.get("num_seeds", 0) or _seed_count(data, path))
    return [{"file": path, "master_seed": config.get("seed"), "seed": offset + i} for i in range(count)]


def _seed_count(data: dict, path: str) -> int:
    for values in data["metrics"].values():
        if np.ndim(values) >= 2:
            return np.shape(values)[-1]
    raise FileFormatError(f"'{path}' has no per-seed metric to count its seeds by")


def pool(datas: list[dict], paths: list[str]) -> dict:
    """One result from the loaded .out files of one config (see the module docstring)."""
    if len(datas) == 1:
        return {**datas[0], "runs": seed_columns(datas[0], paths[0])}
    first, first_path = datas[0], paths[0]
    seen = {}
    for data, path in zip(datas, paths):
        differences = config_differences(first["config"], data["config"])
        if differences:
            raise FileFormatError(f"cannot pool '{first_path}' and '{path}': their configs differ beyond the seed "
                                  f"({'; '.join(differences[:3])}{'; ...' if len(differences) > 3 else ''}); plot "
                                  f"them as separate curves, or pass --group to make one curve per config")
        if not np.array_equal(np.asarray(data["metrics"].get("eval_times")),
                              np.asarray(first["metrics"].get("eval_times"))):
            raise FileFormatError(f"cannot pool '{first_path}' and '{path}': they were evaluated at different steps "
                                  f"(a run not finished?)")
        for column in seed_columns(data, path):
            key = (column["master_seed"], column["seed"])
            if key in seen:
                raise FileFormatError(f"'{seen[key]}' and '{path}' both hold seed {column['seed']} of master seed "
                                      f"{column['master_seed']}: pool different seeds (--seed or --seed-offset)")
            seen[key] = path
    counts = [len(seed_columns(data, path)) for data, path in zip(datas, paths)]
    metrics = {}
    for name, values in first["metrics"].items():
        if np.ndim(values) >= 2:
            if any(name not in data["metrics"] for data in datas):
                continue  # a metric some file lacks is left out of the pooled result
            metrics[name] = np.concatenate([np.asarray(data["metrics"][name]) for data in datas], axis=-1)
        else:
            metrics[name] = np.asarray(values)
    pooled = {"config": {**first["config"], "num_seeds": sum(counts), "seed_offset": 0}, "metrics": metrics,
              "meta": {**first["meta"], "complete": all(data["meta"].get("complete", True) for data in datas)},
              "runs": [column for data, path in zip(datas, paths) for column in seed_columns(data, path)]}
    if first.get("grid") is not None:
        pooled["grid"] = first["grid"]
    points = len(first.get("grid") or [None])
    for name in ("diverged_step", "target_reached_step"):  # per run, point-major
        if all(data.get(name) is not None for data in datas):
            pooled[name] = np.concatenate([np.asarray(data[name]).reshape(points, count)
                                           for data, count in zip(datas, counts)], axis=1).reshape(-1)
    if all(data.get("episodes") is not None for data in datas):
        tables, shift = [], 0
        for data, count in zip(datas, counts):
            tables.append({**data["episodes"], "seed": np.asarray(data["episodes"]["seed"]) + shift})
            shift += count
        pooled["episodes"] = {name: np.concatenate([table[name] for table in tables]) for name in tables[0]}
    return pooled


def load_runs(spec: str) -> dict:
    """A .out file, or comma-separated .out files pooled (see the module docstring)."""
    paths = [path for path in spec.split(",") if path]
    if not paths:
        raise FileFormatError(f"'{spec}' names no .out file")
    return pool([load_metrics(path) for path in paths], paths)


def group_by_config(paths: list[str]) -> list[list[str]]:
    """The paths in groups of equal configs (but the seed keys), in order of first appearance."""
    groups = []
    for path in paths:
        config = load_metrics(path)["config"]
        for group in groups:
            if not config_differences(group[0], config):
                group[1].append(path)
                break
        else:
            groups.append((config, [path]))
    return [members for _, members in groups]


TIDY_COLUMNS = ("run", "agent", "environment", "grid_point", "master_seed", "seed", "step", "metric", "value")


def tidy_rows(spec: str, metrics=None, label: str | None = None):
    """Long-format rows (TIDY_COLUMNS) of every per-seed metric (or those named) of a file or pooled files: one row
    per evaluation, grid point and seed. `seed` is the seed index within the master seed; `step` the evaluation's
    eval_times label; `grid_point` the sweep point's index (0 without a sweep)."""
    data = load_runs(spec)
    config = data["config"]
    times = np.asarray(data["metrics"].get("eval_times", []))
    names = [name for name, values in data["metrics"].items() if np.ndim(values) >= 2]
    if metrics:
        unknown = sorted(set(metrics) - set(names))
        if unknown:
            raise FileFormatError(f"'{spec}' has no per-seed metric {', '.join(unknown)}; it has "
                                  f"{', '.join(sorted(names))}")
        names = [name for name in names if name in metrics]
    run = label or spec
    for name in names:
        values = np.asarray(data["metrics"][name], dtype=float)
        if values.ndim == 2:
            values = values[:, None, :]
        for t, step in enumerate(times):
            for point in range(values.shape[1]):
                for column, origin in enumerate(data["runs"]):
                    yield (run, config.get("agent_type", ""), config.get("environment", ""), point,
                           origin["master_seed"], origin["seed"], int(step), name, float(values[t, point, column]))
