"""lewm_jax.data.policies: collection policy mixes for generated datasets."""

import jax
import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax import envs
from lewm_jax.data import datasets
from lewm_jax.data.collect import collect_episodes
from lewm_jax.data.policies import collect_mix, parse_mix, split_episodes


def test_a_mix_parses_and_bad_ones_fail_in_one_line():
    assert parse_mix("expert") == [("expert", 1.0)]
    assert parse_mix("expert:0.7, random:0.3") == [("expert", 0.7), ("random", 0.3)]
    for bad, match in [
        ("greedy", "'greedy'"),
        ("expert:0.5", "summing to 1"),
        ("expert:0.5,expert:0.5", "each policy once"),
        ("expert:x,random:0.5", "'expert:x'"),
        ("random:0", "'random:0'"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_mix(bad)
    assert split_episodes(parse_mix("expert:0.7,noisy:0.2,random:0.1"), 10) == [7, 2, 1]


def test_expert_alone_is_the_data_of_before_and_a_mix_shares_out_the_episodes():
    env, params = envs.make("TwoRoom-v0", image_size=16)
    key = jax.random.key(3)
    old = collect_episodes(env, params, env.expert_policy, key, 6, 20)
    new = collect_mix(env, params, "expert", key, 6, 20)
    np.testing.assert_array_equal(new.pixels, old.pixels)
    np.testing.assert_array_equal(new.actions, old.actions)
    mix = collect_mix(env, params, "expert:0.5,random:0.5", key, 6, 20)
    assert len(mix.ep_len) == 6 and mix.state.shape[0] == mix.pixels.shape[0]
    first_random = mix.ep_offset[3]
    # Uniform actions fill [-1, 1]; the expert's have another spread.
    random_part = mix.actions[first_random:]
    random_part = random_part[~np.isnan(random_part).any(1)]
    assert abs(np.abs(random_part).mean() - 0.5) < 0.1
    noisy = collect_mix(env, params, "noisy", key, 6, 20, noisy_prob=1.0)
    acts = noisy.actions[~np.isnan(noisy.actions).any(1)]
    assert abs(np.abs(acts).mean() - 0.5) < 0.1


def test_the_config_checks_the_policy_before_any_collection():
    config = get_config("test")
    with config.unlocked():
        config.data.policy = "expert:0.9"
    with pytest.raises(ValueError, match="summing to 1"):
        datasets.check_data_config(config.data)
    with config.unlocked():
        config.data.policy, config.data.name = "random", "moving_dot"
    with pytest.raises(ValueError, match="'moving_dot'"):
        datasets.check_data_config(config.data)


def _mean_turn(episodes) -> float:
    """Mean absolute change of the Push-T block angle per step, within episodes."""
    turns = []
    for offset, length in zip(episodes.ep_offset, episodes.ep_len, strict=True):
        angle = episodes.state[offset : offset + length, 4]
        turns.append(np.abs((np.diff(angle) + np.pi) % (2 * np.pi) - np.pi))
    return float(np.concatenate(turns).mean())


def test_push_t_turning_data_turns_the_block_far_more_than_the_expert():
    env, params = envs.make("push_t", image_size=16)
    key = jax.random.key(1)
    expert = collect_mix(env, params, "expert", key, 6, 200)
    turning = collect_mix(env, params, "turning", key, 6, 200)
    assert _mean_turn(turning) > 2 * _mean_turn(expert)
    # The goal moves with the block, so a turning episode never ends on success.
    assert (turning.ep_len == 200).all()


def test_turning_is_push_t_only_and_refused_elsewhere_before_collection():
    config = get_config("test")
    with config.unlocked():
        config.data.policy, config.data.name = "expert:0.5,turning:0.5", "two_room"
    with pytest.raises(ValueError, match="'turning'.*'TwoRoom-v0'"):
        datasets.check_data_config(config.data)
    with config.unlocked():
        config.data.name = "push_t"
    datasets.check_data_config(config.data)
    env, params = envs.make("TwoRoom-v0", image_size=16)
    with pytest.raises(ValueError, match="'turning'"):
        collect_mix(env, params, "turning", jax.random.key(0), 2, 10)
