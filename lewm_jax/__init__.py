"""lewm_jax: LeWorldModel (a JEPA world model trained with SIGReg) in JAX.

The Flax-free losses and metrics are re-exported here, imported on first use (PEP 562), so
that ``import lewm_jax.data.stores`` in a loader worker process does not import JAX. They
need only the core install (``pip install lewm_jax``: jax, chex, numpy); networks
(``lewm_jax.models``), environments (``lewm_jax.envs``), training
(``lewm_jax.training.train``) and dataset files need the extras of ``setup.cfg``
(``models``, ``envs``, ``train``, ``data``; ``all``), and say which when one is missing.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "effective_rank": "lewm_jax.metrics",
    "mean_std": "lewm_jax.metrics",
    "epps_pulley_weights": "lewm_jax.losses",
    "lewm_loss": "lewm_jax.losses",
    "prediction_loss": "lewm_jax.losses",
    "sigreg": "lewm_jax.losses",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lewm_jax' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS])
