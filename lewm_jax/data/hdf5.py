"""Reader (and writer) for stable-worldmodel's HDF5 dataset layout.

The official files (``$STABLEWM_HOME/<name>.h5``, e.g. ``pusht_expert_train.h5``,
``tworoom.h5``) hold one flat array per column over all steps of all episodes:
``pixels`` uint8 ``(N, H, W, 3)``, ``action`` ``(N, A)``, optional ``proprio`` and
``state``, the episode table ``ep_len``/``ep_offset`` ``(E,)``, and the index columns
``ep_idx`` or ``episode_idx`` and ``step_idx`` ``(N,)``. Columns are Blosc-compressed;
reading them needs ``hdf5plugin``; both it and h5py come with ``pip install 'lewm_jax[data]'``.

:class:`HDF5Store` reads clips on demand (random access to chunks, Blosc included; no
copy and no cache file), resizing frames to the model's image size on the fly;
:func:`load_hdf5` reads a whole (small) file into memory for analysis.
Shape letters: N steps, E episodes, H/W pixels, A action dim, P state dim.
"""

import os
from pathlib import Path

import numpy as np

from lewm_jax._deps import require
from lewm_jax.data.episodes import Episodes, episode_offsets
from lewm_jax.data.stores import action_rows, frame_rows
from lewm_jax.frames import resize_frames

try:  # registers the Blosc filter with h5py when installed
    import hdf5plugin  # noqa: F401
except ImportError:
    hdf5plugin = None

REQUIRED = ("pixels", "action", "ep_len", "ep_offset")


def _h5py():
    require("lewm_jax.data.hdf5", "data", "h5py")
    import h5py

    return h5py


def _read(f, path: str, name: str, rows=slice(None)) -> np.ndarray:
    try:
        return f[name][rows]
    except OSError as e:
        hint = "" if hdf5plugin else " (Blosc needs hdf5plugin: pip install 'lewm_jax[data]')"
        raise OSError(f"{path}: cannot read field {name!r}: {e}{hint}") from None


def _check_layout(f, path: str) -> tuple[int, int]:
    """Validates the columns; returns ``(N, E)``."""
    missing = [k for k in REQUIRED if k not in f]
    if missing:
        raise ValueError(f"{path}: missing field(s) {missing}; found {sorted(f.keys())}")
    px = f["pixels"]
    if px.ndim != 4 or px.shape[-1] != 3 or px.dtype != np.uint8:
        raise ValueError(
            f"{path}: field 'pixels' must be uint8 (N, H, W, 3), got {px.dtype} {px.shape}"
        )
    n = px.shape[0]
    for name in ("action", "proprio", "state", "ep_idx", "episode_idx", "step_idx"):
        if name in f and f[name].shape[0] != n:
            raise ValueError(
                f"{path}: field {name!r} has {f[name].shape[0]} rows, 'pixels' has {n}"
            )
    if f["ep_len"].shape != f["ep_offset"].shape or f["ep_len"].ndim != 1:
        raise ValueError(
            f"{path}: fields 'ep_len' {f['ep_len'].shape} and 'ep_offset' "
            f"{f['ep_offset'].shape} must both be (E,)"
        )
    return n, f["ep_len"].shape[0]


