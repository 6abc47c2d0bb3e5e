"""PPO's config keys, their checks and the hyperparameters a sweep may vary (agents/ppo.py builds the agent).

The defaults are the RND/SND author's agents (michalnand/reinforcement_learning); the RND paper's choices
(Burda et al. 2018) and PureJaxRL's are switches.
"""
from flax import struct

from agents.components import distillation as distill
from agents.components.config_keys import (AgentSchema, ConfigError, Key, choice, flag, hyperparams_from,
                                           non_negative_float, non_negative_int, positive_float, positive_int,
                                           positive_int_list, unit_interval)

DISTILLATIONS = ("none", "rnd", "snd", "snd_entropy", "constant")
OBS_NORMS = ("mean", "mean_std", "none")

# --- config keys (the author's defaults; the RND paper's and PureJaxRL's choices as switches) ---------------------
CONFIG_KEYS = {
    "distillation": choice("intrinsic motivation: none (plain PPO), rnd, snd, snd_entropy; constant: the control "
                           "that pays constant_bonus every step", DISTILLATIONS, default="none"),
    "constant_bonus": non_negative_float("constant: the intrinsic reward of every step (to match an RND run, its "
                                         "int_reward_clipped_mean)", default=0.01),
    "num_envs": positive_int("environments per run N", default=128),
    "rollout_length": positive_int("steps per environment between updates T", default=128),
    "epochs": positive_int("passes over each rollout", default=4),
    "num_minibatches": positive_int("minibatches per epoch (each N T / num_minibatches samples)", default=32),
    "minibatch_sampling": choice("with_replacement (the author's uniform draws) or permutation (disjoint)",
                                 ("with_replacement", "permutation"), default="with_replacement"),
    "learning_rate": positive_float("Adam step size of the PPO network", default=1e-4),
    "anneal_learning_rate": flag("decay the PPO step size linearly to 0 over the run (PureJaxRL's default)"),
    "max_grad_norm": positive_float("global-norm clip of the PPO gradient", default=0.5),
    "adam_epsilon": positive_float("epsilon of the PPO network's Adam (the author: 1e-8; PureJaxRL: 1e-5)",
                                   default=1e-8),
    "clip_epsilon": positive_float("PPO ratio clip", default=0.1),
    "entropy_coeff": non_negative_float("entropy bonus beta", default=0.001),
    "critic_coeff": non_negative_float("weight of the summed value losses, each a mean squared error (PureJaxRL's "
                                       "vf_coef 0.5 on half the squared error is 0.25 here)", default=0.5),
    "value_clip": flag("clip each value prediction to within clip_epsilon of the rollout's and take the larger "
                       "squared error (PureJaxRL; the author: no)"),
    "gae_lambda": unit_interval("GAE lambda", default=0.95),
    "gamma_ext": unit_interval("discount of the extrinsic stream", default=0.998),
    "gamma_int": unit_interval("discount of the intrinsic stream", default=0.99),
    "ext_adv_coeff": non_negative_float("weight of the extrinsic advantage", default=2.0),
    "int_adv_coeff": non_negative_float("weight of the intrinsic advantage", default=1.0),
    "normalize_advantages": flag("standardise the combined advantage per minibatch (PureJaxRL; the author: no)"),
    "network": choice("conv: the author's model C (3x3 conv stack, 512 features, actor and critic hidden layers);"
                      " mlp: separate actor and critic MLPs (PureJaxRL's)", ("conv", "mlp"), default="conv"),
    "conv_channels": positive_int_list("model C's conv widths", default=[32, 64, 64, 128]),
    "conv_strides": positive_int_list("model C's conv strides", default=[2, 2, 2, 1]),
    "hidden_width": positive_int("model C's feature and hidden width", default=512),
    "mlp_widths": positive_int_list("hidden widths of the mlp network", default=[64, 64]),
    "mlp_activation": choice("activation of the mlp network (PureJaxRL: tanh for CartPole, relu for MinAtar)",
                             ("tanh", "relu"), default="tanh"),
    "fix_bootstrap_last": flag("bootstrap the last step of a rollout from V(s_T) (the author gives it advantage "
                               "and return 0)"),
    "int_episodic": flag("mask the intrinsic stream at episode ends (the author; the RND paper: false)",
                         default=True),
    "int_reward_on": choice("the state the bonus is computed on: current (s_t, the author) or next (s_t+1, the "
                            "RND paper)", ("current", "next"), default="current"),
    "int_reward_norm": choice("none (the author) or return_std: divide by the running std of the discounted "
                              "intrinsic return (the RND paper)", ("none", "return_std"), default="none"),
    "obs_norm": Key("str", None, lambda v: v in OBS_NORMS, f"one of {', '.join(OBS_NORMS)}",
                    "distillation input: mean (subtract the running mean), mean_std (clip((s - mu) / sigma, -1, 1)), "
                    "none; default: mean for rnd (the author's RND baseline), mean_std for snd and snd_entropy "
                    "(the author's cnd_21)"),
    "obs_norm_init_steps": non_negative_int("random-action steps that seed the running mean", default=256),
    "distill_learning_rate": positive_float("Adam step size of the predictor", default=1e-4),
    "distill_conv_channels": positive_int_list("distillation conv widths (model B)", default=[16, 32, 64, 64]),
    "distill_conv_strides": positive_int_list("distillation conv strides", default=[2, 2, 2, 1]),
    "distill_features": positive_int("distillation feature width", default=512),
    "predictor_keep_prob": Key("float", None, lambda v: 0 < v <= 1, "a number in (0, 1]",
                               "mask keep probability of the predictor loss; default: min(1, 32 / num_envs) for rnd "
                               "(the author's RND), 0.25 at any num_envs for snd and snd_entropy (cnd_21's "
                               "dropout 0.75)"),
    "rnd_coupled_init": flag("rnd: draw the layers predictor and target share as the two halves of one orthogonal "
                             "weight (the author's RND baseline, ppo_rnd_1; false: independent draws)", default=True),
    "mask_mode": choice("element (the author) or sample (the RND paper)", ("element", "sample"), default="element"),
    "int_reward_coeff": positive_float("SND's bonus scale k", default=0.5),
    "target_learning_rate": non_negative_float("Adam step size of SND's target (0: a frozen target)", default=1e-4),
    "snd_pairs": positive_int("pairs per target step", default=64),
    "snd_augmentation": choice("SND's augmentation recipe (cnd_2022_10: cnd_21's)", distill.AUGMENTATIONS,
                               default="cnd_2022_10"),
    "snd_l2_coeff": non_negative_float("lambda of the feature magnitude term (0 in every surviving config)",
                                       default=0.0),
    "snd_hinge": non_negative_float("feature magnitude above which the Jan-2023 code's hinge penalises (0: no "
                                    "hinge, as cnd_21; that code used 200)", default=0.0),
    "entropy_buffer_size": positive_int("SND + entropy: feature ring buffer K per environment", default=128),
    "entropy_features": positive_int("SND + entropy: entropy model feature width", default=256),
    "entropy_reward_coeff": positive_float("SND + entropy: scale k_b of the diversity bonus", default=1.0),
    "entropy_adv_coeff": non_negative_float("SND + entropy: weight of its advantage", default=1.0),
    "gamma_int_b": unit_interval("SND + entropy: discount of its stream", default=0.99),
}
SWEEPABLE_KEYS = ("learning_rate", "max_grad_norm", "clip_epsilon", "entropy_coeff", "critic_coeff", "gae_lambda",
                  "gamma_ext", "gamma_int", "ext_adv_coeff", "int_adv_coeff", "distill_learning_rate",
                  "int_reward_coeff", "target_learning_rate", "entropy_reward_coeff", "entropy_adv_coeff",
                  "gamma_int_b", "constant_bonus")
