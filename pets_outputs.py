"""PETS's per-run outputs beyond the .out: the published logs.mat fields as .npz, and a rollout drawn as a GIF/MP4.

    python pets_outputs.py archive -d PETS [-o PETS.npz]
    python pets_outputs.py render -d PETS [--seed-index 0] [--episode -1] [-o swingup.gif] [--fps 25]

PETS is the output stem of train_PETS.py (PETS.out and PETS.params beside each other). `archive` writes, per
seed (leading axis S) and for the episodes run so far: observations [S, E, T + 1, dO] (with each reset
observation), actions [S, E, T, dU], rewards [S, E, T], and returns [S, E - ninit_rollouts], the planned
episodes' returns, as logs.mat's `returns` (the random first episodes excluded). `render` draws one episode of
one seed (the last by default: the trained controller's latest rollout): the cart-pole swing-up with
matplotlib, the MuJoCo tasks (Reacher3D, Pusher, HalfCheetah) with MuJoCo's offscreen renderer (EGL unless
MUJOCO_GL says otherwise) from the joint positions the observations imply; .gif needs only Pillow (a
matplotlib dependency), .mp4 needs ffmpeg on the PATH. Bad input prints one line "error: ..." and exits with
status 2.
"""
import argparse
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiment.files import FileFormatError, atomic_write, load_metrics, load_pickle  # noqa: E402


class OutputsError(ValueError):
    pass


def load_run(stem: str) -> dict:
    """The recorded episodes of a PETS run: {observations, actions, rewards, returns, config}."""
    metrics = load_metrics(stem + ".out")
    config = metrics["config"]
    if config.get("agent_type") != "PETS":
        raise OutputsError(f"{stem}.out is a {config.get('agent_type')} run, not PETS")
    saved = load_pickle(stem + ".params")
    if "observations" not in saved:
        raise OutputsError(f"{stem}.params holds no recorded episodes (not written by train_PETS.py)")
    if config.get("sweep"):
        raise OutputsError("a swept run holds one model per grid point; archive one config at a time")
    done = len(np.asarray(metrics["metrics"]["eval_times"]))
    try:
        fields = {name: np.stack([np.asarray(x) for x in saved[name]])[:, :done]
                  for name in ("observations", "actions", "rewards")}
    except (TypeError, ValueError, KeyError) as e:
        raise OutputsError(f"{stem}.params' recorded episodes are not regular arrays ({e})") from None
    seeds, task_hor = config["num_seeds"], config["task_hor"]
    if any(f.dtype.kind != "f" or f.ndim < 3 or f.shape[:2] != (seeds, done) or f.shape[2] < task_hor
           for f in fields.values()):
        raise OutputsError(f"{stem}.params does not fit its .out ({seeds} seeds, {done} episodes of {task_hor} steps; "
                           f"the params hold {fields['rewards'].shape}): the two files are not of one run")
    fields["returns"] = fields["rewards"][:, config["ninit_rollouts"]:].sum(axis=-1)
    return {**fields, "config": config}


def archive(stem: str, path: str) -> None:
    run = load_run(stem)
    atomic_write(path, lambda f: np.savez(f, **{k: v for k, v in run.items() if k != "config"}))
    print(f"wrote {path}: {run['observations'].shape[1]} episodes x {run['observations'].shape[0]} seeds")


