"""The training state: one pytree holding everything a step reads and writes."""

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
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any


def init_train_state(model, tx: optax.GradientTransformation, key, sample: dict) -> TrainState:
    """Initialises a :class:`TrainState` (pure; jit it with the desired out_shardings).

    Args:
        model: a :class:`~lewm_jax.models.JEPA`.
        tx: the optimizer.
        key: PRNG key for parameters.
        sample: a batch (arrays or shape structs) with ``pixels`` and ``actions``.
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
    )
