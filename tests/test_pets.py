"""PETS as an agent (agents/pets.py): its config keys and refusals, the episode schedule, model training that
reads only recorded rows, the planner at the published sizes, and a tiny run through the harness that resumes
to the same result. The learning run is tests/test_pets_learning.py."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
import pets_outputs
from agents import pets
from experiment import config as config_lib
from experiment import runner

TINY = "configs/pets/tiny_test.json"


def tiny(**changes):
    return config_lib.validate("PETS", {**config_lib.load_json(TINY), **changes})


def make(config):
    env, params = envs.make_from_config(config)
    return pets.make(config, env, params)


@pytest.mark.parametrize("changes, message", [
    ({"model_type": "P"}, "prop_type TSinf needs an ensemble \\(model_type DE or PE\\), not P"),
    ({"model_type": "D", "prop_type": "DS"}, "model_type D propagates only with prop_type E"),
    ({"npart": 5}, "npart \\(5\\) must be a multiple of ensemble_size \\(2\\) for TSinf"),
    ({"num_elites": 20}, "num_elites \\(20\\) cannot exceed popsize \\(16\\)"),
    ({"weight_decays": [1e-4, 1e-4]}, "weight_decays needs one lambda per layer: 3 for 2 hidden layers"),
    ({"num_steps": 80, "eval_frequency": 20}, "set num_steps to 60 and eval_frequency to 20"),
    ({"environment": "CartPole-v1"}, "PETS has no planning cost for 'CartPole-v1'"),
    ({"prop_type": "TS"}, "'prop_type' must be one of E, DS, MM, TS1, TSinf"),
    ({"popsze": 10}, "unknown config key 'popsze' for PETS; did you mean 'popsize'"),
    ({"weight_decays": [1e-4, "x", 1e-4]}, "'weight_decays' must be a list of numbers"),
])
def test_bad_configs_are_refused_naming_the_key(changes, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        tiny(**changes)


def test_episode_schedule():
    """One chunk per episode: random ones first; the model trains after the random rollouts and after every
    nrollouts_per_iter planned ones, never after the last episode (Chua et al. 2018; kchua/handful-of-trials)."""
    agent = make(tiny())  # ninit 1, ntrain_iters 2, task_hor 20
    assert [agent.chunk_phase(t, True) for t in (0, 20, 40)] == [(False, True), (True, True), (True, False)]
    agent = make(tiny(ninit_rollouts=2, nrollouts_per_iter=2, num_steps=120))  # 2 random + 2 x 2 planned
    phases = [agent.chunk_phase(t, True) for t in range(0, 120, 20)]
    assert phases == [(False, False), (False, True), (True, False), (True, True), (True, False), (True, False)]


def test_training_reads_only_recorded_episodes():
    """The scaler, the bootstrap and the minibatches touch only the recorded rows: episodes not yet run hold NaN
    here, and the trained model, its loss and the scaler stay finite; the scaler is the recorded inputs' own."""
    agent = make(tiny())
    state = jax.jit(agent.init)(jax.random.PRNGKey(0), agent.hparams)
    state = state.replace(observations=jnp.full_like(state.observations, jnp.nan),
                          actions=jnp.full_like(state.actions, jnp.nan))
    after, metrics = jax.jit(agent.interact, static_argnums=3)(state, jax.random.PRNGKey(1), agent.hparams,
                                                               (False, True))
    assert int(after.episodes_done) == 1 and np.isfinite(float(metrics["model_loss"]))
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(after.params))
    obs, actions = np.asarray(after.observations[0, :-1]), np.asarray(after.actions[0])
    inputs = np.concatenate([np.sin(obs[:, 1:2]), np.cos(obs[:, 1:2]), obs[:, :1], obs[:, 2:], actions], axis=1)
    np.testing.assert_allclose(np.asarray(after.scaler[0]), inputs.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(after.scaler[1]), inputs.std(0), rtol=1e-4, atol=1e-6)
    # the random episode's actions are uniform in the box and the rewards are the environment's
    assert np.abs(actions).max() <= 3.0 and actions.std() > 1.0
    assert float(metrics["return"]) == pytest.approx(float(np.asarray(after.rewards[0]).sum()), rel=1e-6)


