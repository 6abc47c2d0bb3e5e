"""Config files with the paper code's keys: loading, per-agent defaults and validation.

Every user error becomes a ConfigError whose message names the key and the problem; the command-line
entry point prints it as one line and exits non-zero, before anything is compiled.
"""
import difflib
import itertools
import json
import math

from agents import dqn, model_dqn_config, pets, ppo, psdrl
from agents.components.config_keys import (REQUIRED, ConfigError, Key, flag, non_negative_int,  # noqa: F401
                                           positive_int)


MAX_RUNS = 65536  # seeds (and grid points x seeds) in one process: beyond this the per-run keys and hparams alone
# would exhaust a host's memory before the memory check could speak

# Run-level keys: what the harness itself reads (environment, budget, files). Agents declare the rest.
HARNESS_KEYS = {
    "environment": Key("str", doc="environment class name (ProcMaze, ButtonGrid, PanFlute, OpenGrid, MiniMontezuma), a "
                       "gymnax id, or an Atari id with the atari extra"),
    "env_config": Key("dict", doc="keyword arguments of the environment constructor"),
    "env_wrappers": Key("dict", {}, doc="pixel rendering and Atari-style protocol wrappers (envs/pixels.py), all off "
                        "by default: pixels, pixel_dtype, noop_max, sticky_action_prob, action_repeat, max_pool, "
                        "reward_transform, time_limit, frame_stack, frame_stack_order, frame_stack_reset"),
    "num_seeds": Key("int", REQUIRED, lambda v: 1 <= v <= MAX_RUNS, f"an integer in [1, {MAX_RUNS}]",
                     "independent runs trained together in one process"),
    "seed_offset": non_negative_int("index of this job's first seed among the master seed's seeds: jobs of "
                                    "num_seeds seeds at offsets 0, n, 2n, ... train, bit for bit, the seeds of one "
                                    "job of all of them", default=0),
    "num_steps": positive_int("environment steps per seed"),
    "training_start_time": non_negative_int("environment steps before training (rounded up to a chunk)"),
    "eval_frequency": positive_int("chunk length: environment steps between evaluations"),
    "save_params": flag("write <output>.params periodically and at the end", default=True),
    "save_frequency": positive_int("environment steps between .params/.out saves", default=10000),
    # seedsuite additions
    "log_episodes": flag("record every finished training episode (seed, return, length, end step) in the .out",
                         default=True),
    "checkpoint_frequency": non_negative_int("environment steps between resumable checkpoints (0: never)", default=10000),
    "fix_eval_time_label": flag("Q9: label each evaluation with the step at which it ran (end of chunk)"),
}
HARNESS_SHAPE_KEYS = {"num_seeds": "the run axis", "eval_frequency": "the chunk (its scan length and metrics)",
                      "environment": "the observations", "env_config": "the observations",
                      "env_wrappers": "the observations", "num_steps": "the number of chunks"}

# Every agent type's schema, as its family module declares it.
SCHEMAS = {**dqn.CONFIG_SCHEMAS, **model_dqn_config.CONFIG_SCHEMAS, **psdrl.CONFIG_SCHEMAS, **pets.CONFIG_SCHEMAS,
           **ppo.CONFIG_SCHEMAS}
AGENT_KEYS = {agent_type: {**HARNESS_KEYS, **schema.keys} for agent_type, schema in SCHEMAS.items()}
AGENT_NAMES = {agent_type: schema.name for agent_type, schema in SCHEMAS.items()}
SWEEPABLE_KEYS = {agent_type: schema.sweepable for agent_type, schema in SCHEMAS.items()}
SHAPE_KEYS = {agent_type: {**HARNESS_SHAPE_KEYS, **schema.shape_keys} for agent_type, schema in SCHEMAS.items()}


