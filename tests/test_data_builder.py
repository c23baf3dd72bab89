"""TFDS (array_record) episode datasets: build, read back, never overwrite, bad input."""

import jax
import ml_collections
import numpy as np
import pytest

from lewm_jax.data.collect import collect_episodes
from lewm_jax.data.datasets import open_store
from lewm_jax.data.tfds import ENVS, builder, make_config, read_episodes
from lewm_jax.envs import make


def test_build_and_read_back_equals_the_collector(tmp_path):
    config = make_config("two_room", 16, 4, max_steps=30, seed=3)
    b = builder(config, str(tmp_path))
    b.download_and_prepare()
    eps = read_episodes(config, str(tmp_path))
    env, params = make(ENVS["two_room"], image_size=16)
    ref = collect_episodes(
        env, params, env.expert_policy, jax.random.key(3), num_episodes=4, max_steps=30
    )
    np.testing.assert_array_equal(eps.pixels, ref.pixels)
    np.testing.assert_array_equal(eps.actions, ref.actions)  # NaN in the same places
    np.testing.assert_array_equal(eps.state, ref.state)
    np.testing.assert_array_equal(eps.ep_len, ref.ep_len)
    # Building again keeps the files as they are.
    files = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    builder(config, str(tmp_path)).download_and_prepare()
    assert files == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}


def test_a_policy_mix_is_built_a_chunk_at_a_time_as_the_generated_dataset_collects_it(
    tmp_path,
):
    """A random-action (or mixed) dataset has its own name and equals what a config with the
    same data.policy collects in memory; the chunked collection equals the whole one."""
    from lewm_jax.data.collect import iter_episodes
    from lewm_jax.data.policies import collect_mix

    config = make_config("two_room", 16, 5, max_steps=12, policy="expert:0.4,random:0.6")
    assert config.name == "two_room_16px_5x12_seed0_expert0.4-random0.6"
    assert make_config("two_room", 16, 5, policy="noisy").name.endswith("_noisy-p0.3")
    builder(config, str(tmp_path)).download_and_prepare()
    eps = read_episodes(config, str(tmp_path))
    env, params = make(ENVS["two_room"], image_size=16)
    ref = collect_mix(env, params, config.policy, jax.random.key(0), 5, 12)
    np.testing.assert_array_equal(eps.pixels, ref.pixels)
    np.testing.assert_array_equal(eps.actions, ref.actions)
    np.testing.assert_array_equal(eps.ep_len, ref.ep_len)
    # A config reads the dataset of its own data.policy.
    data = ml_collections.ConfigDict(
        dict(name="tfds", env=ENVS["two_room"], path=str(tmp_path), image_size=16)
    )
    data.update(num_episodes=5, episode_len=12, policy=config.policy)
    np.testing.assert_array_equal(open_store(data, seed=0).actions, ref.actions)
    chunks = list(iter_episodes(env, params, env.random_policy, jax.random.key(1), 5, 12, batch=2))
    whole = collect_episodes(env, params, env.random_policy, jax.random.key(1), 5, 12)
    assert [len(c.ep_len) for c in chunks] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([c.pixels for c in chunks]), whole.pixels)


def test_reading_a_missing_dataset_says_how_to_build_it(tmp_path):
    match = "python -m data.build --env=reacher --image_size=16 --episodes=2 --max_steps=200"
    with pytest.raises(FileNotFoundError, match=match):
        read_episodes(make_config("reacher", 16, 2, max_steps=200), str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--seed=0 --policy=random --data_dir="):
        read_episodes(make_config("reacher", 16, 2, policy="random"), str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--policy=noisy --noisy_prob=0.5 --data_dir="):
        read_episodes(make_config("reacher", 16, 2, policy="noisy", noisy_prob=0.5), str(tmp_path))


@pytest.mark.parametrize(
    "args, match",
    [
        (("cube", 64, 10), "unknown env 'cube'"),
        (("two_room", 0, 10), "image_size must be"),
        (("two_room", 64, 10, 100, 0, "greedy"), "bad part 'greedy'"),
        (("two_room", 64, 10, 100, 0, "noisy", 1.5), "noisy_prob must be in"),
        (("two_room", 64, 10, 100, 0, "turning"), "'turning'.*'TwoRoom-v0'"),
    ],
)
def test_bad_configs(args, match):
    with pytest.raises(ValueError, match=match):
        make_config(*args)


def test_streamed_tfds_clips_equal_clips_from_memory(tmp_path):
    """TFDSStore reads clips record by record; the batches equal those of read_episodes."""
    import pickle

    from lewm_jax.data.clips import ClipSource
    from lewm_jax.data.tfds import TFDSStore

    config = make_config("two_room", 16, 4, max_steps=30, seed=3)
    builder(config, str(tmp_path)).download_and_prepare()
    store = TFDSStore(config, str(tmp_path))
    args = dict(batch_size=4, seed=1, train_fraction=1.0)
    streamed = ClipSource(store, **args)
    loaded = ClipSource(read_episodes(config, str(tmp_path)), **args)
    np.testing.assert_array_equal(streamed.action_mean, loaded.action_mean)
    for step in (0, 2):
        a, b = streamed.batch(step), loaded.batch(step)
        np.testing.assert_array_equal(a["pixels"], b["pixels"])
        np.testing.assert_array_equal(a["actions"], b["actions"])
    small = pickle.loads(pickle.dumps(TFDSStore(config, str(tmp_path), image_size=8)))
    assert small.read_clips(np.array([0]), 4, 5)[0].shape == (1, 4, 8, 8, 3)