class HDF5Store:
    """A :class:`~lewm_jax.data.stores.ClipStore` reading an official HDF5 file on demand.

    Opening validates the layout and reads only the episode table (and ``step_idx``);
    every clip is then two strided reads (its T frames, its T * k actions), so memory does
    not grow with the file. Each process opens its own handle on first use, so the store
    can be pickled into loader workers. A file that fits in memory can be read whole once
    (:meth:`load`): clips are then copies from memory, the same rows as streamed.

    Args:
        path: the ``.h5`` file.
        image_size: resize frames to this side on the fly (None keeps the stored size).
        max_episodes: keep only the first E episodes (by ``ep_offset`` order).
        state_field: column used as the physical state (``state`` or ``proprio``), if present.
        chunk: rows per read of :meth:`action_chunks`, :meth:`pixel_chunks` and
            :meth:`to_episodes`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        image_size: int | None = None,
        max_episodes: int | None = None,
        state_field: str = "state",
        chunk: int = 2048,
    ):
        self.path, self.state_field, self.chunk = str(path), state_field, chunk
        if not Path(self.path).is_file():
            raise FileNotFoundError(f"dataset file {self.path!r} does not exist")
        self._file, self._pid = None, None
        f = self._h5()
        n, e = _check_layout(f, self.path)
        ep_len = _read(f, self.path, "ep_len").astype(np.int64)
        ep_offset = _read(f, self.path, "ep_offset").astype(np.int64)
        if np.any(ep_offset + ep_len > n) or np.any(ep_len < 0) or np.any(ep_offset < 0):
            bad = int(np.argmax((ep_offset + ep_len > n) | (ep_len < 0) | (ep_offset < 0)))
            raise ValueError(
                f"{self.path}: episode {bad} (ep_offset {ep_offset[bad]}, ep_len "
                f"{ep_len[bad]}) runs past the {n} stored steps (truncated file?)"
            )
        order = np.argsort(ep_offset, kind="stable")[: max_episodes or e]
        self.ep_offset, self.ep_len = ep_offset[order], ep_len[order]
        _check_indices(f, self.path, self.ep_offset, self.ep_len)
        h, w = f["pixels"].shape[1:3]
        if image_size is None and h != w:
            raise ValueError(f"{self.path}: frames are {h}x{w}; set image_size to make them square")
        self.size = image_size or h
        self.frame_shape = (self.size, self.size, 3)
        self.action_dim = int(np.prod(f["action"].shape[1:]))
        self.env = str(f.attrs.get("env", ""))  # "" in files not written by write_hdf5
        self.num_rows = n
        self._pixels = self._actions = None  # the whole columns, once load() has run

    def _h5(self):
        """This process's handle (h5py handles do not survive pickling or fork)."""
        if self._file is None or self._pid != os.getpid():
            try:
                self._file = _h5py().File(self.path, "r")
            except OSError as e:
                raise OSError(f"{self.path}: not a readable HDF5 file ({e})") from None
            self._pid = os.getpid()
        return self._file

    def __getstate__(self):
        return {**self.__dict__, "_file": None, "_pid": None}

    @property
    def frames_nbytes(self) -> int:
        """Bytes of every stored frame at ``image_size``: what :meth:`load` keeps in memory."""
        return self.num_rows * int(np.prod(self.frame_shape))

    def load(self) -> "HDF5Store":
        """Reads the pixel and action columns into memory once (decompressed and resized).

        Streaming decompresses every frame of every clip again in the loader's threads;
        from memory a clip is a copy, which pays where reading, not the train step, limits
        a run. Rows keep their file numbering, so every clip holds what it holds streamed.
        """
        f, n = self._h5(), self.num_rows
        pixels = np.empty((n, *self.frame_shape), np.uint8)
        for i in range(0, n, self.chunk):
            rows = slice(i, min(i + self.chunk, n))
            pixels[rows] = resize_frames(_read(f, self.path, "pixels", rows), self.size)
        actions = _read(f, self.path, "action").reshape(n, self.action_dim)
        self._pixels, self._actions = pixels, actions.astype(np.float32)
        return self

    def read_clips(self, starts, num_frames, frameskip):
        if self._pixels is not None:
            return (
                self._pixels[frame_rows(starts, num_frames, frameskip)],
                self._actions[action_rows(starts, num_frames, frameskip)],
            )
        f, t, k = self._h5(), num_frames, frameskip
        pixels = np.empty((len(starts), t, *self.frame_shape), np.uint8)
        actions = np.empty((len(starts), t * k, self.action_dim), np.float32)
        for i, s in enumerate(np.asarray(starts, np.int64).tolist()):
            # Frame by frame: h5py 3.16 reads a strided slice 100-400x slower than T single
            # rows (measured by experiments/bench/loader_speed.py); only their chunks are read.
            frames = np.stack([_read(f, self.path, "pixels", s + j * k) for j in range(t)])
            pixels[i] = resize_frames(frames, self.size)
            raw = _read(f, self.path, "action", slice(s, s + t * k))
            actions[i] = raw.reshape(t * k, self.action_dim)
        return pixels, actions

    def _kept_runs(self, max_episodes: int | None = None):
        """Row slices of the (first ``max_episodes``) kept episodes, in chunks."""
        kept = slice(0, max_episodes)
        for off, n in zip(self.ep_offset[kept].tolist(), self.ep_len[kept].tolist(), strict=True):
            for i in range(off, off + n, self.chunk):
                yield slice(i, min(i + self.chunk, off + n))

    def action_chunks(self):
        f = self._h5()
        for rows in _merged(self._kept_runs(), self.chunk):
            yield _read(f, self.path, "action", rows).reshape(-1, self.action_dim)

    def pixel_chunks(self):
        """The kept episodes' frames (resized to ``image_size``), at most ``chunk`` rows at a
        time, in :meth:`to_episodes` order: a pass over a file larger than memory."""
        f = self._h5()
        for rows in _merged(self._kept_runs(), self.chunk):
            yield resize_frames(_read(f, self.path, "pixels", rows), self.size)

    def to_episodes(self, max_episodes: int | None = None) -> Episodes:
        """The first ``max_episodes`` (default all) kept episodes in memory, offsets re-based
        (small files and analysis only)."""
        ep_len = self.ep_len[:max_episodes]
        f, total = self._h5(), int(ep_len.sum())
        pixels = np.empty((total, *self.frame_shape), np.uint8)
        actions = np.empty((total, self.action_dim), np.float32)
        has_state = self.state_field in f
        states, i = [], 0
        for rows in _merged(self._kept_runs(max_episodes), self.chunk):
            m = rows.stop - rows.start
            pixels[i : i + m] = resize_frames(_read(f, self.path, "pixels", rows), self.size)
            actions[i : i + m] = _read(f, self.path, "action", rows).reshape(m, -1)
            if has_state:
                states.append(_read(f, self.path, self.state_field, rows).reshape(m, -1))
            i += m
        state = np.concatenate(states).astype(np.float32) if has_state else None
        return Episodes(pixels, actions, episode_offsets(ep_len), ep_len.copy(), state)


