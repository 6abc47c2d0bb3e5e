"""mbrl-lib's PETS (facebookresearch/mbrl-lib, PyPI `mbrl` 0.2.0, PyTorch) on OUR cartpole swing-up, side by side.

Runs in a virtual environment of its own that holds PyTorch (the CPU wheel), mbrl 0.2.0 without its pinned
dependencies (hydra-core 1.0.3, gymnasium 0.26.3, jupyter, tensorboard, ...: the PETS parts import only torch,
numpy, hydra, omegaconf, gymnasium and tqdm), and JAX, gymnax, flax and haiku at this repository's versions (for
our environment, imported from this checkout, and our config checks); mbrl-lib is imported, never copied:

    python3 -m venv ../venv-mbrl && ../venv-mbrl/bin/pip install torch==2.13.0
    ../venv-mbrl/bin/pip install --no-deps mbrl==0.2.0
    ../venv-mbrl/bin/pip install hydra-core==1.3.2 omegaconf==2.3.0 gymnasium==1.3.0 tqdm termcolor six \\
        numpy==2.4.6 jax==0.10.2 jaxlib==0.10.2 flax==0.12.8 gymnax==1.0.1 chex==0.1.92 dm-haiku==0.0.17
    ../venv-mbrl/bin/python benchmarks/pets_mbrl.py -c configs/pets/CartpoleSwingUp_reduced.json --seed 0 \\
        -o mbrl_seed0                                      # one process per seed: --seed 0, 1, 2, 3
    python benchmarks/pets_mbrl.py --compare PETS.out mbrl_seed0.json,mbrl_seed1.json,mbrl_seed2.json,\\
        mbrl_seed3.json -o pets_vs_mbrl --ours-seconds-per-step X        # in this repository's venv

One process trains one seed (torch.set_num_threads(1), XLA single-threaded for the environment; torch, numpy and
the environment seeded by --seed), writing O.json: the config, mbrl-lib's settings it was mapped to, each
episode's return (the first ninit_rollouts act uniformly at random), the running maximum over planned episodes
(a random episode shows its own return, as ours), the seconds of every planned control step (plan + environment
step + buffer), and the seconds and last-epoch loss of every model training call. The loop is written from
mbrl-lib's mbrl/algorithms/pets.py (random episodes, then one training call before each planned episode, none
after the last, as ours) with its pieces: GaussianMLP inside OneDTransitionRewardModel, ModelTrainer,
ModelEnv (our reward, no termination), CEMOptimizer in a TrajectoryOptimizerAgent, ReplayBuffer and its
bootstrap iterators. Our environment is stepped in JAX (jitted reset and step); the reward and the model's input
features are our formulas (envs/cartpole_swingup.py planning_cost, agents/pets_tasks.py cartpole_preprocess)
written in torch, checked against the JAX ones at start.

The mapping (ours -> mbrl-lib), and what mbrl-lib cannot express (MISMATCHES, kept as mbrl-lib does them):
model PE, B members of hidden_widths swish units -> GaussianMLP(ensemble_size B, num_layers len(hidden_widths),
hid_size, SiLU, learn_logvar_bounds True); the same truncated-normal init, bounded log-variance and NLL loss
(mean over rows and outputs, summed over members, + 0.01 (sum max - sum min)). weight_decays per layer as an L2
term through Adam -> torch Adam with one parameter group per layer replacing ModelTrainer's optimizer (the
default; the same coupled L2, weights only); `--weight-decay X` keeps ModelTrainer's own single decay X on every
parameter, biases and log-variance bounds included. Adam lr, eps 1e-8, state kept across calls -> ModelTrainer.
Input features [sin th, cos th, x, x_dot, th_dot, u] normalised by statistics refitted on all data at every
training call -> obs_process_fn + normalize (double precision; MISMATCH: torch's std is the N - 1 one, ours the
population one). Delta targets, not normalised -> target_is_delta, learned_rewards False. A bootstrap with
replacement per member, `epochs` passes of model_batch_size rows, the last minibatch short -> BootstrapIterator
(permute_indices False) over the whole buffer, ModelTrainer.train(num_epochs=epochs, evaluate=False) (mbrl-lib's
helper train_model_and_save_model_and_data would also score the members and keep each epoch's best weights: ours
does neither); MISMATCH: mbrl-lib reshuffles with one order shared by the members, ours with one per member.
TSinf with K particles -> propagation_method "fixed_model", num_particles K; MISMATCH: mbrl-lib assigns the P x K
particles of a planning call to members by one random permutation, so a candidate's K particles are not spread K/B
per member as ours are. CEM (popsize, num_elites, max_iters, alpha, truncated normal at 2 sigma inside the box,
initial variance (upper - lower)^2 / 16, variance smoothing, the final mean returned, the warm start shifted by
`per` and padded with the box midpoint, reset each episode) -> CEMOptimizer(population_size, elite_ratio chosen so
that ceil gives num_elites, num_iterations, alpha, clipped_normal False, return_mean_elites True) in a
TrajectoryOptimizerAgent(planning_horizon plan_hor, replan_freq per, keep_last_solution True). MISMATCHES: no
early stop once every variance is below epsilon; the elites' variance is torch's N - 1 one (x E/(E - 1));
a candidate whose return is NaN scores -1e-10 in mbrl-lib, ours charges a NaN particle 1e6. Refused with one
line: an environment other than CartpoleSwingUp, model types D and P, prop types E, DS and MM, opt_type Random,
cem_var_smoothing false, unequal hidden widths.

`--compare` (in this repository's venv) reads our .out files (train_PETS.py's, same config) and these logs: per
planned episode the 95% percentile-bootstrap CI of mean(ours) - mean(mbrl-lib) over seeds, the share of planned
episodes whose CI contains 0, both curves on one figure (FIG.png, FIG.json), and with --ours-seconds-per-step
(ours' seconds per planned control step per seed, measured elsewhere) its ratio to mbrl-lib's median, or to
--mbrl-seconds-per-step (mbrl-lib's, measured on a quiet machine: see docs/pets.md for how). Bad input
prints one line "error: ..." and exits with status 2.
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

ENVIRONMENT = "CartpoleSwingUp"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", help="a PETS config of ours on CartpoleSwingUp")
    parser.add_argument("-s", "--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--weight-decay", default="per-layer", metavar="per-layer|X",
                        help="per-layer: our weight_decays as Adam parameter groups (default); a number X: "
                             "ModelTrainer's single weight decay on every parameter, as mbrl-lib ships it")
    parser.add_argument("-o", "--output", required=True,
                        help="writes OUTPUT.json (OUTPUT.png and OUTPUT.json with --compare)")
    parser.add_argument("--compare", nargs=2, metavar=("OURS", "MBRL"),
                        help="comma-separated lists of files: our .out files, this script's logs (one per seed)")
    parser.add_argument("--ours-seconds-per-step", type=float, metavar="X",
                        help="with --compare: ours' seconds per planned control step per seed")
    parser.add_argument("--mbrl-seconds-per-step", type=float, metavar="Y",
                        help="with --compare: mbrl-lib's, measured on a quiet machine (default: the median of the "
                             "logs' own step times, which are only as quiet as the runs were)")
    parser.add_argument("--overwrite", action="store_true")
    return parser.parse_args(argv)


def check_mappable(config: dict) -> None:
    """Refuse the settings of ours that mbrl-lib's PETS pieces cannot express."""
    if config["environment"] != ENVIRONMENT:
        raise ValueError(f"the side-by-side is set up for {ENVIRONMENT} (its reward is written here in torch), "
                         f"not {config['environment']}")
    if config["model_type"] not in ("PE", "DE"):
        raise ValueError(f"model_type {config['model_type']}: only the ensembles PE and DE map onto GaussianMLP "
                         f"with a propagation method")
    if config["prop_type"] not in ("TSinf", "TS1"):
        raise ValueError(f"prop_type {config['prop_type']}: mbrl-lib's GaussianMLP propagates by TSinf "
                         f"(fixed_model) or TS1 (random_model) only")
    if config["opt_type"] != "CEM":
        raise ValueError(f"opt_type {config['opt_type']}: mbrl-lib has no random-shooting optimiser")
    if not config["cem_var_smoothing"]:
        raise ValueError("cem_var_smoothing false: mbrl-lib's CEMOptimizer always smooths the variance")
    if len(set(config["hidden_widths"])) != 1:
        raise ValueError(f"hidden_widths {config['hidden_widths']}: GaussianMLP has one hid_size for every layer")