SHAPE_KEYS = {name: "the rollout and the minibatches" for name in (
    "num_envs", "rollout_length", "epochs", "num_minibatches", "minibatch_sampling", "snd_pairs",
    "entropy_buffer_size", "obs_norm_init_steps")}
SHAPE_KEYS.update({name: "the networks" for name in (
    "distillation", "network", "conv_channels", "conv_strides", "hidden_width", "mlp_widths",
    "distill_conv_channels", "distill_conv_strides", "distill_features", "entropy_features")})


def transitions_per_update(config) -> int:
    return config["num_envs"] * config["rollout_length"]


def check_config(config, obs_shape: tuple) -> None:
    per_update = transitions_per_update(config)
    if config["eval_frequency"] % per_update:
        raise ConfigError(f"eval_frequency ({config['eval_frequency']}) must be a multiple of num_envs x "
                          f"rollout_length ({per_update}): a chunk is a whole number of updates")
    if per_update % config["num_minibatches"]:
        raise ConfigError(f"num_minibatches ({config['num_minibatches']}) must divide num_envs x rollout_length "
                          f"({per_update})")
    if len(config["conv_channels"]) != len(config["conv_strides"]):
        raise ConfigError("conv_channels and conv_strides need one entry per conv layer")
    if len(config["distill_conv_channels"]) != len(config["distill_conv_strides"]):
        raise ConfigError("distill_conv_channels and distill_conv_strides need one entry per conv layer")
    if config["network"] == "conv" and len(obs_shape) != 3:
        raise ConfigError(f"network conv reads (height, width, channels) images; this environment's observations "
                          f"are {obs_shape}: use network mlp or env_wrappers pixels")


CONFIG_SCHEMAS = {"PPO": AgentSchema(name="PPO", keys=CONFIG_KEYS, sweepable=SWEEPABLE_KEYS, shape_keys=SHAPE_KEYS,
                                     check=check_config)}


@struct.dataclass
class PPOHyperparams:
    learning_rate: float
    max_grad_norm: float
    clip_epsilon: float
    entropy_coeff: float
    critic_coeff: float
    gae_lambda: float
    gamma_ext: float
    gamma_int: float
    ext_adv_coeff: float
    int_adv_coeff: float
    distill_learning_rate: float
    int_reward_coeff: float
    target_learning_rate: float
    entropy_reward_coeff: float
    entropy_adv_coeff: float
    gamma_int_b: float
    constant_bonus: float


def hyperparams_from_config(config) -> PPOHyperparams:
    return hyperparams_from(PPOHyperparams, config)


def distillation_defaults(config) -> dict:
    """The keys whose default depends on the variant, resolved: obs_norm and predictor_keep_prob (read with .get:
    the config of an .out written before they existed lacks them)."""
    snd = config.get("distillation") in ("snd", "snd_entropy")
    obs_norm = config.get("obs_norm") or ("mean_std" if snd else "mean")
    keep = config.get("predictor_keep_prob") or (0.25 if snd else min(1.0, 32.0 / config.get("num_envs", 128)))
    return {"obs_norm": obs_norm, "predictor_keep_prob": keep}
