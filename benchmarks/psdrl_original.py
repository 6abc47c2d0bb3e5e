"""The published PSDRL code (remosasso/PSDRL, PyTorch) on OUR rendered Catch, for the side-by-side with ours.

Runs in a virtual environment of its own that holds PyTorch, the original's requirements (gym, scikit-image,
Pillow, ruamel.yaml), JAX and this package (for the environment); the original repository is fetched outside
this one and never copied into it:

    python -m venv ../venv-orig && ../venv-orig/bin/pip install torch==2.13.0 gym==0.26.2 scikit-image pillow \\
        ruamel.yaml && ../venv-orig/bin/pip install -e .
    ../venv-orig/bin/python benchmarks/psdrl_original.py --repo ../orig-psdrl -c configs/psdrl/Catch_pixels.json \\
        --set transition_training_iterations=3 ... --seed 0 -o original_seed0

One process trains one seed (as the published code is used), writing O.json: the training-episode returns per
eval_frequency steps (the chunks psdrl_moves.py reports for ours), and the seconds of every model update and of
every acting step. The adapter serves the original agent the frames of our environment (the same 64 x 64 frames,
rewards and episode ends; floats in [0, 1], as its Atari wrapper gives), maps our config's keys onto its
config.yaml (and its settings.py CONV_FEAT, set before its networks are imported), seeds torch and numpy (the
published code does not: Q14), and drives the agent with a loop written from the published main.py's
run_experiment: act, step, `done or episode_step == time_limit`, agent.update(...), test episodes off.
`--time-ours` times ours on the same config (every seed vmapped, in this repository's venv): seconds per acting
step and per model update, per seed. `--compare` turns such logs and ours (psdrl_moves.py logs with the same
config) into the parity statistic and one figure. Bad input prints one line "error: ..." and exits with status 2.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", help="a PSDRL config of ours on Catch-bsuite (pixels 64)")
    parser.add_argument("--repo", help="a checkout of remosasso/PSDRL (its src/ is imported)")
    parser.add_argument("-s", "--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("-o", "--output", required=True, help="writes OUTPUT.json (OUTPUT.png with --compare)")
    parser.add_argument("--time-ours", action="store_true",
                        help="time ours instead (every seed of the config vmapped, in this repository's venv)")
    parser.add_argument("--compare", nargs=2, metavar=("OURS", "ORIGINAL"),
                        help="comma-separated lists of logs: psdrl_moves.py's (ours), this script's (one per seed)")
    parser.add_argument("--overwrite", action="store_true")
    return parser.parse_args(argv)


def original_config(config: dict) -> dict:
    """Our keys onto the published config.yaml's layout (the keys it reads)."""
    return {
        "gpu": False,
        "algorithm": {"name": "PSDRL", "reward_prior": config["reward_prior"],
                      "transition_prior": config["transition_prior"], "update_freq": config["update_freq"],
                      "warmup_length": config["warmup_length"], "warmup_freq": config["warmup_freq"],
                      "policy_noise": config["policy_noise"]},
        "experiment": {"time_limit": config["time_limit"], "test": False},
        "replay": {"capacity": config["replay_capacity"], "batch_size": config["batch_size"],
                   "sequence_length": config["sequence_length"]},
        "transition": {"training_iterations": config["transition_training_iterations"],
                       "hidden_dim": config["transition_hidden_dim"], "gru_dim": config["gru_dim"],
                       "learning_rate": config["transition_learning_rate"], "window_length": config["window_length"]},
        "value": {"training_iterations": config["value_training_iterations"], "hidden_dim": config["value_hidden_dim"],
                  "learning_rate": config["value_learning_rate"], "target_update_freq": config["target_update_freq"],
                  "discount": config["discount"]},
        "terminal": {"training_iterations": config["terminal_training_iterations"],
                     "hidden_dim": config["terminal_hidden_dim"], "learning_rate": config["terminal_learning_rate"]},
        "representation": {"training_iterations": config["representation_training_iterations"],
                           "learning_rate": config["representation_learning_rate"], "embed_dim": config["embed_dim"]},
    }


class ReplayStatistics:
    """What the original's Dataset asks of its logger: (shortest, longest, total) episode lengths; nothing logged."""

    def add_replay_statistics(self, episodes):
        lengths = [len(episode["actions"]) for episode in episodes]
        return min(lengths), max(lengths), sum(lengths)

    def add_scalars(self, *args):
        pass


class OurEnvironment:
    """One seed of our environment behind the gym API the original expects: reset() -> (frame, {}),
    step(a) -> (frame, reward, terminated, truncated, {}), frames 64 x 64 floats in [0, 1]."""

    def __init__(self, config: dict, seed: int):
        import jax

        import envs
        self.jax = jax
        self.env, self.params = envs.make_from_config(config)
        self.key = jax.random.PRNGKey(seed)
        self._reset = jax.jit(lambda key: self.env.reset(key, self.params))
        self._step = jax.jit(lambda key, state, action: self.env.step_env(key, state, action, self.params))
        self._truncated = jax.jit(lambda state: self.env.is_truncated(state, self.params))
        self.state = None

    def frame(self, obs):
        return np.asarray(obs, np.float32)[..., 0] / 255.0

    def reset(self):
        self.key, key = self.jax.random.split(self.key)
        obs, self.state = self._reset(key)
        return self.frame(obs), {}

    def ball_offset(self) -> int:
        """Ball column minus paddle column in the current state (Catch)."""
        catch = self.env.unwrapped_state(self.state)
        return int(catch.ball_x) - int(catch.paddle_x)

    def step(self, action):
        self.key, key = self.jax.random.split(self.key)
        obs, self.state, reward, terminated, _ = self._step(key, self.state, int(action))
        return self.frame(obs), float(reward), bool(terminated), bool(self._truncated(self.state)), {}


