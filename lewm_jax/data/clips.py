"""Clips from a clip store: a deterministic, seedable, resumable source of batches.

Episodes use the stable-worldmodel layout: every column is a flat array over all steps
of all episodes, plus ``ep_offset``/``ep_len``, read through a
:class:`~lewm_jax.data.stores.ClipStore` (in memory, HDF5 or TFDS, the last two streamed
from disk). A clip starting at step ``s`` holds the
frames ``s, s + k, ..., s + (T - 1) k`` (k = frameskip) and the T action blocks
``actions[s + i k : s + (i + 1) k]`` flattened to ``k * A`` values.

The batch of global step ``n`` is a pure function of ``(seed, n)``: epoch ``n //
steps_per_epoch`` shuffles the training clips with ``default_rng([seed, epoch])``.
Resuming at step ``n`` therefore replays exactly the clips an uninterrupted run sees.
:meth:`ClipSource.iterate` feeds those batches through grain (worker processes, prefetch);
each host reads only its own rows of every global batch.
Shape letters: N steps, E episodes, C clips, B batch, T frames, H/W pixels, A action dim.
"""

import numpy as np

from lewm_jax.data.episodes import Episodes, action_blocks, action_stats, clip_starts
from lewm_jax.data.stores import ClipStore, MemoryStore


class ClipSource:
    """Batches of clips for one split, as a pure function of the global step.

    Args:
        episodes: the data: a clip store, or :class:`Episodes` in memory.
        batch_size: global batch size B.
        num_frames: T, frames per clip.
        frameskip: k, env steps between frames (actions per block).
        seed: seed of the train/val split and of the epoch shuffles.
        split: ``"train"`` or ``"val"``.
        train_fraction: fraction of clips in the training split.
        process_index: this host's index; it gets rows ``[i * B / n, (i + 1) * B / n)``.
        process_count: number of hosts n.
        stats: precomputed ``(mean, std)`` of raw actions (default: one streaming pass
            over the store's action column).
    """

    def __init__(
        self,
        episodes: ClipStore | Episodes,
        *,
        batch_size: int,
        num_frames: int = 4,
        frameskip: int = 5,
        seed: int = 0,
        split: str = "train",
        train_fraction: float = 0.9,
        process_index: int = 0,
        process_count: int = 1,
        stats: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if not 0.0 < train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
        if batch_size % process_count:
            raise ValueError(f"batch_size {batch_size} not divisible by {process_count} hosts")
        store = MemoryStore(episodes) if isinstance(episodes, Episodes) else episodes
        self.store = store
        self.batch_size, self.num_frames, self.frameskip = batch_size, num_frames, frameskip
        self.seed, self.split = seed, split
        self.local_rows = slice(
            process_index * batch_size // process_count,
            (process_index + 1) * batch_size // process_count,
        )
        self.action_mean, self.action_std = stats or action_stats(store.action_chunks())

        starts = clip_starts(store.ep_offset, store.ep_len, num_frames * frameskip)
        perm = np.random.default_rng([seed, 2**31 - 1]).permutation(len(starts))
        n_train = int(round(train_fraction * len(starts)))
        chosen = perm[:n_train] if split == "train" else perm[n_train:]
        self.starts = np.sort(starts[chosen])
        if len(self.starts) < batch_size:
            raise ValueError(
                f"the {split} split has {len(self.starts)} clips of {num_frames} frames x "
                f"frameskip {frameskip}, fewer than one batch of {batch_size}"
            )

    @property
    def steps_per_epoch(self) -> int:
        """Full batches per pass over the split (the remainder is dropped)."""
        return len(self.starts) // self.batch_size

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """``(H, W, 3)`` of the frames clips hold."""
        return tuple(self.store.frame_shape)

    @property
    def block_dim(self) -> int:
        """Width of one action block, ``frameskip * A``."""
        return self.frameskip * self.store.action_dim

    def clip_indices(self, step: int) -> np.ndarray:
        """Start steps ``(B,)`` of the global batch at ``step`` (shuffled per epoch for train)."""
        epoch, i = divmod(step, self.steps_per_epoch)
        order = np.arange(len(self.starts))
        if self.split == "train":
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.starts))
        return self.starts[order[i * self.batch_size : (i + 1) * self.batch_size]]

    def gather(self, starts: np.ndarray) -> dict[str, np.ndarray]:
        """Clips starting at ``starts (B,)``: pixels ``(B, T, H, W, 3)`` uint8, actions
        ``(B, T, k*A)`` float32, z-scored per dimension with NaN set to 0."""
        pixels, actions = self.store.read_clips(starts, self.num_frames, self.frameskip)
        return {
            "pixels": pixels,
            "actions": action_blocks(actions, self.action_mean, self.action_std, self.frameskip),
        }

    def batch(self, step: int) -> dict[str, np.ndarray]:
        """This host's rows of the global batch at ``step``."""
        return self.gather(self.clip_indices(step)[self.local_rows])

    def iterate(
        self,
        start_step: int = 0,
        stop_step: int | None = None,
        *,
        num_workers: int = 0,
        prefetch: int = 2,
        num_threads: int = 2,
    ):
        """Yields ``(step, batch)`` for ``start_step <= step < stop_step``, in order
        (:func:`iterate_batches` of :meth:`batch`)."""
        return iterate_batches(
            self.batch,
            start_step,
            stop_step,
            num_workers=num_workers,
            prefetch=prefetch,
            num_threads=num_threads,
        )


def _numbered(batch_fn, step: int):
    return step, batch_fn(step)


def iterate_batches(
    batch_fn,
    start_step: int = 0,
    stop_step: int | None = None,
    *,
    num_workers: int = 0,
    prefetch: int = 2,
    num_threads: int = 2,
):
    """Yields ``(step, batch_fn(step))`` for ``start_step <= step < stop_step``, in order.

    A grain pipeline over step numbers: element ``n`` is ``batch_fn(n)``, so the stream is
    the same whatever the workers, and resuming at ``start_step`` consumes exactly the
    batches an uninterrupted run would.

    Args:
        batch_fn: a picklable ``step -> batch`` (e.g. :meth:`ClipSource.batch`).
        start_step: first global step.
        stop_step: one past the last (default: endless).
        num_workers: grain worker processes reading batches (0: threads in this process,
            enough for data in memory; HDF5 reads hold a global lock, so files need
            processes to read in parallel).
        prefetch: batches read ahead (per worker).
        num_threads: threads reading batches concurrently (per worker).
    """
    import functools

    import grain

    if num_workers < 0 or prefetch < 1:
        raise ValueError(f"need num_workers >= 0 and prefetch >= 1, got {num_workers}, {prefetch}")
    stop = np.iinfo(np.int64).max if stop_step is None else stop_step
    steps = grain.MapDataset.range(start_step, max(stop, start_step))
    ds = steps.map(functools.partial(_numbered, batch_fn)).to_iter_dataset(
        grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)
    )
    if num_workers:
        from absl import flags

        # grain's worker pool reads absl flags; outside an absl app take their defaults.
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        ds = ds.mp_prefetch(
            grain.MultiprocessingOptions(num_workers=num_workers, per_worker_buffer_size=prefetch)
        )
    it = iter(ds)
    try:
        yield from it
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
