"""Network distillation for intrinsic motivation (the RND/SND author's code): the target and predictor networks, the
intrinsic rewards of RND and SND, the predictor's masked loss, SND's contrastive target loss with its pair
sampling and augmentations, and the feature ring buffer of "SND + entropy".

Every function works on one run's batch; the agent (agents/ppo.py) decides when each is called.
"""
import haiku as hk
import jax
import jax.numpy as jnp

from agents.components.linalg import Orthogonal, orthogonal
from agents.components.networks import SlicedConv2D, elu

SQRT2 = 2.0 ** 0.5


def conv_stack(x, channels, strides, activation, gain=SQRT2):
    """3x3 convolutions with PyTorch's symmetric padding 1 (XLA's SAME pads (0, 1) on stride 2), zero bias,
    orthogonal weights of `gain`, each followed by `activation`; flattened. Computed as slices and a matmul
    (networks.SlicedConv2D): these run inside the update's minibatch loop, where XLA:CPU's convolutions crawl."""
    for width, stride in zip(channels, strides):
        x = activation(SlicedConv2D(width, 3, stride, 1, w_init=Orthogonal(gain))(x))
    return x.reshape(x.shape[:-3] + (-1,)) if x.ndim >= 3 else x


def linear(width, gain):
    return hk.Linear(width, w_init=Orthogonal(gain), b_init=jnp.zeros)


def distillation_networks(channels, strides, features: int = 512, images: bool = True):
    """(target, predictor) as haiku transforms of the distillation input (B, H, W, C): ELU conv stacks, then
    target: Linear(features); predictor: Linear 512 ELU, Linear 512 ELU, Linear(features) (the RND/SND author's code, the
    author's model B convs by default). Without `images` the input (B, ...) is flattened and the convs skipped
    (DeepSea's one-hot board)."""
    def torso(x):
        return conv_stack(x, channels, strides, elu) if images else x.reshape(x.shape[0], -1)

    def target(x):
        return linear(features, SQRT2)(torso(x))

    def predictor(x):
        h = elu(linear(512, SQRT2)(torso(x)))
        h = elu(linear(512, SQRT2)(h))
        return linear(features, SQRT2)(h)

    return hk.without_apply_rng(hk.transform(target)), hk.without_apply_rng(hk.transform(predictor))


def coupled_init(key, target: dict, predictor: dict, gain: float = SQRT2):
    """The "coupled orthogonal init" of the RND/SND author's RND baseline (models/ppo_rnd_1_*/src/model_rnd.py in
    michalnand/reinforcement_learning): every layer the two networks share (same name and weight shape: the convs
    and, at 512 features, the first linear layer) gets the two halves, along the output axis, of ONE orthogonal
    weight with twice the outputs (the predictor the first half, the target the second), so the predictor's rows
    are orthogonal to the target's where 2 x outputs <= inputs. Layers of the predictor alone keep their own
    orthogonal init; biases stay zero. Returns (target, predictor)."""
    target, predictor = dict(target), dict(predictor)
    shared = [name for name in target if name in predictor and target[name]["w"].shape == predictor[name]["w"].shape]
    for name, layer_key in zip(shared, jax.random.split(key, max(len(shared), 1))):
        w = target[name]["w"]
        outputs = w.shape[-1]
        both = orthogonal(layer_key, w.shape[:-1] + (2 * outputs,), w.dtype, gain)
        predictor[name] = {**predictor[name], "w": both[..., :outputs]}
        target[name] = {**target[name], "w": both[..., outputs:]}
    return target, predictor


# --- intrinsic rewards ---------------------------------------------------------------------------------------
def rnd_reward(target_features, predicted_features):
    """The RND author's bonus before clipping: sum_j (phi_T - phi_P)_j^2 / 2 (the README omits the square; the
    code squares)."""
    return jnp.sum((target_features - predicted_features) ** 2, axis=-1) / 2.0


def snd_reward(target_features, predicted_features, coefficient):
    """SND's bonus before clipping: k * mean_j (phi_T - phi_P)_j^2."""
    return coefficient * jnp.mean((target_features - predicted_features) ** 2, axis=-1)


# --- the predictor's loss ------------------------------------------------------------------------------------
def masked_distillation_loss(key, target_features, predicted_features, keep_prob, mode: str):
    """(loss, kept fraction): the squared error (B, F) to the stop-gradient target, averaged over the entries a
    Bernoulli(keep_prob) mask keeps, per element (the author's) or per sample (the RND paper's):
    sum(M E) / (sum(M) + 1e-8)."""
    errors = (jax.lax.stop_gradient(target_features) - predicted_features) ** 2
    shape = errors.shape if mode == "element" else errors.shape[:-1] + (1,)
    mask = jax.random.bernoulli(key, keep_prob, shape).astype(jnp.float32)
    mask = jnp.broadcast_to(mask, errors.shape)
    return jnp.sum(mask * errors) / (jnp.sum(mask) + 1e-8), jnp.mean(mask)


# --- SND's target training -----------------------------------------------------------------------------------
def sample_pairs(key, num_states: int, num_pairs: int):
    """(anchors, partners, labels): anchors uniform; label 1 ("different") with probability 1/2 takes another
    uniform index as partner (not checked to differ), label 0 ("close") the anchor itself."""
    anchor_key, partner_key, label_key = jax.random.split(key, 3)
    anchors = jax.random.randint(anchor_key, (num_pairs,), 0, num_states)
    labels = jax.random.bernoulli(label_key, 0.5, (num_pairs,))
    partners = jnp.where(labels, jax.random.randint(partner_key, (num_pairs,), 0, num_states), anchors)
    return anchors, partners, labels.astype(jnp.float32)


