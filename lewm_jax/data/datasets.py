"""Named episode datasets that a config can select with ``config.data.name``.

``moving_dot`` is a tiny procedural stand-in; every environment of the registry
(:mod:`lewm_jax.envs`: ``two_room``, ``push_t``, ``reacher``, ...) is a dataset collected on
the fly by ``data.policy`` (its scripted expert by default, or a mix with random actions:
:mod:`lewm_jax.data.policies`; deterministic in the seed); ``hdf5`` reads an official
stable-worldmodel file and ``tfds`` a dataset built with ``python -m data.build``
(``data.path`` = its data_dir).
"""

import hashlib
import json
from pathlib import Path

import jax

from lewm_jax import envs
from lewm_jax.data.episodes import Episodes
from lewm_jax.data.moving_dot import moving_dot_episodes

# Dataset name -> registered env id, a live view of the registry (planning, probes).
ENVS = envs.DATASET_ENV_IDS


def _moving_dot(data_config, key, num_episodes) -> Episodes:
    return moving_dot_episodes(
        key,
        num_episodes=num_episodes,
        episode_len=data_config.episode_len,
        image_size=data_config.image_size,
    )


def data_policy(data_config) -> str:
    """The policy (or mix) that collects a generated dataset: ``data.policy``, or the scripted
    expert for configs stored before the field existed."""
    return data_config.get("policy", "expert")


def data_noisy_prob(data_config) -> float:
    """How often the ``noisy`` policy acts at random: ``data.noisy_prob``, or 0.3 for configs
    stored before the field existed."""
    return data_config.get("noisy_prob", 0.3)


def _collected(env_name):
    def build(data_config, key, num_episodes) -> Episodes:
        from lewm_jax.data.policies import collect_mix

        env, params = envs.make(env_name, image_size=data_config.image_size)
        return collect_mix(
            env,
            params,
            data_policy(data_config),
            key,
            num_episodes,
            data_config.episode_len,
            noisy_prob=data_noisy_prob(data_config),
        )

    return build


def _hdf5(data_config):
    from lewm_jax.data.hdf5 import HDF5Store

    return HDF5Store(data_config.path, image_size=data_config.image_size)


def tfds_config(data_config):
    """The :mod:`lewm_jax.data.tfds` builder config that ``config.data`` (``name="tfds"``)
    reads: its environment, frame size, episodes, length and policy, collection seed 0."""
    from lewm_jax.data.tfds import make_config

    short = {v: k for k, v in ENVS.items()}.get(data_config.env)
    if short is None:
        raise ValueError(
            f"data.env {data_config.env!r} must name the environment of a tfds dataset, one of "
            f"{sorted(envs.env_ids())}"
        )
    return make_config(
        short,
        data_config.image_size,
        data_config.num_episodes,
        data_config.episode_len,
        policy=data_policy(data_config),
        noisy_prob=data_noisy_prob(data_config),
    )


def _tfds(data_config):
    from lewm_jax.data.tfds import TFDSStore

    config = tfds_config(data_config)
    return TFDSStore(config, data_config.path, image_size=data_config.image_size)


# Datasets read from files, streamed clip by clip: name -> data_config -> ClipStore.
FILE_DATASETS = {"hdf5": _hdf5, "tfds": _tfds}

# Datasets generated in memory that no registered environment makes (each env adds its own).
DATASETS = {"moving_dot": _moving_dot}


def dataset_names() -> tuple[str, ...]:
    """Every name ``config.data.name`` may take: registered envs' datasets, then the others."""
    return (*envs.dataset_names(), *DATASETS, *FILE_DATASETS)


def _source(name: str):
    """The builder of generated dataset ``name`` (None for a file dataset), or a one-line
    error naming the known ones."""
    if name in FILE_DATASETS:
        return None
    if name in DATASETS:
        return DATASETS[name]
    if name in ENVS:  # looked up now, so an env registered after import is found
        return _collected(ENVS[name])
    raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(dataset_names())}")


