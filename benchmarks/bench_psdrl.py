"""PSDRL at the published sizes: one acting step and one model update, per seed and for many vmapped seeds.

    python benchmarks/bench_psdrl.py [--seeds 1 4] [--fill 100000] [--json out.json]
    python benchmarks/bench_psdrl.py --seeds 30 --fill 100000 --json gpu.json       # the GPU run

Measures, in one run, through the harness's own compiled programs (runner.CompiledRun: vmapped over the runs,
each device running its share):
  - the float32 matmul peak of this machine (a 2048^2 product through XLA, median of repeats);
  - the acting step (encode the frame, one-step look-ahead for every action, environment step, replay write):
    seconds per step for all seeds together, from a 100-step chunk without updates;
  - one model update with `--fill` transitions in the replay (the published buffer holds 100k): the
    autoencoder, transition and value trainers at batch 125 x 250 steps, and the posterior refit over every
    kept transition, whose cost grows with the fill; timed also with a 1,000-transition fill, so the
    refit's cost per stored transition comes out as the difference;
  - FLOPs: XLA's cost analysis counts a loop body once, so the update's FLOPs are summed from its loop-free
    parts (each network's forward or forward+backward at the trainer's batch, times how often the update
    runs it); the acting step's from a one-step chunk. Achieved FLOP/s over the measured time, and the
    fraction of the peak;
  - `--batch-size` below 125 shrinks the three trainers' batches (a CPU needs minutes per published update);
    the projection then scales the trainers' measured time by 125 / batch (their cost is linear in it);
  - the projection of a published run (1M steps: an update every 250 steps for the first 100k, every 1000
    after, the refit over min(steps, 100k) transitions) from the measured parts.

The replay is filled with synthetic episodes (uniform random frames, 500 steps each): the update's cost does
not depend on what the frames show. Frames are 64 x 64 x 1 (rendered Breakout-MinAtar here, 3 actions;
`--actions-env` picks another environment, e.g. an 18-action one, since the look-ahead scales with actions).
"""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiment.devices import use_every_core  # noqa: E402

use_every_core()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import envs  # noqa: E402
from agents import psdrl  # noqa: E402
from agents.components import blr  # noqa: E402
from agents.components.episode_replay import make_episode_replay  # noqa: E402
from bench_er import flops_of, per_seed_count, timed_chunks  # noqa: E402
from experiment import config as config_lib, runner  # noqa: E402

EPISODE = 500
PUBLISHED_STEPS, WARMUP, WARMUP_FREQ, UPDATE_FREQ = 1_000_000, 100_000, 250, 1000


def published_config(environment: str, num_seeds: int, fill: int, chunk: int, batch: int = 125) -> dict:
    raw = {"batch_size": batch, "environment": environment, "env_config": {}, "env_wrappers": {"pixels": 64}, "num_seeds": num_seeds,
           "num_steps": 10 * chunk, "eval_frequency": chunk, "training_start_time": 0, "warmup_length": chunk,
           "warmup_freq": chunk, "update_freq": chunk, "replay_capacity": max(fill, 2 * EPISODE),
           "time_limit": EPISODE}
    return config_lib.validate("PSDRL", raw)


