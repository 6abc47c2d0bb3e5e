"""Train PPO (plain, + RND, + SND, + SND and entropy: the `distillation` key) over num_seeds seeds:
python train_scripts/train_PPO.py --seed S --config configs/ppo/<task>.json --output O (the same flags, files,
progress bar, resume and error handling as the DQN family)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a plain checkout too

from experiment.devices import start_backend  # noqa: E402

start_backend()  # CPU devices per core, --distributed joined: before anything starts JAX (importing gymnax does)

from agents import ppo  # noqa: E402
from experiment.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("PPO", ppo.make, default_output="PPO"))
