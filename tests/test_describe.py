"""The config-key reference: docs/keys/ is what experiment/describe.py generates from the keys' declarations (so a
key added, removed or re-documented without regenerating fails here), and --describe prints every key."""
import os

import pytest

from agents import ppo
from experiment import cli, describe
from experiment import config as config_lib

KEYS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "keys")


@pytest.mark.parametrize("agent_type", list(config_lib.SCHEMAS))
def test_the_key_reference_in_docs_is_current(agent_type):
    with open(os.path.join(KEYS_DIR, describe.page_name(agent_type)), encoding="utf-8") as f:
        assert f.read() == describe.markdown(agent_type), (
            "docs/keys is stale: run python -m experiment.describe --write docs/keys")


def test_every_key_has_a_meaning_and_a_row():
    for agent_type in config_lib.SCHEMAS:
        table = describe.rows(agent_type)
        assert [r["name"] for r in table] == list(config_lib.AGENT_KEYS[agent_type])
        assert all(r["meaning"].strip() for r in table), [r["name"] for r in table if not r["meaning"].strip()]


def test_describe_prints_the_agents_keys_with_defaults(capsys):
    assert cli.main("PPO", ppo.make, "PPO", ["--describe"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PPO config keys")
    assert "  distillation (str, default \"none\"; one of none, rnd, snd, snd_entropy, constant;" in out
    assert "  num_seeds (int, default required;" in out


# Every metric each family's quickstart writes (its .out's metrics), which the vocabulary must declare.
QUICKSTART_METRICS = {
    "ER": ["diverged", "eval_times", "reward_rates", "train_reward_rates"],
    "simple_model": ["diverged", "eval_times", "model_loss", "obs_loss", "q_loss", "reward_loss", "reward_rates",
                     "termination_loss", "train_reward_rates"],
    "latent_model": ["kl_posterior", "kl_prior", "posterior_entropy"],
    "PSDRL": ["loss_ae", "loss_terminal", "loss_transition", "loss_value", "posterior_transitions", "reward_rates",
              "ridge", "train_reward_rates"],
    "PETS": ["model_error_new_episode", "model_loss", "return", "return_running_max", "reward_rates"],
    "PPO": ["approx_kl", "clip_fraction", "entropy", "episodes_finished", "explained_variance_ext",
            "explained_variance_int", "grad_norm", "length", "policy_loss", "return", "reward_rates",
            "value_loss_ext", "value_loss_int"],
}


@pytest.mark.parametrize("agent_type", list(QUICKSTART_METRICS))
def test_every_metric_of_the_quickstarts_has_a_label_and_a_meaning(agent_type):
    from experiment import metrics

    for name in QUICKSTART_METRICS[agent_type]:
        described = metrics.describe({"agent_type": agent_type, "episodic_env": True}, name)
        assert described.meaning and described.label != name or name in ("diverged",), (agent_type, name)


def test_the_evaluation_score_means_what_each_family_computes():
    from experiment import metrics

    meanings = {agent: metrics.describe({"agent_type": agent, "episodic_env": True, "eval_steps": 100,
                                         "eval_batch_size": 32}, "reward_rates").meaning
                for agent in ("ER", "PSDRL", "PETS", "PPO")}
    assert "greedy-policy evaluation episode" in meanings["ER"] and "32 episodes" in meanings["ER"]
    assert "behaviour policy" in meanings["PSDRL"] and "training episode" in meanings["PETS"]
    assert "training episodes that ended in the chunk" in meanings["PPO"]
    assert len(set(meanings.values())) == 4
    assert metrics.describe({"agent_type": "ER", "episodic_env": False, "eval_steps": 100, "eval_batch_size": 32},
                            "reward_rates").label == "greedy evaluation reward per step"
    assert metrics.out_meta({"agent_type": "PPO"}, ["reward_rates"])["x_axis"].startswith(
        "environment steps per seed (all of its num_envs")


def test_every_metric_of_the_exploration_runs_is_declared_and_old_files_fall_back_to_the_declarations():
    """The metrics a PPO run with rooms, milestones and each bonus writes (tests/test_ppo.py's sets), and the
    rooms and cells any agent logs, have labels and meanings; a .out written before a metric was declared (its meta
    has the name as label and no meaning) is described from the declaration."""
    from experiment import metrics

    names = ["rooms_visited", "cells_visited", "rooms_per_episode", "rooms_per_episode_max", "first_key_step",
             "first_door_step", "first_treasure_step", "success_rate", "int_reward_mean", "int_reward_std",
             "int_reward_max", "int_reward_clipped_mean", "int_reward_clip_fraction", "predictor_loss",
             "mask_kept_fraction", "contrastive_loss", "pair_accuracy", "distance_close", "distance_far",
             "feature_magnitude", "int_b_reward_mean"]
    for name in names:
        described = metrics.describe({"agent_type": "PPO"}, name)
        assert described.meaning and described.label != name, name
    assert metrics.describe({"agent_type": "ER"}, "cells_visited").label == "cells visited (run union)"
    old = {"config": {"agent_type": "PPO"}, "meta": {"metrics": {"first_key_step": {"label": "first_key_step",
                                                                                    "meaning": ""}}}}
    assert metrics.of_file(old, "first_key_step").label == "steps to the first key"
    written = {"config": {"agent_type": "PPO"}, "meta": {"metrics": {"return": {"label": "L", "meaning": "M"}}}}
    assert metrics.of_file(written, "return") == metrics.Metric("L", "M")  # a file's own words win
