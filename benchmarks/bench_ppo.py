"""PPO's speed: plain PPO against PureJaxRL's PPO on CartPole-v1 at PureJaxRL's default settings, and the cost of
RND, SND and SND + entropy as ratios to plain PPO on the pixel task (MiniMontezuma).

    python benchmarks/bench_ppo.py --part cartpole --purejaxrl PATH   # PATH: a clone of PureJaxRL (its purejaxrl/
                                                                      # folder); needs the bench extra (distrax)
    python benchmarks/bench_ppo.py --part pixels [--seeds 1] [--sizes cpu|gpu]
    python benchmarks/bench_ppo.py --part flops [--sizes cpu|gpu]

cartpole: one seed, 5e5 steps (976 updates of 4 envs x 128 steps, 4 epochs of 4 minibatches), in one process,
each side compiled first and then timed over --repeats whole trainings: PureJaxRL's `make_train` (their code,
imported from PATH, DEBUG off) and ours (the agent's init then every chunk's interact in one jitted program on
one device, which is what the harness runs minus its file writes). Steps per second and the ratio.
pixels: seconds per update for each distillation variant after compilation, and the ratios to plain PPO, at the
CPU configs' sizes or the GPU configs' (see PIXEL_SIZES).
flops: the floating-point work of one update per seed for each variant, and its ratio to plain PPO, from the
agent's own networks and losses (XLA's count of each piece, compiled alone, times how often one update runs it:
XLA counts a scan's body once, so the whole update's count would be wrong). Environment steps, optimizer updates
and bookkeeping are left out; on a device where the networks dominate, these ratios are the time ratios.
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
from agents import ppo_networks  # noqa: E402
from agents.components import distillation as distill  # noqa: E402
from benchmarks.bench_er import flops_of, machine_and_peak, write_json  # noqa: E402
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


def import_purejaxrl_ppo(path: str):
    """PureJaxRL's purejaxrl/ppo.py from a clone at PATH (their wrappers import brax and navix at the top for other
    tasks; where those are absent, empty stand-ins let the module import)."""
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
    module = importlib.import_module("ppo")
    if not isinstance(module.gymnax, FiveOutputGymnax):  # a second import returns the module already adapted
        module.gymnax = FiveOutputGymnax()
        module.orthogonal = one_matrix_at_a_time(module.orthogonal)
    return module


def one_matrix_at_a_time(make_initializer):
    """Their flax orthogonal initializer, the same values, but vmapped over seeds one matrix after another: a batch
    of QRs on XLA's CPU thread pool can hang the process (agents/components/linalg.py says why; seen here with
    Breakout-MinAtar's 400 x 64 layers at 2 seeds)."""
    def make(*args, **kwargs):
        initializer = make_initializer(*args, **kwargs)

        def initialize(key, shape, dtype=jax.numpy.float32):
            return jax.custom_batching.sequential_vmap(lambda k: initializer(k, shape, dtype))(key)
        return initialize
    return make


class FiveOutputGymnax:
    """gymnax as PureJaxRL's code expects it: gymnax >= 1.0's step returns (obs, state, reward, terminated,
    truncated, info); their wrappers unpack the five outputs of gymnax 0.0.x, whose done was terminated or truncated
    (both auto-reset) and whose info held no more than the discount. `make` wraps the environment so its step gives
    those five and that info."""

    def make(self, name, **kwargs):
        import gymnax
        env, params = gymnax.make(name, **kwargs)
        return _FiveOutputStep(env), params


class _FiveOutputStep:
    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)

    def step(self, key, state, action, params=None):
        outputs = self._env.step(key, state, action, params)
        if len(outputs) == 5:  # gymnax 0.0.x already
            return outputs
        obs, state, reward, terminated, truncated, info = outputs
        # gymnax 1.0 also reports these per step; PureJaxRL keeps every step's info, so a MinAtar run's copies of
        # final_observation alone would need tens of GB at 16 seeds
        info = {k: v for k, v in info.items() if k not in ("terminated", "truncated", "final_observation")}
        return obs, state, reward, jax.numpy.logical_or(terminated, truncated), info


def cartpole(path: str, repeats: int) -> dict:
    theirs = import_purejaxrl_ppo(path).make_train(dict(PUREJAXRL_CONFIG))
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


def pixel_config(sizes: str, variant: str, **overrides) -> dict:
    """The MiniMontezuma config of these sizes and distillation variant, with overrides, validated."""
    raw = load_config("PPO", f"configs/ppo/MiniMontezuma_{sizes}_{variant}.json")
    return validate("PPO", {**{k: v for k, v in raw.items() if k not in ("agent_type", "sweep")}, **overrides})


