"""Model tests: paper parameter count, AdaLN-zero identity, causality, positions, inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax.models import ConditionalBlock, ResNet, ViT, build_model
from lewm_jax.models.vit import bicubic_matrix, interpolate_pos_embed


def _count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _sample(config, batch=2):
    size, c = config.data.image_size, config.data
    pixels = jnp.zeros((batch, c.num_frames, size, size, 3), jnp.uint8)
    actions = jnp.zeros((batch, c.num_frames, c.frameskip * c.action_dim), jnp.float32)
    return pixels, actions


def test_paper_config_has_exactly_the_reference_parameter_count():
    config = get_config("paper")
    model = build_model(config.model, image_size=config.data.image_size)
    pixels, actions = _sample(config, batch=1)
    shapes = jax.eval_shape(
        lambda k: model.init({"params": k, "dropout": k}, pixels, actions), jax.random.key(0)
    )
    assert config.data.action_dim == 2
    assert _count(shapes["params"]) == 18_034_478
    # torch counts 8,194 buffers: the same mean/var plus two num_batches_tracked scalars.
    assert _count(shapes["batch_stats"]) == 8_192


def test_adaln_zero_block_is_identity_at_init():
    block = ConditionalBlock(num_heads=2, head_dim=8, mlp_dim=32)
    kx, kc, ki = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (3, 4, 16))
    c = jax.random.normal(kc, (3, 4, 16))
    params = block.init(ki, x, c)
    np.testing.assert_array_equal(np.asarray(block.apply(params, x, c)), np.asarray(x))
    # A perturbed (trained) AdaLN projection must change the output: the test can fail.
    moved = jax.tree.map(lambda p: p + 0.1, params)
    assert not np.allclose(block.apply(moved, x, c), x)


def test_every_predictor_block_starts_as_identity():
    config = get_config("test")
    model = build_model(config.model, image_size=config.data.image_size)
    variables = model.init(jax.random.key(0), *_sample(config))
    pred = variables["params"]["predictor"]
    blocks = [k for k in pred if k.startswith("block")]
    assert len(blocks) == config.model.pred_depth
    for k in blocks:
        assert not np.any(pred[k]["adaln"]["kernel"]) and not np.any(pred[k]["adaln"]["bias"])


def _trained_like(config):
    """Test-size model whose AdaLN layers are non-zero (as after training)."""
    model = build_model(config.model, image_size=config.data.image_size)
    variables = model.init(jax.random.key(0), *_sample(config))
    noise = jax.random.key(1)
    params = jax.tree_util.tree_map_with_path(
        lambda path, p: (
            p + 0.05 * jax.random.normal(jax.random.fold_in(noise, len(str(path))), p.shape)
            if "adaln" in jax.tree_util.keystr(path)
            else p
        ),
        variables["params"],
    )
    return model, {"params": params, "batch_stats": variables["batch_stats"]}


def test_predictor_is_causal():
    config = get_config("test")
    model, variables = _trained_like(config)
    d, t = config.model.latent_dim, config.model.history
    kz, ka, kp = jax.random.split(jax.random.key(2), 3)
    z = jax.random.normal(kz, (2, t, d))
    act = jax.random.normal(ka, (2, t, d))
    out = model.apply(variables, z, act, method="predict")
    z2 = z.at[:, -1].add(jax.random.normal(kp, (2, d)))
    act2 = act.at[:, -1].add(1.0)
    out2 = model.apply(variables, z2, act2, method="predict")
    np.testing.assert_allclose(out2[:, :-1], out[:, :-1], atol=1e-6)
    assert np.abs(np.asarray(out2[:, -1] - out[:, -1])).max() > 1e-3


def test_bicubic_matrix_matches_closed_form_identity_and_preserves_constants():
    np.testing.assert_allclose(bicubic_matrix(5, 5), np.eye(5), atol=1e-6)
    m = bicubic_matrix(4, 7)
    np.testing.assert_allclose(m.sum(axis=1), np.ones(7), atol=1e-6)


def test_position_interpolation_for_other_image_sizes():
    pos = jax.random.normal(jax.random.key(0), (1, 1 + 4 * 4, 8))
    out = interpolate_pos_embed(pos, (6, 6))
    assert out.shape == (1, 1 + 36, 8)
    np.testing.assert_array_equal(out[:, 0], pos[:, 0])  # CLS position untouched
    np.testing.assert_allclose(interpolate_pos_embed(pos, (4, 4)), pos, atol=1e-6)
    vit = ViT("Mu/8", image_size=32)
    params = vit.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    feats = vit.apply(params, jnp.ones((2, 48, 48, 3)))
    assert feats.shape == (2, 32) and np.all(np.isfinite(feats))


def test_bad_pixel_inputs_raise_one_line_errors():
    config = get_config("test")
    model = build_model(config.model, image_size=config.data.image_size)
    pixels, actions = _sample(config)
    variables = model.init(jax.random.key(0), pixels, actions)
    with pytest.raises(TypeError, match="uint8"):
        model.apply(variables, pixels.astype(jnp.float32), actions)
    with pytest.raises(ValueError, match=r"\(B, T, H, W, 3\)"):
        model.apply(variables, pixels[..., :1], actions)
    with pytest.raises(ValueError, match="share"):
        model.apply(variables, pixels, actions[:, :2])
    with pytest.raises(ValueError, match="multiple of the patch size"):
        model.apply(variables, jnp.zeros((2, 4, 30, 30, 3), jnp.uint8), actions)


def test_bfloat16_compute_keeps_float32_params_and_outputs():
    config = get_config("test")
    model = build_model(_Cfg(config.model, dtype="bfloat16"), image_size=32)
    pixels, actions = _sample(config)
    variables = model.init(jax.random.key(0), pixels, actions)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))
    z, pred = model.apply(variables, pixels, actions)
    assert z.dtype == jnp.float32 and pred.dtype == jnp.float32


class _Cfg:
    """Attribute view of a model config with overrides (configs are never mutated)."""

    def __init__(self, base, **overrides):
        self.__dict__.update(base.to_dict(), **overrides)


def test_resnet18_has_torchvisions_feature_extractor_shape():
    """torchvision's resnet18 has 11,689,512 parameters, 513,000 of them in its classifier."""
    images = jnp.zeros((2, 64, 64, 3))
    shapes = jax.eval_shape(lambda k: ResNet("R18").init(k, images), jax.random.key(0))
    assert _count(shapes["params"]) == 11_176_512
    # Running mean and variance of its 4,800 BatchNorm features (torchvision's buffers).
    assert _count(shapes["batch_stats"]) == 2 * 4_800
    out = jax.eval_shape(lambda v: ResNet("R18").apply(v, images), shapes)
    assert out.shape == (2, 512)
    half = jax.eval_shape(lambda k: ResNet("R18w32").init(k, images), jax.random.key(0))
    assert jax.eval_shape(lambda v: ResNet("R18w32").apply(v, images), half).shape == (2, 256)


