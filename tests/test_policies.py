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
