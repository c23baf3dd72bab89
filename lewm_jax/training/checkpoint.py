"""Orbax checkpoints of the whole TrainState.

A :class:`Checkpointer` keeps ``<directory>/<step>/`` (keep-N, written asynchronously; orbax
finalises a step directory only when it is complete, so a run killed mid-save leaves the
previous checkpoints intact). Where the directory sits in a run is ``run_dir``'s to say.
"""

import dataclasses
import os
from pathlib import Path

import jax
import orbax.checkpoint as ocp


def _present(state):
    """A dataclass state as a dict of its non-None fields, else ``state`` itself.

    Fields added later with a None default (``TrainState.target_params``) then leave the
    on-disk layout, and so old checkpoints, unchanged.
    """
    if not dataclasses.is_dataclass(state):
        return state
    fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
    return {k: v for k, v in fields.items() if v is not None}


def _check_restored(state, target) -> None:
    """Raises unless every restored array has the target's shape and is finite."""
    import numpy as np

    for got, want in zip(jax.tree.leaves(state), jax.tree.leaves(target), strict=True):
        if got.shape != want.shape:
            raise ValueError(f"array of shape {got.shape}, expected {want.shape}")
        if np.issubdtype(got.dtype, np.floating) and not bool(jax.numpy.isfinite(got).all()):
            raise ValueError("restored arrays hold non-finite values")


def _placed(x) -> jax.ShapeDtypeStruct:
    """The abstract value of ``x``; one without a sharding goes to this process's first
    device, since the stored shardings name the devices of the run that saved it (another
    process count or device count reads them as a topology mismatch)."""
    s = ocp.utils.to_shape_dtype_struct(x)
    if getattr(s, "sharding", None) is None:
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        s = jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device)
    return s


class Checkpointer:
    """Saves and restores :class:`~lewm_jax.training.state.TrainState` pytrees.

    Args:
        directory: where step directories go (``<workdir>/checkpoints``).
        keep: number of most recent checkpoints to keep.
        async_save: write in a background thread after copying arrays to host.
        keep_every: also keep, for good, every checkpoint whose step is a multiple of this
            (0: none), so that a learning curve can be evaluated after the run.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        keep: int = 3,
        async_save: bool = True,
        keep_every: int = 0,
    ):
        if keep < 1 or keep_every < 0:
            raise ValueError(f"keep must be >= 1 and keep_every >= 0, got {keep}, {keep_every}")
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            keep_period=keep_every or None,
            create=True,
            enable_async_checkpointing=async_save,
        )
        self.manager = ocp.CheckpointManager(Path(directory).absolute(), options=options)

    def latest_step(self) -> int | None:
        """Step of the newest complete checkpoint, or None."""
        return self.manager.latest_step()

    def save(self, step: int, state) -> None:
        """Saves ``state`` as ``step`` (returns once arrays are copied off the devices)."""
        self.manager.save(step, args=ocp.args.StandardSave(_present(state)), force=True)

    def restore(self, target, step: int | None = None):
        """Restores into the structure, dtypes and shardings of ``target``.

        Args:
            target: a TrainState of arrays or ``jax.ShapeDtypeStruct`` with shardings.
            step: which step (default: latest).
        """
        step = self.latest_step() if step is None else step
        wanted = _present(target)
        abstract = jax.tree.map(_placed, wanted)
        if isinstance(abstract, dict):
            abstract = {**self._extra_entries(step, abstract), **abstract}
        restored = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
        if isinstance(wanted, dict):
            restored = {k: v for k, v in restored.items() if k in wanted}
        return (
            dataclasses.replace(target, **restored)
            if dataclasses.is_dataclass(target)
            else restored
        )

    def _extra_entries(self, step: int, abstract: dict) -> dict:
        """Abstract values for top-level entries on disk that ``abstract`` lacks.

        Orbax restores only a tree of the on-disk structure. Entries the caller does not want
        (an EMA run's ``target_params`` read for planning or ``init_from``; a None
        ``target_params`` that an earlier version wrote) are read as stored, then dropped.
        """
        path = Path(self.manager.directory) / str(step) / "default"
        try:
            stored = ocp.StandardCheckpointHandler().metadata(path)
        except Exception:  # unreadable metadata: let the restore itself report it
            return {}
        tree = getattr(stored, "tree", stored)
        if not isinstance(tree, dict):
            return {}

        def leaf(m):
            return None if m is None else _placed(jax.ShapeDtypeStruct(m.shape, m.dtype))

        extra = {k: v for k, v in tree.items() if k not in abstract}
        return {k: jax.tree.map(leaf, v, is_leaf=lambda x: x is None) for k, v in extra.items()}

    def all_steps(self) -> list[int]:
        """Steps of all complete checkpoints, oldest first."""
        return sorted(self.manager.all_steps())

    def restore_latest_valid(self, target) -> tuple[object, int, list[str]]:
        """Restores the newest checkpoint that reads back intact, falling back to older ones.

        A checkpoint whose files were truncated or corrupted (disk fault, partial copy)
        fails to restore or yields non-finite/mismatched arrays. It is moved aside to
        ``<step>.corrupt`` (kept for inspection, never deleted) so that the resumed run
        can write that step again.

        Args:
            target: as for :meth:`restore`.

        Returns:
            ``(state, step, problems)``: ``problems`` holds one line per skipped checkpoint.

        Raises:
            RuntimeError: when no checkpoint is readable.
        """
        problems = []
        for step in reversed(self.all_steps()):
            try:
                state = self.restore(target, step)
                _check_restored(state, target)
                return state, step, problems
            except Exception as e:  # any read/decode failure means this step is unusable
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                aside = Path(self.manager.directory) / f"{step}.corrupt"
                os.replace(Path(self.manager.directory) / str(step), aside)
                self.manager.reload()
                problems.append(
                    f"checkpoint step {step} is unreadable ({first[:200]}); moved to {aside.name}"
                )
        raise RuntimeError(
            f"no readable checkpoint in {self.manager.directory}: " + "; ".join(problems)
        )

    def wait(self) -> None:
        """Blocks until pending asynchronous saves are on disk."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        """Finishes pending saves and releases resources."""
        self.manager.close()
