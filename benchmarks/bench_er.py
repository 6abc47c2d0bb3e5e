"""ER DQN throughput at the published ER.json sizes (30 seeds, ProcMaze G=4, batch 320).

Measures, in one run on this machine:
  - the float32 matmul peak (a 2048x2048 product through XLA, median of repeats);
  - compile time of the training chunk, the warm-up chunk and the evaluation;
  - seconds per 500-step training chunk and per evaluation, seed-steps per second;
  - achieved FLOP/s: XLA's cost analysis of one training step (a scan of length 1, since XLA counts a
    loop body once), times the chunk length, over the measured chunk time; and the fraction of the peak;
  - for seedsuite as the train scripts run it (one CPU device per core), the same program on one device,
    and a paper-style baseline on one device (paper_style_computation), their chunks interleaved so all
    see the same machine, and the throughput ratio to the baseline.

    python benchmarks/bench_er.py [--config configs/ER.json] [--chunks 3] [--num-seeds 30] [--json out.json] [--no-baseline]
"""
import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiment.devices import use_every_core  # noqa: E402

use_every_core()  # as the train scripts do: one CPU device per core (the baselines are given one device)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import envs  # noqa: E402
from agents import dqn, model_dqn  # noqa: E402
from agents.components import distributions, interaction, networks  # noqa: E402
from experiment import devices, runner  # noqa: E402
from experiment.config import load_config  # noqa: E402


def timed(fn, *args):
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - start


def matmul_peak(n=2048, repeats=20) -> float:
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    product = jax.jit(lambda a, b: a @ b)
    jax.block_until_ready(product(a, b))
    times = [timed(product, a, b)[1] for _ in range(repeats)]
    return 2 * n**3 / statistics.median(times)


def flops_of(compiled) -> float:
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    return float(analysis.get("flops", 0.0))


def write_json(path, result) -> None:
    """The figures as JSON, when a path was given."""
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=1)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_and_peak() -> dict:
    """Print and return the machine, JAX's version and the float32 matmul peak: the head of every result."""
    machine = f"{cpu_name()}, {os.cpu_count()} cores, {jax.default_backend()} ({len(jax.devices())} devices)"
    peak = matmul_peak()
    print(f"machine: {machine}, jax {jax.__version__}; float32 matmul peak {peak / 1e9:.0f} GFLOP/s", flush=True)
    precision = jax.config.jax_default_matmul_precision or "default (TF32 allowed on NVIDIA GPUs)"
    return {"machine": machine, "jax": jax.__version__, "matmul_peak_flops_per_second": peak,
            "matmul_precision": str(precision)}


def per_seed_count(seed_counts, measure, json_path=None) -> dict:
    """The machine's head, then measure(num_seeds, peak) for each seed count, written as JSON when asked."""
    results = machine_and_peak()
    for seeds in seed_counts:
        print(f"== {seeds} seed(s)", flush=True)
        results[f"seeds_{seeds}"] = measure(seeds, results["matmul_peak_flops_per_second"])
    write_json(json_path, results)
    return results


