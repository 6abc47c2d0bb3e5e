import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import pytest  # noqa: E402

from experiment import devices  # noqa: E402

# Two CPU devices, as the train scripts split a 2-core machine (experiment/devices.py): runs in the tests are
# sharded as users' runs are, and the learning runs use both cores. Fixed at 2, not the core count, so every
# machine trains the same programs (a run's float rounding depends on its runs per device).
if devices.DEVICE_COUNT_VARIABLE not in os.environ:
    jax.config.update("jax_num_cpu_devices", 2)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test module, drop the compiled programs: XLA:CPU maps each one's code into memory regions of
    its own, and a process that holds a whole worker's share of the suite passes Linux's 65,530 (compiling then
    segfaults)."""
    yield
    from experiment import runner  # imported here: importing it touches a backend before the device count is set
    runner.release_compiled()