def weight_decay_setting(text: str):
    """'per-layer' or a non-negative float."""
    if text == "per-layer":
        return text
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--weight-decay {text!r}: expected per-layer or a number") from None
    if not value >= 0:
        raise ValueError(f"--weight-decay {text!r}: must be >= 0")
    return value


def cartpole_features(state):
    """Our model input features of a state (agents/pets_tasks.py cartpole_preprocess): [sin th, cos th, x, x_dot,
    th_dot], for numpy arrays (the normaliser's statistics) and torch tensors (training and planning)."""
    import torch

    if isinstance(state, torch.Tensor):
        return torch.cat([torch.sin(state[..., 1:2]), torch.cos(state[..., 1:2]), state[..., :1], state[..., 2:]],
                         dim=-1)
    return np.concatenate([np.sin(state[..., 1:2]), np.cos(state[..., 1:2]), state[..., :1], state[..., 2:]],
                          axis=-1)


ACTION_COST = 0.01  # agents/pets_tasks.py: the cartpole's quadratic_action_cost(0.01)


def swingup_reward(actions, next_obs):
    """mbrl-lib's reward_fn(actions [N, 1], next observations [N, 4]) -> [N, 1]: minus our planning cost
    (envs/cartpole_swingup.py), exp(-|tip - (0, l)|^2 / l^2) - 0.01 u^2 with the pole tip (x - l sin th, -l cos th)."""
    import torch

    from envs.cartpole_swingup import POLE_LENGTH

    x, theta = next_obs[:, 0], next_obs[:, 1]
    distance = (x - POLE_LENGTH * torch.sin(theta)) ** 2 + (-POLE_LENGTH * torch.cos(theta) - POLE_LENGTH) ** 2
    reward = torch.exp(-distance / POLE_LENGTH ** 2) - ACTION_COST * torch.sum(actions ** 2, dim=1)
    return reward[:, None]


