"""Projection heads and the action encoder.

Shape letters: N samples, B batch, T time, A raw action-block width, D latent.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from lewm_jax.models.layers import BatchNorm, Dtype, dense


class MLPHead(nn.Module):
    """Linear -> BatchNorm -> GELU -> Linear (LeWM's projector and predictor head).

    BatchNorm rather than LayerNorm: a LayerNorm output lives on a sphere of radius
    sqrt(D), which would stop SIGReg from shaping the latent into a Gaussian.

    Attributes:
        hidden: hidden width (2048 in the paper).
        out: output width (the latent dimension D).
        dtype: computation dtype.
    """

    hidden: int
    out: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """Maps ``x (..., F)`` to ``(..., out)``; BatchNorm statistics span all leading axes."""
        h = dense(self.hidden, x.shape[-1], "torch", self.dtype, name="fc1")(x)
        h = BatchNorm(dtype=self.dtype, name="bn")(h, train=train)
        h = nn.gelu(h, approximate=False)
        return dense(self.out, self.hidden, "torch", self.dtype, name="fc2")(h)


class ActionEncoder(nn.Module):
    """Embeds action blocks: a k=1 Conv1d (a Dense), then Linear -> SiLU -> Linear.

    Attributes:
        emb_dim: output width (the predictor width).
        mlp_scale: hidden width is ``mlp_scale * emb_dim``.
        smoothed_dim: output width of the k=1 Conv1d. The original's ``Embedder`` defaults
            to 10 and its training script keeps that default for every environment (Push-T's
            5 x 2 block is 10 wide, Cube's 5 x 5 block is squeezed to 10). ``None`` keeps the
            block's own width, as lewm_jax built it before this attribute existed, so that
            those run directories still restore.
        dtype: computation dtype.
    """

    emb_dim: int
    mlp_scale: int = 4
    smoothed_dim: int | None = 10
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, actions: jax.Array) -> jax.Array:
        """Maps z-scored action blocks ``(B, T, A)`` to ``(B, T, emb_dim)``."""
        a = actions.shape[-1]
        s = a if self.smoothed_dim is None else self.smoothed_dim
        x = dense(s, a, "torch", self.dtype, name="smooth")(actions.astype(jnp.float32))
        x = dense(self.mlp_scale * self.emb_dim, s, "torch", self.dtype, name="fc1")(x)
        x = nn.silu(x)
        hidden = self.mlp_scale * self.emb_dim
        return dense(self.emb_dim, hidden, "torch", self.dtype, name="fc2")(x)
