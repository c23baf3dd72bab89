"""A whole run: its config checked section by section, then trained.

The entry layer above training and planning: :func:`validate_config` checks every section
of a run config with its owner's check (training's sections with
:func:`lewm_jax.training.checks.check_training_config`, ``planning`` with
:func:`lewm_jax.planning.checks.check_planning_config`), so that a bad planning section,
say, fails before training starts rather than after it; :func:`train_and_evaluate` does
that, then trains (:mod:`lewm_jax.training.train`).
"""

from lewm_jax.data import datasets
from lewm_jax.planning.checks import check_planning_config
from lewm_jax.training import sharding
from lewm_jax.training.checks import check_training_config
from lewm_jax.training.train import open_member, run_loop


def validate_config(config) -> None:
    """Raises a one-line ValueError for the first inconsistent field of ``config``.

    Args:
        config: a run config of ``experiments/configs/lewm.py`` (read-only).
    """
    check_training_config(config)
    # Where start/goal pairs come from is checked against the dataset only when the run
    # plans: a file dataset (no held-out episodes) needs planning.pairs=train.
    plans = config.planning.enabled
    check_planning_config(
        config.planning,
        frameskip=config.data.frameskip,
        dataset=config.data.name if plans else None,
        train_seed=config.seed if plans else None,
    )
    if plans:
        datasets.env_name(config.data)  # raises when the dataset has no environment


def train_and_evaluate(config, workdir: str) -> dict:
    """Checks ``config`` (never mutated), then trains LeWM as it describes in ``workdir``.

    Args:
        config: an ml_collections config from ``experiments/configs/lewm.py``.
        workdir: run directory for checkpoints, ``config.json``, metrics and plots.

    Returns:
        Summary: last training metrics, last validation metrics, steps, timing and the
        clips this process read.
    """
    validate_config(config)
    member = open_member(config, workdir, sharding.make_mesh())
    return run_loop([member])[0]
