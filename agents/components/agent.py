"""The contract every agent meets (see the design notes): pure functions for ONE run."""
from typing import Any, Callable, NamedTuple


class Agent(NamedTuple):
    """What `agents.<name>.make(config, env, env_params)` returns.

    init(key, hparams) -> state
    interact(state, key, hparams, train) -> (state, metrics)   # eval_frequency env steps; train is static
    evaluate(state, key, hparams) -> metrics                     # greedy episodes from fresh resets
    saved_params(state) -> pytree                                # what the .params file holds
    hparams: the vmappable hyperparameters for this config (a dataclass of scalars)
    """

    init: Callable[..., Any]
    interact: Callable[..., Any]
    evaluate: Callable[..., Any]
    saved_params: Callable[..., Any]
    hparams: Any
