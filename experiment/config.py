"""Config files with the paper code's keys: loading, per-agent defaults and validation.

Every user error becomes a ConfigError whose message names the key and the problem; the command-line
entry point prints it as one line and exits non-zero, before anything is compiled.
"""
import difflib
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any, Callable

from agents.components.exploration import EPSILON_SCHEDULES, STRATEGIES
from agents.components.networks import ACTIVATIONS
from agents import dqn, model_dqn


class ConfigError(ValueError):
    """A config problem a user can fix; the message names it."""


REQUIRED = object()


@dataclass(frozen=True)
class Key:
    kind: str  # "int", "float", "bool", "str", "dict", "int_list"
    default: Any = REQUIRED
    check: Callable[[Any], bool] | None = None
    requirement: str = ""  # what `check` demands, for the error message
    doc: str = ""


def positive_int(doc, default=REQUIRED):
    return Key("int", default, lambda v: v >= 1, "an integer >= 1", doc)


def non_negative_int(doc, default=REQUIRED):
    return Key("int", default, lambda v: v >= 0, "an integer >= 0", doc)


def positive_float(doc, default=REQUIRED):
    return Key("float", default, lambda v: v > 0 and math.isfinite(v), "a finite number > 0", doc)


def non_negative_float(doc, default=REQUIRED):
    return Key("float", default, lambda v: v >= 0, "a number >= 0", doc)


def unit_interval(doc, default=REQUIRED, closed_top=True):
    if closed_top:
        return Key("float", default, lambda v: 0 <= v <= 1, "a number in [0, 1]", doc)
    return Key("float", default, lambda v: 0 <= v < 1, "a number in [0, 1)", doc)


def flag(doc, default=False):
    return Key("bool", default, None, "", doc)


def choice(doc, options, default=REQUIRED):
    return Key("str", default, lambda v: v in options, f"one of {', '.join(options)}", doc)


def positive_int_list(doc, default):
    return Key("int_list", default, lambda v: len(v) >= 1 and all(x >= 1 for x in v),
               "a non-empty list of integers >= 1", doc)


# Keys every DQN-family agent of the paper reads (spec section 4), with the paper code's defaults.
COMMON_KEYS = {
    "environment": Key("str", doc="environment class name (ProcMaze, ButtonGrid, PanFlute, OpenGrid) or a gymnax id"),
    "env_config": Key("dict", doc="keyword arguments of the environment constructor"),
    "env_wrappers": Key("dict", {}, doc="pixel rendering and Atari-style protocol wrappers (envs/pixels.py), all off "
                        "by default: pixels, pixel_dtype, noop_max, sticky_action_prob, action_repeat, max_pool, "
                        "reward_transform, time_limit, frame_stack, frame_stack_order, frame_stack_reset"),
    "episodic_env": flag("episodic evaluation (return until the first terminal) instead of reward per step"),
    "num_hidden_layers": non_negative_int("hidden layers of every MLP"),
    "num_hidden_units": positive_int("width of every hidden layer"),
    "activation": Key("str", check=lambda v: v in ACTIVATIONS, requirement=f"one of {', '.join(ACTIVATIONS)}",
                      doc="hidden activation"),
    "b1_adam": unit_interval("AdamW first-moment decay", closed_top=False),
    "b2_adam": unit_interval("AdamW second-moment decay", closed_top=False),
    "eps_adam": positive_float("AdamW epsilon"),
    "wd_adam": non_negative_float("AdamW weight decay per update, not scaled by the step size (quirk Q7)"),
    "exploration_strat": Key("str", check=lambda v: v in STRATEGIES, requirement=f"one of {', '.join(STRATEGIES)}",
                             doc="behaviour policy"),
    "softmax_temp": positive_float("softmax temperature (required with softmax)", default=None),
    "epsilon": unit_interval("epsilon-greedy rate (required with epsilon_greedy)", default=None),
    "batch_size": positive_int("minibatch size"),
    "num_seeds": positive_int("independent runs trained together in one process"),
    "target_update_frequency": positive_int("target copy period, in environment steps"),
    "use_target": Key("bool", doc="use a target network"),
    "double_DQN": flag("double-DQN bootstrap"),
    "updates_per_step": positive_int("updates per environment step", default=1),
    "buffer_size": positive_int("replay capacity per seed"),
    "num_steps": positive_int("environment steps per seed"),
    "gamma": unit_interval("discount"),
    "training_start_time": non_negative_int("environment steps before training (rounded up to a chunk)"),
    "eval_frequency": positive_int("chunk length: environment steps between evaluations"),
    "eval_steps": positive_int("steps per evaluation episode"),
    "eval_batch_size": positive_int("evaluation episodes per seed"),
    "save_params": flag("write <output>.params periodically and at the end", default=True),
    "save_frequency": positive_int("environment steps between .params/.out saves", default=10000),
    # seedsuite additions
    "log_episodes": flag("record every finished training episode (seed, return, length, end step) in the .out",
                         default=True),
    "checkpoint_frequency": non_negative_int("environment steps between resumable checkpoints (0: never)", default=10000),
    "fix_eval_time_label": flag("Q9: label each evaluation with the step at which it ran (end of chunk)"),
}

