"""How runs use a CPU: one JAX device per core, the devices a run axis takes, XLA's classic dot kernels."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from experiment import devices, runner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = ("import sys; sys.path.insert(0, {repo!r}); from experiment.devices import use_every_core; n = use_every_core(); "
         "import jax; print(n, len(jax.devices('cpu')))")


def device_count_in_fresh_process(**env_changes) -> tuple:
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS")}
    env.update(env_changes, JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", PROBE.format(repo=REPO)], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    chosen, count = result.stdout.split()
    return chosen, int(count)


def test_one_cpu_device_per_core_unless_the_user_chose():
    cores = devices.usable_cores()
    assert device_count_in_fresh_process() == (str(cores), cores)
    assert device_count_in_fresh_process(JAX_NUM_CPU_DEVICES="3") == ("None", 3)
    assert device_count_in_fresh_process(XLA_FLAGS="--xla_force_host_platform_device_count=5") == ("None", 5)


def test_use_every_core_is_a_no_op_once_jax_has_started(monkeypatch):
    jnp.zeros(1)  # the backend is running
    before = len(jax.devices())
    monkeypatch.delenv(devices.DEVICE_COUNT_VARIABLE, raising=False)
    monkeypatch.setattr(devices, "usable_cores", lambda: before + 1)
    assert devices.use_every_core() is None and len(jax.devices()) == before


class FakeDevice:
    platform = "cpu"


@pytest.mark.parametrize("num_runs, available, used", [
    (1, 2, 1), (3, 2, 2), (30, 2, 2), (30, 4, 4), (5, 4, 3), (30, 16, 15), (32, 16, 16), (2, 16, 2)])
def test_a_run_axis_takes_the_fewest_devices_with_the_fewest_runs_each(num_runs, available, used):
    """As few devices as keep the most runs per device the least: no device computes only padding."""
    pool = [FakeDevice() for _ in range(available)]
    chosen = runner.default_devices(num_runs, pool)
    assert chosen == pool[:used]
    runs_per_device = -(-num_runs // used)
    assert runs_per_device == -(-num_runs // available) and (used - 1) * runs_per_device < num_runs


def test_a_one_seed_run_uses_one_device_and_three_seeds_are_padded_to_four():
    if len(jax.devices()) != 2:
        pytest.skip("the tests' 2 CPU devices (tests/conftest.py) were overridden")
    assert len(runner.RunAxis(1, 1).devices) == 1
    axis = runner.RunAxis(1, 3)
    assert len(axis.devices) == 2 and axis.padded == 4


def test_compiled_runs_ask_for_the_classic_cpu_dot_kernels_where_jaxlib_knows_the_option(monkeypatch):
    options = devices.compiler_options(jax.devices())
    if not options:
        pytest.skip(f"jaxlib {jax.__version__} has no {list(devices.CPU_COMPILER_OPTIONS)}")
    assert options == devices.CPU_COMPILER_OPTIONS

    def product(a, b):
        return jnp.einsum("smi,sij->smj", a, b)

    a, b = jnp.ones((2, 4, 8)), jnp.ones((2, 8, 8))
    assert "ynn" in jax.jit(product).lower(a, b).compile().as_text()  # XLA's default: a YNNPACK fusion
    assert "ynn" not in jax.jit(product, compiler_options=options).lower(a, b).compile().as_text()
    # An option this jaxlib does not know is dropped, not fatal; the baseline's switch turns them off.
    monkeypatch.setattr(devices, "CPU_COMPILER_OPTIONS", {"xla_cpu_no_such_option": ""})
    devices._supported_cpu_compiler_options.cache_clear()
    try:
        assert devices.compiler_options(jax.devices()) == {}
    finally:
        devices._supported_cpu_compiler_options.cache_clear()
    monkeypatch.setattr(devices, "USE_CPU_COMPILER_OPTIONS", False)
    assert devices.compiler_options(jax.devices()) == {}
