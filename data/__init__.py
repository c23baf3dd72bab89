"""The dataset builder command (``python -m data.build``) of a lewm_jax checkout.

Not installed with lewm_jax: the dataset itself lives in :mod:`lewm_jax.data.tfds`.
"""
