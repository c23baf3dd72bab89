"""Training: the loop that :func:`lewm_jax.run.train_and_evaluate` runs, and its parts.

``train`` (the host loop), ``checks`` (the training sections' checks), ``state``
(TrainState), ``optim`` (AdamW schedule), ``objectives`` (prediction + the
regulariser registry), ``ema`` (EMA targets), ``step`` (the pure train/eval steps),
``sharding`` (the data mesh), ``checkpoint`` (orbax), ``run_dir`` (the one owner of a run
directory), ``reporting`` (metrics file and plots), ``population`` (several runs in one
compiled program). Needs the ``train`` extra.
"""

from lewm_jax._deps import require

require(
    "lewm_jax.training",
    "train",
    "flax",
    "optax",
    "orbax",
    "ml_collections",
    "tqdm",
    "matplotlib",
    "tensorboardX",
    "grain",
)
