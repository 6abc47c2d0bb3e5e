"""PETS at the published cartpole sizes: one planning step and one model training call, per seed and for many
vmapped seeds, and the projected time of the whole published protocol.

    python benchmarks/bench_pets.py [--seeds 1 8] [--json out.json]
    python benchmarks/bench_pets.py --seeds 1 30 --json gpu.json      # the GPU run (goal: 30 seeds < 40 min)
    python benchmarks/bench_pets.py --config configs/pets/CartpoleSwingUp_reduced.json --seeds 5   # another config

Measures, through the harness's compiled programs (runner.CompiledRun: vmapped over the runs, each device
running its share) with configs/pets/CartpoleSwingUp.json (PE-TSinf-CEM, P 400, E 40, I 5, H 25, K 20, 5 members
of 500 x 3):
  - the float32 matmul peak (a 2048^2 product through XLA, median of repeats);
  - a planned chunk of `--plan-steps` control steps (CEM through the model at every step): seconds per control
    step for all seeds together;
  - a model training call (5 epochs of minibatches of 32 over a bootstrap of every row) at the first call's
    200 rows and at the last call's 10,000 rows (the dataset filled with random transitions), each after a
    random 200-step episode, whose cost is negligible;
  - FLOPs: XLA's cost analysis counts a loop body once, so they are summed from loop-free parts: one
    propagation step of every candidate's particles (the ensemble on P x K rows) times H x I per control step
    (P K H I model evaluations), and one Adam step's gradient times 5 x ceil(N / 32) per training
    call. Achieved FLOP/s over the measured time, and the fraction of the peak;
  - the projection of the published protocol (1 random + 50 planned episodes of 200 steps, 50 training calls at
    200, 400, ..., 10,000 rows; training time linear in the rows between the two measured sizes).
The matmul precision is JAX's default (`jax_default_matmul_precision` unset): on a GPU that allows TF32.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiment.devices import use_every_core  # noqa: E402

use_every_core()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import envs  # noqa: E402
from agents import pets  # noqa: E402
from agents.components import ensemble  # noqa: E402
from bench_er import flops_of, per_seed_count, timed_chunks  # noqa: E402
from experiment import config as config_lib, runner  # noqa: E402

PUBLISHED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs", "pets", "CartpoleSwingUp.json")


def bench_config(num_seeds: int, task_hor: int, ntrain_iters: int, path: str = PUBLISHED) -> dict:
    raw = config_lib.load_json(path)
    return config_lib.validate("PETS", {**raw, "num_seeds": num_seeds, "task_hor": task_hor, "eval_frequency": task_hor,
                                        "ntrain_iters": ntrain_iters, "num_steps": (1 + ntrain_iters) * task_hor})


def model_sizes(config) -> tuple:
    """(model inputs, model targets, action dimensions) of the config's task, as agents/pets.py builds them."""
    task = pets.TASKS[config["environment"]]
    env, env_params = envs.make_from_config(config)
    env = task.wrap(env) if task.wrap is not None else env
    space = env.action_space(env_params)
    action_dim = space.shape[0] if len(space.shape) else 1
    state = jnp.zeros(env.observation_space(env_params).shape[0])
    return (task.preprocess(state).shape[-1] + action_dim, task.target(state, state).shape[-1], action_dim)


def part_flops(config) -> tuple:
    """(FLOPs of one control step's planning, FLOPs of one Adam step), for one seed."""
    members, particles = pets.members(config), pets.particles(config)
    inputs, targets, _ = model_sizes(config)
    model = ensemble.make_ensemble(members, tuple(config["hidden_widths"]), targets, True)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, inputs)))
    rows = config["popsize"] * particles // members
    propagate = flops_of(jax.jit(model.apply).lower(params, jnp.zeros((members, rows, inputs))).compile())
    plan = propagate * config["plan_hor"] * config["max_iters"]
    batch = config["model_batch_size"]
    grad = jax.grad(lambda p, x, y, m: ensemble.ensemble_loss(model, p, x, y, m, config["weight_decays"]))
    adam_step = flops_of(jax.jit(grad).lower(params, jnp.zeros((members, batch, inputs)),
                                             jnp.zeros((members, batch, targets)), jnp.ones((members, batch))).compile())
    return plan, adam_step


