"""The paper code's AdamW, built from optax pieces.

Update at step i (from 0): m = (1-b1) g + b1 m; v = (1-b2) g^2 + b2 v; m_hat = m/(1-b1^(i+1));
v_hat = v/(1-b2^(i+1)); x <- x - alpha * m_hat/(sqrt(v_hat)+eps) - wd * x.
The decay is NOT scaled by alpha and applies to biases too (quirk Q7); the tuned step sizes assume it.
`decay_scaled_by_learning_rate=True` gives the usual decoupled AdamW, x <- x - alpha*(adam + wd*x).
"""
import optax


def adamw(learning_rate, b1, b2, eps, weight_decay, decay_scaled_by_learning_rate: bool = False) -> optax.GradientTransformation:
    """All arguments may be traced scalars, so one compiled program serves a grid of step sizes."""
    if decay_scaled_by_learning_rate:
        return optax.chain(optax.scale_by_adam(b1=b1, b2=b2, eps=eps), optax.add_decayed_weights(weight_decay),
                           optax.scale(-learning_rate))
    # add_decayed_weights after the scaling, with a negative rate: u = -alpha * adam - wd * x.
    return optax.chain(optax.scale_by_adam(b1=b1, b2=b2, eps=eps), optax.scale(-learning_rate),
                       optax.add_decayed_weights(-weight_decay))
