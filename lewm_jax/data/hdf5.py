"""Reader (and writer) for stable-worldmodel's HDF5 dataset layout.

The official files (``$STABLEWM_HOME/<name>.h5``, e.g. ``pusht_expert_train.h5``,
``tworoom.h5``) hold one flat array per column over all steps of all episodes:
``pixels`` uint8 ``(N, H, W, 3)``, ``action`` ``(N, A)``, optional ``proprio`` and
``state``, the episode table ``ep_len``/``ep_offset`` ``(E,)``, and the index columns
``ep_idx`` or ``episode_idx`` and ``step_idx`` ``(N,)``. Columns are Blosc-compressed;
reading them needs the optional ``hdf5plugin`` package (``pip install hdf5plugin``).

Frames are resized to the model's image size in chunks (area-averaging antialiased
bilinear), optionally into a ``.npy`` memory map so datasets larger than memory work.
Shape letters: N steps, E episodes, H/W pixels, A action dim, P state dim.
"""

import os
from pathlib import Path

import numpy as np

from lewm_jax.data.episodes import Episodes

try:  # registers the Blosc filter with h5py when installed
    import hdf5plugin  # noqa: F401
except ImportError:
    hdf5plugin = None

REQUIRED = ("pixels", "action", "ep_len", "ep_offset")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("reading HDF5 datasets needs h5py: pip install h5py hdf5plugin") from None
    return h5py


def _read(f, path: str, name: str, rows=slice(None)) -> np.ndarray:
    try:
        return f[name][rows]
    except OSError as e:
        hint = "" if hdf5plugin else " (install hdf5plugin for Blosc-compressed columns)"
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


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bilinear resize of uint8 ``(N, H, W, 3)`` to ``(N, size, size, 3)``."""
    if frames.shape[1:3] == (size, size):
        return frames
    import jax
    import jax.numpy as jnp

    out = jax.image.resize(
        jnp.asarray(frames, jnp.float32), (len(frames), size, size, 3), "linear", antialias=True
    )
    return np.asarray(jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8))


def load_hdf5(
    path: str | os.PathLike,
    *,
    image_size: int | None = None,
    max_episodes: int | None = None,
    state_field: str = "state",
    cache: str | os.PathLike | None = None,
    chunk: int = 2048,
) -> Episodes:
    """Loads an official stable-worldmodel HDF5 file as :class:`Episodes`.

    Args:
        path: the ``.h5`` file.
        image_size: resize frames to this side (None keeps the stored size).
        max_episodes: keep only the first E episodes (by ``ep_offset`` order).
        state_field: column used as the physical state (``state`` or ``proprio``), if present.
        cache: optional ``.npy`` path for the (resized) pixels as a memory map.
        chunk: frames resized per call.

    Returns:
        Episodes with re-based offsets over the kept episodes.
    """
    path = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"dataset file {path!r} does not exist")
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise OSError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        n, e = _check_layout(f, path)
        ep_len = _read(f, path, "ep_len").astype(np.int64)
        ep_offset = _read(f, path, "ep_offset").astype(np.int64)
        if np.any(ep_offset + ep_len > n) or np.any(ep_len < 0):
            bad = int(np.argmax((ep_offset + ep_len > n) | (ep_len < 0)))
            raise ValueError(
                f"{path}: episode {bad} (ep_offset {ep_offset[bad]}, ep_len {ep_len[bad]}) "
                f"runs past the {n} stored steps (truncated file?)"
            )
        order = np.argsort(ep_offset)[: max_episodes or e]
        ep_offset, ep_len = ep_offset[order], ep_len[order]
        keep = np.concatenate([np.arange(o, o + m) for o, m in zip(ep_offset, ep_len, strict=True)])
        _check_indices(f, path, keep, ep_len)
        h, w = f["pixels"].shape[1:3]
        size = image_size or h
        if image_size is None and h != w:
            raise ValueError(f"{path}: frames are {h}x{w}; pass image_size to make them square")
        shape = (len(keep), size, size, 3)
        pixels = (
            np.lib.format.open_memmap(cache, mode="w+", dtype=np.uint8, shape=shape)
            if cache
            else np.empty(shape, np.uint8)
        )
        for i in range(0, len(keep), chunk):
            rows = keep[i : i + chunk]
            pixels[i : i + len(rows)] = resize_frames(_read(f, path, "pixels", _runs(rows)), size)
        actions = _read(f, path, "action")[keep].astype(np.float32)
        state = (
            _read(f, path, state_field)[keep].astype(np.float32).reshape(len(keep), -1)
            if state_field in f
            else None
        )
    new_offset = np.concatenate([[0], np.cumsum(ep_len)[:-1]]).astype(np.int64)
    return Episodes(pixels, actions, new_offset, ep_len, state)


def _runs(rows: np.ndarray):
    """h5py reads contiguous slices fastest; ``rows`` usually are one."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _check_indices(f, path: str, keep: np.ndarray, ep_len: np.ndarray) -> None:
    """``step_idx`` must count 0..len-1 inside each kept episode, when present."""
    if "step_idx" not in f:
        return
    step = _read(f, path, "step_idx")[keep]
    expected = np.concatenate([np.arange(m) for m in ep_len])
    if not np.array_equal(step, expected):
        bad = int(np.argmax(step != expected))
        raise ValueError(
            f"{path}: field 'step_idx' is {step[bad]} at kept row {bad}, expected "
            f"{expected[bad]} from ep_offset/ep_len"
        )


def write_hdf5(path: str | os.PathLike, episodes: Episodes, *, compression=None) -> None:
    """Writes ``episodes`` in the official layout (``compression`` e.g. ``"gzip"``)."""
    h5py = _h5py()
    n = len(episodes.pixels)
    ep_idx = np.repeat(np.arange(len(episodes.ep_len)), episodes.ep_len)
    step_idx = np.concatenate([np.arange(m) for m in episodes.ep_len])
    tmp = Path(str(path) + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("pixels", data=episodes.pixels, compression=compression)
        f.create_dataset("action", data=episodes.actions)
        if episodes.state is not None:
            f.create_dataset("state", data=episodes.state)
        f.create_dataset("ep_len", data=episodes.ep_len)
        f.create_dataset("ep_offset", data=episodes.ep_offset)
        f.create_dataset("ep_idx", data=ep_idx[:n])
        f.create_dataset("step_idx", data=step_idx[:n])
    os.replace(tmp, path)  # never leaves a half-written file under the final name
