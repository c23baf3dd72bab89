"""Pure, Flax-free array losses (optax-style: import from here, not from the modules).

- LeWM: ``sigreg`` (the Epps-Pulley SIGReg statistic), ``epps_pulley_weights``,
  ``prediction_loss``, ``lewm_loss``.
- VICReg and PLDM terms: ``vicreg_loss``, ``variance_loss``, ``covariance_loss``,
  ``invariance_loss``, ``time_similarity_loss``, ``inverse_dynamics_loss``, ``pldm_loss``.
- Contrastive: ``info_nce``, ``nt_xent``.

Every batch statistic is over the global batch (``jit`` over a sharded batch, or
``axis_name`` inside ``shard_map``).
"""

from lewm_jax.losses._contrastive import info_nce, nt_xent
from lewm_jax.losses._sigreg import epps_pulley_weights, lewm_loss, prediction_loss, sigreg
from lewm_jax.losses._vicreg import (
    covariance_loss,
    invariance_loss,
    inverse_dynamics_loss,
    pldm_loss,
    time_similarity_loss,
    variance_loss,
    vicreg_loss,
)

__all__ = [
    "covariance_loss",
    "epps_pulley_weights",
    "info_nce",
    "invariance_loss",
    "inverse_dynamics_loss",
    "lewm_loss",
    "nt_xent",
    "pldm_loss",
    "prediction_loss",
    "sigreg",
    "time_similarity_loss",
    "variance_loss",
    "vicreg_loss",
]