@pytest.mark.slow  # compiles the published planner sizes: ~27 s here
def test_published_planner_sizes_plan_a_step():
    """The published cartpole planner (P 400, E 40, I 5, H 25, K 20 through 5 members of 500 x 3) plans two control
    steps after one random episode of two steps: actions inside the box, the running maximum tracked."""
    raw = config_lib.load_json("configs/pets/CartpoleSwingUp.json")
    config = config_lib.validate("PETS", {**raw, "num_seeds": 1, "task_hor": 2, "ntrain_iters": 1, "num_steps": 4,
                                          "eval_frequency": 2})
    agent = make(config)
    interact = jax.jit(agent.interact, static_argnums=3)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0), agent.hparams)
    state, _ = interact(state, jax.random.PRNGKey(1), agent.hparams, agent.chunk_phase(0, True))
    state, metrics = interact(state, jax.random.PRNGKey(2), agent.hparams, agent.chunk_phase(2, True))
    actions = np.asarray(state.actions[1])
    assert actions.shape == (2, 1) and np.abs(actions).max() <= 3.0
    assert float(metrics["return_running_max"]) == pytest.approx(float(metrics["return"]))


@pytest.mark.parametrize("environment, changes, expected", [
    ("CartpoleSwingUp", {}, 2000), ("CartpoleSwingUp", {"random_popsize": 24}, 24), ("Pendulum-v1", {}, 16)])
def test_random_shooting_evaluates_the_published_population(monkeypatch, environment, changes, expected):
    """opt_type Random scores one round of the task's published population (2000 for the cartpole, from
    handful-of-trials' dmbrl/config/cartpole.py), not CEM's popsize (16 here); random_popsize overrides it and a task
    without a published one falls back to popsize. Counted where the planner's cost function receives them."""
    from agents.components import cem

    seen = []
    shooting = cem.random_shooting

    def counting(key, cost, shape, lower, upper, population):
        def counted(key, candidates):
            seen.append(candidates.shape[0])
            return cost(key, candidates)
        return shooting(key, counted, shape, lower, upper, population)

    monkeypatch.setattr(cem, "random_shooting", counting)
    config = tiny(environment=environment, opt_type="Random", num_seeds=1, task_hor=2, ntrain_iters=1, num_steps=4,
                  eval_frequency=2, **changes)
    assert pets.random_population(config) == expected
    agent = make(config)
    interact = jax.jit(agent.interact, static_argnums=3)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0), agent.hparams)
    state, _ = interact(state, jax.random.PRNGKey(1), agent.hparams, agent.chunk_phase(0, True))
    state, _ = interact(state, jax.random.PRNGKey(2), agent.hparams, agent.chunk_phase(2, True))
    assert seen and set(seen) == {expected}
    assert np.all(np.isfinite(np.asarray(state.actions[1])))


def test_tiny_run_through_the_harness_resumes_exactly_and_archives(tmp_path):
    config = tiny()
    whole = runner.run(config, pets.make, seed=3, output=str(tmp_path / "whole"), progress=False)
    check_outputs(str(tmp_path / "whole"), whole, config)
    metrics = whole["metrics"]
    assert np.asarray(metrics["reward_rates"]).shape == (3, 2)
    np.testing.assert_array_equal(np.asarray(metrics["reward_rates"]), np.asarray(metrics["return"]))
    running = np.asarray(metrics["return_running_max"])
    assert (running[2] >= running[1]).all() and np.isnan(np.asarray(metrics["model_loss"])[2]).all()
    with pytest.raises(runner.Interrupted):
        runner.run(config, pets.make, seed=3, output=str(tmp_path / "split"), progress=False, stop_after_chunks=2)
    resumed = runner.run(config, pets.make, seed=3, output=str(tmp_path / "split"), resume=True, progress=False)
    for name in ("reward_rates", "model_loss", "return_running_max"):
        np.testing.assert_array_equal(np.asarray(resumed["metrics"][name]), np.asarray(metrics[name]))


