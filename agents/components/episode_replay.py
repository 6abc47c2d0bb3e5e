"""A whole-episode replay buffer as pure functions over a state: a ring of steps with an episode table
(Sasso et al. 2023; remosasso/PSDRL). The episode in progress is written ahead but never sampled until it is
committed at its end; sampled sequences never cross an episode boundary.

Per step the ring keeps only the next frame; an observation is the previous slot's next frame, or the
episode's reset frame (kept in the table) at its first step: exact, and half the frames' memory.

Eviction is FIFO by whole episode: after a commit, the oldest episodes go while the newer ones alone still
hold at least `capacity` transitions (the published code evicts by episode slot and can overshoot; this is
the one documented deviation, Q8). The ring must hold capacity + 2 * (longest episode + 1) steps so the
writer never reaches a kept episode; if it does, that episode is evicted too.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class EpisodeReplayState:
    next_frame: jax.Array  # (ring, *frame) uint8
    action: jax.Array  # (ring,) int32
    reward: jax.Array  # (ring,) float32: what the learner fits (PSDRL: tanh of the step's reward)
    done: jax.Array  # (ring,) bool
    episode_of: jax.Array  # (ring,) int32: the table slot of the episode the step belongs to
    is_start: jax.Array  # (ring,) bool
    reset_frame: jax.Array  # (episodes, *frame)
    start: jax.Array  # (episodes,) int32 ring index of the first step
    length: jax.Array  # (episodes,) int32
    valid: jax.Array  # (episodes,) bool: committed and not evicted
    score: jax.Array  # (episodes,) float32: the raw return
    write: jax.Array  # int32: the next ring slot
    current: jax.Array  # int32: the table slot of the episode in progress (slot = episode number % episodes)


class Sequences(NamedTuple):
    obs: jax.Array  # (B, T, *frame)
    action: jax.Array  # (B, T)
    reward: jax.Array
    next_obs: jax.Array
    done: jax.Array
    mask: jax.Array  # (B, T) bool: step j < T_eff
    length: jax.Array  # T_eff
    index: jax.Array  # (B, T) the steps' ring slots (for what an agent keeps beside the ring)


class EpisodeReplay(NamedTuple):
    init: callable
    begin: callable
    add: callable
    commit: callable
    sample: callable
    observation: callable
    stored: callable


def make_episode_replay(ring: int, episodes: int, capacity: int, batch: int, sequence: int) -> EpisodeReplay:
    """ring steps and `episodes` table slots; keep >= capacity transitions; sample `batch` sequences of up to
    `sequence` steps."""
    if ring < capacity:
        raise ValueError(f"the ring ({ring} steps) must hold at least capacity ({capacity}) transitions")

    def init(frame) -> EpisodeReplayState:
        frame = jnp.asarray(frame)
        zeros = lambda n, dtype: jnp.zeros(n, dtype)  # noqa: E731
        return EpisodeReplayState(
            next_frame=jnp.zeros((ring,) + frame.shape, frame.dtype), action=zeros(ring, jnp.int32),
            reward=zeros(ring, jnp.float32), done=zeros(ring, jnp.bool_), episode_of=jnp.full(ring, -1, jnp.int32),
            is_start=zeros(ring, jnp.bool_), reset_frame=jnp.zeros((episodes,) + frame.shape, frame.dtype),
            start=zeros(episodes, jnp.int32), length=zeros(episodes, jnp.int32), valid=zeros(episodes, jnp.bool_),
            score=zeros(episodes, jnp.float32), write=jnp.int32(0), current=jnp.int32(-1))

    def begin(state: EpisodeReplayState, reset_frame) -> EpisodeReplayState:
        """A new episode in the next table slot (an episode still kept there is evicted), from reset_frame."""
        slot = (state.current + 1) % episodes
        return state.replace(current=slot, reset_frame=state.reset_frame.at[slot].set(reset_frame),
                             start=state.start.at[slot].set(state.write), length=state.length.at[slot].set(0),
                             valid=state.valid.at[slot].set(False), score=state.score.at[slot].set(0.0))

    def add(state: EpisodeReplayState, action, reward, next_frame, done, score) -> EpisodeReplayState:
        """One step of the episode in progress."""
        i, slot = state.write, state.current
        overwritten = state.episode_of[i]
        valid = jnp.where((overwritten >= 0) & (overwritten != slot), state.valid.at[overwritten].set(False),
                          state.valid)
        return state.replace(
            next_frame=state.next_frame.at[i].set(next_frame), action=state.action.at[i].set(action),
            reward=state.reward.at[i].set(reward), done=state.done.at[i].set(done),
            episode_of=state.episode_of.at[i].set(slot), is_start=state.is_start.at[i].set(state.length[slot] == 0),
            length=state.length.at[slot].add(1), score=state.score.at[slot].add(score), valid=valid,
            write=(i + 1) % ring)

    def commit(state: EpisodeReplayState) -> EpisodeReplayState:
        """The episode in progress joins the sampled data; then FIFO eviction down to capacity."""
        valid = state.valid.at[state.current].set(True)
        order = (state.current + 1 + jnp.arange(episodes)) % episodes  # oldest ... newest
        kept_lengths = jnp.where(valid, state.length, 0)[order]
        newer = jnp.sum(kept_lengths) - jnp.cumsum(kept_lengths)  # transitions in strictly newer episodes
        keep = jnp.zeros(episodes, jnp.bool_).at[order].set(newer < capacity)
        return state.replace(valid=valid & keep)

    def stored(state: EpisodeReplayState) -> jax.Array:
        return jnp.sum(jnp.where(state.valid, state.length, 0))

    def observation(state: EpisodeReplayState, index):
        """The observation at ring slot(s) `index`: the reset frame at an episode's first step, else the previous
        slot's next frame."""
        start_frame = state.reset_frame[state.episode_of[index]]
        previous = state.next_frame[(index - 1) % ring]
        mask = state.is_start[index].reshape(index.shape + (1,) * (previous.ndim - index.ndim))
        return jnp.where(mask, start_frame, previous)

    def sample(state: EpisodeReplayState, key) -> Sequences:
        """batch sequences: episodes uniform over the kept ones at least T_eff long (T_eff = sequence if the
        longest kept episode is longer than `sequence`, else the shortest kept length; quirk Q9), a start uniform
        in each, steps j < T_eff real (mask) and the rest padding."""
        lengths = jnp.where(state.valid, state.length, 0)
        longest = jnp.max(lengths)
        shortest = jnp.min(jnp.where(state.valid, state.length, jnp.iinfo(jnp.int32).max))
        t_eff = jnp.where(longest > sequence, sequence, jnp.minimum(shortest, sequence))
        eligible = state.valid & (state.length >= t_eff)
        episode_key, start_key = jax.random.split(key)
        any_eligible = jnp.any(eligible)
        chosen = jax.random.choice(episode_key, episodes, (batch,),
                                   p=jnp.where(any_eligible, eligible, jnp.ones(episodes, bool)) / jnp.maximum(
                                       jnp.sum(jnp.where(any_eligible, eligible, True)), 1))
        offsets = jax.random.randint(start_key, (batch,), 0, jnp.maximum(state.length[chosen] - t_eff, 0) + 1)
        steps = jnp.arange(sequence)
        index = (state.start[chosen][:, None] + offsets[:, None] + steps[None, :]) % ring
        mask = jnp.broadcast_to((steps[None, :] < t_eff) & any_eligible, (batch, sequence))
        return Sequences(obs=observation(state, index), action=state.action[index], reward=state.reward[index],
                         next_obs=state.next_frame[index], done=state.done[index], mask=mask, length=t_eff,
                         index=index)

    return EpisodeReplay(init=init, begin=begin, add=add, commit=commit, sample=sample, observation=observation,
                         stored=stored)