# The DQN family's extensions (dqn_variants spec); all off by default, so the paper's configs are unchanged.
DQN_EXTENSION_KEYS = {
    "dueling": flag("dueling value/advantage streams"),
    "dueling_aggregation": choice("how the advantage stream is centred, per state", ("mean", "max"), default="mean"),
    "prioritized_replay": flag("proportional prioritized replay"),
    "per_alpha": non_negative_float("priority exponent (0: uniform)", default=0.6),
    "per_beta0": unit_interval("initial importance-sampling exponent (linear schedule)", default=0.4),
    "per_beta_schedule": choice("beta: linear to 1 over num_steps, or 1 - exp(-rate * episodes)",
                                ("linear", "exponential"), default="linear"),
    "per_beta_rate": positive_float("rate of the exponential beta schedule, per finished episode", default=0.01),
    "per_eps": positive_float("added to |TD error| to form a priority", default=1e-6),
    "epsilon_schedule": choice("epsilon-greedy rate over time", EPSILON_SCHEDULES, default="constant"),
    "epsilon_start": unit_interval("first epsilon of the power and linear schedules", default=1.0),
    "epsilon_end": unit_interval("floor of the power schedule, end of the linear one", default=0.01),
    "epsilon_decay": Key("float", 0.99, lambda v: 0 < v <= 1, "a number in (0, 1]",
                         "power schedule: epsilon_start * decay^episodes"),
    "epsilon_decay_steps": positive_int("linear schedule: environment steps from start to end", default=None),
    "target_score": Key("float", None, lambda v: math.isfinite(v), "a finite number",
                        "per-seed metric: first step at which the mean of the last 100 training episodes reached it"),
    "torso": choice("Q-network torso: mlp (flattened input) or conv (image input)", ("mlp", "conv"), default="mlp"),
    "conv_channels": positive_int_list("conv torso: output channels per layer", default=[16]),
    "conv_kernel_sizes": positive_int_list("conv torso: square kernel size per layer", default=[3]),
    "conv_strides": positive_int_list("conv torso: stride per layer", default=[1]),
    "replay_obs_dtype": choice("replay storage of observations (auto: the observation's own dtype; bool or uint8 "
                               "are lossless for 0/1 observations)", ("auto", "bool", "uint8", "float32"), default="auto"),
}

FIX_KEYS = {
    "fix_stale_obs_after_reset": flag("Q1: act on the new episode's first observation after a terminal"),
    "fix_weight_decay": flag("Q7: scale the weight decay by the step size (usual decoupled AdamW)"),
}

