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
