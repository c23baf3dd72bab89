"""VICReg and the PLDM temporal terms, as pure array losses with global-batch statistics.

VICReg (Bardes, Ponce, LeCun, ICLR 2022) matches the authors' ``main_vicreg.py``: unbiased
per-dimension variance, hinge ``relu(gamma - sqrt(var + eps))`` with ``gamma = 1``,
``eps = 1e-4``, covariance penalty ``sum_{i != j} C_ij^2 / D`` (summed over the two views, the
variance hinge averaged over them), weights (invariance, variance, covariance) = (25, 25, 1).

PLDM (Sobal, Zhang et al. 2025, "Learning from Reward-Free Offline Data: A Case for Planning
with Latent Dynamics Models") adds to the prediction error on latents ``z (B, T, D)``:
  - variance / covariance: the VICReg terms across the batch at every time step, mean over T;
    covariance normalised by ``D (D - 1)`` (the code's ``adjust_cov: true``);
  - time-similarity: ``mean (z[:, t + 1] - z[:, t])^2``, smoothness of consecutive latents;
  - time-variance / time-covariance: the same two terms computed across the T frames of each
    sample, then averaged over the batch;
  - inverse dynamics: MSE between ``inverse_model(z_t, z_{t+1})`` and the action ``a_t``.
Default weights (prediction 1, variance 2.2, covariance 13, time-sim 0.5, time-var 0.19,
time-cov 0, IDM 2) are the Wall (Two-Room) ICML config of the authors' code
(github kevinghst/HWM_PLDM, ``pldm/configs/wall/icml/ds_20312.yaml``). That code applies the
batch variance/covariance to the first frame only and the time terms to frames 1..T-1; here
they use every frame (pass ``z[:, :1]`` to :func:`vicreg_loss` for the first-frame variant).

Shape letters: B batch, T time, D latent, A action. Every statistic is over the global batch:
under ``jit`` with sharded inputs automatically, inside ``shard_map``/``pmap`` by passing
``axis_name`` (sums and counts are ``psum``-ed, so the value equals the single-device one).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from lewm_jax.losses._collective import global_mean, psum

__all__ = [
    "covariance_loss",
    "inverse_dynamics_loss",
    "invariance_loss",
    "pldm_loss",
    "time_similarity_loss",
    "variance_loss",
    "vicreg_loss",
]


def _check(name: str, x: jax.Array, ndim: int, letters: str) -> jax.Array:
    if x.ndim != ndim:
        raise ValueError(f"{name} must have shape ({letters}), got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must be floating, got dtype {x.dtype}")
    return x.astype(jnp.float32)


def _centred(z: jax.Array, axis_name) -> tuple[jax.Array, jax.Array]:
    """Centres ``z (B, ..., D)`` by its global batch mean; returns (centred z, global B)."""
    n = psum(z.shape[0], axis_name)
    if axis_name is None and z.shape[0] < 2:
        raise ValueError(f"variance needs a batch of at least 2, got B = {z.shape[0]}")
    # Two passes (global mean, then centred moments) avoid the cancellation of sum-of-squares.
    mean = psum(z.sum(axis=0), axis_name) / n
    return z - mean, n


def _hinge(var: jax.Array, gamma: float, eps: float) -> jax.Array:
    return jnp.maximum(gamma - jnp.sqrt(var + eps), 0.0).mean(axis=-1)


def _off_diagonal_sq(cov: jax.Array) -> jax.Array:
    """Sum of squared off-diagonal entries of ``cov (..., D, D)`` -> ``(...)``."""
    diag = jnp.diagonal(cov, axis1=-2, axis2=-1)
    return jnp.square(cov).sum(axis=(-2, -1)) - jnp.square(diag).sum(axis=-1)


def _batch_cov(z: jax.Array, axis_name) -> jax.Array:
    """Unbiased covariance over the global batch of ``z (B, T, D)`` -> ``(T, D, D)``."""
    xc, n = _centred(z, axis_name)
    return psum(jnp.einsum("btd,bte->tde", xc, xc), axis_name) / (n - 1)


def variance_loss(
    z: jax.Array, *, gamma: float = 1.0, eps: float = 1e-4, axis_name: str | None = None
) -> jax.Array:
    """VICReg variance term: hinge on the per-dimension standard deviation over the batch.

    Args:
        z: embeddings ``(B, D)``.
        gamma: target standard deviation.
        eps: added to the variance before the square root, for stable gradients at 0.
        axis_name: mapped axis over which the batch is split, if any.

    Returns:
        Scalar float32 ``mean_d relu(gamma - sqrt(Var_b z_bd + eps))``: about ``gamma`` for a
        collapsed batch, 0 when every dimension has standard deviation >= gamma.
    """
    z = _check("z", z, 2, "B, D")
    xc, n = _centred(z, axis_name)
    var = psum(jnp.square(xc).sum(axis=0), axis_name) / (n - 1)
    return _hinge(var, gamma, eps)


def covariance_loss(z: jax.Array, *, axis_name: str | None = None) -> jax.Array:
    """VICReg covariance term: squared off-diagonal batch covariances divided by D.

    Args:
        z: embeddings ``(B, D)``.
        axis_name: mapped axis over which the batch is split, if any.

    Returns:
        Scalar float32 ``sum_{i != j} C_ij^2 / D`` with C the unbiased ``(D, D)`` covariance.
    """
    z = _check("z", z, 2, "B, D")
    return _off_diagonal_sq(_batch_cov(z[:, None], axis_name))[0] / z.shape[-1]


def invariance_loss(z_a: jax.Array, z_b: jax.Array, *, axis_name: str | None = None) -> jax.Array:
    """VICReg invariance term: mean squared error between two views.

    Args:
        z_a: first view ``(B, D)`` (any shape equal to ``z_b``).
        z_b: second view, same shape.
        axis_name: mapped axis over which the batch is split, if any.

    Returns:
        Scalar float32 mean over all elements of the global batch.
    """
    if z_a.shape != z_b.shape:
        raise ValueError(f"views must have equal shapes, got {z_a.shape} and {z_b.shape}")
    diff = z_a.astype(jnp.float32) - z_b.astype(jnp.float32)
    return global_mean(jnp.square(diff), axis_name)


def vicreg_loss(
    z_a: jax.Array,
    z_b: jax.Array | None = None,
    *,
    sim_weight: float = 25.0,
    var_weight: float = 25.0,
    cov_weight: float = 1.0,
    gamma: float = 1.0,
    eps: float = 1e-4,
    axis_name: str | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """VICReg loss of one embedding set (variance + covariance) or of two views.

    Args:
        z_a: embeddings of the first view ``(B, D)``.
        z_b: embeddings of the second view ``(B, D)``, or None for variance/covariance only.
        sim_weight: invariance weight (25 in the paper).
        var_weight: variance weight (25 in the paper).
        cov_weight: covariance weight (1 in the paper).
        gamma: target standard deviation of the variance hinge.
        eps: variance offset inside the square root.
        axis_name: mapped axis over which the batch is split, if any.

    Returns:
        ``(loss, terms)`` with ``terms`` holding ``invariance`` (0 for one view), ``variance``
        (hinge averaged over views) and ``covariance`` (summed over views, as in the paper).
    """
    views = [_check("z_a", z_a, 2, "B, D")]
    if z_b is not None:
        views.append(_check("z_b", z_b, 2, "B, D"))
        inv = invariance_loss(views[0], views[1], axis_name=axis_name)
    else:
        inv = jnp.zeros((), jnp.float32)
    var = cov = jnp.zeros((), jnp.float32)
    for z in views:
        c = _batch_cov(z[:, None], axis_name)[0]
        var = var + _hinge(jnp.diagonal(c), gamma, eps) / len(views)
        cov = cov + _off_diagonal_sq(c) / z.shape[-1]
    loss = sim_weight * inv + var_weight * var + cov_weight * cov
    return loss, {"invariance": inv, "variance": var, "covariance": cov}


def time_similarity_loss(z: jax.Array, *, axis_name: str | None = None) -> jax.Array:
    """PLDM time-similarity: mean squared difference of consecutive latents ``z (B, T, D)``."""
    z = _check("z", z, 3, "B, T, D")
    return global_mean(jnp.square(z[:, 1:] - z[:, :-1]), axis_name)


def inverse_dynamics_loss(
    z: jax.Array,
    actions: jax.Array,
    *,
    inverse_model: Callable[[jax.Array, jax.Array], jax.Array],
    axis_name: str | None = None,
) -> jax.Array:
    """PLDM inverse-dynamics term: MSE of actions predicted from consecutive latents.

    Args:
        z: latents ``(B, T, D)``.
        actions: the action taken between frames t and t + 1, ``(B, T - 1, A)``.
        inverse_model: ``(z_t, z_{t+1}) -> a_t`` on ``(B, T - 1, D)`` inputs, e.g.
            ``functools.partial(idm.apply, idm_params)``.
        axis_name: mapped axis over which the batch is split, if any.

    Returns:
        Scalar float32 mean over all ``(B, T - 1, A)`` elements.
    """
    z = _check("z", z, 3, "B, T, D")
    actions = _check("actions", actions, 3, "B, T - 1, A")
    if actions.shape[:2] != (z.shape[0], z.shape[1] - 1):
        raise ValueError(
            f"actions must have shape (B, T - 1, A) for z {z.shape}, got {actions.shape}"
        )
    pred = inverse_model(z[:, :-1], z[:, 1:])
    if pred.shape != actions.shape:
        raise ValueError(f"inverse_model returned shape {pred.shape}, expected {actions.shape}")
    return global_mean(jnp.square(pred.astype(jnp.float32) - actions), axis_name)


def pldm_loss(
    z: jax.Array,
    pred: jax.Array,
    actions: jax.Array | None = None,
    *,
    inverse_model: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    pred_weight: float = 1.0,
    var_weight: float = 2.2,
    cov_weight: float = 13.0,
    time_sim_weight: float = 0.5,
    time_var_weight: float = 0.19,
    time_cov_weight: float = 0.0,
    idm_weight: float = 2.0,
    gamma: float = 1.0,
    eps: float = 1e-4,
    axis_name: str | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The PLDM objective: prediction error plus the six VICReg-style regularisers.

    Term definitions and default weights are in the module docstring. No stop-gradient is
    applied to the targets ``z[:, 1:]``, as in PLDM.

    Args:
        z: encoded latents of every frame ``(B, T, D)``, T >= 2.
        pred: predicted latents ``(B, T - 1, D)``; ``pred[:, t]`` predicts ``z[:, t + 1]``.
        actions: actions ``(B, T - 1, A)`` for the inverse-dynamics term, or None.
        inverse_model: ``(z_t, z_{t+1}) -> a_t``; required together with ``actions``.
        pred_weight: prediction MSE weight.
        var_weight: batch variance hinge weight.
        cov_weight: batch covariance weight.
        time_sim_weight: time-similarity weight.
        time_var_weight: per-sample temporal variance hinge weight.
        time_cov_weight: per-sample temporal covariance weight.
        idm_weight: inverse-dynamics weight.
        gamma: target standard deviation of both variance hinges.
        eps: variance offset inside the square roots.
        axis_name: mapped axis over which the batch is split, if any.

    Returns:
        ``(loss, terms)``; ``terms`` has ``pred``, ``variance``, ``covariance``, ``time_sim``,
        ``time_variance``, ``time_covariance`` and ``idm`` (0 without actions).
    """
    z = _check("z", z, 3, "B, T, D")
    pred = _check("pred", pred, 3, "B, T - 1, D")
    b, t, d = z.shape
    if t < 2 or pred.shape != (b, t - 1, d):
        raise ValueError(f"pred must have shape (B, T - 1, D) for z {z.shape}, got {pred.shape}")
    if (actions is None) != (inverse_model is None):
        raise ValueError("actions and inverse_model must be given together or not at all")

    pairs = max(d * (d - 1), 1)
    cov = _batch_cov(z, axis_name)  # (T, D, D)
    variance = _hinge(jnp.diagonal(cov, axis1=-2, axis2=-1), gamma, eps).mean()
    covariance = (_off_diagonal_sq(cov) / pairs).mean()

    # Temporal statistics are per sample, so only their batch average needs a collective.
    xc = z - z.mean(axis=1, keepdims=True)
    time_var = jnp.square(xc).sum(axis=1) / (t - 1)  # (B, D)
    # ||Xc^T Xc||_F = ||Xc Xc^T||_F: a (T, T) Gram instead of a (D, D) covariance per sample.
    gram = jnp.einsum("btd,bsd->bts", xc, xc) / (t - 1)
    time_off = jnp.square(gram).sum(axis=(1, 2)) - jnp.square(time_var).sum(axis=1)
    terms = {
        "pred": global_mean(jnp.square(pred - z[:, 1:]), axis_name),
        "variance": variance,
        "covariance": covariance,
        "time_sim": time_similarity_loss(z, axis_name=axis_name),
        "time_variance": global_mean(_hinge(time_var, gamma, eps), axis_name),
        "time_covariance": global_mean(time_off / pairs, axis_name),
        "idm": jnp.zeros((), jnp.float32),
    }
    if actions is not None:
        terms["idm"] = inverse_dynamics_loss(
            z, actions, inverse_model=inverse_model, axis_name=axis_name
        )
    weights = {
        "pred": pred_weight,
        "variance": var_weight,
        "covariance": cov_weight,
        "time_sim": time_sim_weight,
        "time_variance": time_var_weight,
        "time_covariance": time_cov_weight,
        "idm": idm_weight,
    }
    loss = sum(weights[k] * terms[k] for k in terms)
    return loss, terms