def render(stem: str, path: str, seed_index: int, episode: int, fps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import animation

    from envs.mujoco_tasks import MJX_TASKS

    run = load_run(stem)
    environment = run["config"]["environment"]
    if environment != "CartpoleSwingUp" and environment not in MJX_TASKS:
        raise OutputsError(f"render draws CartpoleSwingUp, {', '.join(MJX_TASKS)}; this run is {environment}")
    seeds, count = run["observations"].shape[:2]
    if not -seeds <= seed_index < seeds:
        raise OutputsError(f"--seed-index {seed_index} is out of range: the run has {seeds} seeds")
    if not -count <= episode < count:
        raise OutputsError(f"--episode {episode} is out of range: {count} episodes were recorded")
    if path.endswith(".mp4") and shutil.which("ffmpeg") is None:
        raise OutputsError("writing .mp4 needs ffmpeg on the PATH; write a .gif instead")
    if not path.endswith((".gif", ".mp4")):
        raise OutputsError(f"the output must end in .gif or .mp4, got '{path}'")
    states = run["observations"][seed_index, episode]
    rewards = run["rewards"][seed_index, episode]
    if environment == "CartpoleSwingUp":
        figure, draw = swing_up_drawing(plt, states, rewards)
    else:
        figure, draw = mujoco_drawing(plt, MJX_TASKS[environment], states, rewards)
    movie = animation.FuncAnimation(figure, draw, frames=len(states), blit=True)
    writer = animation.PillowWriter(fps=fps) if path.endswith(".gif") else animation.FFMpegWriter(fps=fps)
    temporary = path + ".partial" + os.path.splitext(path)[1]
    movie.save(temporary, writer=writer)
    os.replace(temporary, path)
    print(f"wrote {path}: seed {seed_index}, episode {episode % count}, return {rewards.sum():.1f}")


def mujoco_drawing(plt, task_class, states, rewards):
    # Headless rendering; MuJoCo reads this once, at its first import (the task's constructor), so it is set
    # here rather than at module import, where it would reach every process that merely imports this module.
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        frames = task_class().render_frames(states)
    except Exception as error:  # no OpenGL context: MuJoCo raises its own FatalError or a GL import error
        raise OutputsError(f"MuJoCo could not render offscreen (MUJOCO_GL={os.environ.get('MUJOCO_GL')}): "
                           f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.axis("off")
    image = axes.imshow(frames[0])
    text = axes.text(4, 14, "", fontsize=9, color="white")

    def draw(t):
        image.set_data(frames[t])
        text.set_text(f"step {t}  return so far {rewards[:t].sum():.1f}")
        return image, text

    return figure, draw


def swing_up_drawing(plt, states, rewards):
    figure, axes = plt.subplots(figsize=(6, 3))
    axes.set(xlim=(-3.2, 3.2), ylim=(-1.0, 1.0), aspect="equal")
    axes.axhline(0.0, color="0.6", lw=1)
    axes.axvline(-2.5, color="0.3", lw=2)
    axes.axvline(2.5, color="0.3", lw=2)
    cart, = axes.plot([], [], "s", color="tab:blue", ms=14)
    pole, = axes.plot([], [], "-", color="tab:orange", lw=4)
    text = axes.text(-3.1, 0.8, "", fontsize=9)

    def draw(t):
        x, theta = states[t, 0], states[t, 1]
        tip = (x - 0.6 * np.sin(theta), -0.6 * np.cos(theta))
        cart.set_data([x], [0.0])
        pole.set_data([x, tip[0]], [0.0, tip[1]])
        text.set_text(f"step {t}  return so far {rewards[:t].sum():.1f}")
        return cart, pole, text

    return figure, draw


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    to_archive = commands.add_parser("archive", help="logs.mat's fields as .npz")
    to_archive.add_argument("-d", "--data", dest="stem", required=True, help="the run's output prefix")
    to_archive.add_argument("-o", "--output", default=None)
    to_render = commands.add_parser("render", help="one episode as a GIF or MP4")
    to_render.add_argument("-d", "--data", dest="stem", required=True, help="the run's output prefix")
    to_render.add_argument("--seed-index", type=int, default=0)
    to_render.add_argument("--episode", type=int, default=-1)
    to_render.add_argument("--fps", type=int, default=25)
    to_render.add_argument("-o", "--output", default="swingup.gif")
    args = parser.parse_args(argv)
    try:
        if args.command == "archive":
            archive(args.stem, args.output or args.stem + ".npz")
        else:
            render(args.stem, args.output, args.seed_index, args.episode, args.fps)
    except (OutputsError, FileFormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
