"""The config-key validators every agent family declares its keys with, and the schema it hands the harness.

An agent module owns its keys: their types, defaults, what each must be, which of them a sweep may vary and
which fix a shape, and the relations between them (`check`). experiment/config.py owns the machinery
(loading, unknown-key suggestions, coercion, sweeps) and the run-level keys, and validates any agent from its
schema without knowing its keys. Every user error is a ConfigError whose message names the key.
"""
import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple


class ConfigError(ValueError):
    """A config problem a user can fix; the message names it."""


REQUIRED = object()
MAX_LAYERS = 64  # layers a network may have (per list, or per count key): network building is a Python loop


@dataclass(frozen=True)
class Key:
    kind: str  # "int", "float", "bool", "str", "dict", "int_list", "float_list"
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
    return Key("int_list", default, lambda v: 1 <= len(v) <= MAX_LAYERS and all(x >= 1 for x in v),
               f"a list of 1 to {MAX_LAYERS} integers >= 1", doc)


def non_negative_float_list(doc, default):
    return Key("float_list", default, lambda v: len(v) >= 1 and all(x >= 0 for x in v),
               "a non-empty list of numbers >= 0", doc)


def hyperparams_from(cls, config):
    """An agent's hyperparameter dataclass filled from the config's keys of the same names."""
    return cls(**{name: config[name] for name in cls.__dataclass_fields__})


class AgentSchema(NamedTuple):
    """What an agent family tells the harness about one agent type's config."""

    name: str  # for messages: "ER DQN"
    keys: dict  # key name -> Key (the run-level keys of experiment/config.py are added by the harness)
    sweepable: tuple  # keys that reach the compiled program only through hparams
    shape_keys: dict  # key name -> what it shapes (a sweep over it is refused with that reason)
    check: Callable  # check(config, obs_shape) -> None, raising ConfigError for a relation between keys