def load_original(repo: str, conv_feat: int):
    """The original's PSDRL class, with its settings.py CONV_FEAT set to ours before its networks are imported."""
    source = os.path.join(repo, "src")
    if not os.path.isfile(os.path.join(source, "PSDRL", "agent", "psdrl.py")):
        raise ValueError(f"{repo} is not a checkout of remosasso/PSDRL (no src/PSDRL/agent/psdrl.py)")
    sys.path.insert(0, source)
    from PSDRL.common import settings
    settings.CONV_FEAT = conv_feat
    from PSDRL.agent.psdrl import PSDRL
    return PSDRL


def train_original(config: dict, repo: str, seed: int) -> dict:
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(1)  # one process per seed, as the published code is run
    agent_class = load_original(repo, config["conv_feat"])
    env = OurEnvironment(config, seed)
    actions = list(range(env.env.action_space(env.params).n))
    agent = agent_class(original_config(config), actions, ReplayStatistics(), seed)
    chunk, steps, time_limit = config["eval_frequency"], config["num_steps"], config["time_limit"]
    returns, chunk_returns, update_seconds, step_seconds = [], [], [], []
    moves, chunk_moves = np.zeros(3, int), []  # toward, away, stay: steps with the ball off to one side
    episode, experiment_step = 0, 0
    while experiment_step < steps:  # the published main.py's run_experiment, test episodes off
        observation, _ = env.reset()
        episode_step, episode_return, done = 0, 0.0, False
        while not done and experiment_step < steps:
            started = time.perf_counter()
            action = int(agent.select_action(observation, episode_step))
            offset, move = env.ball_offset(), action - 1  # actions 0, 1, 2: left, stay, right
            if offset:
                moves[0 if move * offset > 0 else 1 if move * offset < 0 else 2] += 1
            next_observation, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated or episode_step == time_limit
            acted = time.perf_counter()
            agent.update(observation, action, reward, next_observation, done, episode, experiment_step)
            finished = time.perf_counter()
            interval = agent.update_freq if experiment_step > agent.warmup_length else agent.warmup_freq
            if episode and experiment_step % interval == 0:
                update_seconds.append(finished - acted)
            else:
                step_seconds.append(finished - started)
            episode_return += reward
            observation = next_observation
            episode_step += 1
            experiment_step += 1
            if experiment_step % chunk == 0:
                chunk_returns.append(float(np.mean(returns)) if returns else float("nan"))
                chunk_moves.append(moves.tolist())
                returns, moves = [], np.zeros(3, int)
        if done:
            returns.append(episode_return)
            episode += 1
    return {"config": config, "seed": seed, "chunk_steps": [chunk * (i + 1) for i in range(len(chunk_returns))],
            "train_return": chunk_returns, "moves_toward_away_stay": chunk_moves, "update_seconds": update_seconds, "step_seconds": step_seconds,
            "repository": "remosasso/PSDRL", "torch": torch.__version__}


