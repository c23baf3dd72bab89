"""The stable-worldmodel HDF5 layout: reading, resizing, round trip and bad files."""

import pickle

import h5py
import numpy as np
import pytest

from lewm_jax.data.clips import ClipSource
from lewm_jax.data.episodes import Episodes
from lewm_jax.data.hdf5 import HDF5Store, load_hdf5, write_hdf5
from lewm_jax.frames import resize_frames


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


def test_max_episodes_and_proprio(tmp_path):
    path = _official_file(tmp_path / "d.h5", index_name="ep_idx")
    eps = load_hdf5(path, max_episodes=1, state_field="proprio", image_size=24)
    assert eps.pixels.shape[0] == 30 and eps.state.shape == (30, 4)


@pytest.mark.parametrize("compression", [None, "blosc"])
def test_streamed_clips_equal_clips_from_memory(tmp_path, compression):
    """The store reads clips on demand (resized on the fly) exactly as loading everything."""
    write_hdf5(
        tmp_path / "s.h5", load_hdf5(_official_file(tmp_path / "a.h5")), compression=compression
    )
    store = HDF5Store(tmp_path / "s.h5", image_size=16)
    assert store.frame_shape == (16, 16, 3) and store.action_dim == 2
    memory = load_hdf5(tmp_path / "s.h5", image_size=16)
    args = dict(batch_size=4, seed=5, train_fraction=1.0)
    streamed, loaded = ClipSource(store, **args), ClipSource(memory, **args)
    np.testing.assert_allclose(streamed.action_mean, loaded.action_mean, rtol=1e-6)
    np.testing.assert_allclose(streamed.action_std, loaded.action_std, rtol=1e-6)
    for step in (0, 3):
        a, b = streamed.batch(step), loaded.batch(step)
        np.testing.assert_array_equal(a["pixels"], b["pixels"])
        np.testing.assert_allclose(a["actions"], b["actions"], atol=1e-6)
    again = pickle.loads(pickle.dumps(store))  # what a grain worker process receives
    np.testing.assert_array_equal(
        again.read_clips(np.array([7]), 4, 5)[0], store.read_clips(np.array([7]), 4, 5)[0]
    )


def test_a_file_read_into_memory_gives_the_streamed_clips(tmp_path):
    """load() keeps the file's row numbering: episodes stored out of order, after a row no
    episode holds, give the same batches as streaming; open_store loads by data.in_memory_gb."""
    from lewm_jax.data import datasets

    path = _official_file(tmp_path / "g.h5", lens=(60, 50, 1), size=16)
    with h5py.File(path, "a") as f:  # episode 0 after episode 1, row 110 in no episode
        f["ep_len"][...], f["ep_offset"][...] = [60, 50, 0], [50, 0, 110]
        f["step_idx"][...] = np.concatenate([np.arange(50), np.arange(60), [0]])
    args = dict(batch_size=4, seed=3, train_fraction=0.8)
    streamed = ClipSource(HDF5Store(path, image_size=16), **args)
    store = HDF5Store(path, image_size=16)
    assert store.frames_nbytes == 111 * 16 * 16 * 3
    loaded = ClipSource(store.load(), **args)
    for split in ("train", "val"):
        a = ClipSource(HDF5Store(path, image_size=16), split=split, **args)
        b = ClipSource(store, split=split, **args)
        for step in (0, 2):
            x, y = a.batch(step), b.batch(step)
            np.testing.assert_array_equal(x["pixels"], y["pixels"])
            np.testing.assert_array_equal(x["actions"], y["actions"])
    np.testing.assert_array_equal(streamed.batch(1)["pixels"], loaded.batch(1)["pixels"])
    config = _hdf5_config(path, image_size=16, in_memory_gb=111 * 768 / 2**30).unlock().data
    assert datasets.open_store(config, 0)._pixels is not None  # exactly at the limit
    # A pass over the actions (a run's action statistics) streams even then.
    assert datasets.open_store(config, 0, in_memory=False)._pixels is None
    config.in_memory_gb = 110 * 768 / 2**30
    assert datasets.open_store(config, 0)._pixels is None
    config.in_memory_gb = -1.0
    with pytest.raises(ValueError, match="data.in_memory_gb must be >= 0, got -1.0"):
        datasets.check_data_config(config)


def test_grain_workers_deliver_the_batches_in_step_order(tmp_path):
    path = _official_file(tmp_path / "w.h5", lens=(60, 50), size=16)
    src = ClipSource(HDF5Store(path), batch_size=4, seed=2, train_fraction=1.0)
    it = src.iterate(3, 8, num_workers=2)
    got = list(it)
    assert [s for s, _ in got] == [3, 4, 5, 6, 7]
    for step, batch in got:
        np.testing.assert_array_equal(batch["pixels"], src.batch(step)["pixels"])


def test_write_then_read_round_trip(tmp_path):
    src = load_hdf5(_official_file(tmp_path / "a.h5"))
    write_hdf5(tmp_path / "b.h5", src, env="TwoRoom-v0", compression="gzip")
    back = load_hdf5(tmp_path / "b.h5")
    assert HDF5Store(tmp_path / "b.h5").env == "TwoRoom-v0"
    assert HDF5Store(tmp_path / "a.h5").env == ""  # the official files record none
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
    with pytest.raises(ValueError, match=r"'step_idx' is 99 at row 5 \(step 5 of episode 0"):
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


def _hdf5_config(path, **data):
    from experiments.configs.lewm import get_config

    config = get_config("test").unlock()
    config.data.update(name="hdf5", path=str(path), **data)
    config.planning.enabled = False
    config.total_steps = 2
    return config.lock()


def test_training_streams_the_file_through_grain_workers(tmp_path):
    """A 24 px file trained at 32 px: clips read on demand by a worker process, resized."""
    from lewm_jax.data.episodes import action_stats
    from lewm_jax.run import train_and_evaluate
    from lewm_jax.training import run_dir

    path = _official_file(tmp_path / "d.h5", lens=(100, 100, 100))
    summary = train_and_evaluate(_hdf5_config(path, num_workers=1), str(tmp_path / "run"))
    assert summary["steps_run"] == 2
    with h5py.File(path) as f:
        want = action_stats(f["action"][:])
    got = run_dir.read_action_stats(tmp_path / "run")
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)


@pytest.mark.parametrize("problem", ["missing", "not_hdf5", "action_dim", "other_env"])
def test_bad_dataset_files_fail_in_one_line_before_the_workdir_is_made(tmp_path, problem):
    from lewm_jax.run import train_and_evaluate

    path = tmp_path / "d.h5"
    if problem == "not_hdf5":
        path.write_text("not an HDF5 file\n")
    elif problem in ("action_dim", "other_env"):
        _official_file(path)
    if problem == "other_env":
        write_hdf5(path, load_hdf5(path), env="PushT-v0")
    match = {
        "missing": "does not exist",
        "not_hdf5": "not a readable HDF5 file",
        "action_dim": "dataset actions have dimension 2, but data.action_dim is 3",
        "other_env": "episodes of environment 'PushT-v0', but data.env is 'Reacher-v0'",
    }[problem]
    bad = dict(env="Reacher-v0") if problem == "other_env" else dict(action_dim=3)
    with pytest.raises((ValueError, OSError), match=match) as e:
        train_and_evaluate(_hdf5_config(path, **bad), str(tmp_path / "run"))
    message = str(e.value)
    assert len(message.splitlines()) == 1
    assert problem == "action_dim" or str(path) in message  # names the file
    assert not (tmp_path / "run").exists()
