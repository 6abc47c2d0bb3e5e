"""Every train script runs its own family's quickstart by default (validated, built and traced by --check, nothing
run) and says in --help which agent it trains and where its manual is."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = {  # script: (default config, agent name in the check's line, manual)
    "train_ER_DQN.py": ("quickstart.json", "ER DQN", "docs/dqn.md"),
    "train_DQN.py": ("quickstart_DQN.json", "ER DQN", "docs/dqn.md"),
    "train_perfect_model_DQN.py": ("quickstart_perfect_model.json", "perfect-model DQN", "docs/model_dqn.md"),
    "train_simple_model_DQN.py": ("quickstart_simple_model.json", "simple-model DQN", "docs/model_dqn.md"),
    "train_latent_model_DQN.py": ("quickstart_latent_model.json", "latent-model DQN", "docs/model_dqn.md"),
    "train_PSDRL.py": ("quickstart_PSDRL.json", "PSDRL", "docs/psdrl.md"),
    "train_PETS.py": ("quickstart_PETS.json", "PETS", "docs/pets.md"),
    "train_PPO.py": ("quickstart_PPO.json", "PPO", "docs/ppo.md"),
}


def test_every_train_script_is_listed():
    assert sorted(SCRIPTS) == sorted(f for f in os.listdir(os.path.join(REPO, "train_scripts"))
                                     if f.startswith("train_"))


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_the_default_config_is_the_familys_quickstart(script):
    config, agent, manual = SCRIPTS[script]
    path = os.path.join(REPO, "train_scripts", script)
    help_text = subprocess.run([sys.executable, path, "--help"], capture_output=True, text=True, timeout=120).stdout
    assert f"configs/{config}" in help_text and manual in help_text, help_text
    check = subprocess.run([sys.executable, path, "--check"], capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().endswith(f"configs/{config}: a valid {agent} config; nothing was run"), check.stdout
