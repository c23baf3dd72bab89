"""Training objectives: next-embedding prediction plus one anti-collapse regulariser.

``config.loss.regularizer`` picks the term added to the prediction MSE:
  - ``sigreg``: LeWM's SIGReg on the latents of every frame, weight ``sigreg_weight``.
  - ``none``: prediction only (collapses unless ``ema_target`` is on).
  - ``vicreg``: VICReg variance + covariance on the latents of all B * T frames pooled, the
    prediction MSE playing VICReg's invariance term (weights relative to it).
  - ``pldm``: PLDM's batch variance/covariance and time-similarity/variance/covariance terms
    (:func:`lewm_jax.losses.pldm_loss`) without the inverse-dynamics head, which LeWM lacks.
  - ``infonce``: InfoNCE between each clip's predicted next latent ``pred[:, t]`` (query)
    and its encoded next latent ``target[:, t]`` (positive); the other clips' encoded
    latents at the same t in the global batch are the negatives.
The SIGReg statistic is computed for every regulariser (as a gradient-free metric unless it
is the regulariser) so that runs are comparable. Shape letters: B batch, T frames, D latent.
"""

import jax
import jax.numpy as jnp

from lewm_jax import losses

__all__ = ["REGULARIZERS", "check_loss_config", "objective"]


def _none(z, pred, target, key, cfg):
    return jnp.zeros((), jnp.float32), {}


def _sigreg_statistic(z, key, cfg):
    return losses.sigreg(jnp.swapaxes(z, 0, 1), key=key, num_proj=cfg.num_proj, knots=cfg.knots)


def _sigreg(z, pred, target, key, cfg):
    sig = _sigreg_statistic(z, key, cfg)
    return cfg.sigreg_weight * sig, {"sigreg_loss": sig}


def _vicreg(z, pred, target, key, cfg):
    _, terms = losses.vicreg_loss(z.reshape(-1, z.shape[-1]), gamma=cfg.vicreg.gamma)
    reg = cfg.vicreg.var_weight * terms["variance"] + cfg.vicreg.cov_weight * terms["covariance"]
    return reg, {"vicreg_variance": terms["variance"], "vicreg_covariance": terms["covariance"]}


def _pldm(z, pred, target, key, cfg):
    p = cfg.pldm
    # pldm_loss pairs pred[:, t] with z[:, t + 1]: give it exactly the predicted span. Its own
    # prediction term is zeroed; the shared one (which may use EMA targets) is used instead.
    reg, terms = losses.pldm_loss(
        z[:, : pred.shape[1] + 1],
        pred,
        pred_weight=0.0,
        var_weight=p.var_weight,
        cov_weight=p.cov_weight,
        time_sim_weight=p.time_sim_weight,
        time_var_weight=p.time_var_weight,
        time_cov_weight=p.time_cov_weight,
        gamma=p.gamma,
    )
    names = ("variance", "covariance", "time_sim", "time_variance", "time_covariance")
    return reg, {f"pldm_{k}": terms[k] for k in names}


def _infonce(z, pred, target, key, cfg):
    nce = jax.vmap(
        lambda q, k: losses.info_nce(q, k, temperature=cfg.infonce.temperature),
        in_axes=1,
    )(pred, target).mean()
    return cfg.infonce.weight * nce, {"infonce_loss": nce}


REGULARIZERS = {
    "sigreg": _sigreg,
    "none": _none,
    "vicreg": _vicreg,
    "pldm": _pldm,
    "infonce": _infonce,
}


def check_loss_config(loss_config) -> None:
    """One-line error for an unknown ``loss.regularizer`` or an out-of-range EMA decay."""
    if loss_config.regularizer not in REGULARIZERS:
        raise ValueError(
            f"loss.regularizer {loss_config.regularizer!r} not in {sorted(REGULARIZERS)}"
        )
    # Population training passes traced values, checked per member before tracing.
    decay = loss_config.ema_decay
    if isinstance(decay, int | float) and not 0.0 <= decay <= 1.0:
        raise ValueError(f"loss.ema_decay must be in [0, 1], got {loss_config.ema_decay}")


def objective(
    z: jax.Array,
    pred: jax.Array,
    *,
    key: jax.Array,
    loss_config,
    target: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Prediction MSE plus the configured regulariser.

    Args:
        z: encoded latents of every frame of the clip ``(B, T, D)``.
        pred: predictor outputs ``(B, H, D)`` with H = history; ``pred[:, i]`` predicts
            frame ``i + 1``.
        key: PRNG key for the SIGReg projections.
        loss_config: ``config.loss`` (read-only).
        target: prediction targets ``(B, H, D)``; default ``z[:, 1 : H + 1]`` (no
            stop-gradient, as in LeWM). EMA-target runs pass the target network's latents.

    Returns:
        ``(loss, aux)``: scalar loss and scalar metrics ``pred_loss``, ``reg_loss`` (the
        weighted regulariser), ``sigreg_loss`` and the regulariser's own terms.
    """
    check_loss_config(loss_config)
    h = pred.shape[1]
    if z.ndim != 3 or z.shape[1] < h + 1:
        raise ValueError(f"z must have shape (B, T >= {h + 1}, D), got {z.shape}")
    if target is None:
        target = z[:, 1 : h + 1]
    pred_loss = losses.prediction_loss(pred, target)
    reg, aux = REGULARIZERS[loss_config.regularizer](z, pred, target, key, loss_config)
    if "sigreg_loss" not in aux:
        aux["sigreg_loss"] = _sigreg_statistic(jax.lax.stop_gradient(z), key, loss_config)
    return pred_loss + reg, {"pred_loss": pred_loss, "reg_loss": reg, **aux}
