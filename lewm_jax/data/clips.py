"""Clips from episodes held in flat arrays: a deterministic, seedable, resumable source.

Episodes use the stable-worldmodel layout: every column is a flat array over all steps
of all episodes, plus ``ep_offset``/``ep_len``. A clip starting at step ``s`` holds the
frames ``s, s + k, ..., s + (T - 1) k`` (k = frameskip) and the T action blocks
``actions[s + i k : s + (i + 1) k]`` flattened to ``k * A`` values.

The batch of global step ``n`` is a pure function of ``(seed, n)``: epoch ``n //
steps_per_epoch`` shuffles the training clips with ``default_rng([seed, epoch])``.
Resuming at step ``n`` therefore replays exactly the clips an uninterrupted run sees.
Shape letters: N steps, E episodes, C clips, B batch, T frames, H/W pixels, A action dim.
"""

import queue
import threading

import numpy as np

from lewm_jax.data.episodes import Episodes, action_blocks, action_stats, clip_starts


class ClipSource:
    """Batches of clips for one split, as a pure function of the global step.

    Args:
        episodes: the data.
        batch_size: global batch size B.
        num_frames: T, frames per clip.
        frameskip: k, env steps between frames (actions per block).
        seed: seed of the train/val split and of the epoch shuffles.
        split: ``"train"`` or ``"val"``.
        train_fraction: fraction of clips in the training split.
        process_index: this host's index; it gets rows ``[i * B / n, (i + 1) * B / n)``.
        process_count: number of hosts n.
        stats: precomputed ``(mean, std)`` of raw actions (default: over all episodes).
    """

    def __init__(
        self,
        episodes: Episodes,
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
        self.episodes = episodes
        self.batch_size, self.num_frames, self.frameskip = batch_size, num_frames, frameskip
        self.seed, self.split = seed, split
        self.local_rows = slice(
            process_index * batch_size // process_count,
            (process_index + 1) * batch_size // process_count,
        )
        self.action_mean, self.action_std = stats or action_stats(episodes.actions)

        starts = clip_starts(episodes.ep_offset, episodes.ep_len, num_frames * frameskip)
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
        """``(H, W, 3)`` of stored frames."""
        return self.episodes.pixels.shape[1:]

    @property
    def block_dim(self) -> int:
        """Width of one action block, ``frameskip * A``."""
        return self.frameskip * self.episodes.action_dim

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
        t, k = self.num_frames, self.frameskip
        frames = starts[:, None] + k * np.arange(t)
        steps = starts[:, None] + np.arange(t * k)
        actions = self.episodes.actions[steps]
        return {
            "pixels": self.episodes.pixels[frames],
            "actions": action_blocks(actions, self.action_mean, self.action_std, k),
        }

    def batch(self, step: int) -> dict[str, np.ndarray]:
        """This host's rows of the global batch at ``step``."""
        return self.gather(self.clip_indices(step)[self.local_rows])

    def iterate(self, start_step: int = 0, prefetch: int = 2):
        """Yields ``(step, batch)`` from ``start_step`` on, gathered in a background thread."""
        buf: queue.Queue = queue.Queue(maxsize=max(prefetch, 1))
        stop = threading.Event()

        def worker():
            step = start_step
            while not stop.is_set():
                try:
                    item = (step, self.batch(step))
                except Exception as e:  # surfaced in the consumer, never swallowed
                    item = e
                while not stop.is_set():
                    try:
                        buf.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                step += 1

        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        try:
            while True:
                item = buf.get()
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            stop.set()
