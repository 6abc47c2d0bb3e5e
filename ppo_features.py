"""The distillation feature space of one episode, projected to 2-D and coloured by room (the SND author's picture:
RND's target clusters rooms into islands, SND's trained target spreads them).

    python ppo_features.py -d RUN [--seed-index 0] [--steps 2000] [-o features.png]

RUN is the output stem of train_PPO.py (RUN.out and RUN.params). One episode of that seed's trained policy
(actions sampled, from a fresh reset of the run's environment, at most --steps steps) is fed through the seed's
distillation target network with its observation statistics; the features are projected onto their first two
principal components and drawn one point per step, coloured by the room of the state (or by the step, on an
environment without rooms). Bad input prints one line "error: ..." and exits with status 2.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiment.files import FileFormatError, atomic_write, load_metrics, load_pickle  # noqa: E402


class FeaturesError(ValueError):
    pass


def load_run(stem: str, seed_index: int):
    config = load_metrics(stem + ".out")["config"]
    if config.get("agent_type") != "PPO":
        raise FeaturesError(f"{stem}.out is a {config.get('agent_type')} run, not PPO")
    if config.get("distillation", "none") == "none":
        raise FeaturesError(f"{stem} is plain PPO: it has no distillation network to draw")
    if config.get("sweep"):
        raise FeaturesError("a swept run holds one network per grid point; draw one config at a time")
    saved = load_pickle(stem + ".params")
    missing = {"policy", "target", "obs_mean", "obs_std"} - set(saved)
    if missing:
        raise FeaturesError(f"{stem}.params lacks {', '.join(sorted(missing))} (not written by train_PPO.py)")
    seeds = len(saved["policy"])
    if not -seeds <= seed_index < seeds:
        raise FeaturesError(f"--seed-index {seed_index} is out of range: the run has {seeds} seeds")
    return config, {name: value[seed_index] for name, value in saved.items()}


def episode_features(config, params, steps: int, key):
    """(features (L, F), rooms (L,) or None) of one episode of the trained policy, L <= steps."""
    import jax
    import jax.numpy as jnp

    import envs
    from agents import ppo
    from agents.components import distillation as distill
    from agents.components.visitation import visitation_of

    env, env_params = envs.make_from_config(config)
    obs_shape = tuple(env.observation_space(env_params).shape)
    num_streams = 3 if config["distillation"] == "snd_entropy" else 2
    net = ppo.policy_network(config, env.action_space(env_params).n, num_streams)
    target_net, _ = distill.distillation_networks(config["distill_conv_channels"], config["distill_conv_strides"],
                                                  config["distill_features"], len(obs_shape) == 3)
    view, _ = ppo.distillation_view({**config, **ppo.distillation_defaults(config)}, obs_shape)
    found = visitation_of(env)
    example = jnp.zeros((1,) + obs_shape, env.observation_space(env_params).dtype)
    for name, network, x in (("policy", net, example), ("target", target_net, view(example, 0.0, 1.0))):
        expected = jax.eval_shape(network.init, jax.random.PRNGKey(0), x)
        got = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), params[name])
        if jax.tree.structure(expected) != jax.tree.structure(got) or any(
                e.shape != g.shape for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(got))):
            raise FeaturesError(f"the .params' {name} network does not fit the .out's config (other layers or "
                                f"shapes): the two files are not of one run")

    @jax.jit
    def run(key):
        reset_key, loop_key = jax.random.split(key)
        obs, state = env.reset(reset_key, env_params)

        def step(carry, step_key):
            obs, state, alive = carry
            act_key, env_key = jax.random.split(step_key)
            logits, _ = net.apply(params["policy"], obs[None])
            action = jax.random.categorical(act_key, logits[0])
            room = found[0].visitation(found[1](state))[0] if found else jnp.int32(0)
            features = target_net.apply(params["target"], view(obs[None], params["obs_mean"], params["obs_std"]))[0]
            next_obs, next_state, _, terminated, truncated, _ = env.step(env_key, state, action, env_params)
            return (next_obs, next_state, alive & ~(terminated | truncated)), (features, room, alive)

        _, outputs = jax.lax.scan(step, (obs, state, jnp.bool_(True)), jax.random.split(loop_key, steps))
        return outputs

    features, rooms, alive = (np.asarray(x) for x in run(key))
    length = int(alive.sum())
    return features[:length], (rooms[:length] if found else None)


def project(features):
    """The first two principal components (numpy SVD of the centred features)."""
    centred = features - features.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T


def draw(stem, config, seed_index, features, rooms, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = project(features)
    figure, axes = plt.subplots(figsize=(5.5, 4.5))
    if rooms is None:
        scatter = axes.scatter(points[:, 0], points[:, 1], c=np.arange(len(points)), s=6, cmap="viridis")
        figure.colorbar(scatter, label="step")
    else:
        colours = plt.get_cmap("tab20")
        for index, room in enumerate(np.unique(rooms)):
            chosen = rooms == room
            axes.scatter(points[chosen, 0], points[chosen, 1], s=6, color=colours(index % 20),
                         label=f"room {room} ({chosen.sum()})")
        axes.legend(fontsize=7, markerscale=2)
    axes.set(xlabel="principal component 1", ylabel="principal component 2",
             title=f"{config['distillation']} target features, {os.path.basename(stem)} seed {seed_index}, "
                   f"{len(points)} steps")
    axes.title.set_fontsize(9)
    atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=120, bbox_inches="tight"))
    print(f"wrote {path}: {len(points)} steps" + ("" if rooms is None else f", {len(np.unique(rooms))} rooms"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-d", "--data", dest="stem", required=True, help="the run's output prefix")
    parser.add_argument("--seed-index", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("-o", "--output", default="features.png")
    args = parser.parse_args(argv)
    try:
        if args.steps < 2:
            raise FeaturesError(f"--steps must be at least 2, got {args.steps}")
        if not args.output.endswith(".png"):
            raise FeaturesError(f"the output must end in .png, got '{args.output}'")
        config, params = load_run(args.stem, args.seed_index)
        import jax

        features, rooms = episode_features(config, params, args.steps, jax.random.PRNGKey(args.seed_index))
        if len(features) < 2:
            raise FeaturesError("the episode ended after one step: nothing to project")
        draw(args.stem, config, args.seed_index, features, rooms, args.output)
    except (FeaturesError, FileFormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
