"""Real dataset faults: truncated or mislaid-out TFDS files, and the data order on resume.

Each damaged dataset is a copy of one really built with ``lewm_jax.data.tfds`` and is
loaded through ``lewm_jax.data.datasets.load_episodes``, the path training takes.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.proto import tf_example_pb2

from experiments.configs.lewm import get_config
from lewm_jax.data.clips import ClipSource
from lewm_jax.data.datasets import load_episodes
from lewm_jax.data.episodes import Episodes
from lewm_jax.data.tfds import builder, make_config

BUILT = make_config("two_room", 16, 3, max_steps=20)
SHARD = "lewm_episodes-train.array_record-00000-of-00001"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """data_dir of a tiny Two-Room dataset, built once for the module."""
    data_dir = tmp_path_factory.mktemp("tfds")
    builder(BUILT, str(data_dir)).download_and_prepare()
    return data_dir


def _copy(built, tmp_path):
    """A damageable copy of the built data_dir and its dataset directory."""
    data_dir = tmp_path / "tfds"
    shutil.copytree(built, data_dir)
    return data_dir, data_dir / "lewm_episodes" / BUILT.name / "1.0.0"


def _load(data_dir, image_size=16):
    config = get_config("test,env=tfds")
    config.data.update(path=str(data_dir), env="TwoRoom-v0", image_size=image_size)
    config.data.update(num_episodes=3, episode_len=20)
    return load_episodes(config.data, config.seed)


def _error(data_dir, **kw) -> str:
    with pytest.raises(ValueError) as err:
        _load(data_dir, **kw)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_the_undamaged_copy_loads(built, tmp_path):
    eps = _load(_copy(built, tmp_path)[0])
    assert eps.pixels.shape == (60, 16, 16, 3) and eps.state.shape == (60, 2)


@pytest.mark.parametrize(
    "keep, problem",
    [
        # The first 64 KiB block holds the records but not the footer: they read back empty.
        (0.5, "episode record 0 has no field 'episode_idx' (expected int64 ())"),
        (0.75, "episode record 0 is unreadable (Corrupted Riegeli"),  # the footer is cut
        (0.1, "episode record 0 is unreadable (ArrayRecord file should be at least 64KB"),
    ],
)
def test_truncated_shard_is_rejected_naming_the_file(built, tmp_path, keep, problem):
    data_dir, ds = _copy(built, tmp_path)
    shard = ds / SHARD
    os.truncate(shard, int(shard.stat().st_size * keep))
    message = _error(data_dir)
    assert message.startswith(f"{shard}: {problem}") and "truncated" in message


def test_dataset_of_another_image_size_is_rejected_naming_the_field(built, tmp_path):
    # A 16 px build filed where the 24 px one belongs (copied by hand, renamed, ...).
    data_dir, ds = _copy(built, tmp_path)
    wrong = ds.parent.parent / make_config("two_room", 24, 3, max_steps=20).name
    os.rename(ds.parent, wrong)
    assert _error(data_dir, image_size=24) == (
        f"{wrong / '1.0.0' / 'features.json'}: field 'pixels' is uint8 (None, 16, 16, 3), "
        "expected uint8 (None, 24, 24, 3) for two_room_24px_3x20_seed0"
    )


def test_layout_without_a_field_is_rejected_naming_the_file_and_field(built, tmp_path):
    data_dir, ds = _copy(built, tmp_path)
    features = json.loads((ds / "features.json").read_text())
    del features["featuresDict"]["features"]["state"]
    (ds / "features.json").write_text(json.dumps(features))
    assert _error(data_dir) == (
        f"{ds / 'features.json'}: field 'state' is missing; expected float32 (None, 2)"
    )


def test_records_without_a_field_are_rejected_naming_the_file_and_field(built, tmp_path):
    # The metadata is intact but the shard was written without 'state' (another writer).
    data_dir, ds = _copy(built, tmp_path)
    source = builder(BUILT, str(data_dir)).as_data_source(split="train").data_source
    records = []
    for i in range(len(source)):
        example = tf_example_pb2.Example.FromString(source[i])
        del example.features.feature["state"]
        records.append((i, example.SerializeToString()))
    del source
    tfds.core.file_adapters.ArrayRecordFileAdapter.write_examples(ds / SHARD, records)
    assert _error(data_dir).startswith(f"{ds / SHARD}: episode record 0 has no field 'state'")


def _step_coded_episodes(lens=(30, 25, 40)) -> Episodes:
    """Episodes whose frames encode their global step, so a batch tells which clips it holds."""
    n = sum(lens)
    pixels = np.zeros((n, 2, 2, 3), np.uint8)
    pixels[..., 0] = (np.arange(n) % 256)[:, None, None]
    pixels[..., 1] = (np.arange(n) // 256)[:, None, None]
    offsets = np.cumsum((0,) + lens[:-1])
    return Episodes(pixels, np.zeros((n, 2), np.float32), offsets, np.asarray(lens))


def _clip_starts(batch) -> np.ndarray:
    first = batch["pixels"][:, 0, 0, 0].astype(np.int64)
    return first[:, 0] + 256 * first[:, 1]


def _take(src, start, stop):
    it = src.iterate(start)
    out = [next(it) for _ in range(stop - start)]
    it.close()
    return out


def test_resume_across_an_epoch_boundary_sees_every_clip_once_per_epoch():
    eps = _step_coded_episodes()

    def source():  # a fresh one per "process"
        return ClipSource(eps, batch_size=4, seed=5, train_fraction=1.0)

    per_epoch = source().steps_per_epoch
    total, cut = 2 * per_epoch + 1, per_epoch - 2  # dies two steps before the epoch ends
    resumed = _take(source(), 0, cut) + _take(source(), cut, total)
    straight = _take(source(), 0, total)
    assert [s for s, _ in resumed] == list(range(total))
    for (_, a), (_, b) in zip(resumed, straight, strict=True):
        np.testing.assert_array_equal(a["pixels"], b["pixels"])
        np.testing.assert_array_equal(a["actions"], b["actions"])
    clips = [_clip_starts(b) for _, b in resumed]
    for epoch in range(2):
        seen = np.concatenate(clips[epoch * per_epoch : (epoch + 1) * per_epoch])
        assert len(np.unique(seen)) == len(seen) == 4 * per_epoch  # none repeated
        assert set(seen) <= set(source().starts)  # only this split's clips
    assert not np.array_equal(clips[0], clips[per_epoch])  # the new epoch is reshuffled
