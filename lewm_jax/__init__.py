"""lewm_jax: LeWorldModel (a JEPA world model trained with SIGReg) in JAX.

Only the Flax-free losses and metrics are imported here, so ``import lewm_jax`` stays
light; networks live in ``lewm_jax.models`` and training in ``lewm_jax.training.train``.
"""

from lewm_jax.analysis.metrics import effective_rank, mean_std
from lewm_jax.losses import epps_pulley_weights, lewm_loss, prediction_loss, sigreg

__version__ = "0.1.0"

__all__ = [
    "effective_rank",
    "epps_pulley_weights",
    "lewm_loss",
    "mean_std",
    "prediction_loss",
    "sigreg",
]
