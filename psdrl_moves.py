"""PSDRL on Catch, move by move: trains a Catch config and, after every chunk, plays diagnostic episodes with each
seed's behaviour policy (the sampled model, the value net, epsilon and tie-breaks, as its training episodes act)
and logs, for each step within an episode, how often the paddle moves toward the ball, away from it, or stays.

    python psdrl_moves.py -c configs/psdrl/Catch_pixels.json -o moves [--seed 0] [--episodes 16]
                          [--set transition_training_iterations=3 ...] [--no-progress]
    python psdrl_moves.py --plot moves.json oracle.json ... -o figure      # draws figure.png from such logs

Catch (bsuite's, rendered): the ball falls from the top row of a 10 x 5 board for 9 steps; the paddle starts in
the middle column and moves left, stays or moves right (actions 0, 1, 2). A policy that ignores the ball catches
it 1 time in 5 (return -0.6); one that moves toward it whenever it is off to one side catches it every time.
Per chunk it prints the seeds' mean training-episode return, the diagnostic episodes' return and the shares of
"toward" and "away" among the steps where the ball is off to one side; at the end, those shares for each step
within an episode over the last quarter of the run, with the sampled model's look-ahead terms (reward, continuation
1(terminal < 0.5), gamma V(s', h') x continuation) for the move toward the ball minus the move away (which term
pushes the policy where), how far apart the two moves' next latents are in the model and in truth (a copy of the
environment stepped with each; through the sampled W and through the trained last layer it replaces), what the value
net makes of the true next latents, and the model's next-latent error. Everything goes to O.json (per chunk, per seed, per step).
`--set oracle_lookahead=true` runs the oracle ablation (the true reward and terminal in the look-ahead).
Bad input prints one line "error: ..." and exits with status 2.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiment.devices import use_every_core  # noqa: E402

use_every_core()  # one CPU device per core, before anything starts JAX

import numpy as np  # noqa: E402

CATCH_STEPS = 9  # the ball's fall: rows 0 -> 9
LOOKAHEAD_TERMS = (  # per step with the ball off to one side (the columns of "toward_minus_away")
    ("reward_toward_minus_away", "model reward, toward - away"),
    ("continuation_toward_minus_away", "model continuation, toward - away"),
    ("future_toward_minus_away", "model gamma V(s', h') cont., toward - away"),
    ("model_latent_gap", "model |s'_toward - s'_away|"),
    ("true_latent_gap", "true |s'_toward - s'_away|"),
    ("trained_layer_latent_gap", "trained last layer |s'_toward - s'_away|"),
    ("value_of_true_next_toward_minus_away", "gamma V(true s', h'), toward - away"),
    ("model_latent_error", "model |s'_a - true s'_a|, mean over a"),
    ("true_latent_norm", "true |s'_a|, mean over a"),
)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", help="a PSDRL config on Catch-bsuite (pixels 64)")
    parser.add_argument("-o", "--output", required=True, help="writes OUTPUT.json (OUTPUT.png with --plot)")
    parser.add_argument("-d", "--data", "--plot", dest="plot", nargs="+", metavar="JSON",
                        help="draw these logs instead of training")
    parser.add_argument("-s", "--seed", type=int, default=0, help="master seed (as train_PSDRL.py's)")
    parser.add_argument("--episodes", type=int, default=16, help="diagnostic episodes per seed after each chunk")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (VALUE as JSON: 3, 1e-3, true)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT.json")
    parser.add_argument("--no-progress", action="store_true", help="no per-chunk lines")
    return parser.parse_args(argv)


def overridden(raw: dict, settings: list) -> dict:
    config = dict(raw)
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"--set {item!r}: VALUE is not JSON (3, 1e-3, true, \"text\")") from None
    return config


def diagnostic_episodes(config, agent, env, env_params, episodes: int):
    """f(state, key, hparams) for one run: per step within an episode (9), the counts over `episodes` episodes of
    steps with the ball off to one side, moves toward it and moves away, the sums over those steps of the
    LOOKAHEAD_TERMS (the sampled model's look-ahead for the move toward the ball against the move away, and its
    next latents against the true ones), and the episodes' mean return."""
    import jax
    import jax.numpy as jnp

    from agents import psdrl
    from agents.components.networks import unit_float

    num_actions = env.action_space(env_params).n
    _, encoder, transition, terminal, value = psdrl.networks(config, num_actions)
    predict, _ = psdrl.lookahead(config, num_actions, transition, terminal, value)

    def lookahead_terms(state, key, hp):
        """Per action: the sampled model's look-ahead terms (A, 3: reward, continuation, gamma V(s', h') times the
        continuation), its next latents (A, E), the true ones (the encoded frames of a copy of the environment
        stepped with each action), gamma V of the true ones with the model's h' (A,), and the next latents of the
        transition net's trained last layer, which W replaces (A, E)."""
        latent = encoder.apply(state.params["autoencoder"], unit_float(state.frame))
        hidden = jnp.where(state.episode_step == 0, 0.0, state.hidden)
        next_latent, reward, done, next_hidden = predict(state.params, state.weights, latent, hidden)
        continues = (done < config["terminal_threshold"]).astype(jnp.float32)
        future = hp.discount * value.apply(state.params["value"], next_latent, next_hidden) * continues
        true_frames = jax.vmap(lambda a: env.step_env(key, state.env_state, a, env_params)[0])(jnp.arange(num_actions))
        true_latent = encoder.apply(state.params["autoencoder"], unit_float(true_frames))
        true_future = hp.discount * value.apply(state.params["value"], true_latent, next_hidden)
        actions = jnp.arange(num_actions)
        _, _, trained = transition.apply(state.params["transition"], jnp.broadcast_to(latent, next_latent.shape),
                                         actions, jnp.broadcast_to(hidden, next_hidden.shape))
        return (jnp.stack([reward, continues, future], axis=-1), next_latent, true_latent, true_future,
                trained[:, :-1])

    def episode(state, key, hp):
        reset_key, loop_key = jax.random.split(key)
        frame, env_state = env.reset(reset_key, env_params)
        state = state.replace(frame=frame, env_state=env_state, episode_step=jnp.int32(0))

        def step(state, key):
            act_key, env_key = jax.random.split(key)
            action, hidden = agent.act(state, act_key, hp)
            catch = env.unwrapped_state(state.env_state)
            gap, move = catch.ball_x - catch.paddle_x, action - 1
            off = gap != 0
            terms, next_latent, true_latent, true_future, trained_latent = lookahead_terms(state, env_key, hp)
            toward_action, away_action = 1 + jnp.sign(gap), 1 - jnp.sign(gap)
            difference = (terms[toward_action] - terms[away_action]) * off
            norm = lambda x: jnp.sqrt(jnp.sum(x ** 2))  # noqa: E731
            # How far apart the two moves' next latents are, in the model and in truth; what V makes of the true
            # ones; how far the model's next latents are from the true ones (all actions), against their norm.
            distances = jnp.stack([norm(next_latent[toward_action] - next_latent[away_action]),
                                   norm(true_latent[toward_action] - true_latent[away_action]),
                                   norm(trained_latent[toward_action] - trained_latent[away_action]),
                                   true_future[toward_action] - true_future[away_action],
                                   jnp.mean(jax.vmap(norm)(next_latent - true_latent)),
                                   jnp.mean(jax.vmap(norm)(true_latent))]) * off
            difference = jnp.concatenate([difference, distances])
            frame, env_state, reward, _, _ = env.step_env(env_key, state.env_state, action, env_params)
            state = state.replace(frame=frame, env_state=env_state, hidden=hidden,
                                  episode_step=state.episode_step + 1)
            return state, (off, off & (move == jnp.sign(gap)), off & (move == -jnp.sign(gap)), difference, reward)

        _, (off, toward, away, difference, reward) = jax.lax.scan(step, state,
                                                                  jax.random.split(loop_key, CATCH_STEPS))
        return off, toward, away, difference, jnp.sum(reward)

    def diagnose(state, key, hp):
        off, toward, away, difference, returns = jax.vmap(episode, in_axes=(None, 0, None))(
            state, jax.random.split(key, episodes), hp)
        return {"off": jnp.sum(off, 0), "toward": jnp.sum(toward, 0), "away": jnp.sum(away, 0),
                "toward_minus_away": jnp.sum(difference, 0), "return": jnp.mean(returns)}

    return diagnose


