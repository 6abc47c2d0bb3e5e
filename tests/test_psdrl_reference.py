"""PSDRL's trainers (agents/psdrl_trainers.py) against step-by-step re-implementations of the published loops
(training/transition.py and training/policy.py of the original repository), at tiny sizes.

The references walk the sequence one step at a time in Python, as the published code does: the transition and
terminal losses summed step by step until the in-window counter reaches window_length or the sequence ends, the sums
divided by the window's steps, one Adam step for each net, h detached into the next window, h = 0 at the sequence
start; the value net's target copied when the step index is a multiple of target_update_freq, the targets
max_a [r_a + gamma V_target(s'_a, h'_a) 1(terminal_a < 0.5)] formed from the sampled last layer W (no bias), and h
following the action taken in the data. Gradients come from jax.grad of the reference's own loss; Adam is written
out in numpy. The networks' forward passes are tested against PyTorch's formulas in test_psdrl_components.py.
"""
import jax
import jax.numpy as jnp
import numpy as np

from agents import psdrl
from agents.components.episode_replay import Sequences
from agents.components.networks import unit_float
from agents.psdrl_trainers import make_trainers
from experiment import config as config_lib

NUM_ACTIONS = 3
BATCH, LENGTH = 2, 7  # two windows of the transition trainer (5 steps, then 2); value targets copied at 0 and 4


def tiny_config():
    raw = config_lib.load_json("configs/psdrl/tiny_test.json")
    return config_lib.validate("PSDRL", {**raw, "batch_size": BATCH, "sequence_length": LENGTH,
                                         "transition_learning_rate": 1e-2, "terminal_learning_rate": 1e-2,
                                         "value_learning_rate": 1e-2})


def setup(seed=0):
    config = tiny_config()
    nets = psdrl.networks(config, NUM_ACTIONS)
    autoencoder, encoder, transition, terminal, value = nets
    _, action_values = psdrl.lookahead(config, NUM_ACTIONS, transition, terminal, value)
    trainers = make_trainers(config, *nets, action_values)
    keys = jax.random.split(jax.random.PRNGKey(seed), 8)
    embed, gru = config["embed_dim"], config["gru_dim"]
    latent = jnp.zeros((1, embed))
    params = {"autoencoder": autoencoder.init(keys[0], jnp.zeros((1, 64, 64, 1))),
              "transition": transition.init(keys[1], latent, jnp.zeros(1, jnp.int32), jnp.zeros((1, gru))),
              "terminal": terminal.init(keys[2], latent), "value": value.init(keys[3], latent, jnp.zeros((1, gru)))}
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(BATCH, LENGTH + 1, 64, 64, 1), dtype=np.uint8)
    done = np.zeros((BATCH, LENGTH), bool)
    done[0, -1] = True  # the first sequence ends its episode
    sequences = Sequences(obs=jnp.asarray(frames[:, :-1]), action=jnp.asarray(rng.integers(0, NUM_ACTIONS, (BATCH, LENGTH))),
                          reward=jnp.asarray(np.tanh(rng.normal(size=(BATCH, LENGTH))), jnp.float32),
                          next_obs=jnp.asarray(frames[:, 1:]), done=jnp.asarray(done),
                          mask=jnp.ones((BATCH, LENGTH), bool), length=jnp.int32(LENGTH),
                          index=jnp.zeros((BATCH, LENGTH), jnp.int32))
    return config, nets, trainers, params, sequences


class NumpyAdam:
    """torch.optim.Adam's update (lr, betas 0.9 / 0.999, eps 1e-8) on a pytree of numpy arrays."""

    def __init__(self, params, lr):
        self.lr, self.t = lr, 0
        self.m = jax.tree.map(lambda p: np.zeros_like(np.asarray(p, np.float64)), params)
        self.v = jax.tree.map(lambda p: np.zeros_like(np.asarray(p, np.float64)), params)

    def step(self, params, grads):
        self.t += 1
        grads = jax.tree.map(lambda g: np.asarray(g, np.float64), grads)
        self.m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, self.m, grads)
        self.v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, self.v, grads)
        correction1, correction2 = 1 - 0.9 ** self.t, 1 - 0.999 ** self.t
        return jax.tree.map(lambda p, m, v: np.asarray(p, np.float64) - self.lr * (m / correction1) / (
            np.sqrt(v / correction2) + 1e-8), params, self.m, self.v)


def assert_trees_close(actual, expected, rtol=2e-4, atol=2e-6):
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(actual), jax.tree.leaves(expected)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol,
                                   err_msg=jax.tree_util.keystr(path))


