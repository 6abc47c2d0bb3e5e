"""PETS (Chua et al. 2018): a probabilistic ensemble, trajectory sampling and CEM model-predictive control.

Reads top to bottom: config keys -> hyperparameters -> state -> the model (ensemble, scaler, predict) -> model
training (Chua et al. 2018; kchua/handful-of-trials) -> planning -> one rollout -> the chunk -> evaluation. The building blocks are
shared components: agents/components/ensemble.py (the networks and their loss), propagation.py (E, DS, MM, TS1,
TSinf and a candidate's cost), cem.py (CEM, random shooting, the warm start); agents/pets_tasks.py holds each
task's state processing and costs.

The harness's chunk is one episode of `task_hor` control steps: the first `ninit_rollouts` chunks act uniformly
at random, every later one plans at every step (`per` = 1) through the current model. The model trains on the
whole dataset after the random rollouts and after every `nrollouts_per_iter` planned ones, except after the
last (as the published loop, whose last episode is never trained on). Which of these a chunk does is static
(`chunk_phase`), so the loops inside never branch per seed. The evaluation of a chunk is its own episode's
return: the published loop has no separate evaluation episode.
"""
import jax
import jax.numpy as jnp
import optax
from flax import struct

from agents.components import cem, ensemble, propagation
from agents.components.agent import Agent
from agents.components.config_keys import (AgentSchema, ConfigError, choice, flag, hyperparams_from, non_negative_int,
                                           non_negative_float_list, positive_float, positive_int, positive_int_list,
                                           unit_interval)
from agents.pets_tasks import TASKS

MODEL_TYPES = ("D", "P", "DE", "PE")
FIX_FLAGS = {
    "cem_var_smoothing": "[history] smooth CEM's variance by alpha as HEAD does (false: the variance is replaced "
                         "by the elites', as before the published fix of 12 Nov 2018)",
}

# --- config keys (the published controller arguments and per-environment configs; Chua et al. 2018; kchua/handful-of-trials)
CONFIG_KEYS = {
    "model_type": choice("D, P (one net), DE, PE (ensembles): deterministic or probabilistic", MODEL_TYPES,
                         default="PE"),
    "prop_type": choice("particle propagation", propagation.PROPAGATIONS, default="TSinf"),
    "opt_type": choice("action-sequence optimiser", ("CEM", "Random"), default="CEM"),
    "npart": positive_int("particles per candidate K (1 is forced for E)", default=20),
    "ensemble_size": positive_int("members B of an ensemble (D and P use 1)", default=5),
    "plan_hor": positive_int("planning horizon H", default=25),
    "per": positive_int("control steps between re-plannings", default=1),
    "popsize": positive_int("candidates per CEM iteration P", default=400),
    "random_popsize": non_negative_int("random shooting's candidates (opt_type Random); 0: the task's published "
                                       "population (RANDOM_SHOOTING_POPULATION), popsize for a task without one",
                                       default=0),
    "num_elites": positive_int("CEM elites E", default=40),
    "max_iters": positive_int("CEM iterations I at most", default=5),
    "alpha": unit_interval("CEM smoothing of mean and variance", default=0.1),
    "epsilon": positive_float("CEM stops once every variance is below this", default=0.001),
    "cem_var_smoothing": flag(FIX_FLAGS["cem_var_smoothing"], default=True),
    "task_hor": positive_int("control steps per episode T", default=200),
    "ntrain_iters": positive_int("planned training iterations after the random rollouts", default=50),
    "nrollouts_per_iter": positive_int("planned episodes per training iteration", default=1),
    "ninit_rollouts": positive_int("episodes of uniform random actions before the first training", default=1),
    "hidden_widths": positive_int_list("hidden layer widths (swish)", default=[500, 500, 500]),
    "weight_decays": non_negative_float_list("lambda per layer: hidden layers, then the output",
                                            default=[1e-4, 2.5e-4, 2.5e-4, 5e-4]),
    "model_learning_rate": positive_float("Adam step size of the model", default=1e-3),
    "epochs": positive_int("passes over the bootstrapped data per training call", default=5),
    "model_batch_size": positive_int("rows per member per Adam step", default=32),
}
SWEEPABLE_KEYS = ("alpha", "epsilon", "model_learning_rate")
SHAPE_KEYS = {name: "the planner" for name in ("npart", "plan_hor", "per", "popsize", "random_popsize", "num_elites",
                                               "max_iters")}
