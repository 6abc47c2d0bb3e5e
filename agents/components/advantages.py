"""Generalised advantage estimation for one reward stream of a rollout, and the running statistics that
intrinsic-motivation agents normalise by (the RND/SND author's code).

Rollouts are time-major: rewards, values and dones are (T, N) for T steps of N environments; done_t says that
the episode ended with the step taken at t, so nothing of step t + 1 (the next episode's first state) flows
back into step t.
"""
import jax
import jax.numpy as jnp
from flax import struct


def gae(rewards, values, dones, last_value, gamma, lam, episodic: bool = True, bootstrap_last: bool = True):
    """(advantages, returns), both (T, N).

    delta_t = r_t + gamma V_{t+1} (1 - done_t) - V_t;  A_t = delta_t + gamma lam (1 - done_t) A_{t+1};  R_t = A_t + V_t.
    episodic=False ignores the dones (a non-episodic stream: the RND paper's intrinsic returns).
    bootstrap_last=True takes V_T = last_value (the value of the state after the rollout); False is the RND/SND
    author's recursion, which starts at T - 2 with A_{T-1} = 0, so the last step's advantage AND return are 0.
    """
    continues = (1.0 - dones.astype(jnp.float32)) if episodic else jnp.ones_like(rewards)
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    deltas = rewards + gamma * next_values * continues - values

    def backward(next_advantage, inputs):
        delta, cont = inputs
        advantage = delta + gamma * lam * cont * next_advantage
        return advantage, advantage

    if bootstrap_last:
        _, advantages = jax.lax.scan(backward, jnp.zeros_like(last_value), (deltas, continues), reverse=True)
        return advantages, advantages + values
    _, advantages = jax.lax.scan(backward, jnp.zeros_like(last_value), (deltas[:-1], continues[:-1]), reverse=True)
    zero = jnp.zeros_like(last_value)[None]
    return jnp.concatenate([advantages, zero]), jnp.concatenate([advantages + values[:-1], zero])


@struct.dataclass
class RunningMean:
    """The RND/SND author's running statistics: the count starts at 1 with a zero mean (a zero pseudo-sample);
    each update with a batch adds one to the count and moves the mean by (batch mean - mean) / count, so the mean
    is the average of per-update batch means and never decays. The variance is kept the same way, from each
    batch's mean squared deviation from the updated mean (the author's sigma = sqrt(var) + 1e-7)."""
    count: jax.Array
    mean: jax.Array
    var: jax.Array

    @classmethod
    def create(cls, shape):
        return cls(count=jnp.float32(1.0), mean=jnp.zeros(shape), var=jnp.ones(shape))

    def update(self, batch):
        count = self.count + 1.0
        mean = self.mean + (jnp.mean(batch, axis=0) - self.mean) / count
        var = self.var + (jnp.mean((batch - mean) ** 2, axis=0) - self.var) / count
        return RunningMean(count=count, mean=mean, var=var)

    def std(self):
        return jnp.sqrt(self.var) + 1e-7


@struct.dataclass
class RunningMoments:
    """Exact running mean and variance over every value seen (Chan et al.'s parallel update), as the RND paper's
    reference code tracks the intrinsic return's variance; starts empty with a tiny count."""
    count: jax.Array
    mean: jax.Array
    var: jax.Array

    @classmethod
    def create(cls):
        return cls(count=jnp.float32(1e-4), mean=jnp.float32(0.0), var=jnp.float32(1.0))

    def update(self, values):
        batch_count = jnp.float32(values.size)
        batch_mean, batch_var = jnp.mean(values), jnp.var(values)
        delta = batch_mean - self.mean
        total = self.count + batch_count
        mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta ** 2 * self.count * batch_count / total
        return RunningMoments(count=total, mean=mean, var=m2 / total)
