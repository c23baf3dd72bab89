"""Building blocks shared by the encoder, predictor and heads.

Initialisers follow the released PyTorch code so that training starts from the same
distribution: HF-ViT style (normal 0.02, zero bias) for the encoder, PyTorch's default
``nn.Linear`` init (uniform +-1/sqrt(fan_in) for weight and bias) elsewhere.
Shape letters: B batch, T tokens, D width.
"""

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Dtype = Any


def torch_uniform(fan_in: int):
    """PyTorch's default Linear/Conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def initializers(fan_in: int, style: str) -> dict:
    """``kernel_init`` and ``bias_init`` of a layer of input width ``fan_in``: ``"vit"``
    (normal 0.02, zero bias) or ``"torch"`` (PyTorch's default ``nn.Linear``)."""
    if style == "vit":
        return dict(kernel_init=nn.initializers.normal(0.02), bias_init=nn.initializers.zeros)
    if style == "torch":
        return dict(kernel_init=torch_uniform(fan_in), bias_init=torch_uniform(fan_in))
    raise ValueError(f"unknown init style {style!r}; expected 'vit' or 'torch'")


def dense(features: int, fan_in: int, style: str, dtype: Dtype, *, use_bias=True, name=None):
    """A Dense layer with the initialisation of the matching PyTorch module.

    Args:
        features: output width.
        fan_in: input width (needed by PyTorch's bias init).
        style: ``"vit"`` (normal 0.02, zero bias) or ``"torch"`` (default nn.Linear).
        dtype: computation dtype; parameters stay float32.
        use_bias: whether the layer has a bias.
        name: submodule name.
    """
    return nn.Dense(
        features, use_bias=use_bias, dtype=dtype, name=name, **initializers(fan_in, style)
    )


class HeadDense(nn.Module):
    """A :func:`dense` layer (same ``kernel (fan_in, features)`` and ``bias`` params) applied
    through an einsum on a view of its kernel, so that attention heads come out in the
    layout the next matrix product reads, without transposing activations.

    Attributes:
        features: output width of the kernel.
        fan_in: input width of the kernel.
        equation: einsum of the input and the kernel view.
        kernel_view: shape the ``(fan_in, features)`` kernel is viewed as.
        bias_view: shape the ``(features,)`` bias is viewed as, broadcast to the output.
        use_bias: whether the layer has a bias.
        style: init style, see :func:`dense`.
        dtype: computation dtype; parameters stay float32.
    """

    features: int
    fan_in: int
    equation: str
    kernel_view: tuple[int, ...]
    bias_view: tuple[int, ...]
    use_bias: bool = True
    style: str = "vit"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Applies ``einsum(equation, x, kernel.reshape(kernel_view)) + bias``."""
        inits = initializers(self.fan_in, self.style)
        kernel = self.param("kernel", inits["kernel_init"], (self.fan_in, self.features))
        y = jnp.einsum(
            self.equation, x.astype(self.dtype), kernel.reshape(self.kernel_view).astype(self.dtype)
        )
        if self.use_bias:
            bias = self.param("bias", inits["bias_init"], (self.features,))
            y = y + bias.reshape(self.bias_view).astype(self.dtype)
        return y


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection.

    Computed heads-first: the qkv projection writes ``(3, B, heads, T, head_dim)`` and the
    output projection reads ``(B, heads, T, head_dim)``, so each matrix product reads its
    operands in place (head transposes were a large share of the CPU step). The parameters
    are those of two :func:`dense` layers ``qkv`` and ``out``; the qkv kernel's columns are
    ``(3, heads, head_dim)``, PyTorch's ``chunk(3)`` followed by ``"(h d)"``.

    With ``decode=True`` it keeps keys and values in a ``"cache"`` collection
    (``cached_key``, ``cached_value`` of shape ``(B, heads, L, head_dim)``, ``cache_index``,
    as ``nn.MultiHeadDotProductAttention``): ``init`` on a full-length input sizes the cache,
    then each ``apply(..., mutable=["cache"])`` on one token writes its key/value at
    ``cache_index`` and attends to the cached slots up to it. Writing past the cache's length
    is not checked (traced index).

    Attributes:
        num_heads: number of heads.
        head_dim: width of each head; the inner width is ``num_heads * head_dim``.
        qkv_bias: whether the qkv projection has a bias (ViT yes, predictor no).
        causal: mask attention to earlier tokens only.
        dropout: dropout on attention weights and on the output projection.
        style: init style, see :func:`dense`.
        dtype: computation dtype.
    """

    num_heads: int
    head_dim: int
    qkv_bias: bool = True
    causal: bool = False
    dropout: float = 0.0
    style: str = "vit"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, decode: bool = False) -> jax.Array:
        """Attends over ``x (B, T, D)`` (``T = 1`` when decoding) and returns ``(B, T, D)``."""
        t, d = x.shape[1:]
        heads, width = self.num_heads, self.head_dim
        qkv = HeadDense(
            features=3 * heads * width,
            fan_in=d,
            equation="btd,dshc->sbhtc",
            kernel_view=(d, 3, heads, width),
            bias_view=(3, 1, heads, 1, width),
            use_bias=self.qkv_bias,
            style=self.style,
            dtype=self.dtype,
            name="qkv",
        )(x)
        q, k, v = qkv[0], qkv[1], qkv[2]
        visible = None
        if decode:
            k, v, visible = self._decode_cache(k, v)
        logits = jnp.einsum("bhqc,bhkc->bhqk", q, k).astype(jnp.float32)
        logits = logits / math.sqrt(width)
        if self.causal:
            mask = jnp.tril(jnp.ones((t, t), bool)) if visible is None else visible
            logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
        weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
        weights = nn.Dropout(self.dropout)(weights, deterministic=not train)
        out = jnp.einsum("bhqk,bhkc->bhqc", weights, v)
        out = HeadDense(
            features=d,
            fan_in=heads * width,
            equation="bhqc,hcd->bqd",
            kernel_view=(heads, width, d),
            bias_view=(d,),
            style=self.style,
            dtype=self.dtype,
            name="out",
        )(out)
        return nn.Dropout(self.dropout)(out, deterministic=not train)

    def _decode_cache(self, k, v):
        """Appends one token's keys/values ``(B, heads, 1, head_dim)`` to the cache.

        Returns all cached keys and values ``(B, heads, L, head_dim)`` and the mask ``(L,)``
        of filled slots; at init (no cache yet) ``k``, ``v`` and ``None`` (the causal mask).
        """
        if not self.causal:
            raise ValueError("decode=True needs a causal Attention")
        initialized = self.has_variable("cache", "cached_key")
        cached_k = self.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
        cached_v = self.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
        index = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
        if not initialized:
            return k, v, None
        if k.shape[2] != 1:
            raise ValueError(f"decode=True takes one token per call, got {k.shape[2]}")
        i = index.value
        cached_k.value = lax.dynamic_update_slice_in_dim(cached_k.value, k, i, axis=2)
        cached_v.value = lax.dynamic_update_slice_in_dim(cached_v.value, v, i, axis=2)
        index.value = i + 1
        # Slots after ``i`` hold zeros (or stale keys); they get exactly zero weight.
        return cached_k.value, cached_v.value, jnp.arange(cached_k.value.shape[2]) <= i