def no_termination(actions, next_obs):
    import torch

    return torch.zeros(next_obs.shape[0], 1, dtype=torch.bool, device=next_obs.device)


def check_torch_formulas(seed: int) -> None:
    """The torch reward and features against ours in JAX, on random states and actions (float32 agreement)."""
    import jax.numpy as jnp
    import torch

    from agents.pets_tasks import TASKS
    from envs.cartpole_swingup import planning_cost

    rng = np.random.default_rng(seed)
    states = (rng.normal(size=(64, 4)) * [1.0, 3.0, 2.0, 5.0]).astype(np.float32)
    actions = rng.uniform(-3, 3, size=(64, 1)).astype(np.float32)
    ours = -np.asarray(planning_cost(jnp.asarray(states), jnp.asarray(actions)))
    theirs = swingup_reward(torch.from_numpy(actions), torch.from_numpy(states)).numpy()[:, 0]
    features = np.asarray(TASKS[ENVIRONMENT].preprocess(jnp.asarray(states)))
    if not (np.allclose(ours, theirs, atol=1e-5) and np.allclose(features, cartpole_features(states), atol=1e-6)
            and np.allclose(features, cartpole_features(torch.from_numpy(states)).numpy(), atol=1e-6)):
        raise RuntimeError("the torch reward or features disagree with ours in JAX")