def check_outputs(stem, result, config):
    """pets_outputs.py on a finished run: logs.mat's fields with a seed axis, returns of the planned episodes only,
    a GIF of one episode, and one-line refusals."""
    assert pets_outputs.main(["archive", "-d", stem]) == 0
    archive = np.load(stem + ".npz")
    seeds, count, horizon = config["num_seeds"], 3, config["task_hor"]
    assert archive["observations"].shape == (seeds, count, horizon + 1, 4)
    assert archive["actions"].shape == (seeds, count, horizon, 1) and archive["rewards"].shape == (seeds, count, horizon)
    np.testing.assert_allclose(archive["returns"], np.asarray(result["metrics"]["return"])[1:].T, rtol=1e-5)
    # consecutive observations are the environment's own transitions under the recorded actions
    env, params = envs.make("CartpoleSwingUp")
    from envs.cartpole_swingup import SwingUpState
    obs, action = archive["observations"][0, 1, 5], archive["actions"][0, 1, 5]
    state = SwingUpState(time=0, q=jnp.asarray(obs[:2]), qdot=jnp.asarray(obs[2:]))
    next_obs, _, reward, _, _ = env.step_env(jax.random.PRNGKey(0), state, jnp.asarray(action), params)
    np.testing.assert_allclose(np.asarray(next_obs), archive["observations"][0, 1, 6], rtol=1e-5, atol=1e-6)
    assert float(reward) == pytest.approx(float(archive["rewards"][0, 1, 5]), rel=1e-5)
    assert pets_outputs.main(["render", "-d", stem, "--seed-index", "1", "--episode", "2", "-o", stem + ".gif"]) == 0
    from PIL import Image
    assert Image.open(stem + ".gif").n_frames == horizon + 1
    assert pets_outputs.main(["render", "-d", stem, "--episode", "3", "-o", stem + ".gif"]) == 2
    assert pets_outputs.main(["render", "-d", stem, "-o", stem + ".avi"]) == 2
    assert pets_outputs.main(["archive", "-d", stem + "_missing"]) == 2
    check_results_table(stem, result, config)


def check_results_table(stem, result, config):
    """benchmarks/pets_results.py on a finished run: the planned episodes' returns and running maxima as the .out
    holds them (2 seeds: mean and range), both baselines over whole task_hor-step episodes (|reward| <= 1 per
    step, so |return| <= task_hor; the two policies' returns differ), and one-line refusals."""
    import json
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
    import pets_results
    assert pets_results.main(["-o", stem + "_table", "--episodes", "1", "2", "--baseline-seeds", "4",
                              "--panel", "tiny", f"PETS={stem}.out"]) == 0
    record = json.load(open(stem + "_table.json"))["tiny"]
    planned = np.asarray(result["metrics"]["return"])[1:]
    np.testing.assert_allclose(record["series"]["PETS"]["return"], planned, rtol=1e-6)
    np.testing.assert_allclose(record["series"]["PETS"]["running_max"],
                               np.maximum.accumulate(planned, axis=0), rtol=1e-6)
    table = open(stem + "_table.md").read()
    second = planned[1]
    assert f"{second.mean():.1f} ({second.min():.1f}, {second.max():.1f})" in table
    random, zero = (np.asarray(record["baselines"][name]) for name in ("uniformly random actions", "zero action"))
    assert random.shape == zero.shape == (4,) and not np.allclose(random, zero)
    assert (np.abs(random) <= config["task_hor"]).all() and (np.abs(zero) <= config["task_hor"]).all()
    assert pets_results.main(["-o", stem + "_bad", "--panel", "tiny", f"PETS={stem}_missing.out"]) == 2


