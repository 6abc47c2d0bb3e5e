"""An episode end made absorbing, for agents whose episodes have a fixed length (PETS).

`AbsorbingEnd(env)` steps the inner environment until its step says done; from then on every step returns the
same observation and state with reward 0 and done False. A fixed-length episode then scores exactly what the
inner episode scored up to its end, and the model sees the end as a state that no longer moves. Used for
MountainCarContinuous-v0, which ends at the goal.
"""
import jax
import jax.numpy as jnp
from flax import struct

from envs.pixels import WrappedState, Wrapper


@struct.dataclass
class AbsorbingState(WrappedState):
    ended: jax.Array  # bool


class AbsorbingEnd(Wrapper):
    def get_obs(self, state: AbsorbingState, params=None, key=None):
        return self.inner.get_obs(state.inner, params)

    def is_terminated(self, state, params):
        return jnp.bool_(False)

    def is_truncated(self, state, params):
        return jnp.bool_(False)

    def reset_env(self, key, params):
        obs, inner = self.inner.reset_env(key, params)
        return obs, AbsorbingState(time=0, inner=inner, ended=jnp.bool_(False))

    def step_env(self, key, state: AbsorbingState, action, params):
        obs, inner, reward, done, info = self.inner.step_env(key, state.inner, action, params)
        still = self.inner.get_obs(state.inner, params)
        keep = lambda new, old: jax.lax.select(state.ended, old, new)  # noqa: E731
        inner = jax.tree.map(keep, inner, state.inner)
        obs = keep(obs, still)
        reward = jnp.where(state.ended, 0.0, jnp.reshape(reward, ())).astype(jnp.float32)
        return obs, AbsorbingState(time=state.time + 1, inner=inner, ended=state.ended | done), reward, \
            jnp.bool_(False), {}