def test_resnet_encoder_trains_its_batch_statistics_and_plans_with_the_running_ones():
    config = get_config("test")
    config.model.encoder = "R18w8"
    model = build_model(config.model, image_size=config.data.image_size)
    pixels, actions = _sample(config)
    pixels = jax.random.randint(jax.random.key(1), pixels.shape, 0, 256).astype(jnp.uint8)
    keys = {"params": jax.random.key(0), "dropout": jax.random.key(0)}
    variables = model.init(keys, pixels, actions)
    assert "resnet" in variables["params"] and "vit" not in variables["params"]
    (z, pred), stats = model.apply(
        variables,
        pixels,
        actions,
        train=True,
        mutable=["batch_stats"],
        rngs={"dropout": jax.random.key(2)},
    )
    assert z.shape == (2, config.data.num_frames, config.model.latent_dim)
    assert pred.shape == (2, config.model.history, config.model.latent_dim)
    new = {**variables, **stats}
    stem = new["batch_stats"]["resnet"]["stem_bn"]["mean"]
    assert not np.allclose(stem, variables["batch_stats"]["resnet"]["stem_bn"]["mean"])
    # Evaluation normalises with the running statistics: one frame encodes alone as in a batch.
    alone = model.apply(new, pixels[:1], method=model.encode)
    both = model.apply(new, pixels, method=model.encode)
    np.testing.assert_allclose(alone, both[:1], rtol=1e-5, atol=1e-5)
