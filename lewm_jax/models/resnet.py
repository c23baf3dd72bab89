"""ResNet image encoder (torchvision's layout, no classifier): the paper's encoder ablation.

LeWM's paper swaps the ViT for a ResNet-18 on Push-T (94 % against the ViT's 96 %); the
original's package ships no ResNet, so this is torchvision's ``resnet18`` up to its global
average pool: 7x7/2 stem, 3x3/2 max pool, four stages of basic blocks, BatchNorm after every
convolution. Its 512 pooled features go to the same projector as the ViT's CLS token.

Shape letters: N images, H/W pixels, C channels.
"""

import re

import flax.linen as nn
import jax
import jax.numpy as jnp

from lewm_jax.models.layers import BatchNorm, Dtype

# name: basic blocks per stage (torchvision's resnet18 / resnet34).
RESNET_BLOCKS = {"R18": (2, 2, 2, 2), "R34": (3, 4, 6, 3)}
DEFAULT_WIDTH = 64  # torchvision's first-stage width; stages double it

# torchvision's kaiming_normal_(mode="fan_out", nonlinearity="relu") for every convolution.
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


# The grammar of a ResNet variant: a depth name, then optionally "w<first-stage width>".
_VARIANT = re.compile(r"(R\d+)(?:w(\d+))?")


def is_resnet(variant: str) -> bool:
    """True when ``variant`` names a ResNet (``"R18"``, ``"R34"``, optionally ``"w<width>"``)."""
    return _VARIANT.fullmatch(variant) is not None


def decode_resnet(variant: str) -> dict:
    """Decodes ``"R18"`` or ``"R18w32"`` (first-stage width 32 instead of 64).

    Returns:
        Dict with ``blocks`` (per stage) and ``width`` (first stage; the features are
        ``8 * width`` wide).
    """
    match = _VARIANT.fullmatch(variant)
    width = int(match.group(2) or DEFAULT_WIDTH) if match else 0
    if match is None or match.group(1) not in RESNET_BLOCKS or width < 1:
        raise ValueError(
            f"unknown ResNet variant {variant!r}; expected one of {sorted(RESNET_BLOCKS)}, "
            f"optionally with a first-stage width, e.g. 'R18' or 'R18w32'"
        )
    return dict(blocks=RESNET_BLOCKS[match.group(1)], width=width)


def _conv(width: int, k: int, stride: int, dtype: Dtype, name: str) -> nn.Conv:
    """A bias-free ``k x k`` convolution padded by ``k // 2`` (torchvision's)."""
    return nn.Conv(
        width,
        (k, k),
        stride,
        padding=k // 2,
        use_bias=False,
        dtype=dtype,
        kernel_init=_conv_init,
        name=name,
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual; a strided 1x1 projection when the shape changes."""

    width: int
    stride: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Maps ``(N, H, W, C)`` to ``(N, H / stride, W / stride, width)``."""
        y = _conv(self.width, 3, self.stride, self.dtype, "conv1")(x)
        y = nn.relu(BatchNorm(dtype=self.dtype, name="bn1")(y, train=train))
        y = _conv(self.width, 3, 1, self.dtype, "conv2")(y)
        y = BatchNorm(dtype=self.dtype, name="bn2")(y, train=train)
        if self.stride != 1 or x.shape[-1] != self.width:
            x = _conv(self.width, 1, self.stride, self.dtype, "down")(x)
            x = BatchNorm(dtype=self.dtype, name="down_bn")(x, train=train)
        return nn.relu(x + y)


class ResNet(nn.Module):
    """ResNet returning globally average-pooled features ``(N, 8 * width)``.

    Attributes:
        variant: ``"R18"``, ``"R34"``, optionally ``"w<width>"`` (see :func:`decode_resnet`).
        dtype: computation dtype; BatchNorm statistics stay float32.
    """

    variant: str = "R18"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool = False) -> jax.Array:
        """Encodes normalised images ``(N, H, W, 3)``; ``train``: BatchNorm batch statistics."""
        cfg = decode_resnet(self.variant)
        w = cfg["width"]
        x = _conv(w, 7, 2, self.dtype, "stem")(images.astype(self.dtype))
        x = nn.relu(BatchNorm(dtype=self.dtype, name="stem_bn")(x, train=train))
        x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        for stage, n in enumerate(cfg["blocks"]):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                x = BasicBlock(w << stage, stride, self.dtype, name=f"stage{stage}_{i}")(
                    x, train=train
                )
        return x.mean(axis=(1, 2))
