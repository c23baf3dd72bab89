"""The LeWM JEPA: encoder + projector, action encoder, causal predictor + head.

Shape letters: B batch, T time, H/W pixels, A action-block width (frameskip x action
dim), D latent.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lewm_jax.models.heads import ActionEncoder, MLPHead
from lewm_jax.models.layers import Dtype
from lewm_jax.models.predictor import ARPredictor
from lewm_jax.models.resnet import ResNet, decode_resnet, is_resnet
from lewm_jax.models.vit import VIT_SIZES, ViT, decode_variant

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def check_pixels(pixels: jax.Array) -> None:
    """Raises a one-line error unless ``pixels`` is uint8 ``(B, T, H, W, 3)``."""
    if pixels.ndim != 5 or pixels.shape[-1] != 3:
        raise ValueError(f"pixels must have shape (B, T, H, W, 3), got {tuple(pixels.shape)}")
    if pixels.dtype != jnp.uint8:
        raise TypeError(f"pixels must be uint8 in [0, 255], got dtype {pixels.dtype}")


def normalize_pixels(pixels: jax.Array) -> jax.Array:
    """uint8 ``(..., 3)`` -> float32 with ImageNet mean/std normalisation."""
    return (pixels.astype(jnp.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


class JEPA(nn.Module):
    """LeWorldModel. Use ``apply(..., method=...)`` with ``encode``, ``embed_actions``,
    ``predict`` for planning, or ``__call__`` for the teacher-forced training forward.

    Attributes:
        encoder: ViT variant string, e.g. ``"Ti/14"``, or a ResNet's, e.g. ``"R18"`` (the
            paper's encoder ablation; its BatchNorm statistics live in ``batch_stats``).
        image_size: native image size of the encoder's position table.
        latent_dim: D, the latent (and predictor) width.
        proj_hidden: hidden width of the projector and predictor head.
        history: predictor context length (and position-table size).
        pred_depth: predictor blocks.
        pred_heads: predictor attention heads.
        pred_head_dim: predictor width per head.
        pred_mlp_dim: predictor MLP hidden width.
        dropout: predictor dropout.
        action_mlp_scale: action encoder hidden width is this times ``latent_dim``.
        action_smoothed_dim: the action encoder's first (k=1 Conv1d) width; ``None`` keeps
            the action block's width (see :class:`ActionEncoder`).
        dtype: computation dtype (float32 or bfloat16); parameters stay float32.
    """

    encoder: str = "Ti/14"
    image_size: int = 224
    latent_dim: int = 192
    proj_hidden: int = 2048
    history: int = 3
    pred_depth: int = 6
    pred_heads: int = 16
    pred_head_dim: int = 64
    pred_mlp_dim: int = 2048
    dropout: float = 0.1
    action_mlp_scale: int = 4
    action_smoothed_dim: int | None = 10
    dtype: Dtype = jnp.float32

    def setup(self):
        # The ViT keeps the attribute name "vit": checkpoints and the converter address it.
        if is_resnet(self.encoder):
            self.resnet = ResNet(self.encoder, self.dtype)
        else:
            self.vit = ViT(self.encoder, self.image_size, self.dtype)
        self.projector = MLPHead(self.proj_hidden, self.latent_dim, self.dtype)
        self.action_encoder = ActionEncoder(
            self.latent_dim, self.action_mlp_scale, self.action_smoothed_dim, self.dtype
        )
        self.predictor = ARPredictor(
            self.history,
            self.pred_depth,
            self.pred_heads,
            self.pred_head_dim,
            self.pred_mlp_dim,
            self.dropout,
            self.dtype,
        )
        self.pred_proj = MLPHead(self.proj_hidden, self.latent_dim, self.dtype)

    def encode(self, pixels: jax.Array, *, train: bool = False) -> jax.Array:
        """Encodes uint8 frames ``(B, T, H, W, 3)`` to float32 latents ``(B, T, D)``."""
        check_pixels(pixels)
        b, t = pixels.shape[:2]
        images = normalize_pixels(pixels.reshape(b * t, *pixels.shape[2:]))
        if is_resnet(self.encoder):
            feats = self.resnet(images.astype(self.dtype), train=train)
        else:
            feats = self.vit(images.astype(self.dtype))
        z = self.projector(feats, train=train)  # BatchNorm over batch x time
        return z.reshape(b, t, -1).astype(jnp.float32)

    def embed_actions(self, actions: jax.Array) -> jax.Array:
        """Embeds z-scored action blocks ``(B, T, A)`` to ``(B, T, D)``."""
        if actions.ndim != 3:
            raise ValueError(f"actions must have shape (B, T, A), got {tuple(actions.shape)}")
        return self.action_encoder(actions)

    def predict(
        self,
        z: jax.Array,
        act_emb: jax.Array,
        *,
        train: bool = False,
        decode: bool = False,
        batch_stats: bool | None = None,
    ) -> jax.Array:
        """Predicts next latents ``(B, T, D)`` from latents and action embeddings ``(B, T, D)``.

        Causal: output ``t`` predicts the latent at ``t + 1`` from inputs at times ``<= t``.
        With ``decode``, the predictor's key/value cache mode (see ``models/predictor.py``):
        ``init`` on ``(B, history, D)`` makes the ``"cache"``; each ``apply(...,
        mutable=["cache"])`` then predicts from one more token ``(B, 1, D)``.
        ``batch_stats``: BatchNorm normalises with batch statistics (default: ``train``).
        """
        b, t, _ = z.shape
        bn = train if batch_stats is None else batch_stats
        h = self.predictor(z, act_emb, train=train, decode=decode)
        return self.pred_proj(h.reshape(b * t, -1), train=bn).reshape(b, t, -1)

    def __call__(
        self,
        pixels: jax.Array,
        actions: jax.Array,
        *,
        train: bool = False,
        batch_stats: bool | None = None,
    ):
        """Teacher-forced forward pass of a clip.

        Args:
            pixels: uint8 frames ``(B, T, H, W, 3)`` with ``T >= history + 1``.
            actions: z-scored action blocks ``(B, T, A)``.
            train: BatchNorm batch statistics and dropout on.
            batch_stats: BatchNorm normalises with the batch's statistics (default:
                ``train``); with ``train=False`` and ``batch_stats=True`` (validation as the
                training loss normalises, no dropout) apply with ``mutable=["batch_stats"]``.

        Returns:
            ``(z, pred)``: latents of all frames ``(B, T, D)`` and float32 predictions
            ``(B, history, D)`` where ``pred[:, i]`` predicts ``z[:, i + 1]``.
        """
        if actions.shape[:2] != pixels.shape[:2]:
            raise ValueError(
                f"actions {tuple(actions.shape)} and pixels {tuple(pixels.shape)} must share (B, T)"
            )
        bn = train if batch_stats is None else batch_stats
        z = self.encode(pixels, train=bn)
        act_emb = self.embed_actions(actions)
        n = self.history
        pred = self.predict(z[:, :n], act_emb[:, :n], train=train, batch_stats=bn)
        return z, pred.astype(jnp.float32)


DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


_POSITIVE = (
    "latent_dim",
    "proj_hidden",
    "history",
    "pred_depth",
    "pred_heads",
    "pred_head_dim",
    "pred_mlp_dim",
    "action_mlp_scale",
)


def _dtype(model_config):
    if model_config.dtype not in DTYPES:
        raise ValueError(f"model.dtype {model_config.dtype!r} not in {sorted(DTYPES)}")
    return DTYPES[model_config.dtype]


def _action_smoothed_dim(model_config):
    # Run directories written before the key existed built the block's own width (None).
    return getattr(model_config, "action_smoothed_dim", None)


def _check_encoder(encoder: str, image_size: int) -> None:
    if is_resnet(encoder):  # padded convolutions: any frame size encodes
        decode_resnet(encoder)
        return
    if "/" not in encoder:
        raise ValueError(
            f"unknown model.encoder {encoder!r}; expected a ViT '<size>/<patch>' with size in "
            f"{sorted(VIT_SIZES)} (e.g. 'Ti/14') or a ResNet such as 'R18' or 'R18w32'"
        )
    patch = decode_variant(encoder)["patch_size"]
    if patch < 1 or image_size % patch:
        raise ValueError(
            f"data.image_size {image_size} is not a multiple of the patch size "
            f"{patch} of model.encoder {encoder!r}"
        )


def check_model_config(model_config, *, image_size: int) -> None:
    """One-line errors for a ``config.model`` that cannot be built for ``image_size`` frames."""
    _dtype(model_config)
    _check_encoder(model_config.encoder, image_size)
    for name in _POSITIVE:
        if model_config[name] < 1:
            raise ValueError(f"model.{name} must be >= 1, got {model_config[name]}")
    smoothed = _action_smoothed_dim(model_config)
    if smoothed is not None and smoothed < 1:
        raise ValueError(f"model.action_smoothed_dim must be >= 1 or None, got {smoothed}")
    if not 0.0 <= model_config.dropout < 1.0:
        raise ValueError(f"model.dropout must be in [0, 1), got {model_config.dropout}")


def build_model(model_config, *, image_size: int) -> JEPA:
    """The JEPA described by ``config.model`` (read-only; :func:`check_model_config` checks it)."""
    dtype = _dtype(model_config)
    return JEPA(
        encoder=model_config.encoder,
        image_size=image_size,
        latent_dim=model_config.latent_dim,
        proj_hidden=model_config.proj_hidden,
        history=model_config.history,
        pred_depth=model_config.pred_depth,
        pred_heads=model_config.pred_heads,
        pred_head_dim=model_config.pred_head_dim,
        pred_mlp_dim=model_config.pred_mlp_dim,
        dropout=model_config.dropout,
        action_mlp_scale=model_config.action_mlp_scale,
        action_smoothed_dim=_action_smoothed_dim(model_config),
        dtype=dtype,
    )
