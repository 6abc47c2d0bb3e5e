"""The config keys of the model-based DQN agents (agents/model_dqn.py): perfect, simple and latent model.

They read the paper's DQN-family keys (agents/dqn.py PAPER_KEYS and the fix flags) plus their own (spec
sections 3.2-3.4 and 4). Kept beside model_dqn.py, which is long enough on its own.
"""
from agents import dqn
from agents.components.config_keys import (AgentSchema, ConfigError, Key, choice, flag, non_negative_float,
                                           positive_float, positive_int)

ROLLOUT_KEYS = {"rollout_length": positive_int("imagined steps per rollout (H)")}
MODEL_KEYS = {
    "Q_alpha": positive_float("Q step size"),
    "model_alpha": positive_float("model step size"),
    "reward_weight": non_negative_float("model loss weight: reward NLL"),
    "termination_weight": non_negative_float("model loss weight: continuation BCE"),
    "obs_prediction_weight": non_negative_float("model loss weight: observation NLL"),
    "binary_obs": Key("bool", doc="Bernoulli observation likelihood (else a Gaussian)"),
    **ROLLOUT_KEYS,
}
LATENT_KEYS = {
    "latent_type": choice("latent variable", ("categorical", "gaussian", "tanh_gaussian")),
    "num_features": positive_int("latent features F (categorical: groups)"),
    "feature_width": positive_int("classes K per categorical group (required for categorical)", default=None),
    "KL_prior_weight": non_negative_float("KL(stopgrad(posterior of o') || transition): trains the transition"),
    "KL_posterior_weight": non_negative_float("KL(posterior of o' || stopgrad(transition)): trains the encoder"),
    "posterior_entropy_weight": non_negative_float("KL(posterior of o || N(0,1) or uniform)"),
    "min_std": non_negative_float("added to the encoder's std (Gaussian latents)", default=0.0),
    "std_act": choice("std activation of Gaussian heads", ("softplus", "sigmoid", "sigmoid2"), default="softplus"),
    "learn_obs_variance": Key("bool", None, None, "", "learned decoder std (required when binary_obs is false)"),
    "seperate_rollout_batch_size": flag("draw a second minibatch of rollout_batch_size for the rollout starts"),
    "rollout_batch_size": positive_int("rollout starts when seperate_rollout_batch_size is set", default=None),
    "fix_latent_double_DQN": flag("Q3: honour double_DQN in the latent agent's Q target"),
}

# Config keys that reach the compiled program only through ModelDQNHyperparams (sweepable; see dqn.SWEEPABLE_KEYS).
SWEEPABLE_KEYS = ("alpha_adam", "Q_alpha", "model_alpha", "gamma", "softmax_temp", "epsilon", "b1_adam", "b2_adam",
                  "eps_adam", "wd_adam", "target_update_frequency", "reward_weight", "termination_weight",
                  "obs_prediction_weight", "KL_prior_weight", "KL_posterior_weight", "posterior_entropy_weight")

SHAPE_KEYS = {**dqn.SHAPE_KEYS, "rollout_length": "the imagined batch", "rollout_batch_size": "the rollout starts",
              "num_features": "the latent", "feature_width": "the latent"}


def check_config(config, obs_shape: tuple) -> None:
    dqn.check_exploration(config)
    if config.get("latent_type") == "categorical" and config["feature_width"] is None:
        raise ConfigError("latent_type 'categorical' needs the key 'feature_width' (classes per group)")
    if "latent_type" in config and not config["binary_obs"] and config["learn_obs_variance"] is None:
        raise ConfigError("binary_obs false needs the key 'learn_obs_variance' (true or false)")
    if config.get("seperate_rollout_batch_size") and config["rollout_batch_size"] is None:
        raise ConfigError("seperate_rollout_batch_size needs the key 'rollout_batch_size'")
    if "rollout_length" in config:  # the imagined batch's rows are indexed in int32 inside jit
        starts = config["rollout_batch_size"] if config.get("seperate_rollout_batch_size") else config["batch_size"]
        if starts * config["rollout_length"] >= 2 ** 31:
            raise ConfigError(f"rollout_length {config['rollout_length']:,} x {starts:,} rollout starts = "
                              f"{starts * config['rollout_length']:,} imagined rows, more than 2^31 - 1")


def schema(name: str, keys: dict) -> AgentSchema:
    return AgentSchema(name=name, keys={**dqn.PAPER_KEYS, **keys, **dqn.FIX_KEYS}, sweepable=SWEEPABLE_KEYS,
                       shape_keys=SHAPE_KEYS, check=check_config)


CONFIG_SCHEMAS = {
    "perfect_model": schema("perfect-model DQN", {"alpha_adam": positive_float("Q step size"), **ROLLOUT_KEYS}),
    "simple_model": schema("simple-model DQN", {
        **MODEL_KEYS,
        "fix_simple_model_obs_sampling": flag("Q2: sample imagined binary observations with p = sigmoid(logit)")}),
    "latent_model": schema("latent-model DQN", {**MODEL_KEYS, **LATENT_KEYS}),
}
