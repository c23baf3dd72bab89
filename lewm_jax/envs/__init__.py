"""Pure-JAX pixel environments as gymnax environments, and the one list of them.

Every environment subclasses :class:`lewm_jax.envs.base.PixelEnv` (the contract the
collector, planners, probes and surprise tests rely on) and is registered here once, under
a dataset name (``config.data.name``, e.g. ``"two_room"``) and an env id (``"TwoRoom-v0"``).
Datasets, configs, probes and scripts look environments up here when they are called, so
an environment registered later (e.g. by a test) is seen everywhere:

  register("two_room", "TwoRoom-v0", "lewm_jax.envs.two_room:TwoRoom")
  env, env_params = make("two_room", image_size=64)   # or make("TwoRoom-v0", ...)

The class may be given lazily as ``"module:Class"``, so that this module imports nothing
(the check of the envs extra only looks its modules up).
"""

import dataclasses
import importlib
from collections.abc import Iterator, Mapping

from lewm_jax import frames
from lewm_jax._deps import require

require("lewm_jax.envs", "envs", "gymnax", "six", "flax")


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """One registered environment: dataset name, env id and the class or ``"module:Class"``."""

    dataset: str
    env_id: str
    entry_point: object


_SPECS: dict[str, EnvSpec] = {}  # env id -> spec, in registration order


def register(dataset: str, env_id: str, entry_point) -> EnvSpec:
    """Registers an environment; registering the same entry again is a no-op.

    Args:
        dataset: dataset name that configs select it by (``config.data.name``).
        env_id: gymnax-style id, e.g. ``"TwoRoom-v0"``; the class's ``env_id``.
        entry_point: the :class:`~lewm_jax.envs.base.PixelEnv` subclass, or its
            ``"module:Class"`` path (imported on first use).

    Returns:
        The :class:`EnvSpec`.
    """
    if isinstance(entry_point, str) and entry_point.count(":") != 1:
        raise ValueError(f"entry_point {entry_point!r} must be a class or 'module:Class'")
    spec = EnvSpec(dataset, env_id, entry_point)
    for known in _SPECS.values():
        if known != spec and (known.env_id == env_id or known.dataset == dataset):
            raise ValueError(f"cannot register {spec}: it conflicts with registered {known}")
    _SPECS[env_id] = spec
    return spec


def env_ids() -> tuple[str, ...]:
    """Ids of the registered environments, in registration order."""
    return tuple(_SPECS)


def dataset_names() -> tuple[str, ...]:
    """Dataset names of the registered environments, in registration order."""
    return tuple(s.dataset for s in _SPECS.values())


def spec(name: str) -> EnvSpec:
    """The :class:`EnvSpec` of a registered env id or dataset name."""
    found = _SPECS.get(name) or next((s for s in _SPECS.values() if s.dataset == name), None)
    if found is None:
        expected = sorted([*env_ids(), *dataset_names()])
        raise ValueError(f"unknown environment {name!r}; expected one of {expected}")
    return found


def env_id(name: str) -> str:
    """The env id of a registered env id or dataset name."""
    return spec(name).env_id


def dataset_name(name: str) -> str:
    """The dataset name of a registered env id or dataset name."""
    return spec(name).dataset


def env_class(name: str) -> type:
    """The environment class of a registered env id or dataset name (imported if lazy)."""
    s = spec(name)
    cls = s.entry_point
    if isinstance(cls, str):
        module, attr = cls.split(":")
        cls = getattr(importlib.import_module(module), attr)
    if getattr(cls, "env_id", None) != s.env_id:
        raise ValueError(f"{cls.__name__}.env_id is {cls.env_id!r}, expected {s.env_id!r}")
    return cls


def make(name: str, image_size: int = 64, **kwargs):
    """Creates a registered environment.

    Args:
        name: a registered env id (``"TwoRoom-v0"``) or dataset name (``"two_room"``).
        image_size: side of the square uint8 frames (224 for the paper, 64 for CPU runs).
        **kwargs: further constructor arguments of the environment.

    Returns:
        ``(env, env_params)``.
    """
    cls = env_class(name)
    frames.check_size(image_size)
    env = cls(image_size=image_size, **kwargs)
    return env, env.default_params


class _DatasetEnvIds(Mapping):
    """Read-only live view ``dataset name -> env id`` of the registry."""

    def __getitem__(self, dataset: str) -> str:
        for s in _SPECS.values():
            if s.dataset == dataset:
                return s.env_id
        raise KeyError(dataset)

    def __iter__(self) -> Iterator[str]:
        return iter(dataset_names())

    def __len__(self) -> int:
        return len(_SPECS)

    def __repr__(self) -> str:
        return repr(dict(self))


DATASET_ENV_IDS = _DatasetEnvIds()

register("two_room", "TwoRoom-v0", "lewm_jax.envs.two_room:TwoRoom")
register("push_t", "PushT-v0", "lewm_jax.envs.push_t:PushT")
register("reacher", "Reacher-v0", "lewm_jax.envs.reacher:Reacher")
