"""JAX-native environments with the gymnax 1.0 API.

`make(name, **env_config)` returns `(env, env_params)` as `gymnax.make` does: the paper's environments by
their original class names (ProcMaze, ButtonGrid, PanFlute, OpenGrid) and gymnax's own by their gymnax
ids (CartPole-v1, Breakout-MinAtar, ...), MiniMontezuma, DeepSea (gymnax's, any size, with visited cells), PETS's tasks (CartpoleSwingUp in JAX; Reacher3D, Pusher,
HalfCheetah on MuJoCo MJX with the mujoco extra: envs/mujoco_tasks.py), and with the atari extra EnvPool's Atari games by
their ids (Pong-v5, MontezumaRevenge-v5: envs/atari.py). `make_from_config` adds the pixel and protocol
wrappers of a config's env_wrappers block (envs/pixels.py).
"""
import difflib
import inspect
import json

from envs import atari, pixels
from envs.base import NO_TIME_LIMIT, BoolObsEnvironment, GridParams
from envs.buttongrid import ButtonGrid, ButtonGridState
from envs.cartpole_swingup import CartpoleSwingUp
from envs.deepsea import DeepSea
from envs.minimontezuma import MiniMontezuma, MiniMontezumaState
from envs.mujoco_tasks import MJX_TASKS, HalfCheetah, Pusher, Reacher3D, mjx_available, require_mjx
from envs.opengrid import OpenGrid, OpenGridState
from envs.panflute import PanFlute, PanFluteState
from envs.procmaze import ProcMaze, ProcMazeState, generate_maze

PAPER_ENVIRONMENTS = {cls.__name__: cls for cls in (ProcMaze, ButtonGrid, PanFlute, OpenGrid)}
# Every environment class of ours, built by envs.make with its constructor's keyword arguments.
OUR_ENVIRONMENTS = {**PAPER_ENVIRONMENTS, "MiniMontezuma": MiniMontezuma, "CartpoleSwingUp": CartpoleSwingUp,
                    "DeepSea": DeepSea, **MJX_TASKS}


def register_environment(name: str, cls) -> None:
    """Make `cls` (a gymnax Environment class whose constructor's keyword arguments are its env_config) buildable
    by `make(name)` and by any config naming it, as our own environments are (docs/extending.md)."""
    from gymnax.environments import environment

    if not (isinstance(cls, type) and issubclass(cls, environment.Environment)):
        raise TypeError(f"register_environment('{name}', ...): expected a gymnax Environment class, got {cls!r}")
    known = OUR_ENVIRONMENTS.get(name)
    if known is not None and known is not cls:
        raise ValueError(f"environment name '{name}' is taken by {known.__module__}.{known.__name__}")
    OUR_ENVIRONMENTS[name] = cls


def gymnax_ids() -> list[str]:
    import gymnax

    return list(gymnax.registered_envs)


def available() -> list[str]:
    return list(OUR_ENVIRONMENTS) + gymnax_ids()


def check_env_config(name: str, env_config: dict) -> None:
    """Raise ValueError naming the problem if `name` is unknown or `env_config` has keys its constructor lacks."""
    if name in MJX_TASKS:
        require_mjx(name)
    if name in OUR_ENVIRONMENTS:
        accepted = [p for p in inspect.signature(OUR_ENVIRONMENTS[name].__init__).parameters if p != "self"]
        unknown = [k for k in env_config if k not in accepted]
        if unknown:
            close = difflib.get_close_matches(unknown[0], accepted, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (accepted: {', '.join(accepted)})"
            raise ValueError(f"env_config key '{unknown[0]}' is not accepted by {name}{hint}")
        return
    if atari.is_atari_id(name):
        if atari.envpool_module() is None:
            raise ValueError(f"environment '{name}' is an Atari game: install the atari extra ({atari.EXTRA_HINT})")
        return
    if name not in gymnax_ids():
        close = difflib.get_close_matches(name, available(), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(OUR_ENVIRONMENTS)} and gymnax ids"
        raise ValueError(f"unknown environment '{name}'{hint}")


def make_from_config(config: dict):
    """The environment a run's config names: `environment` built with `env_config`, inside the wrappers its
    `env_wrappers` block switches on (pixels, frame skip, stacks, ...; see envs/pixels.py)."""
    env, env_params = make(config["environment"], **config["env_config"])
    return pixels.wrap(env, env_params, config.get("env_wrappers")), env_params


def external_state(config: dict) -> bool:
    """Whether the config's environment keeps its state outside JAX (Atari): no presampled resets, no resume."""
    return atari.is_atari_id(config["environment"])


def make(name: str, **env_config):
    """Build an environment and its default params: `env, env_params = envs.make("ProcMaze", grid_size=4)`."""
    check_env_config(name, env_config)
    if name in OUR_ENVIRONMENTS:
        env = OUR_ENVIRONMENTS[name](**env_config)
        return env, env.default_params
    if atari.is_atari_id(name):
        return atari.make(name, **env_config)
    import gymnax

    try:
        return gymnax.make(name, **env_config)
    except TypeError as e:  # gymnax passes env_config to the environment's constructor
        raise ValueError(f"env_config {json.dumps(env_config, default=str)} is not accepted by {name}: {e}") from None


__all__ = [
    "make", "make_from_config", "external_state", "pixels", "atari", "available", "check_env_config", "PAPER_ENVIRONMENTS", "NO_TIME_LIMIT", "BoolObsEnvironment", "GridParams",
    "ProcMaze", "ProcMazeState", "generate_maze", "ButtonGrid", "ButtonGridState", "PanFlute", "PanFluteState",
    "OpenGrid", "OpenGridState", "DeepSea", "MiniMontezuma", "MiniMontezumaState", "OUR_ENVIRONMENTS", "CartpoleSwingUp",
    "MJX_TASKS", "Reacher3D", "Pusher", "HalfCheetah", "mjx_available",
]
