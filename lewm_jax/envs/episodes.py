"""What every batch of episodes shares, whichever kind of environment steps it.

The compiled JAX loops (:mod:`lewm_jax.planning.closed_loop`, :mod:`lewm_jax.data.collect`)
and the host loops (:class:`lewm_jax.envs.host.HostBatch` and its users) name their fixed
policies and keep their success bookkeeping here, once; the functions take NumPy arrays on
the host and JAX arrays (or tracers) inside a compiled loop alike.
Shape letters: E episodes.
"""

import jax
import jax.numpy as jnp
import numpy as np

# The fixed baseline policies every environment has: uniform random actions, and the
# scripted expert that sees the true state (an upper reference no planner reaches).
POLICIES = ("random", "expert")


def check_policy(name: str) -> None:
    """One-line error for a name that is not a baseline policy."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; expected one of {POLICIES}")


def _where(x):
    return jnp.where if isinstance(x, jax.Array) else np.where


def start_success(at_start, budget: int):
    """``first (E,)`` int32 of episodes that start at the goal (a success at step 0, as the
    reference counts it) or not yet (``budget``)."""
    return _where(at_start)(at_start, 0, budget).astype(jnp.int32)


def track_success(success, first, hit, t):
    """``(success, first)`` after env step ``t`` (0-based) whose criterion is ``hit (E,)``:
    success at any step so far, and the step ``t + 1`` at which it first held."""
    return success | hit, _where(hit)(hit & ~success, t + 1, first)
