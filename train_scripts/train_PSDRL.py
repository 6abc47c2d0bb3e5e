"""Train PSDRL (posterior sampling with a latent transition model) over num_seeds seeds vmapped in one process.

    python train_scripts/train_PSDRL.py   # quickstart: rendered Catch, 2 seeds, 1k steps
    python train_scripts/train_PSDRL.py --seed 0 --config configs/psdrl/Catch_pixels.json --output PSDRL

Manual: docs/psdrl.md; every key: docs/keys/PSDRL.md or --describe.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a plain checkout too

from experiment.devices import start_backend  # noqa: E402

start_backend()  # CPU devices per core, --distributed joined: before anything starts JAX (importing gymnax does)

from agents import psdrl  # noqa: E402
from experiment.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("PSDRL", psdrl.make, default_output="PSDRL",
                  default_config="quickstart_PSDRL.json", description=__doc__))
