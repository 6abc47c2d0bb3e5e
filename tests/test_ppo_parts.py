"""PPO's and the distillation's parts on fixed inputs (the RND/SND author's code): GAE for two streams against a numpy
reference (episodic and not, bootstrapped and the author's zero last step), the clipped objective and value
loss, orthogonal initialisation gains, the masked predictor loss's kept fraction, the author's running mean,
SND's contrastive loss on hand-made pairs, its pair sampling and augmentations, the entropy buffer; DeepSea's
transitions, cells and treasure by hand, vector inputs to the distillation, and every shipped config's shapes."""
import os

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import ppo
from agents.components import distillation as distill
from agents.components.advantages import RunningMean, RunningMoments, gae
from experiment import config as config_lib


def numpy_gae(rewards, values, dones, last_value, gamma, lam, episodic, bootstrap_last):
    steps, envs = rewards.shape
    advantages, returns = np.zeros((steps, envs)), np.zeros((steps, envs))
    for n in range(envs):
        following = 0.0
        last = steps - 1 if bootstrap_last else steps - 2
        for t in range(last, -1, -1):
            cont = 1.0 - dones[t, n] if episodic else 1.0
            next_value = last_value[n] if t == steps - 1 else values[t + 1, n]
            delta = rewards[t, n] + gamma * next_value * cont - values[t, n]
            following = delta + gamma * lam * cont * following
            advantages[t, n] = following
            returns[t, n] = following + values[t, n]
    return advantages, returns


@pytest.mark.parametrize("episodic", [True, False])
@pytest.mark.parametrize("bootstrap_last", [True, False])
def test_gae_matches_numpy_for_each_stream(episodic, bootstrap_last):
    rng = np.random.default_rng(0)
    steps, envs = 9, 3
    dones = rng.random((steps, envs)) < 0.25
    for gamma in (0.998, 0.99):  # the extrinsic and intrinsic streams' discounts
        rewards, values = rng.normal(size=(steps, envs)), rng.normal(size=(steps, envs))
        last_value = rng.normal(size=envs)
        got = gae(jnp.asarray(rewards, jnp.float32), jnp.asarray(values, jnp.float32), jnp.asarray(dones),
                  jnp.asarray(last_value, jnp.float32), gamma, 0.95, episodic, bootstrap_last)
        want = numpy_gae(rewards, values, dones, last_value, gamma, 0.95, episodic, bootstrap_last)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-5)
    if not bootstrap_last:  # the author's quirk: the last step has advantage and return 0
        assert np.all(np.asarray(got[0])[-1] == 0) and np.all(np.asarray(got[1])[-1] == 0)


def test_gae_by_hand():
    """Two steps, one env, gamma 0.5, lambda 1, episode ends at step 0: A_1 = 1 + 0.5 * 4 - 2 = 1;
    A_0 = 3 - 1 (no bootstrap across the end) = 2."""
    advantages, returns = gae(jnp.array([[3.0], [1.0]]), jnp.array([[1.0], [2.0]]), jnp.array([[True], [False]]),
                              jnp.array([4.0]), 0.5, 1.0)
    np.testing.assert_allclose(np.asarray(advantages)[:, 0], [2.0, 1.0])
    np.testing.assert_allclose(np.asarray(returns)[:, 0], [3.0, 3.0])


def tiny_config(**changes):
    base = {"environment": "CartPole-v1", "env_config": {}, "num_seeds": 1, "num_steps": 64, "eval_frequency": 64,
            "training_start_time": 0, "network": "mlp", "num_envs": 2, "rollout_length": 32, "num_minibatches": 2}
    return config_lib.validate("PPO", {**base, **changes})