class OurEnvironment:
    """One seed of our environment, stepped in JAX, behind the gymnasium API mbrl-lib uses (observation_space,
    action_space, reset() -> (obs, {}), step(a) -> (obs, reward, terminated, truncated, {})); truncated after
    task_hor steps, never terminated."""

    def __init__(self, config: dict, seed: int):
        import gymnasium
        import jax

        import envs
        self.jax = jax
        self.env, self.params = envs.make_from_config(config)
        space = self.env.action_space(self.params)
        self.action_space = gymnasium.spaces.Box(np.broadcast_to(np.asarray(space.low, np.float32), space.shape),
                                                 np.broadcast_to(np.asarray(space.high, np.float32), space.shape),
                                                 dtype=np.float32)
        self.action_space.seed(seed)
        shape = self.env.observation_space(self.params).shape
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape, dtype=np.float32)
        self.horizon = config["task_hor"]
        self.key = jax.random.PRNGKey(seed)
        self._reset = jax.jit(lambda key: self.env.reset_env(key, self.params))
        self._step = jax.jit(lambda key, state, action: self.env.step_env(key, state, action, self.params))
        self.state, self.steps = None, 0

    def reset(self, seed=None, options=None):
        self.key, key = self.jax.random.split(self.key)
        obs, self.state = self._reset(key)
        self.steps = 0
        return np.array(obs, np.float32), {}

    def step(self, action):
        self.key, key = self.jax.random.split(self.key)
        action = np.asarray(action, np.float32).reshape(self.action_space.shape)
        obs, self.state, reward, terminated, _ = self._step(key, self.state, action)
        self.steps += 1
        return np.array(obs, np.float32), float(reward), bool(terminated), self.steps >= self.horizon, {}


def mbrl_settings(config: dict, obs_dim: int, action_dim: int, lower, upper) -> dict:
    """Our keys onto mbrl-lib's constructor arguments (recorded in the log as they were used)."""
    members = config["ensemble_size"]
    return {
        "dynamics_model": {"_target_": "mbrl.models.GaussianMLP", "in_size": obs_dim + 1 + action_dim,
                           "out_size": obs_dim, "device": "cpu", "num_layers": len(config["hidden_widths"]),
                           "ensemble_size": members, "hid_size": config["hidden_widths"][0],
                           "deterministic": config["model_type"] == "DE",
                           "propagation_method": {"TSinf": "fixed_model", "TS1": "random_model"}[config["prop_type"]],
                           "learn_logvar_bounds": True, "activation_fn_cfg": {"_target_": "torch.nn.SiLU"}},
        "wrapper": {"target_is_delta": True, "normalize": True, "normalize_double_precision": True,
                    "learned_rewards": False, "obs_process_fn": "cartpole_features (ours, in torch)",
                    "num_elites": None},
        "trainer": {"optim_lr": config["model_learning_rate"], "optim_eps": 1e-8,
                    "num_epochs": config["epochs"], "batch_size": config["model_batch_size"],
                    "validation_ratio": 0.0, "bootstrap_permutes": False, "evaluate": False},
        "agent": {"_target_": "mbrl.planning.TrajectoryOptimizerAgent", "_recursive_": False,  # hydra >= 1.1
                  "action_lb": list(map(float, lower)),
                  "action_ub": list(map(float, upper)), "planning_horizon": config["plan_hor"],
                  "replan_freq": config["per"], "verbose": False, "keep_last_solution": True,
                  "optimizer_cfg": {"_target_": "mbrl.planning.CEMOptimizer", "num_iterations": config["max_iters"],
                                    "elite_ratio": (config["num_elites"] - 0.5) / config["popsize"],
                                    "population_size": config["popsize"], "alpha": config["alpha"],
                                    "lower_bound": "???", "upper_bound": "???", "return_mean_elites": True,
                                    "device": "cpu", "clipped_normal": False}},
        "num_particles": config["npart"],
    }


