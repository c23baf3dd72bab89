"""BYOL-style exponential-moving-average (EMA) targets.

The target network shares the online network's architecture; its parameters follow the
online ones by ``target <- tau * target + (1 - tau) * online`` after every optimiser step
and never receive gradients. The convention used throughout:

    target = jax.lax.stop_gradient(apply_fn(target_params, x))   # see target_apply

so that neither the target parameters nor (through them) the inputs get a gradient from
the target branch. Training uses a constant ``tau`` (``config.loss.ema_decay``).
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["ema_update", "target_apply"]


def _check_decay(decay) -> None:
    if isinstance(decay, int | float) and not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1], got {decay}")


def ema_update(target_params: Any, online_params: Any, decay: float | jax.Array) -> Any:
    """One EMA step ``decay * target + (1 - decay) * online``, leaf by leaf.

    Args:
        target_params: the target pytree.
        online_params: the online pytree, same structure.
        decay: tau in [0, 1]; 1 keeps the target, 0 copies the online parameters.

    Returns:
        The new target pytree, each floating leaf in its target dtype. Non-floating leaves
        (e.g. integer counters) are copied from the online tree.
    """
    _check_decay(decay)

    def mix(t, o):
        if not jnp.issubdtype(jnp.result_type(t), jnp.floating):
            return o
        new = decay * t.astype(jnp.float32) + (1.0 - decay) * o.astype(jnp.float32)
        return new.astype(t.dtype)

    return jax.tree.map(mix, target_params, online_params)


def target_apply(apply_fn: Callable[..., Any], target_params: Any, *args, **kwargs) -> Any:
    """Runs the target network without gradients: ``stop_gradient(apply_fn(target, ...))``."""
    out = apply_fn(jax.lax.stop_gradient(target_params), *args, **kwargs)
    return jax.lax.stop_gradient(out)
