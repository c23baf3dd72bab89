"""BYOL-style exponential-moving-average (EMA) targets.

The target network shares the online network's architecture; its parameters follow the
online ones by ``target <- tau * target + (1 - tau) * online`` after every optimiser step
and never receive gradients. The convention used throughout:

    target = jax.lax.stop_gradient(apply_fn(target_params, x))   # see target_apply

so that neither the target parameters nor (through them) the inputs get a gradient from
the target branch. ``tau`` is constant or follows BYOL's cosine schedule
``tau_k = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2`` (Grill et al. 2020, tau_base 0.996),
which rises from ``tau_base`` to 1 over K steps.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "EMAState",
    "byol_tau_schedule",
    "ema_init",
    "ema_step",
    "ema_update",
    "target_apply",
]

Decay = float | jax.Array | Callable[[jax.Array], jax.Array]


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


def byol_tau_schedule(
    *, total_steps: int, base_tau: float = 0.996
) -> Callable[[jax.Array], jax.Array]:
    """BYOL's cosine schedule of the EMA decay (an optax-style ``step -> value`` function).

    Args:
        total_steps: K, the step at which tau reaches 1 (and stays there).
        base_tau: tau at step 0 (0.996 in BYOL).

    Returns:
        ``schedule(step) -> tau``, float32, jittable.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    _check_decay(base_tau)

    def schedule(step):
        frac = jnp.clip(jnp.asarray(step, jnp.float32) / total_steps, 0.0, 1.0)
        return 1.0 - (1.0 - base_tau) * (jnp.cos(jnp.pi * frac) + 1.0) / 2.0

    return schedule


class EMAState(NamedTuple):
    """EMA target parameters and the number of updates applied so far."""

    count: jax.Array
    params: Any


def ema_init(online_params: Any) -> EMAState:
    """Starts the target as a copy of the online parameters, with ``count = 0``."""
    return EMAState(jnp.zeros((), jnp.int32), jax.tree.map(jnp.asarray, online_params))


def ema_step(state: EMAState, online_params: Any, *, decay: Decay) -> EMAState:
    """Moves the target towards ``online_params``; call after each optimiser update.

    Args:
        state: the current :class:`EMAState`.
        online_params: online parameters after the optimiser step.
        decay: constant tau, or a schedule ``count -> tau`` such as :func:`byol_tau_schedule`.

    Returns:
        The new :class:`EMAState` with ``count + 1``.
    """
    tau = decay(state.count) if callable(decay) else decay
    return EMAState(state.count + 1, ema_update(state.params, online_params, tau))


def target_apply(apply_fn: Callable[..., Any], target_params: Any, *args, **kwargs) -> Any:
    """Runs the target network without gradients: ``stop_gradient(apply_fn(target, ...))``."""
    out = apply_fn(jax.lax.stop_gradient(target_params), *args, **kwargs)
    return jax.lax.stop_gradient(out)
