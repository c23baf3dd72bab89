"""Named episode datasets that a config can select with ``config.data.name``."""

import jax

from lewm_jax.input_pipeline import Episodes
from lewm_jax.synthetic import moving_dot_episodes


def _moving_dot(data_config, key) -> Episodes:
    return moving_dot_episodes(
        key,
        num_episodes=data_config.num_episodes,
        episode_len=data_config.episode_len,
        image_size=data_config.image_size,
    )


DATASETS = {"moving_dot": _moving_dot}


def load_episodes(data_config, seed: int) -> Episodes:
    """Builds or loads the episodes named by ``data_config.name``.

    Args:
        data_config: ``config.data`` (read-only).
        seed: seed of procedurally generated datasets.
    """
    if data_config.name not in DATASETS:
        raise ValueError(
            f"unknown dataset {data_config.name!r}; expected one of {sorted(DATASETS)}"
        )
    return DATASETS[data_config.name](data_config, jax.random.key(seed))
