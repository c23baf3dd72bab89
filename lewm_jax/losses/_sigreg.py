"""Pure LeWM losses: next-embedding prediction and SIGReg.

Flax-free array functions, importable on their own (``from lewm_jax.losses import sigreg``).
Shape letters: T time, B batch, D latent dimension, M random projections, K knots.
"""

import chex
import jax
import jax.numpy as jnp

__all__ = ["epps_pulley_weights", "lewm_loss", "prediction_loss", "sigreg"]


def epps_pulley_weights(knots: int = 17, t_max: float = 3.0):
    """Integration grid of the Epps-Pulley statistic.

    Args:
        knots: number of points ``t`` in ``[0, t_max]``.
        t_max: upper end of the integration range.

    Returns:
        ``(t, phi, w)``, each ``(K,)`` float32: the knots, the N(0, 1) characteristic
        function ``exp(-t^2/2)`` at the knots, and trapezoid weights times ``phi``. Interior
        weights are ``2 dt`` because the integrand is even in ``t`` and only ``t >= 0`` is
        evaluated.
    """
    if knots < 2:
        raise ValueError(f"knots must be >= 2 to define a trapezoid rule, got {knots}")
    t = jnp.linspace(0.0, t_max, knots, dtype=jnp.float32)
    dt = t_max / (knots - 1)
    trapezoid = jnp.full((knots,), 2.0 * dt, jnp.float32).at[jnp.array([0, -1])].set(dt)
    phi = jnp.exp(-0.5 * jnp.square(t))
    return t, phi, trapezoid * phi


def sigreg(
    z: jax.Array,
    *,
    key: jax.Array,
    num_proj: int = 1024,
    knots: int = 17,
    axis_name: str | None = None,
) -> jax.Array:
    """Sketched Isotropic Gaussian Regulariser (SIGReg) of a batch of latents.

    Projects ``z`` on ``num_proj`` random unit directions and averages the Epps-Pulley
    statistic of each 1-D projection against N(0, 1). Near zero (O(1) per projection,
    independent of B) for i.i.d. N(0, I) latents; large for collapsed, shifted or scaled ones.

    Under ``jax.jit`` with ``z`` sharded over devices the batch means are global
    automatically. Inside ``shard_map``/``pmap`` pass ``axis_name`` so that the empirical
    characteristic function is averaged over the global batch and B is the global size.

    Args:
        z: latents ``(T, B, D)`` (or ``(B, D)``, treated as T = 1); computed in float32.
        key: PRNG key for the projections, fresh every call (e.g. ``fold_in(key, step)``).
        num_proj: number M of random projection directions.
        knots: number K of integration knots in ``[0, 3]``.
        axis_name: mapped axis (or tuple of axes) over which the batch is split, if any.

    Returns:
        Scalar float32: the statistic times B, averaged over T and the M projections.
    """
    chex.assert_rank(z, {2, 3})
    if not jnp.issubdtype(z.dtype, jnp.floating):
        raise TypeError(f"sigreg expects floating latents, got dtype {z.dtype}")
    if num_proj < 1:
        raise ValueError(f"num_proj must be >= 1, got {num_proj}")
    z = z.astype(jnp.float32)
    if z.ndim == 2:
        z = z[None]
    t, phi, w = epps_pulley_weights(knots)

    proj = jax.random.normal(key, (z.shape[-1], num_proj), jnp.float32)  # (D, M)
    proj = proj / jnp.linalg.norm(proj, axis=0, keepdims=True)
    x = (z @ proj)[..., None] * t  # (T, B, M, K)

    local_b = z.shape[1]
    cos_sum, sin_sum = jnp.cos(x).sum(axis=1), jnp.sin(x).sum(axis=1)  # (T, M, K)
    batch = local_b
    if axis_name is not None:
        cos_sum, sin_sum = jax.lax.psum((cos_sum, sin_sum), axis_name)
        batch = jax.lax.psum(local_b, axis_name)
    err = jnp.square(cos_sum / batch - phi) + jnp.square(sin_sum / batch)  # (T, M, K)
    statistic = (err @ w) * batch  # (T, M)
    return statistic.mean()


def prediction_loss(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean squared error between predicted and target embeddings.

    Args:
        pred: predicted next embeddings ``(B, T, D)`` (any shape equal to ``target``).
        target: encoded next embeddings, same shape. No stop-gradient: LeWM trains the
            encoder through both sides.

    Returns:
        Scalar float32 mean over all elements.
    """
    chex.assert_equal_shape([pred, target])
    diff = pred.astype(jnp.float32) - target.astype(jnp.float32)
    return jnp.mean(jnp.square(diff))


def lewm_loss(
    z: jax.Array,
    pred: jax.Array,
    *,
    key: jax.Array,
    sigreg_weight: float = 0.09,
    num_proj: int = 1024,
    knots: int = 17,
    history: int = 3,
    axis_name: str | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The LeWM objective: teacher-forced prediction MSE plus weighted SIGReg.

    Args:
        z: encoded embeddings of every frame of the clip ``(B, T, D)``.
        pred: predictor outputs for the first ``history`` frames ``(B, history, D)``;
            ``pred[:, i]`` predicts ``z[:, i + 1]``.
        key: PRNG key for SIGReg's projections.
        sigreg_weight: lambda, the SIGReg weight (0.09 in the released code).
        num_proj: SIGReg projections.
        knots: SIGReg integration knots.
        history: number of context frames fed to the predictor.
        axis_name: see :func:`sigreg`.

    Returns:
        ``(loss, aux)`` with scalar ``loss`` and ``aux`` holding ``pred_loss`` and
        ``sigreg_loss``.
    """
    chex.assert_rank([z, pred], 3)
    if z.shape[1] < history + 1:
        raise ValueError(f"need at least history + 1 = {history + 1} frames, got z {z.shape}")
    chex.assert_shape(pred, (z.shape[0], history, z.shape[2]))
    pred_loss = prediction_loss(pred, z[:, 1 : history + 1])
    sig = sigreg(
        jnp.swapaxes(z, 0, 1), key=key, num_proj=num_proj, knots=knots, axis_name=axis_name
    )
    loss = pred_loss + sigreg_weight * sig
    return loss, {"pred_loss": pred_loss, "sigreg_loss": sig}
