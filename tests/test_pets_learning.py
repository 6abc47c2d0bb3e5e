"""A short PETS learning run on the cart-pole swing-up that must clearly beat random actions.

PE-TSinf-CEM with the algorithm unchanged and the planner and networks shrunk for a CPU (K 10 particles through
5 members of 200 x 3, P 60, E 6, I 3, H 15), 2 seeds, one random episode and then 5 planned ones of 200 steps.
A random episode returns about -3 (it never brings the pole up and pays 0.01 u^2 per step); the best planned
episode of every seed must return at least 30 more than that seed's random episode, and the model's one-step error
on the new planned episodes must stay under the state's scale: below 0.5 on average over a seed's planned episodes
and below 1 on each (a broken model errs by several units). A single episode may err more than the rest: one that
swings higher than any before reaches states the model has not seen (on jax 0.10.2 here, one seed's errors were
0.16, 0.42, 0.68, 0.18, 0.15). (It used to assert that the error falls from the first planned episode to the last,
then that every episode's stays below 0.5: neither is a property of PETS.)
"""
import pytest
import numpy as np

from agents import pets
from experiment import config as config_lib
from experiment import runner

SHRUNK = {"num_seeds": 2, "ntrain_iters": 5, "num_steps": 1200, "plan_hor": 15, "popsize": 60, "num_elites": 6,
          "max_iters": 3, "npart": 10}


@pytest.mark.slow  # a learning run: `-m "not slow"` leaves it out
def test_pets_learns_the_swing_up(tmp_path):
    raw = config_lib.load_json("configs/pets/CartpoleSwingUp_reduced.json")
    config = config_lib.validate("PETS", {**raw, **SHRUNK})
    result = runner.run(config, pets.make, seed=0, output=str(tmp_path / "pets"), progress=False)
    returns = np.asarray(result["metrics"]["return"])  # (episodes, seeds); episode 0 is random
    random_return, planned = returns[0], returns[1:]
    assert (random_return < 0).all(), returns
    assert (planned.max(axis=0) >= random_return + 30).all(), returns
    error = np.asarray(result["metrics"]["model_error_new_episode"])
    assert np.isnan(error[0]).all(), error  # no model before the random episode
    assert (error[1:].mean(axis=0) < 0.5).all() and (error[1:] < 1.0).all(), error
