import importlib.util
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# One persistent compilation cache for the whole test session: the pytest process creates it before it starts its
# xdist workers, and they and every train script a test starts inherit it through the environment. A program the
# suite compiles again -- in another test file after the per-module release below, in the other worker, in a
# killed-and-resumed subprocess -- is then loaded, not compiled (compiling dominates the suite). Set before jax is
# imported, which reads it; a session that finds the variable set (a worker, or a user's own cache) uses it as is.
_SESSION_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _SESSION_CACHE = tempfile.mkdtemp(prefix="seedsuite-test-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _SESSION_CACHE

# LLVM's level-1 optimisation for every program the suite compiles (XLA's default is 3; inherited by the train
# scripts a test starts). The suite's programs are compiled far more often than they run long, and level 3 spends
# seconds on the random-number code of small initialisations: PSDRL's tiny encoder's init compiles in 13.6 s at
# level 3 and 2.5 s at level 1 (its forward pass in 0.2 s). Results do not change (no fast-math at either level):
# the quickstart's .out is bit-identical at both (docs/harness.md).
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=1").strip()

import jax  # noqa: E402
import pytest  # noqa: E402

from experiment import devices  # noqa: E402

# Two CPU devices, as the train scripts split a 2-core machine (experiment/devices.py): runs in the tests are
# sharded as users' runs are, and the learning runs use both cores. Fixed at 2, not the core count, so every
# machine trains the same programs (a run's float rounding depends on its runs per device).
if devices.DEVICE_COUNT_VARIABLE not in os.environ:
    jax.config.update("jax_num_cpu_devices", 2)


# The optional extras (setup.py) and a module each installs. A test that needs one is marked
# `@pytest.mark.extra("mujoco")`: it skips, naming the extra, when the extra is absent, so the suite passes after the
# README's install command alone. `.ci/run` runs the suite so, then installs every extra and runs `-m extra`.
# `@pytest.mark.extra("atari", "mujoco", required=False)` marks a test that runs either way but reaches further with
# the extras (the config fuzzing), so the second part runs it again.
EXTRA_MODULES = {"atari": "envpool", "mujoco": "mujoco.mjx", "tensorboard": "tensorboardX", "stats": "rliable", "slurm": "submitit"}


def extra_installed(name: str) -> bool:
    module = EXTRA_MODULES[name]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package (mujoco of mujoco.mjx) is absent
        return False


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a learning run or a long end-to-end run; `pytest -m \"not slow\"` is the "
                                       "inner loop")
    config.addinivalue_line("markers", "extra(*names, required=True): the test needs (or, with required=False, "
                                       "reaches further with) these extras; skipped when a required one is absent")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("extra"):
        unknown = [name for name in mark.args if name not in EXTRA_MODULES]
        if unknown:
            raise pytest.UsageError(f"unknown extra {unknown} in {item.nodeid}: one of {sorted(EXTRA_MODULES)}")
        missing = [name for name in mark.args if not extra_installed(name)]
        if missing and mark.kwargs.get("required", True):
            extras = ",".join(missing)
            pytest.skip(f"the {' and '.join(missing)} extra is not installed (pip install -e \".[{extras}]\")")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test module, drop the compiled programs: XLA:CPU maps each one's code into memory regions of
    its own, and a process that holds a whole worker's share of the suite passes Linux's 65,530 (compiling then
    segfaults)."""
    yield
    from experiment import runner  # imported here: importing it touches a backend before the device count is set
    runner.release_compiled()


def pytest_unconfigure(config):
    if _SESSION_CACHE is not None:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)
