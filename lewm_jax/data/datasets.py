"""Named episode datasets that a config can select with ``config.data.name``.

``moving_dot`` is a tiny procedural stand-in; ``two_room``, ``push_t`` and ``reacher``
are collected on the fly from the pure-JAX environments with their scripted policies
(deterministic in the seed); ``hdf5`` reads an official stable-worldmodel file and
``tfds`` a dataset built with ``python -m data.build`` (``data.path`` = its data_dir).
"""

import jax

from lewm_jax.data.episodes import Episodes
from lewm_jax.data.moving_dot import moving_dot_episodes

# Dataset name -> registered environment, for planning evaluation and probes.
ENVS = {"two_room": "TwoRoom-v0", "push_t": "PushT-v0", "reacher": "Reacher-v0"}


def _moving_dot(data_config, key, num_episodes) -> Episodes:
    return moving_dot_episodes(
        key,
        num_episodes=num_episodes,
        episode_len=data_config.episode_len,
        image_size=data_config.image_size,
    )


def _collected(env_name):
    def build(data_config, key, num_episodes) -> Episodes:
        from lewm_jax.data.collect import collect_episodes
        from lewm_jax.envs import make

        env, params = make(env_name, image_size=data_config.image_size)
        return collect_episodes(
            env,
            params,
            env.expert_policy,
            key,
            num_episodes=num_episodes,
            max_steps=data_config.episode_len,
        )

    return build


def _hdf5(data_config, key, num_episodes) -> Episodes:
    from lewm_jax.data.hdf5 import load_hdf5

    del key
    return load_hdf5(
        data_config.path, image_size=data_config.image_size, max_episodes=num_episodes or None
    )


def _tfds(data_config, key, num_episodes) -> Episodes:
    from data.lewm_episodes import make_config, read_episodes

    del key
    short = {v: k for k, v in ENVS.items()}.get(data_config.env)
    if short is None:
        raise ValueError(
            f"data.env {data_config.env!r} must name the environment of a tfds dataset, one of "
            f"{sorted(ENVS.values())}"
        )
    config = make_config(short, data_config.image_size, num_episodes, data_config.episode_len)
    return read_episodes(config, data_config.path)


DATASETS = {
    "moving_dot": _moving_dot,
    **{name: _collected(env) for name, env in ENVS.items()},
    "hdf5": _hdf5,
    "tfds": _tfds,
}


def load_episodes(data_config, seed: int, num_episodes: int | None = None) -> Episodes:
    """Builds or loads the episodes named by ``data_config.name``.

    Args:
        data_config: ``config.data`` (read-only).
        seed: seed of generated datasets.
        num_episodes: override of ``data_config.num_episodes``.
    """
    if data_config.name not in DATASETS:
        raise ValueError(
            f"unknown dataset {data_config.name!r}; expected one of {sorted(DATASETS)}"
        )
    n = data_config.num_episodes if num_episodes is None else num_episodes
    return DATASETS[data_config.name](data_config, jax.random.key(seed), n)


def make_env(data_config):
    """``(env, env_params)`` of the environment behind ``data_config.name``."""
    from lewm_jax.envs import make

    env_name = data_config.get("env") or ENVS.get(data_config.name)
    if env_name is None:
        raise ValueError(
            f"dataset {data_config.name!r} has no environment (to plan, probe or perturb in); "
            f"set data.env to one of {sorted(ENVS.values())}"
        )
    return make(env_name, image_size=data_config.image_size)


def fresh_expert_episodes(data_config, key, num_episodes: int, *, full_length: bool = False):
    """Newly collected expert episodes of the environment behind ``data_config``.

    For probes and surprise tests on episodes the model was not trained on (pass a key that
    is not the training seed's).

    Args:
        data_config: ``config.data`` of the run.
        key: PRNG key of the collection.
        num_episodes: E.
        full_length: disable termination on success, so every episode has
            ``data_config.episode_len`` steps.

    Returns:
        ``(env, env_params, episodes)``.
    """
    from lewm_jax.data.collect import collect_episodes

    env, env_params = make_env(data_config)
    if full_length and hasattr(env_params, "terminate_on_success"):
        env_params = env_params.replace(terminate_on_success=False)
    episodes = collect_episodes(
        env,
        env_params,
        env.expert_policy,
        key,
        num_episodes=num_episodes,
        max_steps=data_config.episode_len,
    )
    return env, env_params, episodes
