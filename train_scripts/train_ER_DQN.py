"""Train ER DQN (Young et al.'s experience-replay DQN) over num_seeds seeds vmapped in one process.

    python train_scripts/train_ER_DQN.py   # quickstart: ProcMaze 3x3, 8 seeds, 50k steps
    python train_scripts/train_ER_DQN.py --seed 0 --config configs/ER.json --output ER   # the published config

Manual: docs/dqn.md; every key: docs/keys/ER.md or --describe.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a plain checkout too

from experiment.devices import start_backend  # noqa: E402

start_backend()  # CPU devices per core, --distributed joined: before anything starts JAX (importing gymnax does)

from agents import dqn  # noqa: E402
from experiment.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("ER", dqn.make, default_output="ER",
                  default_config="quickstart.json", description=__doc__))
