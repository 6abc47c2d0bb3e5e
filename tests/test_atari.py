"""Real Atari through EnvPool (envs/atari.py): refused with one line naming the extra when EnvPool is absent;
with the extra, the protocols' explicit settings, batched host steps under nested vmap, auto-reset in place,
slot reuse, Montezuma's rooms from the RAM, and a few training steps of the conv DQN through the harness."""
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import atari
from experiment import config as config_lib
from experiment import runner


def test_atari_ids_are_refused_without_the_extra(monkeypatch):
    monkeypatch.setattr(atari, "envpool_module", lambda: None)
    base = config_lib.load_json("configs/quickstart.json")
    with pytest.raises(config_lib.ConfigError, match=r"'Pong-v5' is an Atari game: install the atari extra \(pip "
                                                     r"install -e \"\.\[atari\]\"\)"):
        config_lib.validate("ER", {**base, "environment": "Pong-v5", "env_config": {}})
    with pytest.raises(ValueError, match="atari extra"):
        envs.make("MontezumaRevenge-v5")


# Every test below needs EnvPool (conftest.py skips them without the atari extra); the refusal above runs always.
requires_atari = pytest.mark.extra("atari")


@requires_atari
def test_protocols_set_every_option_explicitly():
    env, params = envs.make("Pong-v5")  # protocol psdrl by default
    assert env.options == {**atari.PROTOCOLS["psdrl"]}
    assert env.options["repeat_action_probability"] == 0.0 and env.options["max_episode_steps"] == 27000
    assert env.observation_space(params).shape == (64, 64, 1) and env.action_space(params).n == 6  # minimal set
    env, params = envs.make("MontezumaRevenge-v5", protocol="rnd")
    assert env.observation_space(params).shape == (96, 96, 1) and env.action_space(params).n == 18
    assert env.options["repeat_action_probability"] == 0.25 and env.options["max_episode_steps"] == 4500
    env, _ = envs.make("Pong-v5", protocol="machado", img_height=42, img_width=42)
    assert env.options["img_height"] == 42 and env.options["repeat_action_probability"] == 0.25


@requires_atari
@pytest.mark.parametrize("config, message", [({"protocol": "dqn"}, "protocol must be one of"),
                                             ({"img_height": 0}, "'img_height' has the bad value 0"),
                                             ({"repeat_action_probability": 1.5}, "bad value 1.5"),
                                             ({"stack": 4}, "'stack' is not an Atari option")])
@requires_atari
def test_bad_atari_options_name_the_key(config, message):
    with pytest.raises(ValueError, match=message):
        envs.make("Pong-v5", **config)
    with pytest.raises(ValueError, match="unknown Atari game 'Pongg-v5'"):
        envs.make("Pongg-v5")


@requires_atari
def test_emulated_wrappers_are_refused_for_atari():
    env, params = envs.make("Pong-v5")
    with pytest.raises(envs.pixels.WrapperError, match="'pixels' does not apply to Pong-v5: EnvPool does it"):
        envs.pixels.wrap(env, params, {"pixels": 32})


@requires_atari
def test_nested_vmap_batches_one_host_call_and_auto_resets_in_place():
    """3 runs x 2 environments: six slots from one reset call; an episode cut at 5 agent steps resets in the same
    slot, reports the final frame stack and restarts the step count; the frame stack restarts from the new frame."""
    env, params = envs.make_from_config({"environment": "Pong-v5", "env_config": {"img_height": 16, "img_width": 16,
                                                                                 "max_episode_steps": 5},
                                         "env_wrappers": {"frame_stack": 2, "reward_transform": "clip"}})
    batched = lambda f, axes: jax.vmap(jax.vmap(f, in_axes=axes), in_axes=axes)  # noqa: E731
    obs, state = jax.jit(batched(env.reset, (0, None)))(jax.random.split(jax.random.PRNGKey(0), 6).reshape(3, 2, 2),
                                                         params)
    slots = np.asarray(state.inner.inner.slot)
    assert obs.shape == (3, 2, 16, 16, 2) and sorted(slots.ravel().tolist()) == list(range(6))
    step = jax.jit(batched(env.step, (None, 0, 0, None)))
    done_at = []
    for index in range(6):
        obs, state, reward, terminated, truncated, info = step(jax.random.PRNGKey(index), state,
                                                               jnp.zeros((3, 2), jnp.int32), params)
        done_at.append(bool(truncated.all()))
        if truncated.all():
            final = info["final_observation"]
            assert final.shape == obs.shape and "raw_reward" in info
            np.testing.assert_array_equal(np.asarray(obs[..., 0]), np.asarray(obs[..., 1]))  # a fresh stack
    assert done_at == [False, False, False, False, True, False]
    np.testing.assert_array_equal(np.asarray(state.inner.inner.slot), slots)
    assert (np.asarray(state.inner.inner.time) == 1).all()


