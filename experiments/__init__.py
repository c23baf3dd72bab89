"""The commands: ``python -m experiments.<name>`` (train, plan, probe, bench.*, ...).

Importing the package tunes glibc's malloc for XLA's CPU runtime (:mod:`lewm_jax.malloc`)
before any command starts JAX; ``LEWM_JAX_MALLOC=default`` leaves glibc's defaults.
"""

import sys

from lewm_jax import malloc

try:
    malloc.tune()
except ValueError as e:
    sys.exit(f"error: {e}")
