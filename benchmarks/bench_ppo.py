"""PPO's speed: plain PPO against PureJaxRL's PPO on CartPole-v1 at PureJaxRL's default settings, and the cost of
RND, SND and SND + entropy as ratios to plain PPO on the pixel task (MiniMontezuma).

    python benchmarks/bench_ppo.py --part cartpole --purejaxrl PATH   # PATH: a clone of PureJaxRL (its purejaxrl/
                                                                      # folder); needs the bench extra (distrax)
    python benchmarks/bench_ppo.py --part pixels [--seeds 1] [--sizes cpu|gpu]

cartpole: one seed, 5e5 steps (976 updates of 4 envs x 128 steps, 4 epochs of 4 minibatches), in one process,
each side compiled first and then timed over --repeats whole trainings: PureJaxRL's `make_train` (their code,
imported from PATH, DEBUG off) and ours (the agent's init then every chunk's interact in one jitted program on
one device, which is what the harness runs minus its file writes). Steps per second and the ratio.
pixels: seconds per update for each distillation variant after compilation, and the ratios to plain PPO, at the
CPU configs' sizes or the GPU configs' (see PIXEL_SIZES).
"""
import argparse
import importlib
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

import envs  # noqa: E402
from agents import ppo  # noqa: E402
from benchmarks.bench_er import machine_and_peak, write_json  # noqa: E402
from experiment.config import load_config, validate  # noqa: E402

PUREJAXRL_CONFIG = {"LR": 2.5e-4, "NUM_ENVS": 4, "NUM_STEPS": 128, "TOTAL_TIMESTEPS": 5e5, "UPDATE_EPOCHS": 4,
                    "NUM_MINIBATCHES": 4, "GAMMA": 0.99, "GAE_LAMBDA": 0.95, "CLIP_EPS": 0.2, "ENT_COEF": 0.01,
                    "VF_COEF": 0.5, "MAX_GRAD_NORM": 0.5, "ACTIVATION": "tanh", "ENV_NAME": "CartPole-v1",
                    "ANNEAL_LR": True, "DEBUG": False}


def timed(function, *args, repeats: int):
    jax.block_until_ready(function(*args))  # compile and warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ours_whole_training(config):
    env, env_params = envs.make_from_config(config)
    agent = ppo.make(config, env, env_params)
    chunks = config["num_steps"] // config["eval_frequency"]

    @jax.jit
    def train(key):
        state = agent.init(key, agent.hparams)
        state, metrics = jax.lax.scan(lambda s, k: agent.interact(s, k, agent.hparams, True), state,
                                      jax.random.split(key, chunks))
        return metrics["return"]

    return train


def cartpole(path: str, repeats: int) -> dict:
    sys.path.insert(0, os.path.join(path, "purejaxrl"))
    try:
        import brax  # noqa: F401  PureJaxRL's wrappers import it for Brax tasks; CartPole never uses it: stubs
    except ImportError:
        import types
        names = ("brax", "brax.envs", "brax.envs.wrappers", "brax.envs.wrappers.training")
        modules = {name: types.ModuleType(name) for name in names}
        for parent, child in zip(names, names[1:]):
            setattr(modules[parent], child.rsplit(".", 1)[1], modules[child])
        modules["brax.envs.wrappers.training"].EpisodeWrapper = object
        modules["brax.envs.wrappers.training"].AutoResetWrapper = object
        sys.modules.update(modules)
    try:
        import navix  # noqa: F401  likewise, for MiniGrid tasks
    except ImportError:
        import types
        sys.modules["navix"] = types.ModuleType("navix")
    theirs = importlib.import_module("ppo").make_train(dict(PUREJAXRL_CONFIG))
    config = load_config("PPO", "configs/ppo/CartPole_purejaxrl.json")
    steps = config["num_steps"]  # 976 updates x 512, as PureJaxRL's int(5e5 // 512)
    their_seconds = timed(jax.jit(theirs), jax.random.PRNGKey(30), repeats=repeats)
    our_seconds = timed(ours_whole_training(config), jax.random.PRNGKey(30), repeats=repeats)
    result = {"steps": steps, "purejaxrl_seconds": their_seconds, "ours_seconds": our_seconds,
              "purejaxrl_steps_per_second": steps / their_seconds, "ours_steps_per_second": steps / our_seconds,
              "ours_over_purejaxrl_time": our_seconds / their_seconds}
    print(f"CartPole-v1, 1 seed, {steps} steps: PureJaxRL {their_seconds:.2f} s ({steps / their_seconds:,.0f} "
          f"steps/s), ours {our_seconds:.2f} s ({steps / our_seconds:,.0f} steps/s); time ratio ours / PureJaxRL "
          f"{our_seconds / their_seconds:.2f}", flush=True)
    return result


# Per-update overrides: the CPU configs as they are (32 envs x 128 steps); the GPU configs (80 x 80 pixels, 4 frames,
# the author's network sizes) at 16 envs with 4 minibatches, so a minibatch keeps the author's 512 samples and an
# update fits this machine's time (the per-sample work is that of the full protocol).
PIXEL_SIZES = {"cpu": {"eval_frequency": 4096},
               "gpu": {"num_envs": 16, "num_minibatches": 4, "eval_frequency": 2048}}


def pixels(seeds: int, repeats: int, sizes: str = "cpu") -> dict:
    result = {}
    for variant in ("none", "rnd", "snd", "snd_entropy"):
        raw = load_config("PPO", f"configs/ppo/MiniMontezuma_{sizes}_{variant}.json")
        overrides = PIXEL_SIZES[sizes]
        config = validate("PPO", {**{k: v for k, v in raw.items() if k not in ("agent_type", "sweep")},
                                  "num_seeds": seeds, **overrides, "num_steps": overrides["eval_frequency"] * 4})
        per_update = config["num_envs"] * config["rollout_length"]
        env, env_params = envs.make_from_config(config)
        agent = ppo.make(config, env, env_params)
        keys = jax.random.split(jax.random.PRNGKey(0), seeds)
        state = jax.jit(jax.vmap(agent.init, in_axes=(0, None)))(keys, agent.hparams)
        update = jax.jit(jax.vmap(lambda s, k: agent.interact(s, k, agent.hparams, True)))
        result[variant] = timed(update, state, keys, repeats=repeats)
        ratio = result[variant] / result["none"]
        print(f"{variant}: {result[variant]:.2f} s per update of {seeds} x {per_update} transitions "
              f"({seeds * per_update / result[variant]:,.0f} steps/s); {ratio:.2f} x plain PPO", flush=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("cartpole", "pixels"), required=True)
    parser.add_argument("--purejaxrl", default=None, help="a clone of PureJaxRL (for --part cartpole)")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--sizes", choices=tuple(PIXEL_SIZES), default="cpu",
                        help="--part pixels: the MiniMontezuma CPU configs or the GPU configs' network sizes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    results = machine_and_peak()
    if args.part == "cartpole":
        if not args.purejaxrl or not os.path.exists(os.path.join(args.purejaxrl, "purejaxrl", "ppo.py")):
            parser.error("--part cartpole needs --purejaxrl PATH, a clone of PureJaxRL")
        results["cartpole"] = cartpole(args.purejaxrl, args.repeats)
    else:
        results["pixels"] = pixels(args.seeds, args.repeats, args.sizes)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