@requires_atari
def test_evaluation_slots_reuse_the_least_recently_used():
    env, params = envs.make("Pong-v5", img_height=16, img_width=16, max_slots=16)
    _, training = jax.vmap(env.reset_env, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), 4), params)
    for index in range(3):  # three "evaluations" of 8 episodes between training steps
        jax.vmap(env.step_env, in_axes=(None, 0, 0, None))(None, training, jnp.zeros(4, jnp.int32), params)
        _, evaluation = jax.vmap(env.reset_env, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(index), 8),
                                                                   params)
        assert not set(np.asarray(evaluation.slot).tolist()) & set(np.asarray(training.slot).tolist())
    assert len(env.pool.last_used) == 16


@requires_atari
def test_montezuma_rooms_from_the_ram_reach_the_dqn_metrics(tmp_path):
    config = config_lib.load_json("configs/dqn_variants/Breakout-MinAtar_DQN.json")
    config.update({"environment": "MontezumaRevenge-v5", "env_config": {"protocol": "rnd", "img_height": 24,
                                                                       "img_width": 24},
                   "env_wrappers": {"frame_stack": 2, "frame_stack_order": "newest_first",
                                    "reward_transform": "positive_sign"},
                   "num_seeds": 2, "num_steps": 60, "eval_frequency": 30, "training_start_time": 30,
                   "buffer_size": 100, "batch_size": 8, "eval_steps": 10, "eval_batch_size": 2, "conv_channels": [4],
                   "conv_kernel_sizes": [4], "conv_strides": [4], "replay_obs_dtype": "auto", "epsilon_decay_steps": 60,
                   "num_hidden_units": 16})
    path = tmp_path / "montezuma.json"
    path.write_text(json.dumps(config))
    from agents import dqn

    validated = config_lib.load_config("ER", str(path))
    result = runner.run(validated, dqn.make, seed=0, output=str(tmp_path / "run"), progress=False)
    rooms = np.asarray(result["metrics"]["rooms_visited"])
    assert rooms.shape == (2, 2) and (rooms >= 1).all()  # the first room (RAM byte 3 reads 1 at the start)
    assert np.asarray(result["metrics"]["cells_visited"]).min() >= 1
    # Killed after its first chunk and resumed in a new process (compiled programs released: a new host pool),
    # the run finishes: the JAX state is restored, the emulators restarted (their episodes in progress end).
    runner.release_compiled()  # a fresh host pool: the same slots, so the same emulator seeds as the run above
    with pytest.raises(runner.Interrupted):
        runner.run(validated, dqn.make, seed=0, output=str(tmp_path / "again"), progress=False, stop_after_chunks=1)
    runner.release_compiled()
    resumed = runner.run(validated, dqn.make, seed=0, output=str(tmp_path / "again"), resume=True, progress=False)
    assert resumed["meta"]["complete"] and np.asarray(resumed["metrics"]["reward_rates"]).shape == (2, 2)
    np.testing.assert_array_equal(resumed["metrics"]["reward_rates"][0], result["metrics"]["reward_rates"][0])


class FakePool:
    """EnvPool's batched interface, scripted: frame value = steps since the slot's reset; episodes never end."""

    def __init__(self, num_envs, **options):
        self.height, self.width, self.count = options["img_height"], options["img_width"], np.zeros(num_envs, int)

    def _out(self, ids):
        frames = np.broadcast_to(self.count[ids][:, None, None, None], (len(ids), 1, self.height, self.width))
        info = {"ram": np.zeros((len(ids), 128), np.uint8), "lives": np.full(len(ids), 3)}
        return frames.astype(np.uint8), info

    def reset(self, ids):
        self.count[ids] = 0
        return self._out(ids)

    def step(self, actions, ids):
        self.count[ids] += 1
        frames, info = self._out(ids)
        return frames, np.ones(len(ids), np.float32), np.zeros(len(ids), bool), np.zeros(len(ids), bool), info


def test_a_resumed_pool_restarts_the_emulators_its_state_names(monkeypatch):
    """A new host pool (a resumed process) asked to step slots it never reset resets them instead and reports a
    truncated episode (reward 0, the fresh frame); the next step is an ordinary one; new episodes never get a slot
    that a resumed run still holds."""
    import types

    fake = types.SimpleNamespace(make=lambda task, **kw: FakePool(**kw))
    monkeypatch.setitem(sys.modules, "envpool", fake)
    options = {"img_height": 2, "img_width": 2, "stack_num": 1, "gray_scale": True}
    first = atari.HostPool("Pong-v5", options, seed=0, max_slots=16, block=4)
    slots, *_ = first.reset(3)
    for _ in range(2):
        first.step(slots, np.zeros(3, np.int32), auto_reset=True)
    resumed = atari.HostPool("Pong-v5", options, seed=0, max_slots=16, block=4)  # a new process: no emulators
    obs, final, reward, terminated, truncated, *_ = resumed.step(slots, np.zeros(3, np.int32), auto_reset=True)
    assert truncated.all() and not terminated.any() and (reward == 0).all()
    assert (obs == 0).all() and (final == 0).all()  # fresh frames: 0 steps since the reset
    obs, final, reward, terminated, truncated, *_ = resumed.step(slots, np.zeros(3, np.int32), auto_reset=True)
    assert not truncated.any() and (reward == 1).all() and (obs == 1).all()
    fresh, *_ = resumed.reset(2)
    assert not set(fresh.tolist()) & set(slots.tolist())
