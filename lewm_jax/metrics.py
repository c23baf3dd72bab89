"""Collapse indicators of a batch of latents, as pure array functions.

Shape letters: N samples (e.g. B * T flattened), D latent dimension.
"""

import chex
import jax
import jax.numpy as jnp

from lewm_jax.losses import sigreg

__all__ = [
    "collapse_metrics",
    "effective_rank",
    "flatten_latents",
    "mean_cosine_similarity",
    "mean_std",
    "projection_normality",
    "sigreg_statistic",
]


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


def mean_cosine_similarity(z: jax.Array, *, eps: float = 1e-8) -> jax.Array:
    """Mean cosine similarity over all pairs of distinct samples (the diagonal excluded).

    Args:
        z: latents ``(..., D)``; all leading axes are samples, N >= 2 of them.
        eps: norm floor; an all-zero sample counts as similarity 0 with everything.

    Returns:
        Scalar float32: 1 when all samples point the same way (collapse), about 0 for
        isotropic samples with zero mean.
    """
    x = flatten_latents(z)
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"mean_cosine_similarity needs N >= 2 samples, got shape {z.shape}")
    u = x * jax.lax.rsqrt(jnp.maximum(jnp.square(x).sum(-1, keepdims=True), eps * eps))
    # sum_{i != j} u_i . u_j = |sum_i u_i|^2 - sum_i |u_i|^2, without the (N, N) Gram matrix.
    total = jnp.square(u.sum(axis=0)).sum() - jnp.square(u).sum()
    return total / (n * (n - 1))


def sigreg_statistic(
    z: jax.Array, key: jax.Array, *, num_proj: int = 1024, knots: int = 17
) -> jax.Array:
    """SIGReg (:func:`lewm_jax.losses.sigreg`) of all samples pooled, as a gradient-free metric.

    Args:
        z: latents ``(..., D)``; all leading axes are pooled into one batch of N samples.
        key: PRNG key for the projections.
        num_proj: number of random projections.
        knots: Epps-Pulley integration knots.

    Returns:
        Scalar float32, O(1) for i.i.d. N(0, I) samples and growing with N otherwise.
    """
    x = jax.lax.stop_gradient(flatten_latents(z))
    return sigreg(x, key=key, num_proj=num_proj, knots=knots)


def projection_normality(
    z: jax.Array, key: jax.Array, *, num_proj: int = 128, level: float = 0.05
) -> dict[str, jax.Array]:
    """Jarque-Bera normality test of random 1-D projections of the latents.

    Each projection on a random unit direction is standardised by its own mean and standard
    deviation, so only its *shape* is tested (scale and offset are what ``mean_std`` and
    SIGReg measure). With sample skewness S and excess kurtosis K,
    ``JB = N / 6 (S^2 + K^2 / 4)`` is asymptotically chi-squared with 2 degrees of freedom,
    whose upper ``level`` quantile is ``-2 log(level)``. A collapsed batch (constant
    projections) gets S = 0, K = -3 and is rejected; a batch collapsed onto a Gaussian line
    is not (use ``effective_rank`` for that).

    Args:
        z: latents ``(..., D)``; all leading axes are samples.
        key: PRNG key for the projection directions.
        num_proj: number of random directions.
        level: significance level of each test.

    Returns:
        Dict of float32 scalars: ``mean_abs_skew``, ``mean_abs_excess_kurtosis`` and
        ``jb_reject_fraction`` (fraction of projections whose test rejects normality; about
        ``level`` for Gaussian latents with large N).
    """
    if isinstance(level, int | float) and not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    x = jax.lax.stop_gradient(flatten_latents(z))
    n = x.shape[0]
    proj = jax.random.normal(key, (x.shape[-1], num_proj), jnp.float32)  # (D, M)
    p = x @ (proj / jnp.linalg.norm(proj, axis=0, keepdims=True))  # (N, M)
    p = p - p.mean(axis=0)
    std = jnp.sqrt(jnp.square(p).mean(axis=0))
    # The floor keeps constant (collapsed) projections finite: they standardise to 0.
    s = p / jnp.maximum(std, 1e-6 * (1.0 + jnp.abs(x).max()))
    skew = (s**3).mean(axis=0)
    kurt = (s**4).mean(axis=0) - 3.0
    jb = n / 6.0 * (jnp.square(skew) + jnp.square(kurt) / 4.0)
    return {
        "mean_abs_skew": jnp.abs(skew).mean(),
        "mean_abs_excess_kurtosis": jnp.abs(kurt).mean(),
        "jb_reject_fraction": (jb > -2.0 * jnp.log(level)).mean(),
    }


def collapse_metrics(z: jax.Array, key: jax.Array, *, num_proj: int = 256) -> dict[str, jax.Array]:
    """All collapse indicators of a batch of latents in one jittable call.

    Args:
        z: latents ``(..., D)``; all leading axes are samples.
        key: PRNG key, split between SIGReg and the normality test.
        num_proj: random projections for SIGReg and for the normality test.

    Returns:
        Dict of float32 scalars: ``effective_rank``, ``mean_std``, ``mean_cosine``,
        ``sigreg`` and the three entries of :func:`projection_normality`.
    """
    z = jax.lax.stop_gradient(z)
    sig_key, norm_key = jax.random.split(key)
    return {
        "effective_rank": effective_rank(z),
        "mean_std": mean_std(z),
        "mean_cosine": mean_cosine_similarity(z),
        "sigreg": sigreg_statistic(z, sig_key, num_proj=num_proj),
        **projection_normality(z, norm_key, num_proj=num_proj),
    }