def per_layer_adam(gaussian_mlp, config: dict):
    """torch Adam with our weight_decays per layer on the weights (coupled L2, as our loss term), none on the
    biases and log-variance bounds; every parameter of the model in exactly one group."""
    import torch

    layers = [layer[0] for layer in gaussian_mlp.hidden_layers] + [gaussian_mlp.mean_and_logvar]
    groups = [{"params": [layer.weight], "weight_decay": decay}
              for layer, decay in zip(layers, config["weight_decays"])]
    rest = [layer.bias for layer in layers] + [p for name, p in gaussian_mlp.named_parameters() if "logvar" in name
                                               and not name.startswith("mean_and_logvar")]
    groups.append({"params": rest, "weight_decay": 0.0})
    grouped = [id(p) for group in groups for p in group["params"]]
    if sorted(grouped) != sorted(id(p) for p in gaussian_mlp.parameters()):
        raise RuntimeError("the per-layer parameter groups do not cover GaussianMLP's parameters exactly once")
    return torch.optim.Adam(groups, lr=config["model_learning_rate"], eps=1e-8)


def train_mbrl(config: dict, seed: int, weight_decay) -> dict:
    import omegaconf
    import torch

    import mbrl
    import mbrl.models
    import mbrl.planning
    import mbrl.util.common
    from mbrl.util.replay_buffer import ReplayBuffer

    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(1)  # one process per seed
    check_torch_formulas(seed)
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    env = OurEnvironment(config, seed)
    obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    settings = mbrl_settings(config, obs_shape[0], act_shape[0], env.action_space.low, env.action_space.high)

    gaussian_mlp = mbrl.models.GaussianMLP(**{k: v for k, v in settings["dynamics_model"].items() if k != "_target_"})
    dynamics_model = mbrl.models.OneDTransitionRewardModel(
        gaussian_mlp, **{k: v for k, v in settings["wrapper"].items() if k != "obs_process_fn"},
        obs_process_fn=cartpole_features)
    trainer = mbrl.models.ModelTrainer(dynamics_model, optim_lr=config["model_learning_rate"],
                                       weight_decay=0.0 if weight_decay == "per-layer" else weight_decay,
                                       optim_eps=1e-8)
    if weight_decay == "per-layer":
        trainer.optimizer = per_layer_adam(gaussian_mlp, config)
    model_env = mbrl.models.ModelEnv(env, dynamics_model, no_termination, swingup_reward, generator=generator)
    agent = mbrl.planning.create_trajectory_optim_agent_for_model(
        model_env, omegaconf.OmegaConf.create(settings["agent"]), num_particles=config["npart"])
    elites = agent.optimizer.optimizer.elite_num
    if elites != config["num_elites"]:
        raise RuntimeError(f"CEMOptimizer keeps {elites} elites, not {config['num_elites']}")
    random_agent = mbrl.planning.RandomAgent(env)

    task_hor, ninit = config["task_hor"], config["ninit_rollouts"]
    total = ninit + config["ntrain_iters"] * config["nrollouts_per_iter"]
    dtype = np.double  # pets.yaml's normalize_double_precision: the buffer holds doubles
    replay = ReplayBuffer(total * task_hor, obs_shape, act_shape, obs_type=dtype, action_type=dtype,
                          reward_type=dtype, rng=rng)
    returns, running_max, best = [], [], -np.inf
    step_seconds, train_seconds, model_loss = [], [], []
    for episode in range(total):  # mbrl/algorithms/pets.py's loop, episode by episode
        planned = episode >= ninit
        actor = agent if planned else random_agent
        obs, _ = env.reset()
        actor.reset()
        episode_return = 0.0
        for _ in range(task_hor):
            started = time.perf_counter()
            next_obs, reward, _, _, _ = mbrl.util.common.step_env_and_add_to_buffer(env, obs, actor, {}, replay)
            if planned:
                step_seconds.append(time.perf_counter() - started)
            obs = next_obs
            episode_return += reward
        returns.append(float(episode_return))
        if planned:
            best = max(best, episode_return)
        running_max.append(float(best if planned else episode_return))
        done = episode + 1
        trains = done < total and (done == ninit or (planned and (done - ninit) % config["nrollouts_per_iter"] == 0))
        if trains:  # train_model_and_save_model_and_data without its member scoring and saving
            started = time.perf_counter()
            dataset, _ = mbrl.util.common.get_basic_buffer_iterators(
                replay, config["model_batch_size"], 0.0, ensemble_size=len(dynamics_model),
                shuffle_each_epoch=True, bootstrap_permutes=False)
            dynamics_model.update_normalizer(replay.get_all())
            losses, _ = trainer.train(dataset, num_epochs=config["epochs"], evaluate=False, silent=True)
            train_seconds.append(time.perf_counter() - started)
            model_loss.append(float(losses[-1]))
        else:
            train_seconds.append(None)
            model_loss.append(None)
        print(f"episode {episode} ({'planned' if planned else 'random'}): return {episode_return:.2f}"
              + (f", trained {train_seconds[-1]:.1f} s" if trains else ""), flush=True)

    import gymnasium
    import jax
    settings["weight_decay"] = weight_decay if weight_decay != "per-layer" else {
        "per_layer": config["weight_decays"], "biases_and_logvar_bounds": 0.0}
    return {"config": config, "seed": seed, "mbrl_settings": settings, "ninit_rollouts": ninit,
            "return": returns, "return_running_max": running_max,
            "step_seconds_median": float(np.median(step_seconds)) if step_seconds else None,
            "step_seconds": step_seconds, "train_seconds": train_seconds, "model_loss": model_loss,
            "repository": "facebookresearch/mbrl-lib",
            "versions": {"mbrl": mbrl.__version__, "torch": torch.__version__, "numpy": np.__version__,
                         "jax": jax.__version__, "gymnasium": gymnasium.__version__,
                         "python": platform.python_version()}}