def open_store(data_config, seed: int, *, in_memory: bool = True):
    """The clip store of ``config.data``: files are streamed (:class:`HDF5Store`, TFDS),
    except an HDF5 file whose frames take at most ``data.in_memory_gb``, which is read into
    memory once unless ``in_memory`` is False (a single pass, e.g. over the actions);
    generated datasets are built in memory (:class:`MemoryStore`), deterministic in ``seed``.
    """
    from lewm_jax.data.stores import MemoryStore

    build = _source(data_config.name)
    if build is None:
        store = FILE_DATASETS[data_config.name](data_config)
        limit = data_config.get("in_memory_gb", 0.0)  # absent in configs of older runs
        fits = hasattr(store, "load") and store.frames_nbytes <= limit * 2**30
        if in_memory and limit > 0 and fits:
            store.load()
        return store
    return MemoryStore(build(data_config, jax.random.key(seed), data_config.num_episodes))


def load_episodes(data_config, seed: int, num_episodes: int | None = None) -> Episodes:
    """Builds or loads the episodes named by ``data_config.name`` into memory.

    Args:
        data_config: ``config.data`` (read-only).
        seed: seed of generated datasets.
        num_episodes: override of ``data_config.num_episodes`` (generated datasets; a file
            dataset keeps its first ``num_episodes`` episodes when given).
    """
    build = _source(data_config.name)
    if build is None:
        return FILE_DATASETS[data_config.name](data_config).to_episodes(num_episodes)
    n = data_config.num_episodes if num_episodes is None else num_episodes
    return build(data_config, jax.random.key(seed), n)


def env_name(data_config) -> str:
    """The registered environment behind ``config.data`` (``data.env``, else the one that
    made ``data.name``); a one-line error when the dataset has none."""
    name = data_config.get("env") or ENVS.get(data_config.name)
    if name is None:
        raise ValueError(
            f"dataset {data_config.name!r} has no environment (to plan, probe or perturb in); "
            f"set data.env to one of {sorted(envs.env_ids())}"
        )
    return name


def host_env_name(data_config) -> str:
    """``data.env`` when it names a host environment (a gymnasium id such as
    ``"lewm/ReacherDMC-v0"``, :mod:`lewm_jax.envs.host`), else ``""``."""
    from lewm_jax.envs import is_host_env

    name = data_config.get("env") or ""
    return name if is_host_env(name) else ""


def make_env(data_config):
    """``(env, env_params)`` of the environment behind ``data_config.name``."""
    return envs.make(env_name(data_config), image_size=data_config.image_size)


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
    if full_length:
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


# Host simulators stepped together (in one process) while collecting probe episodes.
_HOST_PROBE_ENVS = 10


def probe_episodes(data_config, key, num_episodes: int, cache_dir=None):
    """Newly collected expert episodes of the environment behind ``data_config``, with
    their physical state: what probes, read-outs and learning curves are scored on.

    A JAX environment's come from :func:`fresh_expert_episodes`; a host environment's
    (``data.env`` such as ``"lewm/CubeOGB-v0"``) from its own simulator and oracle, built
    with the run's ``data.env_kwargs`` (e.g. its renderer), seeded from ``key``.

    Args:
        data_config: the run's ``config.data``.
        key: PRNG key of the episodes.
        num_episodes: how many episodes.
        cache_dir: where a host environment's episodes are kept as an HDF5 file named by
            everything they depend on, and read back by a later call with the same inputs
            (200 Cube episodes take minutes to simulate and render; a JAX environment's
            take seconds and are not cached). ``None``: collect every time.

    Returns:
        ``(env_name, episodes)``: the env id that :func:`~lewm_jax.analysis.probe.
        physical_targets` takes, and :class:`Episodes` with ``state``.
    """
    host = host_env_name(data_config)
    if not host:
        env, _, episodes = fresh_expert_episodes(data_config, key, num_episodes)
        return env.name, episodes
    from lewm_jax.data.hdf5 import load_hdf5, write_hdf5
    from lewm_jax.data.host_collect import collect_host_episodes
    from lewm_jax.envs.batch import make_batch

    seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
    kwargs = dict(data_config.get("env_kwargs") or {})
    path = None
    if cache_dir is not None:
        inputs = [host, data_config.image_size, data_config.episode_len, num_episodes, seed, kwargs]
        digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"probe_episodes_{digest}.h5"
        if path.exists():
            return host, load_hdf5(path)
    n = min(num_episodes, _HOST_PROBE_ENVS)
    with make_batch(host, n, image_size=data_config.image_size, **kwargs) as batch:
        episodes, _ = collect_host_episodes(
            batch, num_episodes, data_config.episode_len, seed=seed, policy="expert"
        )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_hdf5(path, episodes, env=host)  # written aside and renamed: never half a file
    return host, episodes


