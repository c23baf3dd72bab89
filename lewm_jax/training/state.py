"""The training state: one pytree holding everything a step reads and writes."""

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    """Parameters, BatchNorm statistics, optimizer state and step counter.

    Attributes:
        step: int32 scalar, number of optimizer steps taken.
        params: trainable parameters.
        batch_stats: BatchNorm running statistics.
        opt_state: optax state.
        target_params: EMA copy of ``params`` giving the prediction targets
            (``config.loss.ema_target``), else None. None adds no leaves, so checkpoints
            written before this field existed restore unchanged.
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    target_params: Any = None


def init_train_state(
    model, tx: optax.GradientTransformation, key, sample: dict, *, ema_target: bool = False
) -> TrainState:
    """Initialises a :class:`TrainState` (pure; jit it with the desired out_shardings).

    Args:
        model: a :class:`~lewm_jax.models.JEPA`.
        tx: the optimizer.
        key: PRNG key for parameters.
        sample: a batch (arrays or shape structs) with ``pixels`` and ``actions``.
        ema_target: also keep an EMA target copy of the parameters (BYOL-style targets).
    """
    variables = model.init(
        {"params": key, "dropout": jax.random.fold_in(key, 1)},
        sample["pixels"],
        sample["actions"],
        train=False,
    )
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables["batch_stats"],
        opt_state=tx.init(params),
        # A copy, not an alias: the train step donates the state's buffers.
        target_params=jax.tree.map(jnp.copy, params) if ema_target else None,
    )


def abstract_train_state(model, config) -> TrainState:
    """Shapes and dtypes (``jax.ShapeDtypeStruct``) of the TrainState a run of ``config`` has.

    The restore target of a run's checkpoints: nothing is allocated. The optimizer's state
    layout does not depend on the number of steps, so one step is assumed.
    """
    from lewm_jax.training.optim import make_optimizer

    d = config.data
    sample = {
        "pixels": jax.ShapeDtypeStruct((1, d.num_frames, d.image_size, d.image_size, 3), jnp.uint8),
        "actions": jax.ShapeDtypeStruct((1, d.num_frames, d.frameskip * d.action_dim), jnp.float32),
    }
    tx = make_optimizer(config.optim, 1)
    # Configs written before loss.ema_target existed have no EMA target params.
    ema_target = config.loss.get("ema_target", False)
    init = functools.partial(init_train_state, model, tx, ema_target=ema_target)
    return jax.eval_shape(init, jax.random.key(0), sample)
