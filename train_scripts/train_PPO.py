"""Train PPO, PPO + RND, PPO + SND or PPO + SND + entropy (the `distillation` key) over num_seeds seeds vmapped
in one process.

    python train_scripts/train_PPO.py   # quickstart: CartPole-v1, 4 seeds, 500k steps
    python train_scripts/train_PPO.py --seed 0 --config configs/ppo/MiniMontezuma_cpu_rnd.json --output RND

Manual: docs/ppo.md; every key: docs/keys/PPO.md or --describe.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a plain checkout too

from experiment.devices import start_backend  # noqa: E402

start_backend()  # CPU devices per core, --distributed joined: before anything starts JAX (importing gymnax does)

from agents import ppo  # noqa: E402
from experiment.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("PPO", ppo.make, default_output="PPO",
                  default_config="quickstart_PPO.json", description=__doc__))