def measure(num_seeds: int, plan_steps: int, repeats: int, peak: float, path: str = PUBLISHED) -> dict:
    result = {"num_seeds": num_seeds}
    plan_flops, adam_flops = part_flops(bench_config(1, 200, 50, path))
    axis = runner.RunAxis(1, num_seeds)
    keys = axis.place(np.asarray(jax.random.split(jax.random.PRNGKey(0), num_seeds)))

    # planning: chunks of plan_steps planned control steps (the first call compiles)
    config = bench_config(num_seeds, plan_steps, 1, path)
    env, env_params = envs.make_from_config(config)
    compiled = runner.CompiledRun(pets.make(config, env, env_params), axis)
    hparams = axis.place(runner.stacked_hyperparams(config, pets.make, axis))
    state = compiled.init(keys, hparams)
    state, _ = compiled.interact(state, keys, hparams, (False, True))  # a random episode, a first training
    state, _ = timed_chunks(compiled, state, keys, hparams, (True, False), 1)  # compiles
    state, seconds = timed_chunks(compiled, state, keys, hparams, (True, False), repeats)
    result["plan_step_seconds"] = seconds / plan_steps
    result["plan_step_flops"] = plan_flops * num_seeds
    result["plan_fraction_of_peak"] = plan_flops * num_seeds / result["plan_step_seconds"] / peak
    print(f"  planning: {result['plan_step_seconds']:.2f} s per control step for {num_seeds} seeds "
          f"({result['plan_step_flops'] / 1e12:.2f} TFLOP, {100 * result['plan_fraction_of_peak']:.0f}% of peak)",
          flush=True)

    # training calls at 200 and 10,000 rows (a random episode first; the dataset filled with random transitions)
    config = bench_config(num_seeds, 200, 50, path)
    compiled = runner.CompiledRun(pets.make(config, env, env_params), axis)
    action_dim = model_sizes(config)[2]

    def filled(rows):  # a fresh state (interact donates its input) whose next episode brings the data to rows
        state = compiled.init(keys, hparams)
        noise = jax.random.normal(jax.random.PRNGKey(1), state.observations.shape)
        return state.replace(observations=noise, actions=jnp.clip(noise[..., :-1, :action_dim], -3, 3),
                             episodes_done=jnp.full_like(state.episodes_done, rows // 200 - 1))

    for rows in (200, 10_000):
        compiled.interact(filled(rows), keys, hparams, (False, True))  # compiles (once), warms up
        _, seconds = timed_chunks(compiled, filled(rows), keys, hparams, (False, True), 1)
        steps = 5 * -(-rows // config["model_batch_size"])
        flops = adam_flops * steps * num_seeds
        result[f"train_seconds_{rows}"] = seconds
        result[f"train_flops_{rows}"] = flops
        print(f"  training call at {rows} rows ({steps} Adam steps): {seconds:.2f} s ({flops / 1e12:.3f} TFLOP, "
              f"{100 * flops / seconds / peak:.1f}% of peak)", flush=True)
    per_row = (result["train_seconds_10000"] - result["train_seconds_200"]) / 9800
    training = sum(result["train_seconds_200"] + per_row * (200 * i - 200) for i in range(1, 51))
    planning = 10_000 * result["plan_step_seconds"]
    result.update(projected_protocol_minutes=(planning + training) / 60, projected_planning_minutes=planning / 60,
                  projected_training_minutes=training / 60)
    print(f"  the published protocol for {num_seeds} seeds projects to {result['projected_protocol_minutes']:.0f} "
          f"min ({planning / 60:.0f} planning + {training / 60:.1f} training)", flush=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--plan-steps", type=int, default=2, help="planned control steps per timed chunk")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", default=None)
    parser.add_argument("--config", default=PUBLISHED,
                        help="a PETS config of any task (default: the published cartpole sizes; the protocol "
                             "projection counts the cartpole protocol's 50 episodes of 200 steps)")
    args = parser.parse_args(argv)
    return per_seed_count(args.seeds, lambda seeds, peak: measure(seeds, args.plan_steps, args.repeats, peak,
                                                                  args.config), args.json)


if __name__ == "__main__":
    main()
