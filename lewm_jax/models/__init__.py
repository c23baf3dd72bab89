"""LeWM networks (Flax Linen) and ``build_model``, the JEPA described by ``config.model``."""

from lewm_jax.models.heads import ActionEncoder, MLPHead
from lewm_jax.models.jepa import JEPA, build_model
from lewm_jax.models.predictor import ARPredictor, ConditionalBlock
from lewm_jax.models.vit import ViT, decode_variant

__all__ = [
    "JEPA",
    "ViT",
    "ARPredictor",
    "ConditionalBlock",
    "MLPHead",
    "ActionEncoder",
    "build_model",
    "decode_variant",
]