def timed_chunks(compiled, state, keys, hparams, phase, repeats: int):
    """(state after, median seconds) of `repeats` calls of a CompiledRun's interact (which donates its state)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, _ = compiled.interact(state, keys, hparams, phase)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - start)
    return state, float(statistics.median(times))


@contextlib.contextmanager
def paper_style_computation():
    """Build agents as the paper code computes: gymnax's per-step reset inside the scan, jax.nn.elu (expm1),
    categorical latents drawn with K Gumbel draws per group and imagined through dense first layers, and the
    model agents' Q step recomputing Q's forward pass on the imagined inputs.

    The baseline for the in-run ratio: the same algorithm and the same law up to float rounding, without
    seedsuite's computational changes (resets drawn before the scan, ELU through exp, inverse-CDF
    categorical draws, one-hot imagination as row sums, the rollouts' Q forward pass reused by the Q step,
    XLA's classic CPU dot kernels instead of its default YNNPACK fusions); measure() also gives it one
    device, not one per core.
    """
    saved = (interaction.presample_resets, interaction.step_with_reset, networks.ACTIVATIONS["elu"],
             distributions.sample_categorical, model_dqn.ONE_HOT_IMAGINATION, model_dqn.REUSE_IMAGINED_Q_FORWARD,
             devices.USE_CPU_COMPILER_OPTIONS)
    interaction.presample_resets = lambda env, keys, params: (keys, keys)
    interaction.step_with_reset = lambda env, key, state, action, params, reset: env.step(key, state, action, params)
    networks.ACTIVATIONS["elu"] = jax.nn.elu
    distributions.sample_categorical = jax.random.categorical  # Gumbel draws, K per latent group
    model_dqn.ONE_HOT_IMAGINATION = False  # dense first layers on the straight-through latents
    model_dqn.REUSE_IMAGINED_Q_FORWARD = False  # the Q step computes Q(x) again
    devices.USE_CPU_COMPILER_OPTIONS = False  # XLA's default dot fusions
    try:
        yield
    finally:
        (interaction.presample_resets, interaction.step_with_reset, networks.ACTIVATIONS["elu"],
         distributions.sample_categorical, model_dqn.ONE_HOT_IMAGINATION, model_dqn.REUSE_IMAGINED_Q_FORWARD,
         devices.USE_CPU_COMPILER_OPTIONS) = saved


class Variant:
    """One agent's compiled chunk and evaluation, warmed up past the training start, ready to time.
    devices: those the runs are sharded across (default: the harness's choice, one CPU device per core)."""

    def __init__(self, name, config, make_agent, devices=None):
        self.name, self.config = name, config
        env, env_params = envs.make_from_config(config)
        agent = make_agent(config, env, env_params)
        # Compiled here rather than taken from the cache, which would hand the baseline seedsuite's program.
        axis = runner.RunAxis(1, config["num_seeds"], devices)
        self.num_devices = len(axis.devices)
        self.run = runner.CompiledRun(agent, axis)
        runs = runner.Runs(config, make_agent, seed=0, compiled=self.run)
        self.chunk_keys, self.evaluation_keys, self.hp = runs.chunk_keys, runs.evaluation_keys, runs.hparams
        state = jax.block_until_ready(runs.init())
        start = time.perf_counter()
        self.interact_warmup = self.run.interact.lower(state, self.chunk_keys(0), self.hp, False).compile()
        self.interact_train = self.run.interact.lower(state, self.chunk_keys(0), self.hp, True).compile()
        self.evaluate = self.run.evaluate.lower(state, self.evaluation_keys(0), self.hp).compile()
        self.compile_seconds = time.perf_counter() - start
        # FLOPs of one training step: the same agent with a chunk of one step (XLA counts a loop body once).
        one_step = runner.CompiledRun(make_agent(dict(config, eval_frequency=1), env, env_params), axis)
        # XLA counts one device's share of a sharded program; the padding runs' share is not useful work.
        per_device = flops_of(one_step.interact.lower(state, self.chunk_keys(0), self.hp, True).compile())
        self.step_flops = per_device * self.num_devices * axis.num_runs / axis.padded
        # Fill the buffer past the training start as the real run does.
        for i in range(-(-config["training_start_time"] // config["eval_frequency"])):
            state, _ = self.interact_warmup(state, self.chunk_keys(i), self.hp)
        self.state = jax.block_until_ready(state)
        self.chunk_times, self.eval_times = [], []

    def time_one_chunk(self, index):
        keys = self.chunk_keys(100 + index)
        (self.state, _), seconds = timed(self.interact_train, self.state, keys, self.hp)
        self.chunk_times.append(seconds)
        keys = self.evaluation_keys(index)
        _, seconds = timed(self.evaluate, self.state, keys, self.hp)
        self.eval_times.append(seconds)

    def summary(self, peak) -> dict:
        config = self.config
        chunk_seconds, eval_seconds = statistics.median(self.chunk_times), statistics.median(self.eval_times)
        achieved = self.step_flops * config["eval_frequency"] / chunk_seconds
        return {
            "num_seeds": config["num_seeds"], "num_devices": self.num_devices, "eval_frequency": config["eval_frequency"],
            "batch_size": config["batch_size"], "compile_seconds": self.compile_seconds,
            "train_chunk_seconds": chunk_seconds, "train_chunk_seconds_all": self.chunk_times,
            "eval_seconds": eval_seconds, "chunk_plus_eval_seconds": chunk_seconds + eval_seconds,
            "seed_steps_per_second": config["num_seeds"] * config["eval_frequency"] / chunk_seconds,
            "flops_per_train_step": self.step_flops, "train_chunk_gflops_per_second": achieved / 1e9,
            "fraction_of_peak": achieved / peak,
        }


VARIANTS = ("seedsuite", "seedsuite, one device", "paper-style")


def measure(config: dict, chunks: int, make_agent=dqn.make, baseline: bool = True) -> dict:
    """Time seedsuite's chunk (its runs sharded over one CPU device per core) and, in the same run with
    chunks interleaved, the same program on one device and the paper-style baseline on one device, as the
    paper code runs."""
    variants = [Variant(VARIANTS[0], config, make_agent)]
    if baseline:
        one_device = jax.devices()[:1]
        if variants[0].num_devices > 1:
            variants.append(Variant(VARIANTS[1], config, make_agent, one_device))
        with paper_style_computation():
            variants.append(Variant(VARIANTS[2], config, make_agent, one_device))
    for i in range(chunks):
        # Interleaved, in alternating order, so a noisy neighbour or a warm cache favours neither.
        for variant in (variants if i % 2 == 0 else variants[::-1]):
            variant.time_one_chunk(i)
    peak = matmul_peak()
    return {"matmul_peak_gflops_per_second": peak / 1e9, **{v.name: v.summary(peak) for v in variants}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "..", "configs", "ER.json"))
    parser.add_argument("--chunks", type=int, default=3, help="training chunks to time (median reported)")
    parser.add_argument("--num-seeds", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--no-baseline", action="store_true", help="skip the paper-style baseline")
    args = parser.parse_args(argv)

    config = load_config("ER", args.config)
    if args.num_seeds:
        config["num_seeds"] = args.num_seeds
    result = measure(config, args.chunks, baseline=not args.no_baseline)
    result.update({"machine": f"{cpu_name()}, {os.cpu_count()} cores, {jax.default_backend()}", "jax": jax.__version__})
    print(f"machine: {result['machine']}, jax {result['jax']}")
    print(f"float32 matmul peak (2048^2, median of 20): {result['matmul_peak_gflops_per_second']:.0f} GFLOP/s")
    for name in VARIANTS:
        if name not in result:
            continue
        r = result[name]
        print(f"[{name}] {r['num_devices']} devices; compile {r['compile_seconds']:.1f} s; training chunk "
              f"({r['eval_frequency']} steps x {r['num_seeds']} seeds) {r['train_chunk_seconds']:.2f} s = "
              f"{r['seed_steps_per_second']:.0f} seed-steps/s; "
              f"evaluation {r['eval_seconds']:.2f} s; {r['train_chunk_gflops_per_second']:.0f} GFLOP/s = "
              f"{100 * r['fraction_of_peak']:.0f}% of peak ({r['flops_per_train_step'] / 1e9:.2f} GFLOP per step)")
    if "paper-style" in result:
        ratio = result["paper-style"]["train_chunk_seconds"] / result["seedsuite"]["train_chunk_seconds"]
        result["speedup_over_paper_style"] = ratio
        print(f"seedsuite / paper-style throughput, same run: {ratio:.2f}x")
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
