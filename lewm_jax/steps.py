"""Pure, jittable training and evaluation steps, and the model built from a config.

Shape letters: B batch, T frames, H/W pixels, A action-block width, D latent.
"""

import functools

import jax
import jax.numpy as jnp
import optax

from lewm_jax import losses, metrics
from lewm_jax.models import JEPA
from lewm_jax.train_state import TrainState

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def build_model(model_config, *, image_size: int) -> JEPA:
    """The JEPA described by ``config.model`` (read-only)."""
    if model_config.dtype not in DTYPES:
        raise ValueError(f"model.dtype {model_config.dtype!r} not in {sorted(DTYPES)}")
    return JEPA(
        encoder=model_config.encoder,
        image_size=image_size,
        latent_dim=model_config.latent_dim,
        proj_hidden=model_config.proj_hidden,
        history=model_config.history,
        pred_depth=model_config.pred_depth,
        pred_heads=model_config.pred_heads,
        pred_head_dim=model_config.pred_head_dim,
        pred_mlp_dim=model_config.pred_mlp_dim,
        dropout=model_config.dropout,
        action_mlp_scale=model_config.action_mlp_scale,
        dtype=DTYPES[model_config.dtype],
    )


def _collapse_metrics(z):
    return {"z_std": metrics.mean_std(z), "z_rank": metrics.effective_rank(z)}


def make_train_step(model: JEPA, tx: optax.GradientTransformation, loss_config):
    """Returns the pure ``train_step(state, batch, key) -> (state, metrics)``.

    ``key`` is the run's base key; the step's key is ``fold_in(key, state.step)``, split
    into dropout and SIGReg-projection keys.

    Args:
        model: the JEPA.
        tx: the optimizer.
        loss_config: ``config.loss`` with ``sigreg_weight``, ``num_proj``, ``knots``.
    """
    loss_fn = functools.partial(
        losses.lewm_loss,
        sigreg_weight=loss_config.sigreg_weight,
        num_proj=loss_config.num_proj,
        knots=loss_config.knots,
        history=model.history,
    )

    def train_step(state: TrainState, batch: dict, key: jax.Array):
        step_key = jax.random.fold_in(key, state.step)
        drop_key, sig_key = jax.random.split(step_key)

        def objective(params):
            (z, pred), updates = model.apply(
                {"params": params, "batch_stats": state.batch_stats},
                batch["pixels"],
                batch["actions"],
                train=True,
                rngs={"dropout": drop_key},
                mutable=["batch_stats"],
            )
            loss, aux = loss_fn(z, pred, key=sig_key)
            return loss, (aux, z, updates["batch_stats"])

        grads, (aux, z, batch_stats) = jax.grad(objective, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        out = {
            "loss": aux["pred_loss"] + loss_config.sigreg_weight * aux["sigreg_loss"],
            **aux,
            "grad_norm": optax.tree.norm(grads),
            **_collapse_metrics(jax.lax.stop_gradient(z)),
        }
        new_state = TrainState(
            step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state
        )
        return new_state, out

    return train_step


def make_eval_step(model: JEPA, loss_config):
    """Returns ``eval_step(state, batch, key) -> metrics`` (running BatchNorm stats, no dropout)."""

    def eval_step(state: TrainState, batch: dict, key: jax.Array):
        z, pred = model.apply(
            {"params": state.params, "batch_stats": state.batch_stats},
            batch["pixels"],
            batch["actions"],
            train=False,
        )
        _, aux = losses.lewm_loss(
            z,
            pred,
            key=key,
            sigreg_weight=loss_config.sigreg_weight,
            num_proj=loss_config.num_proj,
            knots=loss_config.knots,
            history=model.history,
        )
        return {**aux, **_collapse_metrics(z)}

    return eval_step