def fill_replay(config, states, compiled, fill: int):
    """Write `fill` synthetic transitions (episodes of EPISODE steps) into every run's replay, as acting would."""
    replay = make_episode_replay(ring=config["replay_capacity"] + 2 * (config["time_limit"] + 2),
                                 episodes=config["episode_table_size"], capacity=config["replay_capacity"],
                                 batch=config["batch_size"], sequence=config["sequence_length"])

    def write(state, key):
        def step(buffer, inputs):
            index, key = inputs
            frame_key, action_key = jax.random.split(key)
            frame = jax.random.randint(frame_key, (64, 64, 1), 0, 256).astype(jnp.uint8)
            done = index % EPISODE == EPISODE - 1
            buffer = replay.add(buffer, jax.random.randint(action_key, (), 0, 3), jnp.float32(0.1), frame, done,
                                jnp.float32(0))
            buffer = jax.tree.map(lambda c, b: jnp.where(done, c, b), replay.commit(buffer), buffer)
            buffer = jax.tree.map(lambda n, b: jnp.where(done, n, b), replay.begin(buffer, frame), buffer)
            return buffer, None

        buffer, _ = jax.lax.scan(step, state.replay, (jnp.arange(fill), jax.random.split(key, fill)))
        return state.replace(replay=buffer, episodes_done=state.episodes_done + fill // EPISODE)

    keys = compiled.axis.place(np.asarray(jax.random.split(jax.random.PRNGKey(1), compiled.axis.num_runs)))
    return jax.jit(compiled.per_device(write), donate_argnums=0)(states, keys)


def update_flops(config, num_actions: int, stored: int) -> float:
    """One model update's FLOPs for one seed, from its loop-free parts (see the module doc)."""
    autoencoder, encoder, transition, terminal, value = psdrl.networks(config, num_actions)
    batch, length = config["batch_size"], config["sequence_length"]
    embed, gru = config["embed_dim"], config["gru_dim"]
    features = config["transition_hidden_dim"] + gru
    window = config["window_length"] + 1
    padded = -(-length // window) * window
    key = jax.random.PRNGKey(0)
    frames = lambda n: jnp.zeros((n, 64, 64, 1))  # noqa: E731
    latent, hidden, action = jnp.zeros((batch, embed)), jnp.zeros((batch, gru)), jnp.zeros(batch, jnp.int32)
    p_ae = autoencoder.init(key, frames(1))
    p_tr, p_te = transition.init(key, latent, action, hidden), terminal.init(key, latent)
    p_v = value.init(key, latent, hidden)
    weights = jnp.zeros((embed + 1, features))
    _, action_values = psdrl.lookahead(config, num_actions, transition, terminal, value)

    def cost(fn, *args):
        return flops_of(jax.jit(fn).lower(*args).compile())

    ae_step = cost(jax.grad(lambda p, f: jnp.mean((autoencoder.apply(p, f) - f) ** 2)), p_ae, frames(length))
    encode = cost(encoder.apply, p_ae, frames(1))
    trans_step = cost(jax.grad(lambda p, q: jnp.mean(transition.apply(p, latent, action, hidden)[2] ** 2)
                               + jnp.mean(terminal.apply(q, latent) ** 2), argnums=(0, 1)), p_tr, p_te)
    trans_forward = cost(lambda p: transition.apply(p, latent[:1], action[:1], hidden[:1]), p_tr)
    lookahead_batch = cost(jax.vmap(action_values, in_axes=(None, None, None, 0, 0, None)),
                           {"transition": p_tr, "terminal": p_te}, p_v, weights, latent, hidden, 0.99)
    value_step = cost(jax.grad(lambda p: jnp.mean(value.apply(p, latent, hidden) ** 2)), p_v)
    gram = 2 * features * (features + embed + 1)  # one transition's X^T X and X^T Y terms
    solve = cost(lambda g, c: blr.solve(g, c, jnp.ones(embed + 1), 1.0, 100.0, False),
                 jnp.eye(features), jnp.zeros((features, embed + 1)))
    return (config["representation_training_iterations"] * batch * ae_step
            + config["transition_training_iterations"] * (2 * batch * length * encode + padded * trans_step)
            + stored * (2 * encode + trans_forward + gram) + solve
            + config["value_training_iterations"] * (batch * length * encode
                                                     + length * (lookahead_batch + value_step)))


def measure(environment: str, num_seeds: int, fill: int, repeats: int, peak: float, batch: int) -> dict:
    result = {"num_seeds": num_seeds, "fill": fill, "batch_size": batch}
    act_config = published_config(environment, num_seeds, fill, chunk=100)
    env, env_params = envs.make_from_config(act_config)
    num_actions = env.action_space(env_params).n
    axis = runner.RunAxis(1, num_seeds)
    acting = runner.CompiledRun(psdrl.make(act_config, env, env_params), axis)
    hparams = axis.place(runner.stacked_hyperparams(act_config, psdrl.make, axis))
    keys = axis.place(np.asarray(jax.random.split(jax.random.PRNGKey(0), num_seeds)))
    states = acting.init(keys, hparams)
    states, _ = timed_chunks(acting, states, keys, hparams, (False, 100), 1)  # compiles
    states, seconds = timed_chunks(acting, states, keys, hparams, (False, 100), repeats)
    result["act_step_seconds"] = seconds / 100
    one_step = runner.CompiledRun(psdrl.make(published_config(environment, num_seeds, fill, chunk=1, batch=batch), env,
                                             env_params), axis)
    per_device = flops_of(one_step.interact.lower(states, keys, hparams, (False, 1)).compile())
    result["act_flops_per_step"] = per_device * len(axis.devices) * num_seeds / axis.padded
    print(f"  acting step: {1e3 * result['act_step_seconds']:.2f} ms for {num_seeds} seeds "
          f"({result['act_flops_per_step'] / 1e9:.2f} GFLOP)", flush=True)

    for stored in sorted({1000, fill}):
        config = published_config(environment, num_seeds, fill, chunk=1, batch=batch)
        updating = one_step if stored == fill else runner.CompiledRun(psdrl.make(config, env, env_params), axis)
        filled = fill_replay(config, acting.init(keys, hparams), updating, stored)
        filled, _ = timed_chunks(updating, filled, keys, hparams, (True, 1), 1)  # compiles
        filled, seconds = timed_chunks(updating, filled, keys, hparams, (True, 1), repeats)
        seconds -= result["act_step_seconds"]
        flops = update_flops(config, num_actions, stored) * num_seeds
        result[f"update_seconds_{stored}"] = seconds
        result[f"update_flops_{stored}"] = flops
        result[f"update_fraction_of_peak_{stored}"] = flops / seconds / peak
        print(f"  update with {stored} stored: {seconds:.2f} s ({flops / 1e12:.2f} TFLOP, "
              f"{flops / seconds / 1e9:.0f} GFLOP/s = {100 * flops / seconds / peak:.0f}% of peak)", flush=True)
    # clamped at 0: on a CPU the difference can sit below one measurement's noise
    per_transition = max(result[f"update_seconds_{fill}"] - result["update_seconds_1000"], 0.0) / max(fill - 1000, 1)
    # The trainers' cost is linear in the batch (sequences x steps); a run at a smaller --batch-size is scaled up.
    base = (result["update_seconds_1000"] - 1000 * per_transition) * 125 / batch
    updates = [(WARMUP_FREQ * (i + 1)) for i in range(WARMUP // WARMUP_FREQ)] + list(
        range(WARMUP + UPDATE_FREQ, PUBLISHED_STEPS + 1, UPDATE_FREQ))
    projected = PUBLISHED_STEPS * result["act_step_seconds"] + sum(base + per_transition * min(s, WARMUP)
                                                                     for s in updates)
    result.update(refit_seconds_per_1k_transitions=1000 * per_transition, projected_published_run_hours=projected / 3600,
                  act_fraction_of_peak=result["act_flops_per_step"] / result["act_step_seconds"] / peak,
                  num_actions=num_actions)
    print(f"  acting {100 * result['act_fraction_of_peak']:.1f}% of peak; refit "
          f"{result['refit_seconds_per_1k_transitions']:.2f} s per 1k transitions; a published run (1M steps, "
          f"{len(updates)} updates) projects to {result['projected_published_run_hours']:.1f} h", flush=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--fill", type=int, default=100_000, help="transitions in the replay for the update")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=125,
                        help="sequences per trainer batch (published 125; smaller on a CPU, the projection scales)")
    parser.add_argument("--actions-env", default="Breakout-MinAtar")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    return per_seed_count(args.seeds, lambda seeds, peak: measure(args.actions_env, seeds, args.fill, args.repeats, peak, args.batch_size), args.json)


if __name__ == "__main__":
    main()