def contrastive_loss(za, zb, labels, l2_coefficient: float = 0.0, hinge: float = 0.0):
    """(loss, diagnostics): d = mean_j (za - zb)_j^2 per pair, L = mean (y - d)^2, plus, where hinge > 0, the
    Jan-2023 code's hinge on the feature magnitude relu(mean za^2 + mean zb^2 - hinge) and, optionally,
    lambda (mean za^2 + mean zb^2)."""
    distance = jnp.mean((za - zb) ** 2, axis=-1)
    magnitude = jnp.mean(za ** 2) + jnp.mean(zb ** 2)
    loss = jnp.mean((labels - distance) ** 2) + l2_coefficient * magnitude
    if hinge > 0:
        loss = loss + jax.nn.relu(magnitude - hinge)
    close, far = labels < 0.5, labels >= 0.5
    diagnostics = {
        "contrastive_loss": loss,
        "pair_accuracy": jnp.mean(jnp.where(far, distance > 0.5, distance <= 0.5)),
        "distance_close": jnp.sum(jnp.where(close, distance, 0.0)) / jnp.maximum(jnp.sum(close), 1),
        "distance_far": jnp.sum(jnp.where(far, distance, 0.0)) / jnp.maximum(jnp.sum(far), 1),
        "feature_magnitude": magnitude / 2.0,
    }
    return loss, diagnostics


def tile_sizes(height: int, width: int):
    """The CND tile sizes {1, 2, 4, 8, 12, 16} (for 96 px) that divide both image sides."""
    return tuple(s for s in (1, 2, 4, 8, 12, 16) if height % s == 0 and width % s == 0)


def tile_dropout(key, images, drop_prob: float = 0.1):
    """Zero tiles of one size drawn per batch (the same mask over channels), each tile with probability
    drop_prob. images (B, H, W, C)."""
    batch, height, width, _ = images.shape
    size_key, mask_key = jax.random.split(key)
    sizes = tile_sizes(height, width)

    def mask_of(size):
        keep = jax.random.bernoulli(mask_key, 1.0 - drop_prob, (batch, height // size, width // size, 1))
        return jnp.repeat(jnp.repeat(keep, size, axis=1), size, axis=2)

    index = jax.random.randint(size_key, (), 0, len(sizes))
    keep = jax.lax.switch(index, [lambda s=s: mask_of(s) for s in sizes])
    return images * keep


def pixelate(images, factor: int):
    if images.ndim != 4:
        return images
    batch, height, width, channels = images.shape
    if height % factor or width % factor:
        return images
    pooled = images.reshape(batch, height // factor, factor, width // factor, factor, channels).mean(axis=(2, 4))
    return jnp.repeat(jnp.repeat(pooled, factor, axis=1), factor, axis=2)


def random_apply(key, probability, images, augmented):
    """Per sample, the augmented image with the given probability."""
    chosen = jax.random.bernoulli(key, probability, (images.shape[0],) + (1,) * (images.ndim - 1))
    return jnp.where(chosen, augmented, images)


AUGMENTATIONS = ("cnd_2023", "cnd_2022_10", "snd_2022")


def augment(key, images, recipe: str):
    """The author's augmentation recipes (the RND/SND author's code) on (B, H, W, C) float images (other inputs (B, ...): tile
    dropout becomes dropout of single entries, pixelation is skipped):
    cnd_2023: tile dropout (q 0.5), uniform noise +-0.2 (q 0.5); cnd_2022_10: tile dropout (q 0.5), noise always;
    snd_2022: pixelate 2 (q 0.5), pixelate 4 (q 0.25), pixel dropout 0.1 (q 0.125), noise always."""
    keys = jax.random.split(key, 8)
    noise = jax.random.uniform(keys[0], images.shape, minval=-0.2, maxval=0.2)
    if recipe in ("cnd_2023", "cnd_2022_10"):
        dropped = (tile_dropout(keys[2], images) if images.ndim == 4 else  # not an image: drop single entries
                   images * jax.random.bernoulli(keys[2], 0.9, images.shape))
        images = random_apply(keys[1], 0.5, images, dropped)
        return images + noise if recipe == "cnd_2022_10" else random_apply(keys[3], 0.5, images, images + noise)
    images = random_apply(keys[1], 0.5, images, pixelate(images, 2))
    images = random_apply(keys[2], 0.25, images, pixelate(images, 4))
    dropped = images * jax.random.bernoulli(keys[3], 0.9, images.shape)
    images = random_apply(keys[4], 0.125, images, dropped)
    return images + noise


# --- SND + entropy: the episodic feature buffer ---------------------------------------------------------------
def feature_buffer_reward(buffer, features, index, started, coefficient):
    """Push each environment's feature vector into its ring buffer (N, K, F) at the shared write index; an
    environment whose episode just started refills its buffer with copies of it. Returns (buffer, reward):
    reward = clip(k * mean over features of the std over the K entries, 0, 1) and its unclipped value."""
    refill = jnp.broadcast_to(features[:, None, :], buffer.shape)
    buffer = jnp.where(started[:, None, None], refill, buffer.at[:, index].set(features))
    raw = coefficient * jnp.mean(jnp.std(buffer, axis=1), axis=-1)
    return buffer, raw
