"""The check of every section a training run reads, before anything is written.

:func:`check_training_config` calls each section owner's check (the run's own fields are
checked here): ``data`` :func:`lewm_jax.data.datasets.check_data_config`, ``model``
:func:`lewm_jax.models.jepa.check_model_config`, ``loss``
:func:`lewm_jax.training.objectives.check_loss_config`, ``optim``
:func:`lewm_jax.training.optim.check_optim_config`. The planning section is the planners'
(:func:`lewm_jax.planning.checks.check_planning_config`); :func:`lewm_jax.run.validate_config`
checks a whole run config with both.
"""

from lewm_jax.data import datasets
from lewm_jax.models.jepa import check_model_config
from lewm_jax.training.objectives import check_loss_config
from lewm_jax.training.optim import check_optim_config

_AT_LEAST_ONE = ("batch_size", "log_every", "eval_every", "eval_batches", "checkpoint_every")


def _check_run_fields(config) -> None:
    for name in _AT_LEAST_ONE + ("keep_checkpoints",):
        if config[name] < 1:
            raise ValueError(f"{name} must be >= 1, got {config[name]}")
    every = config.get("keep_checkpoints_every", 0)
    if every < 0 or every % config.checkpoint_every:
        raise ValueError(
            f"keep_checkpoints_every {every} must be 0 or a multiple of checkpoint_every "
            f"{config.checkpoint_every}"
        )
    if config.total_steps < 0:
        raise ValueError(f"total_steps must be >= 0 (0 = num_epochs), got {config.total_steps}")
    if config.total_steps == 0 and config.num_epochs < 1:
        raise ValueError(f"num_epochs must be >= 1 when total_steps is 0, got {config.num_epochs}")


def check_training_config(config) -> None:
    """Raises a one-line ValueError for the first inconsistent field a training run reads.

    Args:
        config: a run config of ``experiments/configs/lewm.py`` (read-only).
    """
    _check_run_fields(config)
    datasets.check_data_config(config.data)
    check_model_config(config.model, image_size=config.data.image_size)
    if config.data.num_frames < config.model.history + 1:
        raise ValueError(
            f"data.num_frames {config.data.num_frames} must be >= model.history + 1 = "
            f"{config.model.history + 1}"
        )
    check_loss_config(config.loss)
    check_optim_config(config.optim)