def load_hdf5(path: str | os.PathLike, **kwargs) -> Episodes:
    """Loads an official stable-worldmodel HDF5 file into memory (see :class:`HDF5Store`)."""
    return HDF5Store(path, **kwargs).to_episodes()


def _merged(runs, limit: int):
    """Joins consecutive row slices into reads of at most ``limit`` rows."""
    cur = None
    for r in runs:
        if cur is not None and cur.stop == r.start and r.stop - cur.start <= limit:
            cur = slice(cur.start, r.stop)
            continue
        if cur is not None:
            yield cur
        cur = r
    if cur is not None:
        yield cur


def _check_indices(f, path: str, ep_offset: np.ndarray, ep_len: np.ndarray) -> None:
    """``step_idx`` must count 0..len-1 inside each kept episode, when present.

    Read one episode at a time: the index column, not the data, passes through memory.
    """
    if "step_idx" not in f:
        return
    for e, (off, n) in enumerate(zip(ep_offset.tolist(), ep_len.tolist(), strict=True)):
        step = _read(f, path, "step_idx", slice(off, off + n)) if n else np.zeros(0)
        if not np.array_equal(step, np.arange(n)):
            bad = int(np.argmax(step != np.arange(n)))
            raise ValueError(
                f"{path}: field 'step_idx' is {step[bad]} at row {off + bad} (step {bad} of "
                f"episode {e} from ep_offset/ep_len), expected {bad}"
            )


