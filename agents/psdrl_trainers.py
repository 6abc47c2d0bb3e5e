"""PSDRL's three trainers (Sasso et al. 2023, Eqs. 1-3 and 5; the published training/representation.py,
training/transition.py and training/policy.py), as pure functions over parameters, Adam states and a batch of
replay sequences. Masked (padding) steps leave parameters and Adam states exactly as they were.

- autoencoder: one Adam step per sequence on the pixel MSE of its frames.
- transition: the transition and terminal nets by truncated backpropagation through time, in windows of
  window_length + 1 steps from h = 0 at the sequence start (Q10, Q15): per window the summed MSEs divided by the
  window's steps, one Adam step for each net, h carried into the next window with its gradient stopped.
- value: fitted Bellman iteration on real replay states with one step through the sampled model, the target
  network copied every target_update_freq steps of the sequence, h following the action taken in the data.

tests/test_psdrl_reference.py checks one window of each against a step-by-step re-implementation of the published
loops.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from agents.components.networks import unit_float


class Trainers(NamedTuple):
    optimizers: Callable  # hp -> {network name: optax optimizer}
    keep_if: Callable  # (active, new, old) -> new where active, else old (leaf by leaf)
    autoencoder: Callable  # (params, opt_state, sequences, hp) -> (params, opt_state, last loss)
    transition: Callable  # (params, opt_states, sequences, hp) -> (params, opt_states, transition loss, terminal loss)
    value_targets: Callable  # (params, target_params, weights, latent, hidden, discount, outcomes) -> (y, next hiddens)
    value: Callable  # (params, value_params, target_params, opt_state, weights, sequences, outcomes, hp) -> (...)


def make_trainers(config, autoencoder, encoder, transition, terminal, value, action_values) -> Trainers:
    """The networks are psdrl.networks' transforms; action_values is psdrl.lookahead's."""
    embed, gru = config["embed_dim"], config["gru_dim"]
    batch, sequence, window = config["batch_size"], config["sequence_length"], config["window_length"] + 1

    def adam(learning_rate):
        return optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8)

    def optimizers(hp):
        return {"autoencoder": adam(hp.representation_learning_rate), "transition": adam(hp.transition_learning_rate),
                "terminal": adam(hp.terminal_learning_rate), "value": adam(hp.value_learning_rate)}

    def keep_if(active, new, old):
        return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, old)

    def train_autoencoder(params, opt_state, sequences, hp):
        """One Adam step per sequence on its frames' pixel MSE (masked mean over the T_eff real steps)."""
        optimizer = optimizers(hp)["autoencoder"]

        def step(carry, item):
            params, opt_state = carry
            frames, mask = item

            def loss(p):
                error = (autoencoder.apply(p, frames) - frames) ** 2
                per_frame = jnp.mean(error, axis=(1, 2, 3))
                return jnp.sum(per_frame * mask) / jnp.maximum(jnp.sum(mask), 1)

            value_, grads = jax.value_and_grad(loss)(params)
            updates, new_opt = optimizer.update(grads, opt_state, params)
            new = (optax.apply_updates(params, updates), new_opt)
            return keep_if(jnp.any(mask), new, (params, opt_state)), value_

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state),
                                                   (unit_float(sequences.obs), sequences.mask))
        return params, opt_state, losses[-1]

    def train_transition(params, opt_states, sequences, hp):
        """Truncated BPTT in windows of window_length + 1 steps from h = 0 (Q10, Q15): per window the summed
        transition and terminal MSEs / the window's real steps, one Adam step each, h carried detached."""
        opts = optimizers(hp)
        latent = jax.lax.stop_gradient(encoder.apply(params["autoencoder"], unit_float(sequences.obs)))
        next_latent = jax.lax.stop_gradient(encoder.apply(params["autoencoder"], unit_float(sequences.next_obs)))
        targets = jnp.concatenate([next_latent, sequences.reward[..., None]], axis=-1)
        output_weights = jnp.ones(embed + 1).at[embed].set(hp.reward_loss_weight)
        num_windows = -(-sequence // window)
        pad = num_windows * window - sequence

        def windows(x):  # (B, T, ...) -> (windows, window, B, ...)
            x = jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2))
            return jnp.moveaxis(x.reshape((batch, num_windows, window) + x.shape[2:]), 0, 2)

        def window_step(carry, item):
            trans_params, term_params, trans_opt, term_opt, hidden = carry
            s, a, y, s1, done, mask = item

            def loss(trans_params, term_params):
                def step(h, inputs):
                    s, a, y, s1, done, m = inputs
                    h, _, prediction = transition.apply(trans_params, s, a, h)
                    trans = jnp.mean((prediction - y) ** 2 * output_weights, axis=-1)
                    term = (terminal.apply(term_params, s1) - done.astype(jnp.float32)) ** 2
                    return h, (trans * m, term * m)

                h, (trans, term) = jax.lax.scan(step, hidden, (s, a, y, s1, done, mask))
                count = jnp.maximum(jnp.sum(mask[:, 0]), 1)  # real steps in the window (the same for every sequence)
                return jnp.sum(jnp.mean(trans, axis=1)) / count + jnp.sum(jnp.mean(term, axis=1)) / count, (h, trans,
                                                                                                           term, count)

            (_, (h, trans, term, count)), (g_trans, g_term) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
                trans_params, term_params)
            u, new_trans_opt = opts["transition"].update(g_trans, trans_opt, trans_params)
            v, new_term_opt = opts["terminal"].update(g_term, term_opt, term_params)
            new = (optax.apply_updates(trans_params, u), optax.apply_updates(term_params, v), new_trans_opt, new_term_opt)
            active = jnp.any(mask)
            trans_params, term_params, trans_opt, term_opt = keep_if(active, new, (trans_params, term_params,
                                                                                   trans_opt, term_opt))
            losses = (jnp.sum(jnp.mean(trans, axis=1)) / count, jnp.sum(jnp.mean(term, axis=1)) / count)
            return (trans_params, term_params, trans_opt, term_opt, jax.lax.stop_gradient(h)), (losses, active)

        carry = (params["transition"], params["terminal"], opt_states["transition"], opt_states["terminal"],
                 jnp.zeros((batch, gru)))
        items = tuple(windows(x) for x in (latent, sequences.action, targets, next_latent, sequences.done,
                                           sequences.mask))
        (trans_params, term_params, trans_opt, term_opt, _), ((trans_loss, term_loss), active) = jax.lax.scan(
            window_step, carry, items)
        last = jnp.maximum(jnp.sum(active) - 1, 0)
        params = {**params, "transition": trans_params, "terminal": term_params}
        return params, {**opt_states, "transition": trans_opt, "terminal": term_opt}, trans_loss[last], term_loss[last]

    def value_targets(params, target_params, weights, latent, hidden, discount, outcomes=None):
        """y = max_a [r_a + gamma V_target(s'_a, h'_a) 1(terminal_a < threshold)] per sequence, and the h'_a."""
        q, next_hidden = jax.vmap(action_values, in_axes=(None, None, None, 0, 0, None, 0))(
            params, target_params, weights, latent, hidden, discount, outcomes)
        return jnp.max(q, axis=-1), next_hidden

    def train_value(params, value_params, target_params, opt_state, weights, sequences, outcomes, hp):
        """Fitted Bellman iteration on real replay states with one imagined step (Eq. 5): the target copied every
        target_update_freq steps of the sequence; h follows the action taken in the data. outcomes (B, T, A, 2):
        the steps' true outcomes (oracle_lookahead), else None."""
        optimizer = optimizers(hp)["value"]
        latent = encoder.apply(params["autoencoder"], unit_float(sequences.obs))  # (B, T, E)

        def step(carry, item):
            value_params, target_params, opt_state, hidden = carry
            index, s, a, mask, outcome = item
            target_params = keep_if(index % config["target_update_freq"] == 0, value_params, target_params)
            y, next_hidden = value_targets(params, target_params, weights, s, hidden, hp.discount, outcome)

            def loss(p):
                return jnp.mean((value.apply(p, s, hidden) - jax.lax.stop_gradient(y)) ** 2)

            loss_value, grads = jax.value_and_grad(loss)(value_params)
            updates, new_opt = optimizer.update(grads, opt_state, value_params)
            new = (optax.apply_updates(value_params, updates), new_opt)
            value_params, opt_state = keep_if(mask, new, (value_params, opt_state))
            hidden = jnp.take_along_axis(next_hidden, a[:, None, None], axis=1)[:, 0]
            return (value_params, target_params, opt_state, hidden), loss_value

        items = (jnp.arange(sequence), jnp.moveaxis(latent, 1, 0), sequences.action.T, sequences.mask[0],
                 None if outcomes is None else jnp.moveaxis(outcomes, 1, 0))
        (value_params, target_params, opt_state, _), losses = jax.lax.scan(
            step, (value_params, target_params, opt_state, jnp.zeros((batch, gru))), items)
        return value_params, target_params, opt_state, losses[jnp.maximum(sequences.length - 1, 0)]

    return Trainers(optimizers=optimizers, keep_if=keep_if, autoencoder=train_autoencoder,
                    transition=train_transition, value_targets=value_targets, value=train_value)
