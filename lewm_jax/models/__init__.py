"""LeWM networks (Flax Linen)."""

from lewm_jax.models.heads import ActionEncoder, MLPHead
from lewm_jax.models.jepa import JEPA
from lewm_jax.models.predictor import ARPredictor, ConditionalBlock
from lewm_jax.models.vit import ViT, decode_variant

__all__ = [
    "JEPA",
    "ViT",
    "ARPredictor",
    "ConditionalBlock",
    "MLPHead",
    "ActionEncoder",
    "decode_variant",
]