def _filter(compression) -> dict:
    """create_dataset keywords of ``compression``: None, ``"gzip"`` or ``"blosc"``."""
    if compression is None:
        return {}
    if compression == "gzip":
        return {"compression": "gzip"}
    if compression == "blosc":
        if hdf5plugin is None:
            raise ImportError(
                "writing Blosc-compressed HDF5 needs hdf5plugin: pip install 'lewm_jax[data]'"
            )
        # What the official files use: Blosc LZ4 with byte shuffle.
        return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
    raise ValueError(f"compression must be None, 'gzip' or 'blosc', got {compression!r}")


class HDF5Writer:
    """Writes episodes in the official layout as they come, so that a collection larger than
    memory goes to disk a batch at a time (``python -m data.collect_host``).

    Columns grow as :meth:`append` adds episodes; :meth:`close` writes the episode table
    and index columns. The file is written as ``<path>.tmp`` and renamed only when closed
    without error, so a failed or killed collection never leaves a half-written file under
    the final name, nor touches a file already there.

    Args:
        path: the ``.h5`` file.
        env: id of the environment that made the episodes, stored as the file's ``env``
            attribute (the official files have none), so that training refuses the file
            for another environment.
        compression: ``None``, ``"gzip"`` or ``"blosc"`` (pixels only).
        frames_per_chunk: frames per HDF5 chunk of ``pixels``.
    """

    def __init__(self, path, *, env: str = "", compression=None, frames_per_chunk: int = 1):
        self.path, self.tmp = Path(path), Path(str(path) + ".tmp")
        self._filter, self._frames_per_chunk = _filter(compression), frames_per_chunk
        self._file = _h5py().File(self.tmp, "w")
        if env:
            self._file.attrs["env"] = env
        self._lens = []

    def _grow(self, name: str, rows: np.ndarray, chunks=True, **kwargs) -> None:
        f = self._file
        if name not in f:
            f.create_dataset(
                name, data=rows, maxshape=(None, *rows.shape[1:]), chunks=chunks, **kwargs
            )
            return
        n = f[name].shape[0]
        f[name].resize(n + len(rows), axis=0)
        f[name][n:] = rows

    def append(self, episodes: Episodes) -> None:
        """Adds ``episodes`` after those already written."""
        has_state = episodes.state is not None
        if self._lens and has_state != ("state" in self._file):
            raise ValueError(f"{self.path}: every batch of episodes must have state, or none")
        chunk = (self._frames_per_chunk, *episodes.pixels.shape[1:])
        self._grow("pixels", episodes.pixels, chunks=chunk, **self._filter)
        self._grow("action", episodes.actions)
        if has_state:
            self._grow("state", episodes.state)
        self._lens.append(np.asarray(episodes.ep_len, np.int64))

    def close(self) -> None:
        """Writes the episode table and index columns, then renames the file into place."""
        f = self._file
        ep_len = np.concatenate(self._lens) if self._lens else np.zeros(0, np.int64)
        ep_offset = episode_offsets(ep_len)
        f.create_dataset("ep_len", data=ep_len)
        f.create_dataset("ep_offset", data=ep_offset)
        f.create_dataset("ep_idx", data=np.repeat(np.arange(len(ep_len)), ep_len))
        f.create_dataset("step_idx", data=np.arange(ep_len.sum()) - np.repeat(ep_offset, ep_len))
        f.close()
        os.replace(self.tmp, self.path)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self._file.close()
            self.tmp.unlink(missing_ok=True)


def write_hdf5(
    path: str | os.PathLike,
    episodes: Episodes,
    *,
    env: str = "",
    compression=None,
    frames_per_chunk: int = 1,
) -> None:
    """Writes ``episodes`` in the official layout, all at once (:class:`HDF5Writer`, which
    takes the same arguments, appends batch by batch)."""
    with HDF5Writer(
        path, env=env, compression=compression, frames_per_chunk=frames_per_chunk
    ) as writer:
        writer.append(episodes)
