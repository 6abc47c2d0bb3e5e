"""What each metric of a .out means, declared once: its axis label, its meaning and what the x axis counts.

The harness writes, for every metric of a run, {"label", "meaning"} into the .out's meta ("metrics"), with the x
axis ("x_axis"), so a file says what it holds without this code; plot_metric.py labels its axes from them and
warns when one figure would mix a metric of different meanings (the evaluation score `reward_rates` is a greedy
evaluation for the DQN family, a behaviour-policy test episode for PSDRL, the training episode for PETS, the
training episodes of the chunk for PPO).

A meaning may depend on the config (ER DQN's evaluation is a return or a reward per step by `episodic_env`), so the
declarations are functions of it. A metric no one declared is written with its name as label and no meaning.
"""
from typing import Callable, NamedTuple


class Metric(NamedTuple):
    label: str  # an axis label
    meaning: str  # one sentence


Declared = Metric | Callable[[dict], Metric]


def _dqn_evaluation(config: dict) -> Metric:
    if config.get("episodic_env"):
        return Metric("greedy evaluation return",
                      f"return of a greedy-policy evaluation episode (until its first terminal, at most "
                      f"{config.get('eval_steps')} steps), mean of {config.get('eval_batch_size')} episodes per seed, "
                      f"after the chunk's training")
    return Metric("greedy evaluation reward per step",
                  f"mean reward per step of a greedy policy over {config.get('eval_steps')} steps, mean of "
                  f"{config.get('eval_batch_size')} evaluation runs per seed, after the chunk's training")


TRAINING_REWARD = Metric("training reward per step", "mean reward per environment step of the chunk's training")
MODEL_DQN_LOSSES = {
    "q_loss": Metric("Q loss", "mean over the chunk's updates of the Q step's loss on imagined transitions"),
    "model_loss": Metric("model loss", "mean over the chunk's updates of the model's whole loss"),
    "reward_loss": Metric("model reward loss", "the reward term of the model loss (chunk mean)"),
    "termination_loss": Metric("model continuation loss", "the continuation term of the model loss (chunk mean)"),
    "obs_loss": Metric("model observation loss", "the next-observation term of the model loss (chunk mean)"),
    "kl_posterior": Metric("posterior KL", "KL(q || sg p) term of the latent model's loss (chunk mean)"),
    "kl_prior": Metric("prior KL", "KL(sg q || p) term of the latent model's loss (chunk mean)"),
    "posterior_entropy": Metric("posterior entropy", "entropy of the latent posterior (chunk mean)"),
}
DQN_FAMILY = {"reward_rates": _dqn_evaluation, "train_reward_rates": TRAINING_REWARD, **MODEL_DQN_LOSSES}