def test_clipped_objective_and_value_loss_on_fixed_inputs():
    """The loss the agent builds, against the formulas written out in numpy for a hand-set network output."""
    config = tiny_config()
    net = ppo.policy_network(config, 2, 2)
    obs = jnp.asarray(np.random.default_rng(1).normal(size=(6, 4)), jnp.float32)
    net_params = net.init(jax.random.PRNGKey(0), obs)
    logits, values = (np.asarray(x, np.float64) for x in net.apply(net_params, obs))
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    actions = np.array([0, 1, 1, 0, 1, 0])
    old = log_probs[np.arange(6), actions] + np.array([0.3, -0.3, 0.05, -0.05, 0.0, 0.2])
    advantage = np.array([1.0, -2.0, 0.5, 1.5, -1.0, 2.0])
    returns = np.random.default_rng(2).normal(size=(6, 2))
    ratio = np.exp(log_probs[np.arange(6), actions] - old)
    policy = -np.mean(np.minimum(ratio * advantage, np.clip(ratio, 0.9, 1.1) * advantage))
    entropy = -np.mean(np.sum(np.exp(log_probs) * log_probs, axis=1))
    value = np.mean((returns - values) ** 2, axis=0)
    hp = ppo.hyperparams_from_config(config).replace(clip_epsilon=0.1, entropy_coeff=0.01, critic_coeff=0.5)
    batch = {"obs": obs, "action": jnp.asarray(actions), "log_prob": jnp.asarray(old, jnp.float32),
             "advantage": jnp.asarray(advantage, jnp.float32), "returns": jnp.asarray(returns, jnp.float32)}
    loss, metrics = ppo.ppo_loss(net.apply, net_params, batch, hp)
    np.testing.assert_allclose(float(metrics["policy_loss"]), policy, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["entropy"]), entropy, rtol=1e-5)
    np.testing.assert_allclose([metrics["value_loss_ext"], metrics["value_loss_int"]], value, rtol=1e-5)
    np.testing.assert_allclose(float(loss), policy - 0.01 * entropy + 0.5 * value.sum(), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["clip_fraction"]), np.mean(np.abs(ratio - 1) > 0.1))
    # PureJaxRL's value clipping: rollout values beyond the prediction, away from the return, by more than
    # clip_epsilon (0.1) in some samples (their clipped prediction errs more) and by less in others (no change)
    rollout_values = values + np.sign(values - returns) * np.array([[0.5, 0.02], [0.3, 0.0], [0.05, 0.4],
                                                                     [0.5, 0.08], [0.2, 0.2], [0.0, 0.6]])
    clipped_values = rollout_values + np.clip(values - rollout_values, -0.1, 0.1)
    clipped_value = np.mean(np.maximum((returns - values) ** 2, (returns - clipped_values) ** 2), axis=0)
    assert np.all(clipped_value > value)  # the cases above change both streams' losses
    batch["values"] = jnp.asarray(rollout_values, jnp.float32)
    loss, metrics = ppo.ppo_loss(net.apply, net_params, batch, hp, value_clip=True)
    np.testing.assert_allclose([metrics["value_loss_ext"], metrics["value_loss_int"]], clipped_value, rtol=1e-5)
    np.testing.assert_allclose(float(loss), policy - 0.01 * entropy + 0.5 * clipped_value.sum(), rtol=1e-5)


