"""Validation and sampling shared by the sampling-based planners.

Shape letters: S plan samples, H horizon (action blocks per plan), A action-block width.
"""

import jax
import jax.numpy as jnp


def check_distribution(init_mean: jax.Array, init_std) -> tuple[jax.Array, jax.Array]:
    """Validates a Gaussian over plans; returns float32 ``(mean, std)``, both ``(H, A)``.

    Args:
        init_mean: ``(H, A)`` mean plan, ``H >= 1``.
        init_std: scalar or anything broadcastable to ``(H, A)``.
    """
    mean = jnp.asarray(init_mean, jnp.float32)
    if mean.ndim != 2:
        raise ValueError(f"init_mean must have shape (H, A), got {tuple(mean.shape)}")
    if mean.shape[0] < 1 or mean.shape[1] < 1:
        raise ValueError(f"horizon and action width must be >= 1, got init_mean {mean.shape}")
    std = jnp.asarray(init_std, jnp.float32)
    try:
        std = jnp.broadcast_to(std, mean.shape)
    except ValueError:
        raise ValueError(
            f"init_std of shape {tuple(std.shape)} does not broadcast to {tuple(mean.shape)}"
        ) from None
    return mean, std


def check_positive(**values: int) -> None:
    """Raises a one-line ValueError for any integer setting below 1."""
    for name, value in values.items():
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def sample_plans(key: jax.Array, mean: jax.Array, std: jax.Array, num_samples: int) -> jax.Array:
    """Draws ``(S, H, A)`` plans ``mean + std * eps``; sample 0 is the mean itself, so the
    incumbent is always among the candidates (as in the reference CEM/MPPI)."""
    eps = jax.random.normal(key, (num_samples, *mean.shape), mean.dtype)
    return (mean + std * eps).at[0].set(mean)


def evaluate(cost_fn, plans: jax.Array) -> jax.Array:
    """Costs ``(S,)`` of ``plans (S, H, A)``; NaN becomes +inf so it never wins a ranking."""
    costs = cost_fn(plans)
    if costs.shape != plans.shape[:1]:
        raise ValueError(
            f"cost_fn must map plans {tuple(plans.shape)} to costs ({plans.shape[0]},), "
            f"got {tuple(costs.shape)}"
        )
    return jnp.where(jnp.isnan(costs), jnp.inf, costs.astype(jnp.float32))
