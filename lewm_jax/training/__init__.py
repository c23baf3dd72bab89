"""Training: ``train.train_and_evaluate`` and what it is made of.

``state`` (TrainState), ``optim`` (AdamW schedule), ``objectives`` (prediction + the
regulariser registry), ``ema`` (EMA targets), ``step`` (the pure train/eval steps),
``sharding`` (the data mesh), ``checkpoint`` (orbax), ``run_dir`` (the one owner of a run
directory), ``reporting`` (metrics file and plots).
"""
