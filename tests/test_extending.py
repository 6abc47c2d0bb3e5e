"""docs/extending.md's examples: an environment and an agent type registered without editing the harness."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

import envs
from agents import dqn
from experiment import cli, metrics, runner
from experiment import config as config_lib


@struct.dataclass
class CorridorState(environment.EnvState):
    position: jax.Array


@struct.dataclass
class CorridorParams(environment.EnvParams):
    max_steps_in_episode: int = 100


class Corridor(environment.Environment):
    """Actions 0 (left) and 1 (right); -0.01 per step, +1 and the episode's end at the right end."""

    def __init__(self, length: int = 5):
        super().__init__()
        self.length = length

    @property
    def default_params(self):
        return CorridorParams()

    def step_env(self, key, state, action, params):
        position = jnp.clip(state.position + 2 * action - 1, 0, self.length - 1)
        done = position == self.length - 1
        state = CorridorState(time=state.time + 1, position=position)
        reward = jnp.where(done, 1.0, -0.01)
        return self.get_obs(state), state, reward, done, {}

    def reset_env(self, key, params):
        state = CorridorState(time=0, position=jnp.int32(0))
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jax.nn.one_hot(state.position, self.length)

    def is_terminal(self, state, params):
        return state.position == self.length - 1

    @property
    def num_actions(self):
        return 2

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (self.length,), jnp.float32)


CONFIG = {"environment": "Corridor", "env_config": {"length": 4}, "episodic_env": True, "num_seeds": 2,
          "num_steps": 400, "eval_frequency": 100, "training_start_time": 0, "num_hidden_layers": 1,
          "num_hidden_units": 16, "activation": "relu", "alpha_adam": 1e-3, "b1_adam": 0.9, "b2_adam": 0.99,
          "eps_adam": 1e-5, "wd_adam": 0.0, "exploration_strat": "softmax", "softmax_temp": 0.5, "batch_size": 8,
          "buffer_size": 400, "target_update_frequency": 20, "use_target": True, "gamma": 0.9, "eval_steps": 20,
          "eval_batch_size": 2, "save_params": False, "checkpoint_frequency": 0}


@pytest.fixture
def corridor():
    envs.register_environment("Corridor", Corridor)
    yield
    envs.OUR_ENVIRONMENTS.pop("Corridor")


def test_a_registered_environment_is_built_checked_and_trained_on(corridor, tmp_path):
    env, params = envs.make("Corridor", length=4)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    np.testing.assert_array_equal(obs, [1, 0, 0, 0])
    for action, position, reward, done in ((0, 0, -0.01, False), (1, 1, -0.01, False), (1, 2, -0.01, False),
                                           (1, 3, 1.0, True)):
        obs, state, r, d, _ = env.step_env(jax.random.PRNGKey(1), state, action, params)
        assert int(state.position) == position and float(r) == pytest.approx(reward) and bool(d) == done
    with pytest.raises(config_lib.ConfigError, match="env_config key 'size' is not accepted by Corridor"):
        config_lib.validate("ER", dict(CONFIG, env_config={"size": 4}))
    result = runner.run(config_lib.validate("ER", CONFIG), dqn.make, seed=0, output=str(tmp_path / "c"),
                        progress=False)
    rates = np.asarray(result["metrics"]["reward_rates"])
    assert rates.shape == (4, 2) and np.all(np.isfinite(rates))
    assert np.all(rates <= 1.0) and np.all(rates >= -0.01 * 20 - 1e-6)  # a return of this corridor, capped at 20 steps
    np.testing.assert_allclose(rates[-1], 0.98, atol=1e-6)  # both seeds learned the shortest path: 3 steps right


def test_register_environment_refuses_a_taken_name_and_a_non_environment():
    with pytest.raises(ValueError, match="environment name 'ProcMaze' is taken"):
        envs.register_environment("ProcMaze", Corridor)
    with pytest.raises(TypeError, match="expected a gymnax Environment class"):
        envs.register_environment("Nothing", object)


@pytest.fixture
def my_dqn():
    """ER DQN's schema under a new agent type with a key of its own, and what its score means."""
    er = config_lib.SCHEMAS["ER"]
    schema = er._replace(name="my DQN", keys={**er.keys, "my_note": config_lib.Key("str", "", doc="a free note")})
    config_lib.register_agent("my_dqn", schema,
                              metrics={"reward_rates": metrics.Metric("my score", "what my evaluation measures")})
    yield schema
    for table in (config_lib.SCHEMAS, config_lib.AGENT_KEYS, config_lib.AGENT_NAMES, config_lib.SWEEPABLE_KEYS,
                  config_lib.SHAPE_KEYS, metrics.DECLARED):
        table.pop("my_dqn", None)


def test_a_registered_agent_validates_describes_and_names_its_metrics(my_dqn, capsys, tmp_path):
    base = {k: v for k, v in CONFIG.items()}
    base["environment"], base["env_config"] = "OpenGrid", {"grid_size": 3}
    config = config_lib.validate("my_dqn", dict(base, my_note="hello"))
    assert config["my_note"] == "hello" and config["agent_type"] == "my_dqn"
    with pytest.raises(config_lib.ConfigError, match="unknown config key 'my_nte' for my DQN; did you mean 'my_note'"):
        config_lib.validate("my_dqn", dict(base, my_nte="x"))
    assert cli.main("my_dqn", dqn.make, "mine", ["--describe"]) == 0
    assert "  my_note (str, default \"\"; a string; sweep no)" in capsys.readouterr().out
    assert metrics.out_meta(config, ["reward_rates"])["metrics"]["reward_rates"]["label"] == "my score"
    with pytest.raises(ValueError, match="agent type 'ER' is taken by ER DQN"):
        config_lib.register_agent("ER", my_dqn)
    with pytest.raises(ValueError, match="declares run-level keys of the harness: environment"):
        config_lib.register_agent("other", my_dqn._replace(keys={"environment": config_lib.Key("str")}))