# Random shooting's population per task, the OPT_CFG["Random"] popsize of kchua/handful-of-trials' dmbrl/config/
# cartpole.py, reacher.py, pusher.py and halfcheetah.py (larger than CEM's 400/500: one round instead of five)
RANDOM_SHOOTING_POPULATION = {"CartpoleSwingUp": 2000, "Reacher3D": 2000, "Pusher": 2500, "HalfCheetah": 2500}
SHAPE_KEYS.update({name: "the model" for name in ("model_type", "prop_type", "ensemble_size", "hidden_widths",
                                                  "weight_decays")})
SHAPE_KEYS.update({name: "the dataset and the chunks" for name in ("task_hor", "ntrain_iters",
                                                                   "nrollouts_per_iter", "ninit_rollouts")})


def members(config) -> int:
    return config["ensemble_size"] if config["model_type"] in ("DE", "PE") else 1


def particles(config) -> int:
    return 1 if config["prop_type"] == "E" else config["npart"]


def episodes(config) -> int:
    return config["ninit_rollouts"] + config["ntrain_iters"] * config["nrollouts_per_iter"]


def random_population(config) -> int:
    """Random shooting's candidate count: random_popsize, or the task's published population when it is 0."""
    if config["random_popsize"]:
        return config["random_popsize"]
    return RANDOM_SHOOTING_POPULATION.get(config["environment"], config["popsize"])


def check_config(config, obs_shape: tuple) -> None:
    if config["environment"] not in TASKS:
        raise ConfigError(f"PETS has no planning cost for '{config['environment']}'; tasks: {', '.join(TASKS)}")
    if config["model_type"] in ("D", "P") and config["prop_type"] in ("TS1", "TSinf"):
        raise ConfigError(f"prop_type {config['prop_type']} needs an ensemble (model_type DE or PE), "
                          f"not {config['model_type']}")
    if config["model_type"] == "D" and config["prop_type"] != "E":
        raise ConfigError("model_type D propagates only with prop_type E")
    if config["prop_type"] in ("TS1", "TSinf") and config["npart"] % members(config):
        raise ConfigError(f"npart ({config['npart']}) must be a multiple of ensemble_size ({members(config)}) "
                          f"for {config['prop_type']}: each member serves npart / ensemble_size particles")
    if config["num_elites"] > config["popsize"]:
        raise ConfigError(f"num_elites ({config['num_elites']}) cannot exceed popsize ({config['popsize']})")
    if config["per"] > config["plan_hor"]:
        raise ConfigError(f"per ({config['per']}) cannot exceed plan_hor ({config['plan_hor']})")
    if len(config["weight_decays"]) != len(config["hidden_widths"]) + 1:
        raise ConfigError(f"weight_decays needs one lambda per layer: {len(config['hidden_widths']) + 1} for "
                          f"{len(config['hidden_widths'])} hidden layers and the output, got "
                          f"{len(config['weight_decays'])}")
    steps = episodes(config) * config["task_hor"]
    if config["num_steps"] != steps or config["eval_frequency"] != config["task_hor"]:
        raise ConfigError(f"PETS runs (ninit_rollouts + ntrain_iters x nrollouts_per_iter) episodes of task_hor "
                          f"steps, one per chunk: set num_steps to {steps} and eval_frequency to {config['task_hor']}")


CONFIG_SCHEMAS = {"PETS": AgentSchema(name="PETS", keys=CONFIG_KEYS, sweepable=SWEEPABLE_KEYS,
                                      shape_keys=SHAPE_KEYS, check=check_config)}