def test_orthogonal_gains_of_model_c():
    """Each layer's weight matrix (flattened to (fan_in, fan_out)) has orthonormal columns (fan_out <= fan_in)
    scaled by the author's gain: sqrt 2 for the torso, 0.01 for the actor, 0.1 for the critic's hidden layer, 0.01
    for the value heads; biases zero."""
    config = {**tiny_config(), "network": "conv", "conv_channels": [8, 16], "conv_strides": [2, 1],
              "hidden_width": 32}
    net = ppo.policy_network(config, 5, 2)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 2), jnp.uint8))
    gains = {"sliced_conv2_d": np.sqrt(2), "sliced_conv2_d_1": np.sqrt(2), "linear": np.sqrt(2), "linear_1": 0.01,
             "linear_2": 0.01, "linear_3": 0.1, "linear_4": 0.01, "linear_5": 0.01}
    assert set(params) == set(gains)
    for name, gain in gains.items():
        w = np.asarray(params[name]["w"]).reshape(-1, params[name]["w"].shape[-1])
        rows, cols = w.shape
        gram = (w.T @ w) if cols <= rows else (w @ w.T)
        np.testing.assert_allclose(gram, gain ** 2 * np.eye(min(rows, cols)), atol=1e-5 * max(1, gain ** 2))
        assert np.all(np.asarray(params[name]["b"]) == 0)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_mlp_network_is_two_separate_mlps_with_the_chosen_activation(activation):
    """PureJaxRL's pair: the observation flattened, actor and critic each two hidden layers of the activation, the
    logits and the value heads linear; checked against numpy on a random (bool, as MinAtar's) observation."""
    config = {**tiny_config(), "network": "mlp", "mlp_widths": [6, 5], "mlp_activation": activation}
    net = ppo.policy_network(config, 3, 2)
    obs = jax.random.bernoulli(jax.random.PRNGKey(1), 0.5, (4, 2, 3, 2))
    params = net.init(jax.random.PRNGKey(0), obs)
    logits, values = net.apply(params, obs)
    f = np.tanh if activation == "tanh" else (lambda v: np.maximum(v, 0.0))
    p = {name: (np.asarray(v["w"], np.float64), np.asarray(v["b"], np.float64)) for name, v in params.items()}
    layer = lambda h, name: h @ p[name][0] + p[name][1]  # noqa: E731
    x = np.asarray(obs, np.float64).reshape(4, -1)
    # haiku names the layers in call order: actor and critic interleave per width, then the value heads, the logits
    actor = f(layer(f(layer(x, "linear")), "linear_2"))
    critic = f(layer(f(layer(x, "linear_1")), "linear_3"))
    np.testing.assert_allclose(values, np.concatenate([layer(critic, "linear_4"), layer(critic, "linear_5")], -1),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, layer(actor, "linear_6"), rtol=1e-5, atol=1e-6)
    assert values.shape == (4, 2) and logits.shape == (4, 3)


@pytest.mark.parametrize("mode", ["element", "sample"])
def test_masked_predictor_loss_keeps_the_stated_fraction(mode):
    """Over a 512 x 512 error matrix the kept fraction is within 4 sigma of p (per element) or of p per sample
    with whole rows kept, and the loss is the mean error over the kept entries."""
    rng = np.random.default_rng(0)
    target = jnp.asarray(rng.normal(size=(512, 512)), jnp.float32)
    predicted = jnp.asarray(rng.normal(size=(512, 512)), jnp.float32)
    for p in (0.25, 1.0):
        loss, kept = distill.masked_distillation_loss(jax.random.PRNGKey(3), target, predicted, p, mode)
        count = 512 * 512 if mode == "element" else 512
        assert abs(float(kept) - p) <= 4 * np.sqrt(p * (1 - p) / count) + 1e-6
        errors = (np.asarray(target) - np.asarray(predicted)) ** 2
        shape = (512, 512) if mode == "element" else (512, 1)
        mask = np.broadcast_to(np.asarray(jax.random.bernoulli(jax.random.PRNGKey(3), p, shape), np.float32),
                               (512, 512))
        np.testing.assert_allclose(float(loss), (mask * errors).sum() / (mask.sum() + 1e-8), rtol=1e-5)
    # only the predictor gets a gradient
    grad = jax.grad(lambda t: distill.masked_distillation_loss(jax.random.PRNGKey(0), t, predicted, 0.5, mode)[0])(
        target)
    assert float(jnp.abs(grad).max()) == 0.0