# Keys of the model-based agents (spec sections 3.2-3.4 and 4).
ROLLOUT_KEYS = {"rollout_length": positive_int("imagined steps per rollout (H)")}
MODEL_KEYS = {
    "Q_alpha": positive_float("Q step size"),
    "model_alpha": positive_float("model step size"),
    "reward_weight": non_negative_float("model loss weight: reward NLL"),
    "termination_weight": non_negative_float("model loss weight: continuation BCE"),
    "obs_prediction_weight": non_negative_float("model loss weight: observation NLL"),
    "binary_obs": Key("bool", doc="Bernoulli observation likelihood (else a Gaussian)"),
    **ROLLOUT_KEYS,
}
LATENT_KEYS = {
    "latent_type": choice("latent variable", ("categorical", "gaussian", "tanh_gaussian")),
    "num_features": positive_int("latent features F (categorical: groups)"),
    "feature_width": positive_int("classes K per categorical group (required for categorical)", default=None),
    "KL_prior_weight": non_negative_float("KL(stopgrad(posterior of o') || transition): trains the transition"),
    "KL_posterior_weight": non_negative_float("KL(posterior of o' || stopgrad(transition)): trains the encoder"),
    "posterior_entropy_weight": non_negative_float("KL(posterior of o || N(0,1) or uniform)"),
    "min_std": non_negative_float("added to the encoder's std (Gaussian latents)", default=0.0),
    "std_act": choice("std activation of Gaussian heads", ("softplus", "sigmoid", "sigmoid2"), default="softplus"),
    "learn_obs_variance": Key("bool", None, None, "", "learned decoder std (required when binary_obs is false)"),
    "seperate_rollout_batch_size": flag("draw a second minibatch of rollout_batch_size for the rollout starts"),
    "rollout_batch_size": positive_int("rollout starts when seperate_rollout_batch_size is set", default=None),
    "fix_latent_double_DQN": flag("Q3: honour double_DQN in the latent agent's Q target"),
}

AGENT_KEYS = {
    "ER": {
        **COMMON_KEYS,
        "alpha_adam": positive_float("Q step size"),
        "save_final_params": flag("accepted for compatibility; never read (as in the paper code)", default=True),
        **FIX_KEYS,
        **DQN_EXTENSION_KEYS,
    },
    "perfect_model": {**COMMON_KEYS, "alpha_adam": positive_float("Q step size"), **ROLLOUT_KEYS, **FIX_KEYS},
    "simple_model": {
        **COMMON_KEYS, **MODEL_KEYS, **FIX_KEYS,
        "fix_simple_model_obs_sampling": flag("Q2: sample imagined binary observations with p = sigmoid(logit)"),
    },
    "latent_model": {**COMMON_KEYS, **MODEL_KEYS, **LATENT_KEYS, **FIX_KEYS},
}

AGENT_NAMES = {"ER": "ER DQN", "perfect_model": "perfect-model DQN", "simple_model": "simple-model DQN",
               "latent_model": "latent-model DQN"}


SWEEPABLE_KEYS = {"ER": dqn.SWEEPABLE_KEYS, "perfect_model": model_dqn.SWEEPABLE_KEYS,
                  "simple_model": model_dqn.SWEEPABLE_KEYS, "latent_model": model_dqn.SWEEPABLE_KEYS}