def pixels(seeds: int, repeats: int, sizes: str = "cpu") -> dict:
    result = {}
    for variant in ("none", "rnd", "snd", "snd_entropy"):
        overrides = PIXEL_SIZES[sizes]
        config = pixel_config(sizes, variant, num_seeds=seeds, **overrides, num_steps=overrides["eval_frequency"] * 4)
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


def update_flops(sizes: str = "cpu") -> dict:
    """FLOPs of one update per seed for each variant, summed over the pieces the update runs (see the docstring)."""
    import jax.numpy as jnp
    result = {}
    for variant in ("none", "rnd", "snd", "snd_entropy"):
        config = pixel_config(sizes, variant)
        env, env_params = envs.make_from_config(config)
        obs_shape = tuple(env.observation_space(env_params).shape)
        num_envs, horizon, epochs = config["num_envs"], config["rollout_length"], config["epochs"]
        minibatch = num_envs * horizon // config["num_minibatches"]
        steps = epochs * config["num_minibatches"]  # minibatch steps per update
        hp = ppo.hyperparams_from_config(config)
        net = ppo_networks.policy_network(config, env.action_space(env_params).n, 3 if variant == "snd_entropy" else 2)
        target, predictor = distill.distillation_networks(config["distill_conv_channels"],
                                                          config["distill_conv_strides"], config["distill_features"])
        entropy, _ = distill.distillation_networks(config["distill_conv_channels"], config["distill_conv_strides"],
                                                   config["entropy_features"])
        key = jax.random.PRNGKey(0)
        obs = jnp.zeros((1,) + obs_shape, jnp.uint8)
        view = jnp.zeros((1,) + obs_shape[:2] + (1,))
        params = {"policy": net.init(key, obs), "target": target.init(key, view), "predictor": predictor.init(key, view),
                  "entropy": entropy.init(key, view)}

        def count(function, *shapes):
            args = [jnp.zeros(shape, dtype) for shape, dtype in shapes]
            return flops_of(jax.jit(function).lower(params, *args).compile())

        def policy_grad(p, o, a):
            batch = {"obs": o, "action": a, "log_prob": jnp.zeros(len(a)), "advantage": jnp.zeros(len(a)),
                     "returns": jnp.zeros((len(a), 3 if variant == "snd_entropy" else 2))}
            return jax.grad(lambda q: ppo_networks.ppo_loss(net.apply, q, batch, hp)[0])(p["policy"])

        def predictor_grad(p, x, z):
            return jax.grad(lambda q: distill.masked_distillation_loss(key, z, predictor.apply(q, x), 0.25,
                                                                       "element")[0])(p["predictor"])

        def contrastive_grad(name, network):
            def grad(p, xa, xb):
                labels = jnp.zeros(len(xa))
                return jax.grad(lambda q: distill.contrastive_loss(network.apply(q, xa), network.apply(q, xb),
                                                                   labels)[0])(p[name])
            return grad

        def forward(name, network):
            return lambda p, x: network.apply(p[name], x)

        frames, views = obs_shape, obs_shape[:2] + (1,)
        total = ((horizon + 1) * count(forward("policy", net), ((num_envs,) + frames, jnp.uint8))
                 + steps * count(policy_grad, ((minibatch,) + frames, jnp.uint8), ((minibatch,), jnp.int32)))
        if variant != "none":
            total += horizon * (count(forward("target", target), ((num_envs,) + views, jnp.float32))
                                + count(forward("predictor", predictor), ((num_envs,) + views, jnp.float32)))
            total += steps * count(predictor_grad, ((minibatch,) + views, jnp.float32),
                                   ((minibatch, config["distill_features"]), jnp.float32))
            target_once = num_envs * horizon if variant == "rnd" else steps * minibatch  # SND's target moves
            total += target_once / num_envs * count(forward("target", target), ((num_envs,) + views, jnp.float32))
        if variant in ("snd", "snd_entropy"):
            pairs = ((config["snd_pairs"],) + views, jnp.float32)
            total += steps * count(contrastive_grad("target", target), pairs, pairs)
        if variant == "snd_entropy":
            pairs = ((config["snd_pairs"],) + views, jnp.float32)
            total += horizon * count(forward("entropy", entropy), ((num_envs,) + views, jnp.float32))
            total += steps * count(contrastive_grad("entropy", entropy), pairs, pairs)
        result[variant] = total
        print(f"{variant}: {total / 1e9:.1f} GFLOP per update of {num_envs * horizon} transitions; "
              f"{total / result['none']:.2f} x plain PPO", flush=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("cartpole", "pixels", "flops"), required=True)
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
    elif args.part == "flops":
        results["flops"] = update_flops(args.sizes)
    else:
        results["pixels"] = pixels(args.seeds, args.repeats, args.sizes)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
