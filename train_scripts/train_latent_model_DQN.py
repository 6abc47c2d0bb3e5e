"""Train latent-model DQN (Young et al.: categorical or Gaussian latents, Q learned from imagined rollouts) over
num_seeds seeds vmapped in one process.

    python train_scripts/train_latent_model_DQN.py   # quickstart: ProcMaze 3x3, 4 seeds, 2k steps
    python train_scripts/train_latent_model_DQN.py --seed 0 --config configs/categorical_latent_model.json --output C

Manual: docs/model_dqn.md; every key: docs/keys/latent_model.md or --describe.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a plain checkout too

from experiment.devices import start_backend  # noqa: E402

start_backend()  # CPU devices per core, --distributed joined: before anything starts JAX (importing gymnax does)

from agents import model_dqn  # noqa: E402
from experiment.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("latent_model", model_dqn.make, default_output="latent_model",
                  default_config="quickstart_latent_model.json", description=__doc__))
