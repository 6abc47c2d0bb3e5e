"""Train perfect-model DQN over num_seeds seeds:
python train_scripts/train_perfect_model_DQN.py --seed 0 --config configs/perfect_model.json --output perfect_model
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a plain checkout too

from experiment.devices import start_backend  # noqa: E402

start_backend()  # CPU devices per core, --distributed joined: before anything starts JAX (importing gymnax does)

from agents import model_dqn  # noqa: E402
from experiment.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("perfect_model", model_dqn.make, default_output="perfect_model"))
