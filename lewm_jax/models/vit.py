"""ViT image encoder with a CLS-token output (the HF ``ViTModel`` layout, no pooler).

Shape letters: N images, H/W pixels, P patches, D width.
"""

import functools
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lewm_jax.models.layers import Attention, Dtype, FeedForward, LayerNorm

# name: (width, depth, heads, mlp_dim). "Ti" is the paper's ViT-tiny; "Mi" and "Mu" are
# small sizes that train in minutes on a CPU.
VIT_SIZES = {
    "Mu": (32, 2, 2, 64),
    "Mi": (128, 4, 4, 512),
    "Ti": (192, 12, 3, 768),
    "S": (384, 12, 6, 1536),
    "B": (768, 12, 12, 3072),
}


def decode_variant(variant: str) -> dict:
    """Decodes a size string like ``"Ti/14"`` into ViT hyperparameters.

    Args:
        variant: ``"<size>/<patch>"`` with size one of ``VIT_SIZES``.

    Returns:
        Dict with ``width``, ``depth``, ``num_heads``, ``mlp_dim``, ``patch_size``.
    """
    match = re.fullmatch(r"(\w+)/(\d+)", variant)
    if match is None or match.group(1) not in VIT_SIZES:
        raise ValueError(
            f"unknown ViT variant {variant!r}; expected '<size>/<patch>' with size in "
            f"{sorted(VIT_SIZES)}, e.g. 'Ti/14'"
        )
    width, depth, heads, mlp = VIT_SIZES[match.group(1)]
    return dict(
        width=width, depth=depth, num_heads=heads, mlp_dim=mlp, patch_size=int(match.group(2))
    )


@functools.cache
def bicubic_matrix(n_in: int, n_out: int) -> np.ndarray:
    """1-D resampling matrix ``(n_out, n_in)`` equal to PyTorch's bicubic interpolation.

    ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False)`` with a=-0.75
    and clamped borders, which is what HF ViT uses to interpolate position embeddings.
    """
    a = -0.75
    out = np.arange(n_out)
    src = (out + 0.5) * (n_in / n_out) - 0.5
    i0 = np.floor(src).astype(np.int64)
    t = src - i0

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = [far(t + 1), near(t), near(1 - t), far(2 - t)]
    m = np.zeros((n_out, n_in), np.float64)
    for k, w in enumerate(weights):
        np.add.at(m, (out, np.clip(i0 - 1 + k, 0, n_in - 1)), w)
    return m.astype(np.float32)


def interpolate_pos_embed(pos: jax.Array, grid: tuple[int, int]) -> jax.Array:
    """Resizes a ``(1, 1 + g*g, D)`` table (CLS first) to a ``grid = (h, w)`` patch grid."""
    n = pos.shape[1] - 1
    g = int(round(n**0.5))
    if g * g != n:
        raise ValueError(f"position table of {n} patches is not a square grid")
    if (g, g) == tuple(grid):
        return pos
    table = pos[0, 1:].reshape(g, g, -1)
    wh, ww = bicubic_matrix(g, grid[0]), bicubic_matrix(g, grid[1])
    table = jnp.einsum("Hh,Ww,hwd->HWd", wh, ww, table, precision=jax.lax.Precision.HIGHEST)
    return jnp.concatenate([pos[:, :1], table.reshape(1, grid[0] * grid[1], -1)], axis=1)


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch x patch`` patches to ``width`` features: the parameters of
    ``nn.Conv(width, (patch, patch), strides=patch)`` (kernel ``(patch, patch, C, width)``,
    bias), computed as a reshape and one matrix product (faster than XLA's CPU convolution).

    Attributes:
        patch: patch side in pixels.
        width: output features.
        dtype: computation dtype.
    """

    patch: int
    width: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        """Maps ``(N, H, W, C)`` to patch features ``(N, H/patch * W/patch, width)``, rows first."""
        n, h, w, c = images.shape
        p = self.patch
        shape = (p, p, c, self.width)
        kernel = self.param("kernel", nn.initializers.normal(0.02), shape, jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.width,), jnp.float32)
        x = images.astype(self.dtype).reshape(n, h // p, p, w // p, p, c)
        x = jnp.einsum("nhpwqc,pqcd->nhwd", x, kernel.astype(self.dtype))
        return (x + bias.astype(self.dtype)).reshape(n, -1, self.width)


class EncoderBlock(nn.Module):
    """Pre-LN transformer block of HF ViT (LayerNorm eps 1e-12, exact GELU)."""

    num_heads: int
    mlp_dim: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Maps tokens ``(N, P, D)`` to ``(N, P, D)``."""
        d = x.shape[-1]
        h = LayerNorm(epsilon=1e-12, dtype=self.dtype, name="ln1")(x)
        x = x + Attention(self.num_heads, d // self.num_heads, dtype=self.dtype, name="attn")(h)
        h = LayerNorm(epsilon=1e-12, dtype=self.dtype, name="ln2")(x)
        return x + FeedForward(self.mlp_dim, dtype=self.dtype, name="mlp")(h)


class ViT(nn.Module):
    """Vision Transformer returning the CLS token after the final LayerNorm.

    Attributes:
        variant: size string, e.g. ``"Ti/14"`` (see :func:`decode_variant`).
        image_size: side of the images the position table is made for; other sizes
            (multiples of the patch size) use bicubic-interpolated positions.
        dtype: computation dtype.
    """

    variant: str = "Ti/14"
    image_size: int = 224
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        """Encodes normalised images ``(N, H, W, 3)`` to CLS features ``(N, D)``."""
        cfg = decode_variant(self.variant)
        p, d = cfg["patch_size"], cfg["width"]
        n, h, w, _ = images.shape
        if h % p or w % p or self.image_size % p:
            raise ValueError(
                f"image size {h}x{w} (native {self.image_size}) must be a multiple of the "
                f"patch size {p} of variant {self.variant!r}"
            )
        x = PatchEmbed(p, d, self.dtype, name="patch_embed")(images)
        cls = self.param("cls", nn.initializers.normal(0.02), (1, 1, d), jnp.float32)
        g = self.image_size // p
        pos = self.param("pos_embedding", nn.initializers.normal(0.02), (1, 1 + g * g, d))
        pos = interpolate_pos_embed(pos, (h // p, w // p))
        x = jnp.concatenate([jnp.broadcast_to(cls, (n, 1, d)).astype(x.dtype), x], axis=1)
        x = x + pos.astype(x.dtype)
        for i in range(cfg["depth"]):
            x = EncoderBlock(cfg["num_heads"], cfg["mlp_dim"], self.dtype, name=f"block{i}")(x)
        x = LayerNorm(epsilon=1e-12, dtype=self.dtype, name="norm")(x)
        return x[:, 0]