class FeedForward(nn.Module):
    """Dense -> exact GELU -> dropout -> Dense -> dropout.

    Attributes:
        hidden: hidden width.
        dropout: dropout rate after the activation and after the output.
        style: init style, see :func:`dense`.
        dtype: computation dtype.
    """

    hidden: int
    dropout: float = 0.0
    style: str = "vit"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """Maps ``x (..., D)`` to ``(..., D)``."""
        *rows, d = x.shape
        # The products see the rows flattened: their weight gradients then contract one
        # axis of row-major operands (contracting batch and tokens made XLA:CPU copy the
        # hidden gradient into a transposed layout first). GELU and dropout stay on the
        # unflattened shape: so arranged, training losses are bit-identical to the
        # unflattened layer's (flattened throughout, they were not).
        h = dense(self.hidden, d, self.style, self.dtype, name="fc1")(x.reshape(-1, d))
        h = nn.gelu(h.reshape(*rows, self.hidden), approximate=False)
        h = nn.Dropout(self.dropout)(h, deterministic=not train).reshape(-1, self.hidden)
        h = dense(d, self.hidden, self.style, self.dtype, name="fc2")(h).reshape(*rows, d)
        return nn.Dropout(self.dropout)(h, deterministic=not train)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float) -> jax.Array:
    """``(x - mean) / sqrt(var + epsilon) * scale + bias`` over the last axis, in float32.

    The statistics are taken in one pass (``var = E[x^2] - E[x]^2``, floored at 0, as
    ``nn.LayerNorm`` does by default); the hand-written backward pass reads the normalised
    input once instead of autodiff's chain of broadcasts, which made LayerNorm a visible
    share of the CPU step.
    """
    return _layer_norm_fwd(x, scale, bias, epsilon)[0]


