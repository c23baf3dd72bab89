"""LeWM networks (Flax Linen) and ``build_model``, the JEPA described by ``config.model``."""

from lewm_jax._deps import require

require("lewm_jax.models", "models", "flax")

from lewm_jax.models.heads import ActionEncoder, MLPHead  # noqa: E402
from lewm_jax.models.jepa import JEPA, build_model  # noqa: E402
from lewm_jax.models.predictor import ARPredictor, ConditionalBlock  # noqa: E402
from lewm_jax.models.resnet import ResNet, decode_resnet  # noqa: E402
from lewm_jax.models.vit import ViT, decode_variant  # noqa: E402

__all__ = [
    "JEPA",
    "ViT",
    "ResNet",
    "ARPredictor",
    "ConditionalBlock",
    "MLPHead",
    "ActionEncoder",
    "build_model",
    "decode_variant",
    "decode_resnet",
]