def test_running_mean_is_the_average_of_batch_means_with_a_zero_pseudo_sample():
    stats = RunningMean.create((2,))
    batches = [np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[5.0, 6.0]]), np.array([[0.0, 0.0], [2.0, 2.0]])]
    for batch in batches:
        stats = stats.update(jnp.asarray(batch))
    means = [b.mean(0) for b in batches]
    np.testing.assert_allclose(stats.mean, (np.zeros(2) + sum(means)) / 4, rtol=1e-6)
    assert float(stats.count) == 4.0
    moments = RunningMoments.create()
    values = np.random.default_rng(0).normal(3.0, 2.0, size=(5, 40))
    for row in values:
        moments = moments.update(jnp.asarray(row, jnp.float32))
    np.testing.assert_allclose([moments.mean, moments.var], [values.mean(), values.var()], rtol=1e-3)


def test_contrastive_loss_on_hand_made_pairs():
    """Pair 1 close (y 0) at distance 0.04, pair 2 different (y 1) at distance 1.0, pair 3 different at 0.25:
    L = (0.04^2 + 0 + 0.75^2) / 3; accuracy 2/3; no hinge by default (cnd_21); the Jan-2023 hinge at 200 adds the
    excess above it."""
    za = jnp.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]])
    zb = jnp.array([[0.2, 0.2], [0.0, 0.0], [0.0, 0.0]])
    labels = jnp.array([0.0, 1.0, 1.0])
    loss, diagnostics = distill.contrastive_loss(za, zb, labels)
    np.testing.assert_allclose(float(loss), (0.04 ** 2 + 0.75 ** 2) / 3, rtol=1e-6)
    np.testing.assert_allclose(float(diagnostics["pair_accuracy"]), 2 / 3, rtol=1e-6)
    np.testing.assert_allclose(float(diagnostics["distance_close"]), 0.04, rtol=1e-6)
    np.testing.assert_allclose(float(diagnostics["distance_far"]), (1.0 + 0.25) / 2, rtol=1e-6)
    big = 20.0 * za
    magnitude = float(jnp.mean(big ** 2)) * 2
    assert magnitude > 200
    np.testing.assert_allclose(float(distill.contrastive_loss(big, big, labels)[0]), 2 / 3, rtol=1e-5)
    loss_big, _ = distill.contrastive_loss(big, big, labels, hinge=200.0)
    np.testing.assert_allclose(float(loss_big), 2 / 3 + magnitude - 200, rtol=1e-5)
    np.testing.assert_allclose(float(distill.contrastive_loss(za, zb, labels, hinge=200.0)[0]), float(loss))


def test_coupled_orthogonal_init_splits_one_weight_between_predictor_and_target():
    """The author's RND baseline: a layer both networks have (here the first linear, 1200 -> 512 on a flat input)
    is two halves of one orthogonal weight of gain sqrt 2: with 2 x 512 <= 1200 outputs its 1024 rows are
    orthonormal (times 2), so each network's rows are orthogonal to the other's; the predictor's own layers and the
    biases are untouched."""
    target_net, predictor_net = distill.distillation_networks([8], [1], 512, images=False)
    x = jnp.zeros((1, 1200))
    target, predictor = target_net.init(jax.random.PRNGKey(0), x), predictor_net.init(jax.random.PRNGKey(1), x)
    coupled_target, coupled_predictor = distill.coupled_init(jax.random.PRNGKey(2), target, predictor)
    assert set(coupled_target) == {"linear"} and set(coupled_predictor) == {"linear", "linear_1", "linear_2"}
    both = np.concatenate([np.asarray(coupled_predictor["linear"]["w"]), np.asarray(coupled_target["linear"]["w"])],
                          axis=1)  # (1200, 1024): the output axis last
    np.testing.assert_allclose(both.T @ both, 2.0 * np.eye(1024), atol=1e-4)
    assert not np.allclose(coupled_target["linear"]["w"], target["linear"]["w"])
    for name in ("linear_1", "linear_2"):
        np.testing.assert_array_equal(coupled_predictor[name]["w"], predictor[name]["w"])
    for params in (coupled_target, coupled_predictor):
        assert all(np.all(np.asarray(layer["b"]) == 0) for layer in params.values())