def test_transition_and_terminal_trainer_matches_the_published_window_loop():
    config, (_, encoder, transition, terminal, _), trainers, params, seqs = setup()
    hp = psdrl.hyperparams_from_config(config)
    opt_states = {name: trainers.optimizers(hp)[name].init(params[name]) for name in ("transition", "terminal")}
    new_params, _, trans_loss, term_loss = jax.jit(trainers.transition)(params, opt_states, seqs, hp)

    # The reference: training/transition.py's loop for one sampled batch.
    s = np.asarray(encoder.apply(params["autoencoder"], unit_float(seqs.obs)))
    s1 = np.asarray(encoder.apply(params["autoencoder"], unit_float(seqs.next_obs)))
    y = np.concatenate([s1, np.asarray(seqs.reward)[..., None]], axis=-1)
    a, done = np.asarray(seqs.action), np.asarray(seqs.done, np.float32)
    trans_p, term_p = params["transition"], params["terminal"]
    adam_trans, adam_term = NumpyAdam(trans_p, 1e-2), NumpyAdam(term_p, 1e-2)
    h = np.zeros((BATCH, config["gru_dim"]), np.float32)  # h = 0 at the sequence start (Q10)
    window_steps, window_idx, losses = [], 0, []
    for idx in range(LENGTH):
        window_steps.append(idx)
        if window_idx == config["window_length"] or idx == LENGTH - 1:
            def window_loss(trans_p, term_p, h=h, steps=tuple(window_steps)):
                hidden, trans_sum, term_sum = h, 0.0, 0.0
                for j in steps:
                    hidden, _, prediction = transition.apply(trans_p, s[:, j], a[:, j], hidden)
                    trans_sum = trans_sum + jnp.mean((y[:, j] - prediction) ** 2)  # over B x (E + 1)
                    term_sum = term_sum + jnp.mean((done[:, j] - terminal.apply(term_p, s1[:, j])) ** 2)
                count = len(steps)  # `net.loss /= window_idx + 1`
                return trans_sum / count + term_sum / count, (hidden, trans_sum / count, term_sum / count)

            (_, (hidden, t_loss, d_loss)), (g_trans, g_term) = jax.value_and_grad(
                window_loss, argnums=(0, 1), has_aux=True)(trans_p, term_p)
            trans_p, term_p = adam_trans.step(trans_p, g_trans), adam_term.step(term_p, g_term)
            trans_p, term_p = jax.tree.map(jnp.float32, trans_p), jax.tree.map(jnp.float32, term_p)
            h = np.asarray(hidden)  # detached into the next window
            losses.append((float(t_loss), float(d_loss)))
            window_steps, window_idx = [], 0
        else:
            window_idx += 1
    assert len(losses) == 2  # windows of 5 and 2 steps
    assert_trees_close(new_params["transition"], trans_p)
    assert_trees_close(new_params["terminal"], term_p)
    np.testing.assert_allclose([float(trans_loss), float(term_loss)], losses[-1], rtol=1e-4)


def test_value_trainer_matches_the_published_sequence_loop():
    config, (_, encoder, transition, terminal, value), trainers, params, seqs = setup(seed=1)
    hp = psdrl.hyperparams_from_config(config)
    embed, gamma = config["embed_dim"], config["discount"]
    features = config["transition_hidden_dim"] + config["gru_dim"]
    weights = 0.3 * jax.random.normal(jax.random.PRNGKey(5), (embed + 1, features))
    s = np.asarray(encoder.apply(params["autoencoder"], unit_float(seqs.obs)))  # (B, T, E)
    a = np.asarray(seqs.action)

    def simulate(value_params, state, hidden):
        """model.predict for every action, then q = r + gamma V(s', h') 1(terminal < 0.5): (q (B, A), h' (B, A, G),
        terminal (B, A))."""
        q, next_hiddens, terminals = [], [], []
        for action in range(NUM_ACTIONS):
            h1, phi, _ = transition.apply(params["transition"], state, np.full(BATCH, action), hidden)
            prediction = phi @ weights.T  # the sampled W replaces the trained last layer; no bias
            next_state, reward = prediction[:, :embed], prediction[:, embed]
            tau = terminal.apply(params["terminal"], next_state)
            q.append(reward + gamma * value.apply(value_params, next_state, h1) * (tau < 0.5))
            next_hiddens.append(h1)
            terminals.append(tau)
        return jnp.stack(q, 1), jnp.stack(next_hiddens, 1), jnp.stack(terminals, 1)

    # Shift the terminal net's output so that about half of the imagined next states count as terminal: the
    # masking is then exercised on both sides.
    _, _, taus = simulate(params["value"], s[:, 0], np.zeros((BATCH, config["gru_dim"]), np.float32))
    out_bias = [k for k in params["terminal"] if k.endswith("out")][0]
    params["terminal"][out_bias]["b"] = params["terminal"][out_bias]["b"] + 0.5 - float(np.median(taus))
    _, _, taus = simulate(params["value"], s[:, 0], np.zeros((BATCH, config["gru_dim"]), np.float32))
    assert 0 < int(np.sum(np.asarray(taus) >= 0.5)) < taus.size

    opt_state = trainers.optimizers(hp)["value"].init(params["value"])
    new_value, new_target, _, loss = jax.jit(trainers.value)(params, params["value"], params["value"], opt_state,
                                                             weights, seqs, None, hp)

    # The reference: training/policy.py's loop for one sampled batch.
    value_p, target_p = params["value"], None
    adam = NumpyAdam(value_p, 1e-2)
    h = np.zeros((BATCH, config["gru_dim"]), np.float32)
    copies = []
    for idx in range(LENGTH):
        if idx % config["target_update_freq"] == 0:
            target_p, copies = value_p, copies + [idx]
        q, next_hiddens, _ = simulate(target_p, s[:, idx], h)
        targets = np.max(np.asarray(q), axis=1)
        loss_fn = lambda p, idx=idx, h=h, targets=targets: jnp.mean(  # noqa: E731
            (value.apply(p, s[:, idx], h) - targets) ** 2)
        reference_loss, grads = jax.value_and_grad(loss_fn)(value_p)
        value_p = jax.tree.map(jnp.float32, adam.step(value_p, grads))
        h = np.asarray(next_hiddens)[np.arange(BATCH), a[:, idx]]  # the hidden state of the data's action
    assert copies == [0, 4]
    assert_trees_close(new_value, value_p)
    assert_trees_close(new_target, target_p)  # the copy made at step 4
    np.testing.assert_allclose(float(loss), float(reference_loss), rtol=1e-4)
