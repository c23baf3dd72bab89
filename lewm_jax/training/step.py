"""Pure, jittable training and evaluation steps, and the model built from a config.

Shape letters: B batch, T frames, H/W pixels, A action-block width, D latent.
"""

import jax
import optax

from lewm_jax import losses, metrics
from lewm_jax.models import JEPA
from lewm_jax.training import ema, objectives
from lewm_jax.training.state import TrainState


def collapse_metrics(z: jax.Array) -> dict:
    """Collapse indicators of latents ``(B, T, D)`` logged every step."""
    return {
        "z_std": metrics.mean_std(z),
        "z_rank": metrics.effective_rank(z),
        "mean_cosine": metrics.mean_cosine_similarity(z),
    }


def _ema_targets(model: JEPA, state: TrainState, pixels: jax.Array, *, train: bool) -> jax.Array:
    """Latents of frames ``1..history`` under the EMA target params, without gradient."""

    def encode(params):
        # In training the target normalises with the current batch's statistics (as in
        # BYOL); its running-statistics update is discarded.
        variables = {"params": params, "batch_stats": state.batch_stats}
        if train:
            z, _ = model.apply(
                variables, pixels, train=True, method=JEPA.encode, mutable=["batch_stats"]
            )
            return z
        return model.apply(variables, pixels, train=False, method=JEPA.encode)

    z = ema.target_apply(encode, state.target_params)
    return z[:, 1 : model.history + 1]


def _check_state(state: TrainState, loss_config) -> None:
    if loss_config.ema_target != (state.target_params is not None):
        raise ValueError(
            f"loss.ema_target is {loss_config.ema_target} but the TrainState "
            f"{'lacks' if loss_config.ema_target else 'has'} target_params"
        )


def make_train_step(
    model: JEPA, tx: optax.GradientTransformation, loss_config, *, return_latents: bool = False
):
    """Returns the pure ``train_step(state, batch, key) -> (state, metrics)``.

    ``key`` is the run's base key; the step's key is ``fold_in(key, state.step)``, split
    into dropout and SIGReg-projection keys. With ``loss_config.ema_target`` the targets
    come from ``state.target_params``, which then move towards the updated params by
    ``ema_decay``.

    Args:
        model: the JEPA.
        tx: the optimizer.
        loss_config: ``config.loss`` (see :func:`lewm_jax.training.objectives.objective`).
        return_latents: return ``(state, metrics, z)`` with the batch's latents ``(B, T, D)``
            in place of the :func:`collapse_metrics`, for a caller that computes those
            itself (a population, outside its vmap: XLA's CPU runtime was seen to hang on a
            batched SVD inside the vmapped step on several devices).
    """
    objectives.check_loss_config(loss_config)

    def train_step(state: TrainState, batch: dict, key: jax.Array):
        _check_state(state, loss_config)
        step_key = jax.random.fold_in(key, state.step)
        drop_key, sig_key = jax.random.split(step_key)
        target = None
        if loss_config.ema_target:
            target = _ema_targets(model, state, batch["pixels"], train=True)

        def loss_fn(params):
            (z, pred), updates = model.apply(
                {"params": params, "batch_stats": state.batch_stats},
                batch["pixels"],
                batch["actions"],
                train=True,
                rngs={"dropout": drop_key},
                mutable=["batch_stats"],
            )
            loss, aux = objectives.objective(
                z, pred, key=sig_key, loss_config=loss_config, target=target
            )
            return loss, (aux, z, updates["batch_stats"])

        (loss, (aux, z, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params
        )
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        target_params = state.target_params
        if loss_config.ema_target:
            target_params = ema.ema_update(target_params, params, loss_config.ema_decay)
        out = {"loss": loss, **aux, "grad_norm": optax.tree.norm(grads)}
        z = jax.lax.stop_gradient(z)
        new_state = state.replace(
            step=state.step + 1,
            params=params,
            batch_stats=batch_stats,
            opt_state=opt_state,
            target_params=target_params,
        )
        if return_latents:
            return new_state, out, z
        return new_state, {**out, **collapse_metrics(z)}

    return train_step


def make_eval_step(model: JEPA, loss_config, *, return_latents: bool = False):
    """Returns ``eval_step(state, batch, key) -> metrics`` (no dropout); with
    ``return_latents``, ``(metrics, z)`` as for :func:`make_train_step`.

    The losses and collapse metrics normalise with the validation batch's own BatchNorm
    statistics, exactly as the training loss does, so validation and training figures are
    comparable. ``pred_loss_running`` is the prediction loss with the stored running
    statistics (what planning uses now): early in a run, while the encoder still moves
    fast, the projector's running averages (momentum 0.1, about the last 10 steps) lag
    the features and this figure is far above the training loss (1.95 vs 0.13 seen at step
    300 of 2000 on Push-T; re-estimated statistics give 0.13); it converges as the learning
    rate decays.
    """
    objectives.check_loss_config(loss_config)

    def eval_step(state: TrainState, batch: dict, key: jax.Array):
        _check_state(state, loss_config)
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        (z, pred), _ = model.apply(
            variables,
            batch["pixels"],
            batch["actions"],
            train=False,
            batch_stats=True,
            mutable=["batch_stats"],  # the batch's statistics are used, not kept
        )
        z_run, pred_run = model.apply(variables, batch["pixels"], batch["actions"], train=False)
        target, target_run = None, z_run[:, 1 : model.history + 1]
        if loss_config.ema_target:
            target = _ema_targets(model, state, batch["pixels"], train=True)
            target_run = _ema_targets(model, state, batch["pixels"], train=False)
        _, aux = objectives.objective(z, pred, key=key, loss_config=loss_config, target=target)
        aux = {**aux, "pred_loss_running": losses.prediction_loss(pred_run, target_run)}
        if return_latents:
            return aux, z
        return {**aux, **collapse_metrics(z)}

    return eval_step
