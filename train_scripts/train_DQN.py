"""Train the DQN family (ER DQN and its extensions: double DQN, dueling networks, prioritized replay, epsilon
schedules, a conv torso for pixels) over num_seeds seeds vmapped in one process.

    python train_scripts/train_DQN.py   # quickstart: CartPole-v1, 4 seeds, 50k steps
    python train_scripts/train_DQN.py --seed 0 --config configs/dqn_variants/CartPole-v1_Double_DQN.json --output DDQN

The same agent and config keys as train_ER_DQN.py; only the default config and output prefix differ. Manual:
docs/dqn.md; every key: docs/keys/ER.md or --describe.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a plain checkout too

from experiment.devices import start_backend  # noqa: E402

start_backend()  # CPU devices per core, --distributed joined: before anything starts JAX (importing gymnax does)

from agents import dqn  # noqa: E402
from experiment.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("ER", dqn.make, default_output="DQN",
                  default_config="quickstart_DQN.json", description=__doc__))
