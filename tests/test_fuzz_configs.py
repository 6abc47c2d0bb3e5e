"""Config fuzzing (hypothesis): mutants of every shipped config of every agent family -- keys dropped, renamed,
retyped; values out of range, NaN and infinities, huge sizes, nested junk; wrong sweep shapes; files that are
not UTF-8 or not JSON -- go through the command line's `--check` (everything before the first chunk: validation,
the environment, the agent, every run's hyperparameters, the state's shapes, the memory check). Each mutant must
either pass or be refused with exit status 2 and one line "error: ..." that names the mutated key (or the file);
never a traceback or a hang.

The suite tries FUZZ_EXAMPLES mutants (default 150). A larger run, with the counts written to a JSON file:

    SEEDSUITE_FUZZ_EXAMPLES=3000 SEEDSUITE_FUZZ_REPORT=fuzz.json python -m pytest -q tests/test_fuzz_configs.py
"""
import collections
import contextlib
import glob
import io
import json
import math
import os
import signal

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from experiment import cli  # noqa: E402
from agents import dqn, model_dqn, pets, ppo, psdrl  # noqa: E402
from conftest import extra_installed  # noqa: E402

# Without the atari or mujoco extra, a config of their environments (configs/psdrl/Pong.json, configs/pets/Pusher.json,
# ...) is refused before its keys are read, in the extra's own one line; with them the mutants go further. .ci/run
# runs this module in both parts.
pytestmark = pytest.mark.extra("atari", "mujoco", required=False)
MISSING_EXTRA_REFUSALS = tuple(f"install the {name} extra" for name in ("atari", "mujoco") if not extra_installed(name))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ_EXAMPLES = int(os.environ.get("SEEDSUITE_FUZZ_EXAMPLES", "150"))
HANG_SECONDS = 180  # a check that takes longer counts as a hang (tracing a published-size chunk takes seconds)
COUNTS = collections.Counter()


def agent_of(path: str):
    """(agent_type, make) of a shipped config, from where it lives and its name."""
    relative = os.path.relpath(path, os.path.join(REPO, "configs"))
    folder, name = relative.split(os.sep)[0], os.path.basename(relative)  # configs/ppo/pilot/ is PPO's too
    by_folder = {"psdrl": ("PSDRL", psdrl.make), "pets": ("PETS", pets.make), "ppo": ("PPO", ppo.make)}
    if folder in by_folder:
        return by_folder[folder]
    quickstarts = {"quickstart_PSDRL.json": by_folder["psdrl"], "quickstart_PETS.json": by_folder["pets"],
                   "quickstart_PPO.json": by_folder["ppo"], "quickstart_latent_model.json": ("latent_model", model_dqn.make)}
    if name in quickstarts:  # each train script's own quickstart (the model-based ones match the prefixes below)
        return quickstarts[name]
    name = name.replace("quickstart_", "")
    for prefix, agent_type in (("perfect_model", "perfect_model"), ("simple_model", "simple_model"),
                               ("gaussian_latent_model", "latent_model"), ("categorical_latent_model", "latent_model")):
        if name.startswith(prefix):
            return agent_type, model_dqn.make
    return "ER", dqn.make  # ER*, quickstart, dqn_variants/, pixels/


SHIPPED = sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.json"), recursive=True))
JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.text(max_size=8),
                 st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, 0.0, -1.0, 1e-300]),
                 st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
                 st.just({"nested": {"deeper": [1, "x", None]}}))


@st.composite
def mutants(draw):
    """(path of the shipped config, agent_type, make, file bytes, the mutated key or None, what was done)."""
    path = draw(st.sampled_from(SHIPPED))
    agent_type, make = agent_of(path)
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    keys = sorted(config)
    kind = draw(st.sampled_from(["drop", "rename", "retype", "number", "huge", "nested", "sweep", "bytes", "json"]))
    key = draw(st.sampled_from(keys))
    if kind == "drop":
        config.pop(key)
    elif kind == "rename":
        config[key + draw(st.sampled_from(["_", "s", "x"]))] = config.pop(key)
    elif kind == "retype":
        config[key] = draw(JUNK)
    elif kind == "number":
        config[key] = draw(st.sampled_from([math.nan, math.inf, -math.inf, -1, 0, 0.5, -0.5, 2, 1.5]))
    elif kind == "huge":
        config[key] = draw(st.sampled_from([10**9, 10**15, 2**31, 2**63, 1e30]))
    elif kind == "nested":
        config[key] = {"value": config[key], "junk": draw(JUNK)}
    elif kind == "sweep":
        config["sweep"] = draw(st.one_of(JUNK, st.just({key: []}), st.just({key: config[key]}),
                                         st.just({key: [config[key], config[key]]}), st.just([{key: 1}, {}])))
        key = "sweep"
    if kind == "bytes":
        data = json.dumps(config).encode()[:-1] + draw(st.sampled_from([b"\xff\xfe", b"\x80", b"\xc3("])) + b"}"
        key = None
    elif kind == "json":
        text = json.dumps(config)
        data = text[:draw(st.integers(0, len(text) - 1))].encode()  # truncated
        key = None
    else:
        data = json.dumps(config, allow_nan=True).encode()
    return path, agent_type, make, data, key, kind


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    counts = dict(COUNTS)
    print(f"\nconfig fuzzing: {counts}")
    if os.environ.get("SEEDSUITE_FUZZ_REPORT"):
        with open(os.environ["SEEDSUITE_FUZZ_REPORT"], "w") as f:
            json.dump(counts, f, indent=1)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(mutant=mutants())
def test_a_mutated_config_passes_or_is_refused_in_one_line_naming_the_key(mutant, tmp_path_factory):
    path, agent_type, make, data, key, kind = mutant
    directory = tmp_path_factory.mktemp("fuzz")
    config_path = os.path.join(directory, "config.json")
    with open(config_path, "wb") as f:
        f.write(data)
    out, err = io.StringIO(), io.StringIO()

    def hung(signum, frame):
        raise TimeoutError(f"--check took over {HANG_SECONDS} s: {path} with {kind} of {key}")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_SECONDS)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main(agent_type, make, default_output=os.path.join(directory, "run"),
                              argv=["--check", "--config", config_path])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    message = err.getvalue()
    COUNTS["examples"] += 1
    if status == 0:
        COUNTS["passed"] += 1
        assert "nothing was run" in out.getvalue()
        return
    COUNTS["refused"] += 1
    assert status == 2, (path, kind, key, message)
    lines = message.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (path, kind, key, message)
    if any(refusal in message for refusal in MISSING_EXTRA_REFUSALS):
        COUNTS["refused_for_a_missing_extra"] += 1
        return
    named = key is None and "config" in message or key is not None and (
        key in message or "memory" in message or "would not fit" in message)
    assert named, (path, kind, key, message)
    assert not os.path.exists(os.path.join(directory, "run.out"))  # --check writes nothing