def register_agent(agent_type: str, schema, metrics: dict | None = None) -> None:
    """Make an agent family's config schema (agents/components/config_keys.AgentSchema) known to the harness:
    its configs validate, its train script's `experiment.cli.main(agent_type, make, ...)` runs, `--describe` and
    experiment/describe.py list its keys; `metrics` ({name: experiment.metrics.Metric, or a function of the
    config giving one}) says what its metrics mean in its .out files and figures (docs/extending.md)."""
    known = SCHEMAS.get(agent_type)
    if known is not None and known is not schema:
        raise ValueError(f"agent type '{agent_type}' is taken by {known.name}")
    clash = sorted(set(schema.keys) & set(HARNESS_KEYS))
    if clash:
        raise ValueError(f"agent type '{agent_type}' declares run-level keys of the harness: {', '.join(clash)}")
    SCHEMAS[agent_type] = schema
    AGENT_KEYS[agent_type] = {**HARNESS_KEYS, **schema.keys}
    AGENT_NAMES[agent_type] = schema.name
    SWEEPABLE_KEYS[agent_type] = schema.sweepable
    SHAPE_KEYS[agent_type] = {**HARNESS_SHAPE_KEYS, **schema.shape_keys}
    if metrics:
        from experiment import metrics as metrics_lib

        metrics_lib.DECLARED[agent_type] = dict(metrics)


def _owners(name: str, agent_type: str) -> list[str]:
    """The other agents whose configs take the key `name`."""
    return [AGENT_NAMES[other] for other, schema in AGENT_KEYS.items() if other != agent_type and name in schema]


def load_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file '{path}': {e}") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file '{path}' is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config file '{path}' must hold a JSON object of keys, not a {type(config).__name__}")
    return config


INT_LIMIT = 2 ** 31 - 1  # sizes, counts and steps live in 32-bit integers on the device


def _check_int_range(name: str, values) -> None:
    for v in values:
        if abs(v) > INT_LIMIT:
            raise ConfigError(f"config key '{name}' is {v}: integers must lie within +-{INT_LIMIT} (2^31 - 1; sizes "
                              f"and counts are 32-bit on the device)")


def _check_finite(name: str, values) -> None:
    for v in values:
        if not math.isfinite(v):
            raise ConfigError(f"config key '{name}' must be a finite number, got {v}")


def _coerce(name: str, key: Key, value):
    kind = key.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{name}' must be true or false, got {json.dumps(value)}")
    elif kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 1e6 written as a float is still a whole number of steps
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{name}' must be an integer, got {json.dumps(value)}")
        _check_int_range(name, [value])
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{name}' must be a number, got {json.dumps(value)}")
        value = float(value)
        _check_finite(name, [value])
    elif kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"config key '{name}' must be a string, got {json.dumps(value)}")
    elif kind == "dict":
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{name}' must be a JSON object, got {json.dumps(value)}")
    elif kind == "int_list":
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise ConfigError(f"config key '{name}' must be a list of integers, got {json.dumps(value)}")
        _check_int_range(name, value)
    elif kind == "float_list":
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
            raise ConfigError(f"config key '{name}' must be a list of numbers, got {json.dumps(value)}")
        value = [float(v) for v in value]
        _check_finite(name, value)
    if key.check is not None and not key.check(value):
        raise ConfigError(f"config key '{name}' must be {key.requirement}, got {json.dumps(value)}")
    return value