def test_pair_sampling_statistics():
    anchors, partners, labels = distill.sample_pairs(jax.random.PRNGKey(0), 1000, 20000)
    anchors, partners, labels = map(np.asarray, (anchors, partners, labels))
    assert abs(labels.mean() - 0.5) < 4 * np.sqrt(0.25 / 20000)
    assert np.all(partners[labels == 0] == anchors[labels == 0])
    assert np.mean(partners[labels == 1] == anchors[labels == 1]) < 0.01  # independent draws, 1/1000 equal
    assert anchors.min() >= 0 and anchors.max() < 1000


def test_augmentations_keep_shapes_and_tile_dropout_zeroes_whole_tiles():
    images = jnp.ones((64, 16, 16, 1))
    dropped = np.asarray(distill.tile_dropout(jax.random.PRNGKey(1), images))
    assert set(np.unique(dropped)) <= {0.0, 1.0} and 0.02 < 1 - dropped.mean() < 0.2  # about 10% zeroed
    assert distill.tile_sizes(16, 16) == (1, 2, 4, 8, 16) and distill.tile_sizes(96, 96) == (1, 2, 4, 8, 12, 16)
    pixelated = np.asarray(distill.pixelate(jnp.arange(16.0).reshape(1, 4, 4, 1), 2))[0, :, :, 0]
    np.testing.assert_allclose(pixelated[:2, :2], 2.5)  # mean of 0, 1, 4, 5
    for recipe in distill.AUGMENTATIONS:
        out = distill.augment(jax.random.PRNGKey(2), images, recipe)
        assert out.shape == images.shape and float(jnp.abs(out - images).max()) <= 1.2 + 1e-6


def test_entropy_buffer_reward_is_the_feature_spread_and_refills_at_episode_start():
    buffer = jnp.zeros((2, 4, 3))
    features = jnp.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    started = jnp.array([False, True])
    buffer, raw = distill.feature_buffer_reward(buffer, features, jnp.int32(0), started, 1.0)
    np.testing.assert_allclose(np.asarray(buffer)[1], np.tile([5.0, 5.0, 5.0], (4, 1)))  # refilled: spread 0
    assert float(raw[1]) == 0.0
    column = np.array([1.0, 0, 0, 0])  # env 0: one new vector among zeros
    expected = np.mean([np.std(column * v) for v in (1.0, 2.0, 3.0)])
    np.testing.assert_allclose(float(raw[0]), expected, rtol=1e-6)


def test_bonuses_by_hand():
    t, p = jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 0.0]])
    assert float(distill.rnd_reward(t, p)[0]) == pytest.approx(2.5)  # (1 + 4) / 2
    assert float(distill.snd_reward(t, p, 0.5)[0]) == pytest.approx(1.25)  # 0.5 * (1 + 4) / 2


@pytest.mark.parametrize("changes, message", [
    ({"eval_frequency": 96, "num_steps": 96}, "eval_frequency \\(96\\) must be a multiple of num_envs x rollout_length"),
    ({"num_minibatches": 5}, "num_minibatches \\(5\\) must divide num_envs x rollout_length \\(64\\)"),
    ({"network": "conv"}, "network conv reads \\(height, width, channels\\) images"),
    ({"distillation": "icm"}, "'distillation' must be one of none, rnd, snd, snd_entropy"),
    ({"conv_strides": [2]}, "conv_channels and conv_strides need one entry per conv layer"),
    ({"predictor_keep_prob": 0}, "'predictor_keep_prob' must be a number in \\(0, 1\\]"),
    ({"gamma_int": 1.5}, "'gamma_int' must be a number in \\[0, 1\\]"),
])
def test_bad_configs_are_refused_naming_the_key(changes, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        tiny_config(**changes)


@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (3, 1, 1), (4, 2, 0), (5, 3, 2)])
def test_sliced_convolution_equals_xla_convolution(kernel, stride, padding):
    from agents.components.networks import SlicedConv2D
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 11, 12, 4))
    sliced = hk.without_apply_rng(hk.transform(lambda x: SlicedConv2D(6, kernel, stride, padding)(x)))
    params = sliced.init(jax.random.PRNGKey(1), x)
    params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias too
    want = jax.lax.conv_general_dilated(x, params["sliced_conv2_d"]["w"], (stride, stride),
                                       ((padding, padding), (padding, padding)),
                                       dimension_numbers=("NHWC", "HWIO", "NHWC")) + params["sliced_conv2_d"]["b"]
    np.testing.assert_allclose(sliced.apply(params, x), want, rtol=1e-5, atol=1e-5)


