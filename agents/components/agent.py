"""The contract every agent meets (see the design notes): pure functions for ONE run."""
from typing import Any, Callable, NamedTuple


class Agent(NamedTuple):
    """What `agents.<name>.make(config, env, env_params)` returns.

    init(key, hparams) -> state
    interact(state, key, hparams, phase) -> (state, metrics)   # eval_frequency env steps; phase is static:
                                                                 # `train`, or chunk_phase(time_step, train)
    evaluate(state, key, hparams) -> metrics                     # greedy episodes from fresh resets
    saved_params(state) -> pytree                                # what the .params file holds
    hparams: the vmappable hyperparameters for this config (a dataclass of scalars)
    chunk_phase(time_step, train) -> hashable, optional: the static value interact gets for the chunk starting at
        time_step (PSDRL: its acting segment length); one compiled program per distinct value
    learned_params(state) -> pytree, optional: what the harness checks for NaN and infinities after every chunk to
        mark a run diverged (default: saved_params; an agent whose saved pytree holds NaN by design narrows it)
    act(state, key, hparams) -> (action, memory), optional: the behaviour policy's action on the state's current
        observation and the per-step memory it advances to (PSDRL: the GRU state); for diagnostics that drive
        episodes themselves (psdrl_moves.py)
    """

    init: Callable[..., Any]
    interact: Callable[..., Any]
    evaluate: Callable[..., Any]
    saved_params: Callable[..., Any]
    hparams: Any
    chunk_phase: Callable[..., Any] | None = None
    learned_params: Callable[..., Any] | None = None
    act: Callable[..., Any] | None = None
