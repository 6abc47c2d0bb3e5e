"""Train PETS (probabilistic ensembles, trajectory sampling, CEM or random-shooting MPC) over num_seeds seeds
vmapped in one process.

    python train_scripts/train_PETS.py   # quickstart: Pendulum-v1, 2 seeds, 6 episodes
    python train_scripts/train_PETS.py --seed 0 --config configs/pets/CartpoleSwingUp.json --output PETS

Manual: docs/pets.md; every key: docs/keys/PETS.md or --describe.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a plain checkout too

from experiment.devices import start_backend  # noqa: E402

start_backend()  # CPU devices per core, --distributed joined: before anything starts JAX (importing gymnax does)

from agents import pets  # noqa: E402
from experiment.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("PETS", pets.make, default_output="PETS",
                  default_config="quickstart_PETS.json", description=__doc__))
