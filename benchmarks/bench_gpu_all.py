"""Every family's published-size benchmark on one GPU, in one command and one JSON (<= 10 minutes on an H100/H200).

    python benchmarks/bench_gpu_all.py --json gpu_all.json            # on the GPU machine (JAX with CUDA)
    python benchmarks/bench_gpu_all.py --quick --json cpu_check.json  # checks the script on a CPU, small sizes

Runs each family's own benchmark (the same measurement code as the CPU figures in the README) in a child process
with a time limit of its own, at the published sizes and 30 seeds vmapped:
  ER DQN          bench_er.py            configs/ER.json: 30 seeds, ProcMaze G=4, batch 320, 500-step chunks
  model DQN       bench_model_dqn.py     the perfect-, simple- and both latent-model configs, 30 seeds
  DQN variants    bench_dqn_variants.py  uniform / prioritized / dueling / double+dueling+PER at ER.json's sizes
  PSDRL           bench_psdrl.py         30 seeds, the published networks, batch 125 x 250 steps, 100k replay fill
  PETS            bench_pets.py          configs/pets/CartpoleSwingUp.json: P 400, E 40, I 5, H 25, K 20, 30 seeds
  PPO + RND/SND   bench_ppo.py           MiniMontezuma at the GPU configs' sizes, 30 seeds
and writes, per family: its status (ok, timed out, failed with the last lines of its output), its headline
figures (environment steps per second for all seeds, seconds per model update or training chunk), the device's
peak memory in use (JAX's memory_stats, where the backend reports it), the float32 matmul precision in force
(JAX's default unless JAX_DEFAULT_MATMUL_PRECISION is set: TF32 on NVIDIA GPUs), and the family benchmark's
whole JSON. The families run one after another, each in a fresh process, so one's memory does not crowd the next.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# name: (module, argv at published sizes, argv for --quick, seconds allowed, headline keys (regular expressions over
# the benchmark's JSON keys, nested keys joined by dots))
FAMILIES = {
    "er_dqn": ("bench_er", ["--chunks", "3", "--num-seeds", "30", "--no-baseline"],
               ["--chunks", "1", "--num-seeds", "2", "--no-baseline"], 75,
               [r"seed_steps_per_second$", r"train_chunk_seconds$", r"eval_seconds$"]),
    "model_dqn": ("bench_model_dqn", ["--chunks", "2", "--num-seeds", "30", "--no-baseline"],
                  ["--chunks", "1", "--num-seeds", "2", "--no-baseline", "--agents", "simple_model",
                   "--chunk-length", "10"], 150,
                  [r"seed_steps_per_second$", r"train_chunk_seconds$"]),
    "dqn_variants": ("bench_dqn_variants", ["--parts", "1", "--chunks", "2"],
                     ["--parts", "1", "--chunks", "1", "--chunk-length", "10"], 90,
                     [r"seed_steps_per_second$", r"train_chunk_seconds$"]),
    "psdrl": ("bench_psdrl", ["--seeds", "30", "--fill", "100000", "--repeats", "1"],
              ["--seeds", "1", "--fill", "1500", "--repeats", "1", "--batch-size", "1"], 120,
              [r"act_step_seconds$", r"update_seconds_\d+$", r"projected\w*$"]),
    "pets": ("bench_pets", ["--seeds", "30", "--plan-steps", "2"], ["--seeds", "2", "--plan-steps", "1"], 90,
             [r"plan_step_seconds$", r"train_seconds_\d+$", r"projected\w*$"]),
    "ppo": ("bench_ppo", ["--part", "pixels", "--sizes", "gpu", "--seeds", "30", "--repeats", "2"],
            ["--part", "pixels", "--sizes", "cpu", "--seeds", "1", "--repeats", "1"], 75,
            [r"^pixels\.\w+$"]),  # seconds per PPO update, per distillation variant
}


def run_child(name: str, quick: bool, output: str) -> None:
    """In the child process: the family's benchmark, then the device's peak memory and the precision in force."""
    module_name, published, small = FAMILIES[name][:3]
    module = __import__(module_name)
    module.main((small if quick else published) + ["--json", output])
    import jax

    device = jax.local_devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    with open(output, encoding="utf-8") as f:
        figures = json.load(f)
    figures["_device"] = {"kind": getattr(device, "device_kind", str(device)), "backend": jax.default_backend(),
                          "peak_bytes_in_use": (stats or {}).get("peak_bytes_in_use"),
                          "bytes_limit": (stats or {}).get("bytes_limit"),
                          "matmul_precision": jax.config.jax_default_matmul_precision or "default",
                          "jax": jax.__version__}
    with open(output, "w", encoding="utf-8") as f:
        json.dump(figures, f, indent=1, default=float)


def _numbers(tree, prefix=""):
    """Every numeric leaf of a nested JSON as 'a.b.c' -> value."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _numbers(value, f"{prefix}{key}.")
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield prefix[:-1], tree


def headline(name: str, figures: dict) -> dict:
    """The figures a reader compares: rates and per-update or per-step seconds, by their full key."""
    patterns = FAMILIES[name][4]
    return {key: value for key, value in _numbers(figures)
            if not key.startswith("_device") and any(re.search(p, key) for p in patterns)}


def run_family(name: str, quick: bool, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        output = os.path.join(directory, f"{name}.json")
        start = time.perf_counter()
        try:
            result = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", name, output]
                                    + ["--quick"] * quick, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            tail = (e.stdout or b"")[-2000:]
            return {"status": f"timed out after {timeout:.0f} s", "seconds": timeout,
                    "output_tail": tail.decode(errors="replace") if isinstance(tail, bytes) else tail}
        seconds = time.perf_counter() - start
        if result.returncode != 0 or not os.path.exists(output):
            return {"status": f"failed (exit status {result.returncode})", "seconds": seconds,
                    "output_tail": (result.stdout + result.stderr)[-3000:]}
        with open(output, encoding="utf-8") as f:
            figures = json.load(f)
    device = figures.pop("_device")
    return {"status": "ok", "seconds": seconds, "device": device["kind"], "backend": device["backend"],
            "peak_bytes_in_use": device["peak_bytes_in_use"], "bytes_limit": device["bytes_limit"],
            "matmul_precision": device["matmul_precision"], "jax": device["jax"], "headline": headline(name, figures),
            "figures": figures}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--quick", action="store_true", help="small sizes: check the script on a CPU")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="multiply every family's time limit (the limits add up to 10 minutes)")
    parser.add_argument("--json", required=False, default=None, help="where the one JSON goes (default: print it)")
    parser.add_argument("--child", nargs=2, metavar=("FAMILY", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child[0], args.quick, args.child[1])
        return 0
    results = {"quick": args.quick, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "families": {}}
    for name in args.families:
        timeout = FAMILIES[name][3] * args.time_scale
        print(f"== {name} (at most {timeout:.0f} s)", flush=True)
        results["families"][name] = outcome = run_family(name, args.quick, timeout)
        print(f"   {outcome['status']} in {outcome['seconds']:.0f} s; peak memory "
              f"{outcome.get('peak_bytes_in_use') or 'not reported'}; "
              + ", ".join(f"{k} {v:.4g}" for k, v in list(outcome.get("headline", {}).items())[:6]), flush=True)
    text = json.dumps(results, indent=1)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {args.json}")
    else:
        print(text)
    failed = [n for n, r in results["families"].items() if r["status"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
