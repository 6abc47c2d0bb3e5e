"""Train the DQN family (ER DQN and its extensions: double, dueling, prioritized replay, epsilon schedules, conv
torso) over num_seeds seeds: python train_scripts/train_DQN.py --config configs/dqn_variants/CartPole-v1_DQN.json

The same agent and config keys as train_ER_DQN.py; only the default output prefix differs ("DQN").
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a plain checkout too

from experiment.devices import start_backend  # noqa: E402

start_backend()  # CPU devices per core, --distributed joined: before anything starts JAX (importing gymnax does)

from agents import dqn  # noqa: E402
from experiment.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("ER", dqn.make, default_output="DQN"))