def test_deepsea_transitions_cells_and_treasure_by_hand():
    """Size 4: the agent moves one row down per step; pressing each cell's 'right' action four times reaches the
    bottom-right cell (reward 1 - 4 x 0.01 / 4) and the treasure milestone; the visited cells are row x size +
    column of the positions acted from. Any other action sequence ends without the treasure."""
    import envs
    env, params = envs.make("DeepSea", size=4)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == (4, 4) and float(obs[0, 0]) == 1.0 and env.num_cells == 16 and env.num_rooms == 1
    cells, total = [], 0.0
    for step in range(4):
        cells.append(int(env.visitation(state)[1]))
        right = state.action_mapping[state.row, state.column]
        obs, state, reward, terminated, _ = env.step_env(jax.random.PRNGKey(step), state, right, params)
        total += float(reward)
        assert bool(terminated) == (step == 3)
    assert cells == [0, 5, 10, 15]  # the diagonal
    assert total == pytest.approx(1.0 - 0.01) and bool(env.milestones(state)["treasure"])
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    for step in range(4):
        wrong = 1 - state.action_mapping[state.row, state.column]
        obs, state, reward, terminated, _ = env.step_env(jax.random.PRNGKey(step), state, wrong, params)
    assert int(state.column) == 0 and not bool(env.milestones(state)["treasure"])
    with pytest.raises(ValueError, match="DeepSea size must be an integer in \\[2, 256\\], got 1"):
        envs.make("DeepSea", size=1)


def test_distillation_of_vector_observations_flattens_and_augments_entries():
    """A (B, N, N) board is read as a flat vector (not as an image with N channels); the augmentations keep its
    shape and drop single entries."""
    target, predictor = distill.distillation_networks([8], [1], 16, images=False)
    boards = jnp.zeros((5, 6, 6)).at[:, 2, 3].set(1.0)
    params = target.init(jax.random.PRNGKey(0), boards)
    assert target.apply(params, boards).shape == (5, 16)
    assert params["linear"]["w"].shape == (36, 16)
    assert predictor.apply(predictor.init(jax.random.PRNGKey(1), boards), boards).shape == (5, 16)
    ones = jnp.ones((400, 36))
    for recipe in distill.AUGMENTATIONS:
        out = np.asarray(distill.augment(jax.random.PRNGKey(2), ones, recipe))
        assert out.shape == ones.shape and np.abs(out - 1.0).max() <= 1.2 + 1e-6
    dropped = np.asarray(distill.augment(jax.random.PRNGKey(3), ones, "cnd_2022_10"))
    assert 0.02 < np.mean(dropped < 0.5) < 0.1  # half the samples lose about 10% of their entries


def test_every_shipped_ppo_config_builds_its_agent_shapes():
    """Each configs/ppo/*.json validates and passes the agent's checks against its environment's observations
    (the GPU configs included; nothing is compiled)."""
    import glob

    import envs
    paths = sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", "ppo", "*.json")))
    assert len(paths) >= 14
    for path in paths:
        config = config_lib.load_config("PPO", path)
        env, env_params = envs.make_from_config(config)
        ppo.check_config(config, tuple(env.observation_space(env_params).shape))
        jax.eval_shape(lambda key: ppo.make(config, env, env_params).init(key, ppo.hyperparams_from_config(config)),
                       jax.random.PRNGKey(0))
