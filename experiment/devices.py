"""How seedsuite uses a CPU: one JAX device per core, and XLA's classic dot kernels.

One device per core, so that a run's seeds are spread over the cores.

XLA's CPU backend computes a batched matrix product such as the model agents' [30 seeds x 32 x 200] x
[30 x 200 x 200] on one core: each seed's product is too small for its thread pool to split, and the
imagination is a chain of such products. With the host split into one CPU device per core, the harness
shards the runs across the devices (runner.RunAxis) and every core computes its share of the seeds: on 2
cores a chain of those products runs 2.0x faster, a training chunk at the published sizes 1.27-1.66x
(model-based agents) and 1.29x (ER DQN) (README, Benchmarks). JAX fixes the device count when its backend starts, which importing gymnax already does, so
the train scripts call `use_every_core()` before importing anything else.

The dot kernels: jaxlib 0.10's CPU backend hands matrix products to YNNPACK fusions; at these shapes its
classic (Eigen) dot kernels are faster: a chain of the products above 1.33x, the model-based agents'
training steps 1.17-1.30x, ER DQN's 1.17x (README, Benchmarks). The compiled runs ask for them per program
(`compiler_options`), where this jaxlib knows the option; elsewhere they compile as XLA chooses.
"""
import argparse
import functools
import os
import sys

DEVICE_COUNT_VARIABLE = "JAX_NUM_CPU_DEVICES"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a SLURM or container limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # platforms without affinity
        return os.cpu_count() or 1


def use_every_core() -> int | None:
    """Ask JAX for one CPU device per usable core; returns that count, or None when the user chose one
    (JAX_NUM_CPU_DEVICES=N, or XLA_FLAGS with --xla_force_host_platform_device_count) or JAX's backend has
    already started with another count (it can no longer change; runs then use the devices there are).

    On a machine with a GPU, JAX's default devices stay the GPUs; only the CPU backend is split.
    """
    if DEVICE_COUNT_VARIABLE in os.environ or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return None
    import jax

    cores = usable_cores()
    try:
        jax.config.update("jax_num_cpu_devices", cores)
    except RuntimeError:  # the backend already started
        return None
    except AttributeError:  # a JAX without the option: one CPU device, as before
        return None
    return cores


class DistributedError(ValueError):
    """--distributed could not join the processes, or its flags are impossible."""


def distributed_arguments(distributed: bool, coordinator=None, num_processes=None, process_id=None) -> dict | None:
    """jax.distributed.initialize's arguments from the train scripts' flags, None without --distributed. The
    three are optional with --distributed (under SLURM JAX reads them from the job) and refused without it."""
    given = {"coordinator_address": coordinator, "num_processes": num_processes, "process_id": process_id}
    if not distributed:
        named = [flag for flag, value in zip(("--coordinator", "--num-processes", "--process-id"), given.values())
                 if value is not None]
        if named:
            raise DistributedError(f"{', '.join(named)} only mean something with --distributed")
        return None
    if num_processes is not None and num_processes < 1:
        raise DistributedError(f"--num-processes must be >= 1, got {num_processes}")
    if process_id is not None and not 0 <= process_id < (num_processes or float("inf")):
        bound = f"in 0 .. {num_processes - 1}" if num_processes else ">= 0"
        raise DistributedError(f"--process-id must be {bound}, got {process_id}")
    return {name: value for name, value in given.items() if value is not None}


_joined = False


def join_processes(arguments: dict) -> None:
    """jax.distributed.initialize(**arguments), once per process; it must come before JAX's backend starts."""
    global _joined
    if _joined:
        return
    import jax
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        raise DistributedError("--distributed: JAX's backend started before the processes joined; start the "
                               "train script itself (python train_scripts/train_X.py ... --distributed), whose "
                               "first lines join them")
    try:
        jax.distributed.initialize(**arguments)
    except (RuntimeError, ValueError) as e:
        raise DistributedError(f"--distributed: jax.distributed.initialize() failed ({e}); run under SLURM or "
                               f"give --coordinator HOST:PORT, --num-processes N and --process-id I") from None
    _joined = True


def start_backend(argv=None) -> None:
    """What a train script does before importing anything that starts JAX (importing gymnax does): one CPU
    device per core, and with --distributed, join the other processes. Bad distributed flags print one line
    and exit with status 2; anything else on the command line is left to the script's own parser."""
    use_every_core()
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--distributed" not in argv or "--check" in argv or "-h" in argv or "--help" in argv:
        return
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("--distributed", action="store_true")
    parser.add_argument("--coordinator")
    parser.add_argument("--num-processes", type=int)
    parser.add_argument("--process-id", type=int)
    try:
        args, _ = parser.parse_known_args(argv)
    except argparse.ArgumentError:
        return  # a malformed number: the script's parser names it
    try:
        join_processes(distributed_arguments(True, args.coordinator, args.num_processes, args.process_id))
    except DistributedError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


# The per-program XLA options of the compiled runs on CPU: no YNNPACK fusions (an empty list of fusion kinds).
CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}
USE_CPU_COMPILER_OPTIONS = True  # the benchmarks' paper-style baseline switches them off


@functools.cache
def _supported_cpu_compiler_options() -> dict:
    """CPU_COMPILER_OPTIONS if this jaxlib accepts them (the option is experimental), else {}."""
    import jax
    import numpy as np

    try:
        jax.jit(lambda x: x + 1, compiler_options=CPU_COMPILER_OPTIONS).lower(np.float32(0)).compile()
    except Exception:  # an older or newer jaxlib without the option: "No such compile option"
        return {}
    return dict(CPU_COMPILER_OPTIONS)


def compiler_options(devices) -> dict:
    """The XLA options for a program on `devices`: CPU_COMPILER_OPTIONS on this process's CPU backend."""
    import jax

    if not USE_CPU_COMPILER_OPTIONS or devices[0].platform != "cpu" or jax.default_backend() != "cpu":
        return {}
    return _supported_cpu_compiler_options()