def validate(agent_type: str, raw: dict) -> dict:
    """Return the full config (defaults filled in), or raise ConfigError naming the first problem.

    A 'sweep' block becomes config['sweep']: the list of grid points, each a dict of swept key -> value, every
    point checked as a whole config would be; without one config['sweep'] is None.
    """
    if raw.get("sweep") is not None:
        return _validate_sweep(agent_type, raw)
    schema = AGENT_KEYS[agent_type]
    agent_name = AGENT_NAMES[agent_type]
    config = {}
    for name, value in raw.items():
        if name in ("agent_type", "seed", "sweep"):
            continue  # added by the script, as in the paper code's saved configs
        if name not in schema:
            owners = _owners(name, agent_type)
            if owners:
                raise ConfigError(f"config key '{name}' belongs to the {' / '.join(owners)} agent, not {agent_name}")
            close = difflib.get_close_matches(name, list(schema), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown config key '{name}' for {agent_name}{hint}")
        config[name] = value if value is None and schema[name].default is None else _coerce(name, schema[name], value)
    for name, key in schema.items():
        if name not in config:
            if key.default is REQUIRED:
                raise ConfigError(f"config is missing the required key '{name}' ({key.doc})")
            config[name] = key.default
    config["agent_type"] = agent_type
    _check_relations(config)
    config["sweep"] = None
    return config


def sweep_points(agent_type: str, sweep) -> list[dict]:
    """The grid points a 'sweep' block names: {key: [values]} is the grid product (the first key varies
    slowest), [{key: value, ...}, ...] an explicit list of points with the same keys."""
    if isinstance(sweep, dict):
        if not sweep:
            raise ConfigError("'sweep' is empty; give {key: [values, ...]} or a list of points")
        for name, values in sweep.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"sweep key '{name}' must have a non-empty list of values, got {json.dumps(values)}")
        points = [dict(zip(sweep, combination)) for combination in itertools.product(*sweep.values())]
    elif isinstance(sweep, list):
        if not sweep or not all(isinstance(p, dict) and p for p in sweep):
            raise ConfigError("a 'sweep' list must hold one or more points, each a non-empty JSON object of key: value")
        points = sweep
        for index, point in enumerate(points):
            if set(point) != set(points[0]):
                raise ConfigError(f"sweep point {index} sets keys {sorted(point)}, point 0 sets {sorted(points[0])}; "
                                  f"every point must set the same keys")
    else:
        raise ConfigError(f"'sweep' must be a JSON object {{key: [values]}} or a list of points, got {json.dumps(sweep)}")
    schema, sweepable = AGENT_KEYS[agent_type], SWEEPABLE_KEYS[agent_type]
    for name in points[0]:
        if name in sweepable:
            continue
        if name in SHAPE_KEYS[agent_type]:
            raise ConfigError(f"sweep over '{name}' is refused: it shapes {SHAPE_KEYS[agent_type][name]}, so its values cannot "
                              f"share one compiled program; write one config per value instead")
        if name not in schema:
            close = difflib.get_close_matches(name, list(sweepable), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"sweep over unknown config key '{name}' for {AGENT_NAMES[agent_type]}{hint}")
        raise ConfigError(f"sweep over '{name}' is refused: it is fixed when the program is compiled; "
                          f"sweepable keys of {AGENT_NAMES[agent_type]}: {', '.join(sweepable)}")
    return points


def _validate_sweep(agent_type: str, raw: dict) -> dict:
    points = sweep_points(agent_type, raw["sweep"])
    base = {name: value for name, value in raw.items() if name != "sweep"}
    checked = []
    for index, point in enumerate(points):
        try:
            full = validate(agent_type, {**base, **point})
        except ConfigError as e:
            raise ConfigError(f"sweep point {index} ({json.dumps(point)}): {e}") from None
        checked.append({name: full[name] for name in point})
    for index, point in enumerate(checked):
        if point in checked[:index]:
            raise ConfigError(f"sweep point {index} ({json.dumps(point)}) repeats point {checked.index(point)}")
    if len(points) * full["num_seeds"] > MAX_RUNS:
        raise ConfigError(f"sweep: {len(points)} points x {full['num_seeds']} seeds exceed {MAX_RUNS} runs in one "
                          f"process; split the sweep")
    config = validate(agent_type, {**points[0], **base})  # swept keys the base leaves out take point 0's value
    config["sweep"] = checked
    return config


def _check_relations(config: dict) -> None:
    """The run-level relations, then the agent's own (its schema's check), given the environment's observations."""
    import envs

    if config["num_steps"] % config["eval_frequency"] != 0:
        raise ConfigError(f"eval_frequency ({config['eval_frequency']}) must divide num_steps ({config['num_steps']})")
    try:
        envs.check_env_config(config["environment"], config["env_config"])
        env, env_params = envs.make(config["environment"], **config["env_config"])
    except (TypeError, ValueError) as e:
        raise ConfigError(f"environment: {e}") from None
    try:
        env = envs.pixels.wrap(env, env_params, config["env_wrappers"])
    except ValueError as e:
        raise ConfigError(str(e)) from None
    SCHEMAS[config["agent_type"]].check(config, tuple(env.observation_space(env_params).shape))


def load_config(agent_type: str, path: str) -> dict:
    return validate(agent_type, load_json(path))
