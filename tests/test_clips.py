"""Clip data source: windows, z-scoring, NaN handling, determinism, resume, host slicing."""

import jax
import numpy as np
import pytest

from lewm_jax.data.clips import ClipSource
from lewm_jax.data.episodes import Episodes, action_stats, clip_starts
from lewm_jax.data.moving_dot import moving_dot_episodes


def _episodes(lens=(30, 25, 40), size=8, a=2):
    """Episodes whose pixel value encodes the global step, so clips can be checked exactly."""
    n = sum(lens)
    steps = np.arange(n)
    pixels = np.broadcast_to(
        (steps % 256).astype(np.uint8)[:, None, None, None], (n, size, size, 3)
    )
    actions = np.stack([steps * 1.0, -2.0 * steps + 3.0], 1)[:, :a].astype(np.float32)
    offsets = np.cumsum((0,) + tuple(lens[:-1]))
    actions[offsets + np.asarray(lens) - 1] = np.nan  # last action of each episode
    return Episodes(np.ascontiguousarray(pixels), actions, offsets, np.asarray(lens))


def test_clip_starts_stay_inside_episodes():
    starts = clip_starts(np.array([0, 30]), np.array([30, 10]), span=20)
    np.testing.assert_array_equal(starts, np.arange(11))  # the 10-step episode has no clip


def test_clip_frames_actions_and_zscoring():
    eps = _episodes()
    src = ClipSource(eps, batch_size=4, num_frames=4, frameskip=5, seed=0, train_fraction=1.0)
    starts = np.array([0, 3, 30, 60])
    b = src.gather(starts)
    assert b["pixels"].shape == (4, 4, 8, 8, 3) and b["pixels"].dtype == np.uint8
    assert b["actions"].shape == (4, 4, 10) and b["actions"].dtype == np.float32
    np.testing.assert_array_equal(b["pixels"][:, :, 0, 0, 0], starts[:, None] + 5 * np.arange(4))
    mean, std = action_stats(eps.actions)
    raw = eps.actions[starts[1] : starts[1] + 20].reshape(4, 5, 2)
    np.testing.assert_allclose(b["actions"][1].reshape(4, 5, 2), (raw - mean) / std, rtol=1e-6)
    np.testing.assert_allclose(mean, np.nanmean(eps.actions, 0), rtol=1e-6)


def test_nan_actions_become_zero():
    eps = _episodes(lens=(20,))
    src = ClipSource(eps, batch_size=1, seed=0, train_fraction=1.0)
    b = src.gather(np.array([0]))  # the clip's last action is the episode's NaN
    assert np.all(np.isfinite(b["actions"])) and b["actions"][0, -1, -1] == 0.0


def test_order_is_deterministic_covers_an_epoch_and_depends_on_seed():
    eps = _episodes()
    src = ClipSource(eps, batch_size=5, seed=7, train_fraction=1.0)
    again = ClipSource(eps, batch_size=5, seed=7, train_fraction=1.0)
    other = ClipSource(eps, batch_size=5, seed=8, train_fraction=1.0)
    epoch = np.concatenate([src.clip_indices(i) for i in range(src.steps_per_epoch)])
    assert len(np.unique(epoch)) == len(epoch) == src.steps_per_epoch * 5  # no repeats
    for i in range(2 * src.steps_per_epoch):
        np.testing.assert_array_equal(src.clip_indices(i), again.clip_indices(i))
    assert not np.array_equal(src.clip_indices(0), other.clip_indices(0))
    nxt = src.clip_indices(src.steps_per_epoch)  # a new epoch reshuffles
    assert not np.array_equal(nxt, src.clip_indices(0))


def test_resumed_iteration_replays_the_same_batches():
    eps = _episodes()
    src = ClipSource(eps, batch_size=4, seed=1, train_fraction=1.0)
    it = src.iterate(0)
    full = [next(it) for _ in range(7)]
    it.close()
    it = src.iterate(4)
    resumed = [next(it) for _ in range(3)]
    it.close()
    for (s1, b1), (s2, b2) in zip(full[4:], resumed, strict=True):
        assert s1 == s2
        np.testing.assert_array_equal(b1["pixels"], b2["pixels"])
        np.testing.assert_array_equal(b1["actions"], b2["actions"])


def test_train_and_val_splits_are_disjoint():
    eps = _episodes()
    train = ClipSource(eps, batch_size=2, seed=3, split="train", train_fraction=0.8)
    val = ClipSource(eps, batch_size=2, seed=3, split="val", train_fraction=0.8)
    assert not set(train.starts) & set(val.starts)
    assert len(train.starts) + len(val.starts) == len(clip_starts(eps.ep_offset, eps.ep_len, 20))


def test_hosts_get_disjoint_slices_of_the_global_batch():
    eps = _episodes()
    whole = ClipSource(eps, batch_size=8, seed=2, train_fraction=1.0).batch(3)
    parts = [
        ClipSource(
            eps, batch_size=8, seed=2, train_fraction=1.0, process_index=i, process_count=4
        ).batch(3)["pixels"]
        for i in range(4)
    ]
    np.testing.assert_array_equal(np.concatenate(parts), whole["pixels"])


def test_errors_in_the_loader_thread_reach_the_consumer():
    src = ClipSource(_episodes(), batch_size=4, seed=0, train_fraction=1.0)
    src.store = None  # breaks gather inside grain's reader thread
    with pytest.raises(AttributeError):
        next(src.iterate(0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "test"}, "split"),
        ({"train_fraction": 0.0}, "train_fraction"),
        ({"batch_size": 10_000}, "fewer than one batch"),
        ({"batch_size": 6, "process_count": 4}, "not divisible"),
    ],
)
def test_bad_source_arguments(kwargs, match):
    args = {"batch_size": 4, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        ClipSource(_episodes(), **args)


def test_bad_episode_columns():
    eps = _episodes()
    with pytest.raises(TypeError, match="uint8"):
        Episodes(eps.pixels.astype(np.float32), eps.actions, eps.ep_offset, eps.ep_len)
    with pytest.raises(ValueError, match="actions"):
        Episodes(eps.pixels, eps.actions[:-1], eps.ep_offset, eps.ep_len)
    with pytest.raises(ValueError, match="exceed"):
        Episodes(eps.pixels, eps.actions, eps.ep_offset, eps.ep_len + 5)


def test_moving_dot_episodes_feed_the_real_clip_path():
    eps = moving_dot_episodes(jax.random.key(0), num_episodes=4, episode_len=30, image_size=16)
    assert eps.pixels.shape == (120, 16, 16, 3) and eps.pixels.dtype == np.uint8
    assert np.isnan(eps.actions[eps.ep_offset + eps.ep_len - 1]).all()
    b = ClipSource(eps, batch_size=4, seed=0, train_fraction=1.0).batch(0)
    assert b["pixels"].shape == (4, 4, 16, 16, 3) and np.isfinite(b["actions"]).all()
    # frames move: consecutive frames of a clip differ
    assert np.any(b["pixels"][:, 0] != b["pixels"][:, 1])