_POSITIVE = ("image_size", "action_dim", "frameskip", "num_frames", "num_episodes", "episode_len")


def check_data_config(data_config) -> None:
    """One-line errors for a ``config.data`` section that cannot make clips."""
    name = data_config.name
    _source(name)
    for field in _POSITIVE:
        if data_config[field] < 1:
            raise ValueError(f"data.{field} must be >= 1, got {data_config[field]}")
    if data_config.num_workers < 0 or data_config.prefetch < 1:
        raise ValueError(
            f"data.num_workers must be >= 0 and data.prefetch >= 1, got "
            f"{data_config.num_workers} and {data_config.prefetch}"
        )
    if data_config.get("in_memory_gb", 0.0) < 0:
        raise ValueError(f"data.in_memory_gb must be >= 0, got {data_config.in_memory_gb}")
    if not 0.0 < data_config.train_fraction <= 1.0:
        raise ValueError(f"data.train_fraction must be in (0, 1], got {data_config.train_fraction}")
    if "policy" in data_config:
        from lewm_jax.data.policies import check_env_policies, parse_mix

        parts = parse_mix(data_config.policy)
        if name in ENVS:
            check_env_policies(envs.env_class(ENVS[name]), parts)
        # A tfds dataset names its policy (python -m data.build --policy); a file does not.
        if data_config.policy != "expert" and name not in (*ENVS, "tfds"):
            raise ValueError(
                f"data.policy {data_config.policy!r} needs a dataset collected in an "
                f"environment or a tfds build, not {name!r}; expected one of "
                f"{sorted((*ENVS, 'tfds'))}"
            )
        if not 0.0 <= data_noisy_prob(data_config) <= 1.0:
            raise ValueError(f"data.noisy_prob must be in [0, 1], got {data_config.noisy_prob}")
    if name in FILE_DATASETS and not data_config.path:
        raise ValueError(f"data.name {name!r} needs data.path (the dataset file or data_dir)")
    if data_config.env and data_config.env not in envs.env_ids() and not host_env_name(data_config):
        raise ValueError(
            f"unknown data.env {data_config.env!r}; expected one of {sorted(envs.env_ids())} "
            "or a host environment id such as 'lewm/ReacherDMC-v0'"
        )


def check_store(store, data_config) -> None:
    """Checks an opened dataset against ``config.data`` (frame shape, action dim, and the
    environment, where the store records one)."""
    made_by, env = getattr(store, "env", ""), data_config.get("env", "")
    if made_by and env and made_by != env:
        raise ValueError(
            f"{getattr(store, 'path', 'dataset')}: episodes of environment {made_by!r}, but "
            f"data.env is {env!r}"
        )
    size = data_config.image_size
    if tuple(store.frame_shape) != (size, size, 3):
        raise ValueError(
            f"dataset frames have shape {tuple(store.frame_shape)}, expected "
            f"({size}, {size}, 3) from data.image_size"
        )
    if store.action_dim != data_config.action_dim:
        raise ValueError(
            f"dataset actions have dimension {store.action_dim}, but data.action_dim is "
            f"{data_config.action_dim}"
        )