def load_ours(paths) -> tuple:
    """(returns (episodes, seeds) over every file's seeds, ninit_rollouts, config) of our .out files."""
    from experiment.files import load_metrics

    blocks, config = [], None
    for path in paths:
        data = load_metrics(path)
        if "return" not in data["metrics"]:
            raise ValueError(f"'{path}' has no 'return' metric: not a PETS run of ours")
        values = np.asarray(data["metrics"]["return"], float)
        if values.ndim == 1:
            values = values[:, None]
        if config is not None and len(values) != len(blocks[0]):
            raise ValueError(f"'{path}' has {len(values)} episodes, '{paths[0]}' {len(blocks[0])}")
        config = config or data["config"]
        blocks.append(values)
    return np.concatenate(blocks, axis=1), config


def load_mbrl(paths) -> tuple:
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
        if not isinstance(run, dict) or "return" not in run or "config" not in run:
            raise ValueError(f"'{path}' is not a log of benchmarks/pets_mbrl.py")
        runs.append(run)
    lengths = {len(run["return"]) for run in runs}
    if len(lengths) != 1:
        raise ValueError(f"the mbrl-lib logs hold different episode counts: {sorted(lengths)}")
    return np.array([run["return"] for run in runs], float).T, runs


def compare(ours_paths, mbrl_paths, output: str, ours_seconds=None, mbrl_seconds=None) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from plot_metric import bootstrap_band
    from psdrl_original import parity

    ours, ours_config = load_ours(ours_paths)
    theirs, runs = load_mbrl(mbrl_paths)
    config = runs[0]["config"]
    for key in ("environment", "ninit_rollouts", "task_hor", "npart", "popsize", "plan_hor"):
        if ours_config.get(key) != config.get(key):
            raise ValueError(f"our runs and mbrl-lib's differ in {key}: {ours_config.get(key)!r} against "
                             f"{config.get(key)!r}")
    ninit = config["ninit_rollouts"]
    episodes = min(len(ours), len(theirs))
    if episodes <= ninit:
        raise ValueError(f"no planned episode to compare ({episodes} episodes, {ninit} random)")
    ours, theirs = ours[:episodes], theirs[:episodes]
    rng = np.random.default_rng(0)
    difference, low, high = parity(ours[ninit:], theirs[ninit:], rng)
    contains = (low <= 0) & (0 <= high)
    last = parity(ours[ninit:][-5:].mean(0, keepdims=True), theirs[ninit:][-5:].mean(0, keepdims=True), rng)
    index = np.arange(episodes)
    figure, axis = plt.subplots(figsize=(7, 4))
    for values, label, colour in ((ours, f"seedsuite (JAX), {ours.shape[1]} seeds", "C0"),
                                  (theirs, f"mbrl-lib 0.2.0 (PyTorch), {theirs.shape[1]} seeds", "C1")):
        mean, band_low, band_high = bootstrap_band(values, rng=rng)
        axis.plot(index, mean, color=colour, label=label, marker=".")
        axis.fill_between(index, band_low, band_high, color=colour, alpha=0.2)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.axvline(ninit - 0.5, color="grey", linestyle=":", label="planned episodes from here")
    axis.set(xlabel="episode (the first ninit_rollouts act at random)",
             ylabel="episode return\n(mean of seeds, 95% bootstrap CI)", title="PETS on the cartpole swing-up")
    figure.legend(loc="lower center", ncol=3, fontsize=8)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(output + ".png", dpi=110)
    mbrl_step = mbrl_seconds or float(np.median([run["step_seconds_median"] for run in runs]))
    summary = {"planned_episodes": int(episodes - ninit), "ci_contains_zero": float(contains.mean()),
               "last5_difference": float(last[0][0]), "last5_ci": [float(last[1][0]), float(last[2][0])],
               "difference": difference.tolist(), "low": low.tolist(), "high": high.tolist(),
               "mbrl_seconds_per_step": mbrl_step, "ours_seconds_per_step": ours_seconds,
               "time_ratio_ours_over_mbrl": None if ours_seconds is None else ours_seconds / mbrl_step}
    with open(output + ".json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    timing = (f"; seconds per planned step: ours {ours_seconds:.4g}, mbrl-lib {mbrl_step:.4g} "
              f"(ours / mbrl-lib {ours_seconds / mbrl_step:.3g})" if ours_seconds is not None else
              f"; mbrl-lib {mbrl_step:.4g} s per planned step")
    return (f"parity: the 95% CI of ours - mbrl-lib contains 0 at {contains.sum()} of {episodes - ninit} planned "
            f"episodes ({contains.mean():.0%}); last 5 planned episodes: {last[0][0]:+.2f} ({last[1][0]:+.2f}, "
            f"{last[2][0]:+.2f}){timing}; wrote {output}.png and {output}.json")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.compare:
            for flag, value in (("--ours-seconds-per-step", args.ours_seconds_per_step),
                                ("--mbrl-seconds-per-step", args.mbrl_seconds_per_step)):
                if value is not None and not value > 0:
                    raise ValueError(f"{flag} must be > 0")
            print(compare(args.compare[0].split(","), args.compare[1].split(","), args.output,
                          args.ours_seconds_per_step, args.mbrl_seconds_per_step))
            return 0
        if not args.config:
            raise ValueError("pass -c CONFIG (or --compare)")
        weight_decay = weight_decay_setting(args.weight_decay)
        path = args.output + ".json"
        if os.path.exists(path) and not args.overwrite:
            raise ValueError(f"{path} exists; pass --overwrite to replace it")
        flags = os.environ.get("XLA_FLAGS", "")  # one thread for the environment's JAX, before JAX starts
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
        from experiment import config as config_lib
        from psdrl_moves import overridden
        config = config_lib.validate("PETS", overridden(config_lib.load_json(args.config), args.set))
        check_mappable(config)
        log = train_mbrl({**config, "seed": args.seed}, args.seed, weight_decay)
    except (ValueError, OSError, KeyError) as e:  # ConfigError and FileFormatError are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(log, f)
    os.replace(path + ".tmp", path)
    trained = [s for s in log["train_seconds"] if s is not None]
    print(f"wrote {path}: returns {', '.join(f'{r:.1f}' for r in log['return'])}; "
          f"{1e3 * log['step_seconds_median']:.1f} ms per planned step (median), "
          f"{sum(trained):.1f} s in {len(trained)} training calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
