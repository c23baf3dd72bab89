"""Random access to clips: the one interface every dataset is read through.

A *clip store* holds episodes in the stable-worldmodel layout (flat columns over all steps,
plus ``ep_offset``/``ep_len``) and reads clips on demand: the T frames at a clip's frame
offsets and the T * k actions after its start. ``MemoryStore`` wraps :class:`Episodes`
held in memory; ``hdf5.HDF5Store`` and the TFDS store read files chunk by chunk, so memory
does not grow with the dataset. Stores are picklable (file handles open lazily in each
process), so grain's worker processes can read from them. This module and the stores
import no JAX: grain's workers start with ``spawn`` and stay light.
Shape letters: N steps, E episodes, B clips, T frames, k frameskip, H/W pixels, A action dim.
"""

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from lewm_jax.data.episodes import Episodes


class ClipStore(Protocol):
    """What :class:`~lewm_jax.data.clips.ClipSource` needs of a dataset.

    Attributes:
        ep_offset: first step of each episode ``(E,)`` int64 (rows of the store).
        ep_len: steps of each episode ``(E,)`` int64.
        action_dim: A.
        frame_shape: ``(H, W, 3)`` of the frames ``read_clips`` returns.
    """

    ep_offset: np.ndarray
    ep_len: np.ndarray
    action_dim: int
    frame_shape: tuple[int, int, int]

    def read_clips(
        self, starts: np.ndarray, num_frames: int, frameskip: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pixels ``(B, T, H, W, 3)`` uint8 and raw actions ``(B, T * k, A)`` float32."""

    def action_chunks(self) -> Iterator[np.ndarray]:
        """The action column in chunks ``(n, A)``, for one streaming pass over it."""

    def to_episodes(self, max_episodes: int | None = None) -> Episodes:
        """The first ``max_episodes`` (default all) episodes in memory, for analysis."""


def frame_rows(starts: np.ndarray, num_frames: int, frameskip: int) -> np.ndarray:
    """Rows ``(B, T)`` of the frames of clips starting at ``starts (B,)``."""
    return np.asarray(starts)[:, None] + frameskip * np.arange(num_frames)


def action_rows(starts: np.ndarray, num_frames: int, frameskip: int) -> np.ndarray:
    """Rows ``(B, T * k)`` of the actions of clips starting at ``starts (B,)``."""
    return np.asarray(starts)[:, None] + np.arange(num_frames * frameskip)


class MemoryStore:
    """A :class:`ClipStore` over :class:`Episodes` held in memory (collected datasets).

    Args:
        episodes: the data.
        chunk: rows per chunk of :meth:`action_chunks`.
    """

    def __init__(self, episodes: Episodes, *, chunk: int = 65536):
        self.episodes, self.chunk = episodes, chunk
        self.ep_offset = np.asarray(episodes.ep_offset, np.int64)
        self.ep_len = np.asarray(episodes.ep_len, np.int64)
        self.action_dim = episodes.action_dim
        self.frame_shape = tuple(episodes.pixels.shape[1:])

    def read_clips(self, starts, num_frames, frameskip):
        e = self.episodes
        return (
            e.pixels[frame_rows(starts, num_frames, frameskip)],
            np.asarray(e.actions[action_rows(starts, num_frames, frameskip)], np.float32),
        )

    def action_chunks(self):
        actions = self.episodes.actions
        for i in range(0, len(actions), self.chunk):
            yield actions[i : i + self.chunk]

    def to_episodes(self, max_episodes: int | None = None) -> Episodes:
        if max_episodes is not None and max_episodes < len(self.ep_len):
            raise ValueError(
                f"a dataset in memory is used whole, not its first {max_episodes} episodes"
            )
        return self.episodes
