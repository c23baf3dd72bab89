"""Data parallelism: a 1-D ``("data",)`` mesh, replicated state, batch-sharded inputs."""

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P


def make_mesh(devices=None) -> Mesh:
    """A mesh over all (global) devices with one ``"data"`` axis.

    Auto axes (GSPMD) rather than ``make_mesh``'s default Explicit ones: the model code is
    sharding-agnostic and XLA inserts the cross-device reductions (BatchNorm, SIGReg).
    """
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), ("data",), axis_types=(AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding of parameters and other state: a full copy on every device."""
    return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
    """Sharding of batches: split along the batch axis (the leading one, or the second of a
    population's stacked batches)."""
    return NamedSharding(mesh, P(*[None] * batch_axis, "data"))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """Raises unless the global batch splits evenly over the mesh."""
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(
            f"batch_size {batch_size} is not divisible by the {n} devices; use a multiple of {n}"
        )


def to_global(batch: dict, mesh: Mesh, batch_axis: int = 0) -> dict:
    """Assembles host-local numpy batches into global arrays sharded over ``"data"``.

    Each host passes its own rows (along ``batch_axis``); the global batch size is
    ``rows * process_count``.
    """
    sharding = data_sharded(mesh, batch_axis)

    def put(x):
        shape = list(x.shape)
        shape[batch_axis] *= jax.process_count()
        return jax.make_array_from_process_local_data(sharding, x, tuple(shape))

    return jax.tree.map(put, batch)
