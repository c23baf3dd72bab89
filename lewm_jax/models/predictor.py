"""Action-conditioned causal transformer predictor with AdaLN-zero blocks.

``decode=True`` is the autoregressive mode of flax's examples/wmt: ``init`` with a full
window (B, N, D) sizes a ``"cache"`` collection (each block's keys/values, a position index);
then each ``apply(..., decode=True, mutable=["cache"])`` on one token ``(B, 1, D)`` equals
that token's output of the full causal pass, without recomputing earlier tokens.

Shape letters: B batch, T time (at most the history length), D latent.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from lewm_jax.models.layers import Attention, Dtype, FeedForward, LayerNorm


def modulate(x: jax.Array, shift: jax.Array, scale: jax.Array) -> jax.Array:
    """AdaLN modulation ``x * (1 + scale) + shift``."""
    return x * (1 + scale) + shift


class ConditionalBlock(nn.Module):
    """Transformer block whose norms are modulated by the action embedding (AdaLN-zero).

    ``SiLU -> Linear(D -> 6D)`` of the condition gives shift/scale/gate for the attention
    and MLP branches. That Linear starts at zero, so every block starts as the identity.

    Attributes:
        num_heads: attention heads.
        head_dim: width per head.
        mlp_dim: MLP hidden width.
        dropout: dropout rate in attention and MLP.
        dtype: computation dtype.
    """

    num_heads: int
    head_dim: int
    mlp_dim: int
    dropout: float = 0.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, c: jax.Array, *, train=False, decode=False) -> jax.Array:
        """Updates tokens ``x (B, T, D)`` given conditions ``c (B, T, D)``; ``decode`` caches
        the attention's keys and values."""
        d = x.shape[-1]
        mod = nn.Dense(
            6 * d,
            dtype=self.dtype,
            name="adaln",
            kernel_init=nn.initializers.zeros,
            bias_init=nn.initializers.zeros,
        )(nn.silu(c))
        shift1, scale1, gate1, shift2, scale2, gate2 = jnp.split(mod, 6, axis=-1)

        # Block norms carry no affine: AdaLN's shift/scale take that role (PyTorch eps 1e-5
        # elsewhere, 1e-6 here, as in the released code).
        def block_norm(name):
            return LayerNorm(
                epsilon=1e-6, use_scale=False, use_bias=False, dtype=self.dtype, name=name
            )

        h = modulate(block_norm("norm1")(x), shift1, scale1)
        h = LayerNorm(epsilon=1e-5, dtype=self.dtype, name="attn_norm")(h)
        h = Attention(
            self.num_heads,
            self.head_dim,
            qkv_bias=False,
            causal=True,
            dropout=self.dropout,
            style="torch",
            dtype=self.dtype,
            name="attn",
        )(h, train=train, decode=decode)
        x = x + gate1 * h
        h = modulate(block_norm("norm2")(x), shift2, scale2)
        h = LayerNorm(epsilon=1e-5, dtype=self.dtype, name="mlp_norm")(h)
        h = FeedForward(self.mlp_dim, self.dropout, "torch", self.dtype, name="mlp")(h, train=train)
        return x + gate2 * h


class ARPredictor(nn.Module):
    """Causal predictor: ``out[:, t]`` depends on latents and actions at times <= t only.

    Attributes:
        history: maximum number of time steps (size of the learned position table).
        depth: number of blocks.
        num_heads: attention heads.
        head_dim: width per head.
        mlp_dim: MLP hidden width.
        dropout: dropout rate inside blocks.
        dtype: computation dtype.
    """

    history: int = 3
    depth: int = 6
    num_heads: int = 16
    head_dim: int = 64
    mlp_dim: int = 2048
    dropout: float = 0.1
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, c: jax.Array, *, train=False, decode=False) -> jax.Array:
        """Maps latents ``z (B, T, D)`` and action embeddings ``c (B, T, D)`` to ``(B, T, D)``.

        With ``decode`` (after a decode ``init``), ``T = 1`` and the token takes the next
        window slot, i.e. position ``cache_index``.
        """
        _, t, d = z.shape
        if t > self.history:
            raise ValueError(f"predictor got {t} time steps, more than its history {self.history}")
        pos = self.param("pos_embedding", nn.initializers.normal(1.0), (1, self.history, d))
        if decode:
            pos = self._decode_position(pos, t)
        x = (z + pos[:, :t]).astype(self.dtype)
        c = c.astype(self.dtype)
        for i in range(self.depth):
            x = ConditionalBlock(
                self.num_heads,
                self.head_dim,
                self.mlp_dim,
                self.dropout,
                self.dtype,
                name=f"block{i}",
            )(x, c, train=train, decode=decode)
        return LayerNorm(epsilon=1e-5, dtype=self.dtype, name="norm")(x)

    def _decode_position(self, pos, t):
        """The position row ``(1, 1, D)`` of the next cached slot (all rows at init)."""
        initialized = self.has_variable("cache", "cache_index")
        index = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
        if not initialized:
            return pos
        if t != 1:
            raise ValueError(f"decode=True takes one token per call, got {t}")
        i = index.value
        index.value = i + 1
        return lax.dynamic_slice_in_dim(pos, i, 1, axis=1)