# Keys that fix an array shape (or the number of steps in a compiled loop): points differing in them cannot
# share one compiled program. The value says what they shape.
SHAPE_KEYS = {
    "batch_size": "the minibatch", "buffer_size": "the replay buffer", "num_hidden_units": "the networks",
    "num_hidden_layers": "the networks", "rollout_length": "the imagined batch", "rollout_batch_size": "the rollout starts",
    "num_features": "the latent", "feature_width": "the latent", "num_seeds": "the run axis",
    "eval_frequency": "the chunk (its scan length and metrics)", "eval_batch_size": "the evaluation batch",
    "eval_steps": "the evaluation loop", "updates_per_step": "the update loop", "environment": "the observations",
    "env_config": "the observations", "env_wrappers": "the observations", "conv_channels": "the networks", "conv_kernel_sizes": "the networks",
    "conv_strides": "the networks", "num_steps": "the number of chunks",
}


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
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{name}' must be a number, got {json.dumps(value)}")
        value = float(value)
    elif kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"config key '{name}' must be a string, got {json.dumps(value)}")
    elif kind == "dict":
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{name}' must be a JSON object, got {json.dumps(value)}")
    elif kind == "int_list":
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise ConfigError(f"config key '{name}' must be a list of integers, got {json.dumps(value)}")
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
    _check_relations(config)
    config["agent_type"] = agent_type
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
        if name in SHAPE_KEYS:
            raise ConfigError(f"sweep over '{name}' is refused: it shapes {SHAPE_KEYS[name]}, so its values cannot "
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
    config = validate(agent_type, {**points[0], **base})  # swept keys the base leaves out take point 0's value
    config["sweep"] = checked
    return config


def _check_relations(config: dict) -> None:
    import envs

    if config["exploration_strat"] == "softmax" and config["softmax_temp"] is None:
        raise ConfigError("exploration_strat 'softmax' needs the key 'softmax_temp'")
    schedule = config.get("epsilon_schedule", "constant")
    if schedule != "constant" and config["exploration_strat"] != "epsilon_greedy":
        raise ConfigError(f"epsilon_schedule '{schedule}' applies to exploration_strat 'epsilon_greedy' only")
    if config["exploration_strat"] == "epsilon_greedy" and schedule == "constant" and config["epsilon"] is None:
        raise ConfigError("exploration_strat 'epsilon_greedy' needs the key 'epsilon' (or a non-constant epsilon_schedule)")
    if schedule == "linear" and config.get("epsilon_decay_steps") is None:
        raise ConfigError("epsilon_schedule 'linear' needs the key 'epsilon_decay_steps'")
    if config.get("latent_type") == "categorical" and config["feature_width"] is None:
        raise ConfigError("latent_type 'categorical' needs the key 'feature_width' (classes per group)")
    if "binary_obs" in config and "latent_type" in config and not config["binary_obs"] \
            and config["learn_obs_variance"] is None:
        raise ConfigError("binary_obs false needs the key 'learn_obs_variance' (true or false)")
    if config.get("seperate_rollout_batch_size") and config["rollout_batch_size"] is None:
        raise ConfigError("seperate_rollout_batch_size needs the key 'rollout_batch_size'")
    conv_lengths = {len(config[k]) for k in ("conv_channels", "conv_kernel_sizes", "conv_strides") if k in config}
    if len(conv_lengths) > 1:
        raise ConfigError("conv_channels, conv_kernel_sizes and conv_strides must have one entry per conv layer "
                          "(the same length)")
    if config["num_steps"] % config["eval_frequency"] != 0:
        raise ConfigError(f"eval_frequency ({config['eval_frequency']}) must divide num_steps ({config['num_steps']})")
    if config["buffer_size"] < config["batch_size"]:
        raise ConfigError(f"buffer_size ({config['buffer_size']}) must be at least batch_size ({config['batch_size']})")
    try:
        envs.check_env_config(config["environment"], config["env_config"])
        env, env_params = envs.make(config["environment"], **config["env_config"])
    except (TypeError, ValueError) as e:
        raise ConfigError(f"environment: {e}") from None
    try:
        env = envs.pixels.wrap(env, env_params, config["env_wrappers"])
    except ValueError as e:
        raise ConfigError(str(e)) from None
    obs_shape = tuple(env.observation_space(env_params).shape)
    if config.get("torso") == "conv" and len(obs_shape) != 3:
        raise ConfigError(f"torso 'conv' needs image observations (height, width, channels); "
                          f"{config['environment']} observations have shape {obs_shape}")


def load_config(agent_type: str, path: str) -> dict:
    return validate(agent_type, load_json(path))
