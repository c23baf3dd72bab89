"""The fast formulations of the model's layers equal the library ones they replace
(float32 rounding), with the same parameters; and the malloc setting's checks."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lewm_jax import malloc
from lewm_jax.models.layers import Attention, FeedForward, LayerNorm
from lewm_jax.models.vit import PatchEmbed


def _normal(shape, seed=0, scale=1.0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, jnp.float32)


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_equals_flax_layer_norm_and_its_gradients(affine):
    x = _normal((3, 5, 16), scale=3.0) + 1.5
    kwargs = dict(epsilon=1e-5, use_scale=affine, use_bias=affine)
    ours, ref = LayerNorm(**kwargs), nn.LayerNorm(**kwargs)
    params = ref.init(jax.random.key(0), x)
    if affine:  # non-trivial scale and bias
        params = {"params": {"scale": _normal((16,), 1) + 1.0, "bias": _normal((16,), 2)}}
    assert jax.tree.structure(ours.init(jax.random.key(0), x)) == jax.tree.structure(params)
    np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), atol=1e-5)
    weights = _normal((3, 5, 16), 3)

    def loss(module):
        return lambda p, v: jnp.sum(jnp.sin(module.apply(p, v)) * weights)

    g_ours = jax.grad(loss(ours), argnums=(0, 1))(params, x)
    g_ref = jax.grad(loss(ref), argnums=(0, 1))(params, x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), g_ours, g_ref)


def test_layer_norm_in_bfloat16_keeps_dtypes():
    x = _normal((2, 4, 8)).astype(jnp.bfloat16)
    module = LayerNorm(dtype=jnp.bfloat16)
    params = module.init(jax.random.key(0), x)
    y = module.apply(params, x)
    g_params, g_x = jax.grad(
        lambda p, v: jnp.sum(module.apply(p, v).astype(jnp.float32) * 2.0), argnums=(0, 1)
    )(params, x)
    assert y.dtype == jnp.bfloat16 and g_x.dtype == jnp.bfloat16
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(g_params))


def test_patch_embed_equals_the_strided_convolution():
    images = _normal((2, 24, 16, 3))
    conv = nn.Conv(8, (4, 4), strides=(4, 4), padding="VALID")
    params = {"params": {"kernel": _normal((4, 4, 3, 8), 1), "bias": _normal((8,), 2)}}
    ref = conv.apply(params, images).reshape(2, -1, 8)
    ours = PatchEmbed(4, 8).apply(params, images)
    assert jax.tree.structure(PatchEmbed(4, 8).init(jax.random.key(0), images)) == (
        jax.tree.structure(params)
    )
    np.testing.assert_allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_heads_first_attention_equals_the_textbook_formula(causal):
    b, t, d, heads = 2, 7, 12, 3
    x = _normal((b, t, d))
    module = Attention(heads, d // heads, causal=causal)
    params = module.init(jax.random.key(0), x)
    p = jax.tree.map(lambda a: a + _normal(a.shape, 5, 0.1), params)["params"]
    # PyTorch's layout: one (d, 3 * d) projection whose columns are (3, heads, head_dim).
    qkv = x @ p["qkv"]["kernel"] + p["qkv"]["bias"]
    q, k, v = (a.reshape(b, t, heads, -1) for a in jnp.split(qkv, 3, axis=-1))
    logits = jnp.einsum("bqhc,bkhc->bhqk", q, k) / math.sqrt(d // heads)
    if causal:
        logits = jnp.where(jnp.tril(jnp.ones((t, t), bool)), logits, -jnp.inf)
    out = jnp.einsum("bhqk,bkhc->bqhc", jax.nn.softmax(logits, -1), v).reshape(b, t, d)
    expected = out @ p["out"]["kernel"] + p["out"]["bias"]
    np.testing.assert_allclose(module.apply({"params": p}, x), expected, atol=1e-5)


class _FeedForward3D(nn.Module):
    """FeedForward as it was before its products saw flattened rows."""

    hidden: int
    dropout: float

    @nn.compact
    def __call__(self, x, *, train=False):
        h = nn.Dense(self.hidden, name="fc1")(x)
        h = nn.Dropout(self.dropout)(nn.gelu(h, approximate=False), deterministic=not train)
        h = nn.Dense(x.shape[-1], name="fc2")(h)
        return nn.Dropout(self.dropout)(h, deterministic=not train)


def test_feed_forward_on_flattened_rows_is_the_same_function_dropout_included():
    x = _normal((2, 5, 8))
    params = FeedForward(16, dropout=0.5).init(jax.random.key(0), x)
    rngs = {"dropout": jax.random.key(3)}
    for train in (False, True):
        ours = FeedForward(16, dropout=0.5).apply(params, x, train=train, rngs=rngs)
        before = _FeedForward3D(16, dropout=0.5).apply(params, x, train=train, rngs=rngs)
        np.testing.assert_allclose(ours, before, atol=1e-6)


def test_malloc_setting_checks_its_environment_variable(monkeypatch):
    monkeypatch.setenv(malloc.ENV_VAR, "fast")
    with pytest.raises(ValueError, match="LEWM_JAX_MALLOC='fast': expected 'tuned' or 'default'"):
        malloc.tune()
    monkeypatch.setenv(malloc.ENV_VAR, "default")
    assert malloc.tune() is False
