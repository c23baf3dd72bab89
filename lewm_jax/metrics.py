"""Collapse indicators of a batch of latents, as pure array functions.

Shape letters: N samples (e.g. B * T flattened), D latent dimension.
"""

import chex
import jax
import jax.numpy as jnp

__all__ = ["effective_rank", "mean_std", "flatten_latents"]


def flatten_latents(z: jax.Array) -> jax.Array:
    """Flattens every leading axis of ``z (..., D)`` into one sample axis ``(N, D)``, float32."""
    if z.ndim < 2:
        raise ValueError(f"latents need shape (..., N, D) with rank >= 2, got shape {z.shape}")
    return z.reshape(-1, z.shape[-1]).astype(jnp.float32)


def effective_rank(z: jax.Array, *, eps: float = 1e-12) -> jax.Array:
    """Effective rank (RankMe) of centred latents.

    ``exp(H(p))`` with ``p = s / sum(s)`` the normalised singular values of the centred
    ``(N, D)`` matrix. Ranges from 1 (all variance along one direction, or full collapse)
    to ``min(N, D)`` (all directions equally used). Centring makes a constant offset,
    which SIGReg penalises separately, irrelevant to the measured spread.

    Args:
        z: latents ``(..., D)``; all leading axes are samples.
        eps: floor that keeps the logarithm finite for zero singular values.

    Returns:
        Scalar float32.
    """
    x = flatten_latents(z)
    x = x - x.mean(axis=0, keepdims=True)
    s = jnp.linalg.svd(x, compute_uv=False)
    p = s / (s.sum() + eps)
    entropy = -jnp.sum(p * jnp.log(p + eps))
    return jnp.exp(entropy)


def mean_std(z: jax.Array) -> jax.Array:
    """Mean over dimensions of the per-dimension standard deviation across samples.

    Args:
        z: latents ``(..., D)``; all leading axes are samples.

    Returns:
        Scalar float32; 1 for an isotropic unit Gaussian, 0 for a collapsed batch.
    """
    x = flatten_latents(z)
    chex.assert_rank(x, 2)
    return jnp.std(x, axis=0).mean()