def _layer_norm_fwd(x, scale, bias, epsilon):
    xf = x.astype(jnp.float32)
    mean = xf.mean(-1, keepdims=True)
    var = jnp.maximum(jnp.square(xf).mean(-1, keepdims=True) - jnp.square(mean), 0.0)
    rstd = lax.rsqrt(var + epsilon)
    xhat = (xf - mean) * rstd
    return (xhat * scale + bias).astype(x.dtype), (xhat, rstd, scale)


def _layer_norm_bwd(epsilon, residuals, g):
    del epsilon
    xhat, rstd, scale = residuals
    dtype, g = g.dtype, g.astype(jnp.float32)  # the output's dtype is the input's
    gx = g * scale
    dx = rstd * (gx - gx.mean(-1, keepdims=True) - xhat * (gx * xhat).mean(-1, keepdims=True))
    axes = tuple(range(g.ndim - 1))
    return dx.astype(dtype), (g * xhat).sum(axes), g.sum(axes)


layer_norm.defvjp(_layer_norm_fwd, _layer_norm_bwd)


class LayerNorm(nn.Module):
    """LayerNorm over the last axis with ``nn.LayerNorm``'s parameters (``scale``, ``bias``)
    and numerics, computed by :func:`layer_norm`.

    Attributes:
        epsilon: added to the variance.
        use_scale: learn a scale (else 1).
        use_bias: learn a bias (else 0).
        dtype: output dtype; statistics are computed in float32.
    """

    epsilon: float = 1e-6
    use_scale: bool = True
    use_bias: bool = True
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Normalises ``x (..., F)`` feature-wise."""
        feats = x.shape[-1]
        scale = jnp.ones((feats,), jnp.float32)
        bias = jnp.zeros((feats,), jnp.float32)
        if self.use_scale:
            scale = self.param("scale", nn.initializers.ones, (feats,), jnp.float32)
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (feats,), jnp.float32)
        return layer_norm(x.astype(self.dtype), scale, bias, self.epsilon)


class BatchNorm(nn.Module):
    """BatchNorm over every leading axis, matching ``torch.nn.BatchNorm1d``.

    Normalises with the biased batch variance and tracks the unbiased one, as PyTorch
    does, so converted running statistics mean the same thing. Under ``jit`` with a
    sharded batch the statistics are those of the global batch.

    Attributes:
        momentum: PyTorch-convention momentum (weight of the new batch statistic).
        epsilon: added to the variance.
        dtype: output dtype; statistics are computed in float32.
    """

    momentum: float = 0.1
    epsilon: float = 1e-5
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """Normalises ``x (..., F)`` feature-wise."""
        feats = x.shape[-1]
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (feats,), jnp.float32)
        ra_var = self.variable("batch_stats", "var", jnp.ones, (feats,), jnp.float32)
        scale = self.param("scale", nn.initializers.ones, (feats,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (feats,), jnp.float32)
        xf = x.astype(jnp.float32)
        if train:
            axes = tuple(range(x.ndim - 1))
            n = math.prod(x.shape[:-1])
            mean = xf.mean(axes)
            var = jnp.square(xf - mean).mean(axes)
            if not self.is_initializing():
                m = self.momentum
                ra_mean.value = (1 - m) * ra_mean.value + m * mean
                ra_var.value = (1 - m) * ra_var.value + m * var * (n / max(n - 1, 1))
        else:
            mean, var = ra_mean.value, ra_var.value
        y = (xf - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias
        return y.astype(self.dtype)