DECLARED: dict[str, dict[str, Declared]] = {
    "ER": DQN_FAMILY, "perfect_model": DQN_FAMILY, "simple_model": DQN_FAMILY, "latent_model": DQN_FAMILY,
    "PSDRL": {
        "reward_rates": Metric("test episode return", "return of one test episode per seed after the chunk, acting "
                               "with the behaviour policy (the sampled model's look-ahead, as the published test)"),
        "train_reward_rates": TRAINING_REWARD,
        "loss_ae": Metric("autoencoder loss", "the last update's representation (autoencoder) loss"),
        "loss_transition": Metric("transition loss", "the last update's transition-model loss"),
        "loss_terminal": Metric("terminal loss", "the last update's terminal-head loss"),
        "loss_value": Metric("value loss", "the last update's value-network loss"),
        "posterior_transitions": Metric("transitions in the posterior", "transitions the last posterior refit used"),
        "ridge": Metric("ridge added", "the ridge the last posterior refit needed (0: none)"),
    },
    "PETS": {
        "reward_rates": Metric("episode return", "return of the chunk's training episode (each chunk is one episode)"),
        "return": Metric("episode return", "return of the chunk's training episode"),
        "return_running_max": Metric("best episode return so far", "the highest planned-episode return up to the "
                                     "chunk (the published figures' statistic; a random episode's own return)"),
        "model_loss": Metric("model loss", "the dynamics model's loss in the chunk's training call (NaN: none)"),
        "model_error_new_episode": Metric("model error on the new episode", "mean squared error of the model's mean "
                                          "prediction on the episode just played, before training on it (NaN: a "
                                          "random episode)"),
    },
    "PPO": {
        "reward_rates": Metric("training episode return", "mean return of the training episodes that ended in the "
                               "chunk (the previous chunk's value when none ended)"),
        "return": Metric("training episode return", "mean return of the chunk's ended training episodes (NaN: none)"),
        "length": Metric("training episode length", "mean length of the chunk's ended training episodes"),
        "episodes_finished": Metric("episodes finished", "training episodes that ended in the chunk, all environments"),
        "success_rate": Metric("success rate", "fraction of the chunk's ended episodes that reached the goal"),
        "rooms_per_episode": Metric("rooms per episode", "mean distinct rooms visited per ended training episode"),
        "entropy": Metric("policy entropy", "mean entropy of the policy over the chunk's minibatches"),
        "approx_kl": Metric("approximate KL", "mean approximate KL(old || new) over the chunk's minibatches"),
        "clip_fraction": Metric("clip fraction", "fraction of samples whose ratio was clipped"),
        "policy_loss": Metric("policy loss", "PPO's clipped surrogate loss (chunk mean)"),
        "value_loss_ext": Metric("extrinsic value loss", "the extrinsic value head's loss (chunk mean)"),
        "value_loss_int": Metric("intrinsic value loss", "the intrinsic value head's loss (chunk mean)"),
        "explained_variance_ext": Metric("explained variance (extrinsic)", "1 - Var(returns - V) / Var(returns)"),
        "explained_variance_int": Metric("explained variance (intrinsic)", "the same for the intrinsic stream"),
        "grad_norm": Metric("gradient norm", "global norm of the PPO gradient (chunk mean)"),
        "rooms_per_episode_max": Metric("most rooms in an episode", "the most distinct rooms any training episode "
                                        "that ended in the chunk visited"),
        **{f"first_{name}_step": Metric(f"steps to the first {name}", f"environment steps of the seed (all its "
                                        f"environments) until any of them first reached the {name} (NaN: not yet)")
           for name in ("key", "door", "treasure")},
        "int_reward_mean": Metric("intrinsic reward per step", "mean of the bonus over the chunk's rollout steps, "
                                  "before clipping to [0, 1] (after int_reward_norm's scaling)"),
        "int_reward_std": Metric("intrinsic reward spread", "standard deviation of the unclipped bonus over each "
                                 "rollout's steps (chunk mean)"),
        "int_reward_max": Metric("largest intrinsic reward", "largest unclipped bonus of a rollout (chunk mean)"),
        "int_reward_clipped_mean": Metric("intrinsic reward per step, clipped", "mean of the bonus clipped to "
                                          "[0, 1], what the intrinsic stream is paid (chunk mean)"),
        "int_reward_clip_fraction": Metric("intrinsic rewards clipped", "fraction of steps whose bonus reached the "
                                           "clip at 1 (chunk mean)"),
        "int_b_reward_mean": Metric("diversity reward per step", "SND + entropy's second stream: mean of its "
                                    "clipped reward, the spread of the episode's recent features (chunk mean)"),
        "predictor_loss": Metric("predictor loss", "the predictor's masked distillation loss (chunk mean)"),
        "mask_kept_fraction": Metric("predictor loss kept", "fraction of the predictor loss's elements or samples "
                                     "the mask kept (chunk mean)"),
        "contrastive_loss": Metric("target contrastive loss", "SND target's loss on augmented pairs (chunk mean)"),
        "pair_accuracy": Metric("pair accuracy", "fraction of the target's pairs on the right side of distance 0.5 "
                                "(chunk mean)"),
        "distance_close": Metric("distance of like pairs", "mean feature distance of the pairs labelled alike"),
        "distance_far": Metric("distance of unlike pairs", "mean feature distance of the pairs labelled apart"),
        "feature_magnitude": Metric("target feature magnitude", "mean squared target feature, the average over the "
                                    "pair's two views (chunk mean)"),
    },
}
COMMON = {
    "eval_times": Metric("environment steps", "the step each evaluation is labelled with"),
    "rooms_visited": Metric("rooms visited (run union)", "distinct rooms any of the seed's environments has "
                            "visited since the run started"),
    "cells_visited": Metric("cells visited (run union)", "distinct (room, row, col, keys held) cells, or the "
                            "environment's own cells, any of the seed's environments has visited since the run "
                            "started (counted in a hashed bitmap above 2^20 cells)"),
    "diverged": Metric("diverged", "whether the run's parameters or loss became NaN or infinite"),
}
X_AXIS = {"PPO": "environment steps per seed (all of its num_envs environments counted)"}
DEFAULT_X_AXIS = "environment steps per seed"


def describe(config: dict, name: str) -> Metric:
    """The metric `name` of a run of `config`: declared, or its name as label with no meaning."""
    declared = DECLARED.get(config.get("agent_type"), {}).get(name) or COMMON.get(name)
    if declared is None:
        return Metric(name, "")
    return declared(config) if callable(declared) else declared


def out_meta(config: dict, names) -> dict:
    """The .out meta entries: every metric's label and meaning, and what the x axis counts."""
    return {"metrics": {name: describe(config, name)._asdict() for name in names},
            "x_axis": X_AXIS.get(config.get("agent_type"), DEFAULT_X_AXIS)}


def of_file(data: dict, name: str) -> Metric:
    """A loaded .out's description of `name` (from its meta; older files, the paper's, and metrics written before
    they were declared: from the declarations)."""
    written = (data.get("meta") or {}).get("metrics", {}).get(name)
    if written and written.get("meaning"):
        return Metric(written["label"], written["meaning"])
    return describe(data.get("config") or {}, name)


def x_axis_of(data: dict) -> str:
    meta = data.get("meta") or {}
    return meta.get("x_axis") or X_AXIS.get((data.get("config") or {}).get("agent_type"), DEFAULT_X_AXIS)
