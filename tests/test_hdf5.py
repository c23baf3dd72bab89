"""The stable-worldmodel HDF5 layout: reading, resizing, round trip and bad files."""

import h5py
import numpy as np
import pytest

from lewm_jax.data.clips import ClipSource
from lewm_jax.data.episodes import Episodes
from lewm_jax.data.hdf5 import load_hdf5, resize_frames, write_hdf5


def _official_file(path, lens=(30, 22), size=24, index_name="episode_idx"):
    """A file written column by column as stable-worldmodel does (not via write_hdf5)."""
    n = sum(lens)
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["pixels"] = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        f["action"] = rng.standard_normal((n, 2)).astype(np.float32)
        f["proprio"] = rng.standard_normal((n, 4)).astype(np.float32)
        f["state"] = rng.standard_normal((n, 5)).astype(np.float64)
        f["ep_len"] = np.array(lens)
        f["ep_offset"] = np.cumsum((0,) + lens[:-1])
        f[index_name] = np.repeat(np.arange(len(lens)), lens)
        f["step_idx"] = np.concatenate([np.arange(m) for m in lens])
    return path


def test_reads_the_official_layout_and_feeds_clips(tmp_path):
    path = _official_file(tmp_path / "tworoom.h5")
    eps = load_hdf5(path, image_size=16)
    assert isinstance(eps, Episodes)
    assert eps.pixels.shape == (52, 16, 16, 3) and eps.pixels.dtype == np.uint8
    assert eps.state.shape == (52, 5) and eps.state.dtype == np.float32
    np.testing.assert_array_equal(eps.ep_len, [30, 22])
    with h5py.File(path) as f:
        np.testing.assert_array_equal(eps.actions, f["action"][:])
        np.testing.assert_array_equal(load_hdf5(path).pixels, f["pixels"][:])
    batch = ClipSource(eps, batch_size=4, seed=0, train_fraction=1.0).batch(0)
    assert batch["pixels"].shape == (4, 4, 16, 16, 3) and batch["actions"].shape == (4, 4, 10)


def test_max_episodes_cache_and_proprio(tmp_path):
    path = _official_file(tmp_path / "d.h5", index_name="ep_idx")
    eps = load_hdf5(
        path, max_episodes=1, state_field="proprio", cache=tmp_path / "px.npy", image_size=24
    )
    assert eps.pixels.shape[0] == 30 and eps.state.shape == (30, 4)
    assert isinstance(eps.pixels, np.memmap)
    np.testing.assert_array_equal(np.load(tmp_path / "px.npy"), eps.pixels)


def test_write_then_read_round_trip(tmp_path):
    src = load_hdf5(_official_file(tmp_path / "a.h5"))
    write_hdf5(tmp_path / "b.h5", src, compression="gzip")
    back = load_hdf5(tmp_path / "b.h5")
    for a, b in zip(
        (src.pixels, src.actions, src.ep_len, src.ep_offset, src.state),
        (back.pixels, back.actions, back.ep_len, back.ep_offset, back.state),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


def test_resize_is_antialiased_and_exact_for_constant_frames():
    frames = np.full((2, 32, 32, 3), 77, np.uint8)
    np.testing.assert_array_equal(resize_frames(frames, 8), np.full((2, 8, 8, 3), 77, np.uint8))
    checker = (np.indices((32, 32)).sum(0) % 2 * 255).astype(np.uint8)
    small = resize_frames(np.repeat(checker[None, ..., None], 3, -1), 8)
    assert np.all(np.abs(small.astype(int) - 128) <= 2)  # averaged, not aliased


def test_missing_field_is_named(tmp_path):
    path = _official_file(tmp_path / "d.h5")
    with h5py.File(path, "a") as f:
        del f["ep_offset"]
    with pytest.raises(ValueError, match=r"d.h5: missing field\(s\) \['ep_offset'\]"):
        load_hdf5(path)


def test_truncated_columns_are_rejected_with_the_field(tmp_path):
    path = _official_file(tmp_path / "d.h5")
    with h5py.File(path, "a") as f:
        a = f["action"][:40]
        del f["action"]
        f["action"] = a
    with pytest.raises(ValueError, match="field 'action' has 40 rows, 'pixels' has 52"):
        load_hdf5(path)
    with h5py.File(path, "a") as f:
        del f["action"]
        f["action"] = np.zeros((52, 2), np.float32)
        f["ep_len"][1] = 40
    with pytest.raises(ValueError, match="episode 1 .* runs past the 52 stored steps"):
        load_hdf5(path)


def test_inconsistent_step_index_and_bad_pixels(tmp_path):
    path = _official_file(tmp_path / "d.h5")
    with h5py.File(path, "a") as f:
        f["step_idx"][5] = 99
    with pytest.raises(ValueError, match="'step_idx' is 99 at kept row 5, expected 5"):
        load_hdf5(path)
    with h5py.File(path, "a") as f:
        del f["pixels"]
        f["pixels"] = np.zeros((52, 8, 8, 3), np.float32)
    with pytest.raises(ValueError, match="'pixels' must be uint8"):
        load_hdf5(path)


def test_corrupt_and_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_hdf5(tmp_path / "nope.h5")
    good = _official_file(tmp_path / "d.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(good[: len(good) // 3])
    with pytest.raises(OSError, match="cut.h5"):
        load_hdf5(tmp_path / "cut.h5")