def share(numerator, denominator):
    return float(np.sum(numerator)) / max(float(np.sum(denominator)), 1.0)


def run(args) -> dict:
    import jax

    import envs
    from agents import psdrl
    from experiment import config as config_lib
    from experiment import runner

    config = config_lib.validate("PSDRL", overridden(config_lib.load_json(args.config), args.set))
    if config["environment"] != "Catch-bsuite":
        raise ValueError(f"this diagnostic reads the ball and paddle of Catch-bsuite, not {config['environment']}")
    config = {**config, "seed": args.seed}
    env, env_params = envs.make_from_config(config)
    runs = runner.Runs(config, psdrl.make, args.seed)
    axis, agent = runs.axis, runs.compiled.agent
    diagnose = jax.jit(runs.compiled.per_device(diagnostic_episodes(config, agent, env, env_params, args.episodes)))
    state = runs.init()
    chunk_length = config["eval_frequency"]
    log = {"config": config, "episodes_per_chunk": args.episodes, "chunks": []}
    for index in range(config["num_steps"] // chunk_length):
        state, metrics = runs.interact(state, index, True, index * chunk_length)
        metrics = axis.fetch(metrics)
        ended, returns = np.asarray(metrics["episode_ended"]), np.asarray(metrics["episode_return"])
        train_return = [float(returns[s][ended[s]].mean()) if ended[s].any() else float("nan")
                        for s in range(axis.num_runs)]
        counts = axis.fetch(diagnose(state, runs.evaluation_keys(index), runs.hparams))
        chunk = {"step": (index + 1) * chunk_length, "train_return": train_return,
                 **{name: np.asarray(value).tolist() for name, value in counts.items()}}
        log["chunks"].append(chunk)
        if not args.no_progress:
            print(f"step {chunk['step']:6d}  train return {np.nanmean(train_return):+.2f}  diagnostic return "
                  f"{np.mean(counts['return']):+.2f}  ball off to one side: toward "
                  f"{share(counts['toward'], counts['off']):.2f}, away {share(counts['away'], counts['off']):.2f}",
                  flush=True)
    last = log["chunks"][-max(1, len(log["chunks"]) // 4):]
    per_step = {name: np.sum([np.asarray(c[name]).sum(0) for c in last], 0)
                for name in ("off", "toward", "away", "toward_minus_away")}
    off = np.maximum(per_step["off"], 1)
    means = per_step["toward_minus_away"] / off[:, None]
    log["last_quarter_by_step"] = {"toward": (per_step["toward"] / off).tolist(),
                                   "away": (per_step["away"] / off).tolist(), "off": per_step["off"].tolist(),
                                   **{name: means[:, i].tolist() for i, (name, _) in enumerate(LOOKAHEAD_TERMS)}}
    return log


def label_of(log: dict) -> str:
    config = log["config"]
    iterations = config["transition_training_iterations"]
    return (f"PSDRL, {iterations} training iterations" + (", oracle look-ahead" if config["oracle_lookahead"] else "")
            + f" ({config['num_seeds']} seeds)")


def plot(paths: list, output: str) -> str:
    """Training-episode return per chunk (mean over seeds, 95% bootstrap band) and, with the ball off to one side,
    the shares of moves toward and away from it, one line per log; the random policy's -0.6 for reference."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plot_metric import bootstrap_band

    figure, (returns_axis, moves_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for index, path in enumerate(paths):
        try:
            with open(path, encoding="utf-8") as f:
                log = json.load(f)
            steps = np.array([c["step"] for c in log["chunks"]])
            returns = np.array([c["train_return"] for c in log["chunks"]])
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path} is not a psdrl_moves.py log: {e}") from None
        colour = f"C{index}"
        mean, low, high = bootstrap_band(returns, rng=np.random.default_rng(0))
        returns_axis.plot(steps, mean, color=colour, label=label_of(log))
        returns_axis.fill_between(steps, low, high, color=colour, alpha=0.2)
        for name, style in (("toward", "-"), ("away", "--")):
            share_per_chunk = [share(c[name], c["off"]) for c in log["chunks"]]
            moves_axis.plot(steps, share_per_chunk, style, color=colour)
    returns_axis.axhline(-0.6, color="grey", linestyle=":", label="any policy that ignores the ball (-0.6)")
    returns_axis.set(xlabel="environment steps per seed", ylabel="training-episode return\n(mean of seeds, 95% bootstrap CI)",
                     title="Rendered Catch 64 x 64")
    moves_axis.set(xlabel="environment steps per seed", ylabel="share of steps with the ball off to one side",
                   title="moves toward the ball (solid) and away (dashed)", ylim=(0, 1))
    figure.legend(*returns_axis.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8)
    figure.tight_layout(rect=(0, 0.08, 1, 1))  # the legend below the panels, never over a curve
    path = output + ".png"
    figure.savefig(path, dpi=110)
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    from experiment.config import ConfigError
    from experiment.files import atomic_write

    path = args.output + ".json"
    try:
        if args.plot:
            print(f"wrote {plot(args.plot, args.output)}")
            return 0
        if args.config is None:
            raise ValueError("pass a config (-c) to train, or --plot with logs to draw")
        if os.path.exists(path) and not args.overwrite:
            raise ValueError(f"{path} exists; pass --overwrite to replace it")
        log = run(args)
    except (ValueError, ConfigError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    by_step = log["last_quarter_by_step"]
    print("step in episode:  " + " ".join(f"{t:5d}" for t in range(CATCH_STEPS)))
    print("toward (share):   " + " ".join(f"{x:5.2f}" for x in by_step["toward"]))
    print("away (share):     " + " ".join(f"{x:5.2f}" for x in by_step["away"]))
    print("mean over steps with the ball off to one side, the move toward the ball against the move away:")
    for name, label in LOOKAHEAD_TERMS:
        print(f"  {label + ':':44s} " + " ".join(f"{x:+8.4f}" for x in by_step[name]))
    atomic_write(path, lambda f: f.write(json.dumps(log, indent=1).encode()))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