@struct.dataclass
class PETSHyperparams:
    alpha: float
    epsilon: float
    model_learning_rate: float


def hyperparams_from_config(config) -> PETSHyperparams:
    return hyperparams_from(PETSHyperparams, config)


@struct.dataclass
class PETSState:
    params: dict  # the ensemble (and the shared log-variance bounds)
    opt_state: optax.OptState  # persists across training calls
    scaler: tuple  # (mean, std) of the model inputs, refitted on all data at every training call
    observations: jax.Array  # (episodes, T + 1, dO): every episode so far (logs.mat's fields)
    actions: jax.Array  # (episodes, T, dU)
    rewards: jax.Array  # (episodes, T)
    episodes_done: jax.Array  # int32
    trained_episodes: jax.Array  # int32: rows [0, trained_episodes * T) are the dataset
    last_return: jax.Array
    best_return: jax.Array  # running maximum over planned episodes (the authors' plotting convention)


def make(config, env, env_params) -> Agent:
    task = TASKS[config["environment"]]
    env = task.wrap(env) if task.wrap is not None else env
    space = env.action_space(env_params)
    action_dim = space.shape[0] if len(space.shape) else 1
    lower = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), (action_dim,))
    upper = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), (action_dim,))
    obs_dim = env.observation_space(env_params).shape[0]
    horizon, task_hor, per = config["plan_hor"], config["task_hor"], config["per"]
    num_members, num_particles, mode = members(config), particles(config), config["prop_type"]
    probabilistic = config["model_type"] in ("P", "PE")
    total_episodes = episodes(config)
    target_dim = int(task.target(jnp.zeros(obs_dim), jnp.zeros(obs_dim)).shape[-1])
    model = ensemble.make_ensemble(num_members, tuple(config["hidden_widths"]), target_dim, probabilistic)
    batch = config["model_batch_size"]

    # --- the model ---------------------------------------------------------------------------------------
    def model_optimizer(hp: PETSHyperparams):
        return optax.adam(hp.model_learning_rate, b1=0.9, b2=0.999, eps=1e-8)  # TF1's defaults (Chua et al. 2018; kchua/handful-of-trials)

    def model_inputs(states, actions):
        return jnp.concatenate([task.preprocess(states), actions], axis=-1)

    def predictor(params, scaler):
        """predict(states [B, N, dO], actions [B, N, dU]) -> (mean, var or None), member b on rows [b]."""
        def predict(states, actions):
            mean, logvar = model.apply(params, (model_inputs(states, actions) - scaler[0]) / scaler[1])
            return mean, None if logvar is None else jnp.exp(logvar)
        return predict

    def dataset(state: PETSState):
        """Every recorded transition as (inputs [rows, dI], targets [rows, dT]); rows of episode e start at e * T."""
        states, next_states = state.observations[:, :-1], state.observations[:, 1:]
        inputs = model_inputs(states, state.actions).reshape(total_episodes * task_hor, -1)
        return inputs, task.target(states, next_states).reshape(total_episodes * task_hor, -1)

    # --- model training (Chua et al. 2018; kchua/handful-of-trials) ---------------------------------------------------
    def train_model(state: PETSState, key, hp: PETSHyperparams):
        """Refit the scaler, draw a bootstrap per member, `epochs` passes of minibatch Adam over it (each member's
        order reshuffled after every pass); model and Adam state continue from the last call."""
        optimizer = model_optimizer(hp)
        inputs, targets = dataset(state)
        rows = total_episodes * task_hor
        count = state.episodes_done * task_hor
        scaler = ensemble.fit_scaler(inputs, count)
        normalised = (inputs - scaler[0]) / scaler[1]
        boot_key, shuffle_key = jax.random.split(key)
        order = jax.random.randint(boot_key, (num_members, rows), 0, count)
        num_batches = (count + batch - 1) // batch

        def loss(params, index, mask):
            return ensemble.ensemble_loss(model, params, normalised[index], targets[index], mask,
                                          config["weight_decays"], probabilistic)

        def minibatch(k, carry):
            params, opt_state, order, total = carry
            index = jax.lax.dynamic_slice_in_dim(order, k * batch, batch, axis=1)
            mask = ((k * batch + jnp.arange(batch)) < count).astype(jnp.float32)[None].repeat(num_members, 0)
            value, grads = jax.value_and_grad(loss)(params, index, mask)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, order, total + value

        def epoch(carry, epoch_key):
            params, opt_state, order = carry
            params, opt_state, order, total = jax.lax.fori_loop(0, num_batches, minibatch,
                                                                (params, opt_state, order, 0.0))
            keys = jax.random.uniform(epoch_key, (num_members, rows))
            shuffle = jnp.argsort(jnp.where(jnp.arange(rows) < count, keys, jnp.inf), axis=1)
            order = order.at[:, :rows].set(jnp.take_along_axis(order[:, :rows], shuffle, axis=1))
            return (params, opt_state, order), total / num_batches

        padded = jnp.pad(order, ((0, 0), (0, batch)))  # the last minibatch may read past the rows (masked)
        (params, opt_state, _), losses = jax.lax.scan(epoch, (state.params, state.opt_state, padded),
                                                      jax.random.split(shuffle_key, config["epochs"]))
        return state.replace(params=params, opt_state=opt_state, scaler=scaler), losses[-1]

    def newest_episode_error(state: PETSState):
        """The model's mean-prediction MSE on the newest episode, which it has not trained on yet (a holdout)."""
        index = state.episodes_done - 1
        states, next_states = state.observations[index, :-1], state.observations[index, 1:]
        mean, _ = predictor(state.params, state.scaler)(jnp.broadcast_to(states, (num_members,) + states.shape),
                                                        jnp.broadcast_to(state.actions[index],
                                                                         (num_members, task_hor, action_dim)))
        return jnp.mean((jnp.mean(mean, axis=0) - task.target(states, next_states)) ** 2)

    # --- planning (Chua et al. 2018; kchua/handful-of-trials) ---------------------------------------------------------
    def plan(state: PETSState, key, hp: PETSHyperparams, observation, warm_start):
        predict = predictor(state.params, state.scaler)

        def obs_cost(states):
            return task.obs_cost(states, observation)

        def costs(key, candidates):  # (P, H, dU) -> (P,), fresh particle noise per candidate
            return jax.vmap(lambda k, actions: propagation.trajectory_cost(
                k, mode, predict, num_members, task.postprocess, observation, actions, num_particles,
                obs_cost, task.action_cost))(jax.random.split(key, candidates.shape[0]), candidates)

        if config["opt_type"] == "Random":
            return cem.random_shooting(key, costs, (horizon, action_dim), lower, upper, random_population(config))
        solution, _, _ = cem.cem(key, costs, warm_start, lower, upper, config["popsize"], config["num_elites"],
                                 config["max_iters"], hp.alpha, hp.epsilon, config["cem_var_smoothing"])
        return solution

    # --- one episode -------------------------------------------------------------------------------------
    def env_action(action):
        return action if action_dim > 1 else action[0]

    def rollout(state: PETSState, key, hp: PETSHyperparams, planned: bool):
        """One episode of task_hor control steps from a reset: (observations (T + 1, dO), actions, rewards)."""
        reset_key, loop_key = jax.random.split(key)
        observation, env_state = env.reset_env(reset_key, env_params)

        def control(carry, inputs):
            observation, env_state, solution, warm_start = carry
            t, step_key = inputs
            plan_key, random_key, env_key = jax.random.split(step_key, 3)
            if planned:  # re-plan every `per` steps (t is the scan's own counter: a real branch, not per seed)
                solution, warm_start = jax.lax.cond(
                    t % per == 0,
                    lambda: (lambda s: (s, cem.shift_warm_start(s, per)))(
                        plan(state, plan_key, hp, observation, warm_start)),
                    lambda: (solution, warm_start))
                action = solution[t % per]
            else:
                action = jax.random.uniform(random_key, (action_dim,), minval=lower, maxval=upper)
            next_observation, env_state, reward, _, _ = env.step_env(env_key, env_state, env_action(action),
                                                                     env_params)
            carry = (next_observation.astype(jnp.float32), env_state, solution, warm_start)
            return carry, (next_observation.astype(jnp.float32), action, jnp.reshape(reward, ()).astype(jnp.float32))

        zeros = jnp.zeros((horizon, action_dim))  # the warm start's reset: the box midpoint (0 for every task)
        _, (next_observations, actions, rewards) = jax.lax.scan(
            control, (observation.astype(jnp.float32), env_state, zeros, zeros),
            (jnp.arange(task_hor), jax.random.split(loop_key, task_hor)))
        return jnp.concatenate([observation[None].astype(jnp.float32), next_observations]), actions, rewards

    # --- the harness contract ----------------------------------------------------------------------------
    def init(key, hp: PETSHyperparams) -> PETSState:
        dummy = model_inputs(jnp.zeros((1, obs_dim)), jnp.zeros((1, action_dim)))
        params = model.init(key, dummy)
        return PETSState(params=params, opt_state=model_optimizer(hp).init(params),
                         scaler=(jnp.zeros(dummy.shape[-1]), jnp.ones(dummy.shape[-1])),
                         observations=jnp.zeros((total_episodes, task_hor + 1, obs_dim)),
                         actions=jnp.zeros((total_episodes, task_hor, action_dim)),
                         rewards=jnp.zeros((total_episodes, task_hor)), episodes_done=jnp.int32(0),
                         trained_episodes=jnp.int32(0), last_return=jnp.float32(0),
                         best_return=jnp.float32(-jnp.inf))

    def chunk_phase(time_step: int, train: bool):
        """(planned: the chunk plans rather than acts at random, trains: the model trains after it)."""
        episode = time_step // task_hor
        planned = episode >= config["ninit_rollouts"]
        done = episode + 1
        trains = done < total_episodes and (done == config["ninit_rollouts"] or (
            planned and (done - config["ninit_rollouts"]) % config["nrollouts_per_iter"] == 0))
        return planned, trains

    def interact(state: PETSState, key, hp: PETSHyperparams, phase):
        planned, trains = phase
        rollout_key, train_key = jax.random.split(key)
        observations, actions, rewards = rollout(state, rollout_key, hp, planned)
        index = state.episodes_done
        episode_return = jnp.sum(rewards)
        state = state.replace(observations=state.observations.at[index].set(observations),
                              actions=state.actions.at[index].set(actions), rewards=state.rewards.at[index].set(rewards),
                              episodes_done=index + 1, last_return=episode_return,
                              best_return=jnp.maximum(state.best_return, episode_return) if planned else
                              state.best_return)
        metrics = {"return": episode_return, "return_running_max": state.best_return if planned else episode_return,
                   "model_error_new_episode": newest_episode_error(state) if planned else jnp.float32(jnp.nan)}
        if trains:
            state, loss = train_model(state, train_key, hp)
            state = state.replace(trained_episodes=state.episodes_done)
            metrics["model_loss"] = loss
        else:
            metrics["model_loss"] = jnp.float32(jnp.nan)
        return state, metrics

    def evaluate(state: PETSState, key, hp: PETSHyperparams):
        return {"reward_rate": state.last_return}

    def saved_params(state: PETSState):
        return {"model": state.params, "scaler_mean": state.scaler[0], "scaler_std": state.scaler[1],
                "observations": state.observations, "actions": state.actions, "rewards": state.rewards}

    def learned_params(state: PETSState):  # the episode arrays hold NaN rows until recorded
        return {"model": state.params, "scaler": state.scaler}

    return Agent(init=init, interact=interact, evaluate=evaluate, saved_params=saved_params,
                 hparams=hyperparams_from_config(config), chunk_phase=chunk_phase, learned_params=learned_params)