def test_mountain_car_end_is_absorbing():
    """gymnax's MountainCarContinuous ends at the goal; under AbsorbingEnd (PETS's fixed-length episodes) the step
    that reaches it pays gymnax's reward (100 - 0.1 a^2), later steps keep the observation and pay 0, and the
    planner's cost of the goal state is -100. From x 0.44, v 0.05, push 1: v' = 0.05 + 0.0015 - cos(1.32) 0.0025
    = 0.050879..., x' = 0.490879..."""
    from envs.absorbing import AbsorbingEnd
    task = pets.TASKS["MountainCarContinuous-v0"]
    assert task.wrap is AbsorbingEnd
    env, params = envs.make("MountainCarContinuous-v0")
    wrapped = AbsorbingEnd(env)
    _, state = wrapped.reset_env(jax.random.PRNGKey(0), params)
    state = state.replace(inner=state.inner.replace(position=jnp.float32(0.44), velocity=jnp.float32(0.05)))
    rewards, observations = [], []
    for _ in range(3):
        obs, state, reward, done, _ = wrapped.step_env(jax.random.PRNGKey(0), state, jnp.array([1.0]), params)
        rewards.append(float(reward)), observations.append(np.asarray(obs))
        assert not bool(done)
    velocity = 0.05 + 0.0015 - np.cos(3 * 0.44) * 0.0025
    np.testing.assert_allclose(observations[0], [0.44 + velocity, velocity], rtol=1e-5)
    np.testing.assert_allclose(rewards, [100 - 0.1, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(observations[1], observations[0])
    assert float(task.obs_cost(jnp.asarray(observations[0]), None)) == -100.0
    assert float(task.obs_cost(jnp.array([0.3, 0.01]), None)) == 0.0
    tiny(environment="MountainCarContinuous-v0")  # a PETS task: the config is accepted


def test_ablation_command_checks_every_combination_without_running(tmp_path, capsys):
    """pets_ablation.py --check: each allowed combination validated, built and traced, nothing written; a
    disallowed one (D with DS) reported and skipped; --resume with --overwrite refused."""
    from train_scripts import pets_ablation

    out = tmp_path / "ablation"
    assert pets_ablation.main(["-c", "configs/pets/tiny_test.json", "-o", str(out), "--models", "D", "PE",
                               "--props", "E", "DS", "--check"]) == 0
    printed = capsys.readouterr().out
    assert "D-DS: skipped" in printed and "3 combinations: valid configs; nothing was run" in printed
    assert not out.exists()
    assert pets_ablation.main(["-c", "configs/pets/tiny_test.json", "-o", str(out), "--resume", "--overwrite"]) == 2


@pytest.mark.slow
def test_ablation_command_draws_one_panel_per_model_and_redraws_from_complete_runs(tmp_path, capsys, monkeypatch):
    """pets_ablation.py: D-E, PE-E and PE-TS1 on the tiny config; the figure has a panel per model type with its
    propagation methods (the band's meaning in each legend entry); the same command again trains nothing (every
    run complete) and redraws the figure. About 50 s."""
    import matplotlib.pyplot as plt

    from train_scripts import pets_ablation

    drawn = []
    monkeypatch.setattr(plt.Figure, "savefig", lambda fig, *a, **k: drawn.append(fig))
    arguments = ["-c", "configs/pets/tiny_test.json", "-o", str(tmp_path), "--models", "D", "PE", "--props", "E",
                 "TS1", "--no-progress"]
    assert pets_ablation.main(arguments) == 0
    assert "D-TS1: skipped" in capsys.readouterr().out
    axes = drawn[0].axes
    assert [ax.get_title() for ax in axes] == ["model D", "model PE"]
    assert [[t.get_text() for t in ax.get_legend().get_texts()] for ax in axes] == [
        ["E (mean and range of 2 seeds)"], ["E (mean and range of 2 seeds)", "TS1 (mean and range of 2 seeds)"]]
    assert axes[0].get_ylabel() == "best episode return so far"
    assert pets_ablation.main(arguments) == 0
    assert "==" not in capsys.readouterr().out and len(drawn) == 2  # nothing trained again; drawn again