def time_ours(config: dict, seed: int, fill_chunks: int = 6, repeats: int = 3) -> dict:
    """Ours, every seed of the config vmapped in one process (the harness's compiled programs): after fill_chunks
    training chunks (so the replay holds data as mid-run), the median over `repeats` of an acting-only chunk and a
    training chunk; an update costs their difference over the chunk's updates."""
    import jax

    from agents import psdrl
    from experiment import runner

    runs = runner.Runs(config, psdrl.make, seed)
    chunk = config["eval_frequency"]
    state = runs.init()
    for index in range(fill_chunks):
        state, _ = runs.interact(state, index, True, index * chunk)
    state, _ = runs.interact(state, fill_chunks, False, fill_chunks * chunk)  # compiles the acting-only program
    jax.block_until_ready(state)
    timings = {True: [], False: []}
    for repeat in range(repeats):
        for train in (False, True):
            index = fill_chunks + 1 + 2 * repeat + train
            started = time.perf_counter()
            state, _ = runs.interact(state, index, train, index * chunk)
            jax.block_until_ready(state)
            timings[train].append(time.perf_counter() - started)
    segment = config["warmup_freq"] if (fill_chunks + 1) * chunk < config["warmup_length"] else config["update_freq"]
    acting, training = float(np.median(timings[False])), float(np.median(timings[True]))
    seeds = config["num_seeds"]
    return {"config": config, "seeds": seeds, "devices": len(runs.axis.devices), "chunk_seconds_acting": timings[False],
            "chunk_seconds_training": timings[True], "step_seconds_all_seeds": acting / chunk,
            "update_seconds_all_seeds": (training - acting) / (chunk // segment),
            "step_seconds_per_seed": acting / chunk / seeds,
            "update_seconds_per_seed": (training - acting) / (chunk // segment) / seeds}


def parity(ours: np.ndarray, original: np.ndarray, rng, resamples: int = 10000):
    """Per point, the 95% percentile-bootstrap interval of mean(ours) - mean(original), resampling each side's seeds:
    (differences, low, high) over the points (rows of ours (points, seeds) and original (points, seeds))."""
    a = rng.integers(0, ours.shape[1], size=(resamples, ours.shape[1]))
    b = rng.integers(0, original.shape[1], size=(resamples, original.shape[1]))
    boot = np.nanmean(ours[:, a], axis=2) - np.nanmean(original[:, b], axis=2)  # (points, resamples)
    return (np.nanmean(ours, 1) - np.nanmean(original, 1), np.percentile(boot, 2.5, axis=1),
            np.percentile(boot, 97.5, axis=1))


def compare(ours_paths, original_paths, output: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plot_metric import bootstrap_band

    ours_logs = [json.load(open(path, encoding="utf-8")) for path in ours_paths]
    ours = np.concatenate([np.array([c["train_return"] for c in log["chunks"]]) for log in ours_logs], axis=1)
    steps = np.array([c["step"] for c in ours_logs[0]["chunks"]])
    runs = [json.load(open(path, encoding="utf-8")) for path in original_paths]
    points = min(len(steps), *(len(run["train_return"]) for run in runs))
    original = np.array([run["train_return"][:points] for run in runs]).T
    ours, steps = ours[:points], steps[:points]
    rng = np.random.default_rng(0)
    difference, low, high = parity(ours, original, rng)
    contains = (low <= 0) & (0 <= high)
    last = parity(ours[-5:].mean(0, keepdims=True), original[-5:].mean(0, keepdims=True), rng)
    figure, axis = plt.subplots(figsize=(7, 4))
    for values, label, colour in ((ours, f"seedsuite (JAX), {ours.shape[1]} seeds", "C0"),
                                  (original, f"original (PyTorch), {original.shape[1]} seeds", "C1")):
        mean, band_low, band_high = bootstrap_band(values, rng=rng)
        axis.plot(steps, mean, color=colour, label=label)
        axis.fill_between(steps, band_low, band_high, color=colour, alpha=0.2)
    axis.axhline(-0.6, color="grey", linestyle=":", label="any policy that ignores the ball")
    axis.set(xlabel="environment steps per seed", ylabel="training-episode return\n(mean of seeds, 95% bootstrap CI)")
    figure.legend(loc="lower center", ncol=3, fontsize=8)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(output + ".png", dpi=110)
    summary = {"points": int(points), "ci_contains_zero": float(contains.mean()),
               "last5_difference": float(last[0][0]), "last5_ci": [float(last[1][0]), float(last[2][0])],
               "difference": difference.tolist(), "low": low.tolist(), "high": high.tolist()}
    with open(output + ".json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    return (f"parity: the 95% CI of ours - original contains 0 at {contains.sum()} of {points} points "
            f"({contains.mean():.0%}); last 5 points: {last[0][0]:+.3f} ({last[1][0]:+.3f}, {last[2][0]:+.3f}); "
            f"wrote {output}.png and {output}.json")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.compare:
            print(compare(args.compare[0].split(","), args.compare[1].split(","), args.output))
            return 0
        if not args.config or not (args.repo or args.time_ours):
            raise ValueError("pass -c CONFIG and --repo (or --time-ours, or --compare)")
        path = args.output + ".json"
        if os.path.exists(path) and not args.overwrite:
            raise ValueError(f"{path} exists; pass --overwrite to replace it")
        if args.time_ours:
            from experiment.devices import use_every_core
            use_every_core()  # before JAX starts: one CPU device per core, as the train scripts run
        from experiment import config as config_lib
        from psdrl_moves import overridden
        config = config_lib.validate("PSDRL", overridden(config_lib.load_json(args.config), args.set))
        if config["environment"] != "Catch-bsuite":
            raise ValueError("the side-by-side is set up for Catch-bsuite")
        if args.time_ours:
            log = time_ours({**config, "seed": args.seed}, args.seed)
            with open(path, "w", encoding="utf-8") as f:
                json.dump(log, f)
            print(f"wrote {path}: per seed {1e3 * log['step_seconds_per_seed']:.2f} ms per step, "
                  f"{log['update_seconds_per_seed']:.3f} s per update ({log['seeds']} seeds vmapped on "
                  f"{log['devices']} devices)")
            return 0
        log = train_original(config, args.repo, args.seed)
    except (ValueError, OSError, KeyError) as e:  # ConfigError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(log, f)
    os.replace(path + ".tmp", path)
    updates = np.array(log["update_seconds"])
    print(f"wrote {path}: {len(updates)} updates, {np.median(updates) if len(updates) else float('nan'):.2f} s "
          f"median; acting {1e3 * np.median(log['step_seconds']):.1f} ms per step (median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
