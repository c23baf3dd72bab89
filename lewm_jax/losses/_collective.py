"""Batch reductions shared by the losses, global under an optional ``axis_name``.

Under ``jit`` over a sharded global batch, ``axis_name=None`` already reduces over the whole
batch; inside ``shard_map``/``pmap`` pass the mapped axis name so every device sees the
global value.
"""

import jax


def psum(x, axis_name):
    """``x`` summed over ``axis_name`` (unchanged when it is None)."""
    return x if axis_name is None else jax.lax.psum(x, axis_name)


def global_mean(x: jax.Array, axis_name) -> jax.Array:
    """Mean of every element of ``x`` over all shards of ``axis_name``."""
    # Sum and count rather than pmean of means: exact even for unequal shards.
    return psum(x.sum(), axis_name) / psum(x.size, axis_name)
