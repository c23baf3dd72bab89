"""The one list of environments, of both kinds.

- ``"jax"``: pure-JAX gymnax environments, subclasses of
  :class:`lewm_jax.envs.base.PixelEnv` (the contract the collector, planners, probes and
  surprise tests rely on), compiled and vmapped; ``make`` creates one.
- ``"host"``: gymnasium environments stepped on the host in their own simulator, subclasses
  of :class:`lewm_jax.envs.host_env.HostEnv` (the same method names); ids are namespaced
  (``"lewm/CubeOGB-v0"``) and :class:`lewm_jax.envs.host.HostBatch` steps N of them.

Each is registered here once, under a dataset name (``config.data.name`` of a JAX env,
e.g. ``"two_room"``; for a host env the config's ``env=`` name of its file dataset), an env
id, its kind and the extra that installs what it needs. Datasets, configs, probes and
scripts look environments up here when they are called, so an environment registered later
(e.g. by a test) is seen everywhere:

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


KINDS = ("jax", "host")


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """One registered environment: dataset name, env id, the class or ``"module:Class"``,
    its kind (:data:`KINDS`), the lewm_jax extra it needs and, for a host environment, its
    action width (so that a config need not start the simulator to know it)."""

    dataset: str
    env_id: str
    entry_point: object
    kind: str = "jax"
    extra: str = "envs"
    action_dim: int | None = None


_SPECS: dict[str, EnvSpec] = {}  # env id -> spec, in registration order


def register(
    dataset: str,
    env_id: str,
    entry_point,
    *,
    kind: str = "jax",
    extra: str = "envs",
    action_dim: int | None = None,
) -> EnvSpec:
    """Registers an environment; registering the same entry again is a no-op.

    Args:
        dataset: dataset name that configs select it by (``config.data.name``; for a host
            environment the ``env=`` of its file dataset).
        env_id: gymnax-style id, e.g. ``"TwoRoom-v0"`` (the class's ``env_id``); a host
            environment's gymnasium id, namespaced: ``"lewm/CubeOGB-v0"``.
        entry_point: the environment class, or its ``"module:Class"`` path (imported on
            first use).
        kind: ``"jax"`` or ``"host"`` (see the module docstring).
        extra: the lewm_jax extra that installs its dependencies.
        action_dim: a host environment's action width (required for one).

    Returns:
        The :class:`EnvSpec`.
    """
    if isinstance(entry_point, str) and entry_point.count(":") != 1:
        raise ValueError(f"entry_point {entry_point!r} must be a class or 'module:Class'")
    if kind not in KINDS:
        raise ValueError(f"unknown environment kind {kind!r}; expected one of {KINDS}")
    if (kind == "host") != ("/" in env_id):
        raise ValueError(
            f"env id {env_id!r} of a {kind} environment: host ids are namespaced "
            "('lewm/Name-v0'), JAX ids are not"
        )
    if kind == "host" and not (isinstance(action_dim, int) and action_dim >= 1):
        raise ValueError(f"host environment {env_id!r} needs action_dim >= 1, got {action_dim!r}")
    spec = EnvSpec(dataset, env_id, entry_point, kind, extra, action_dim)
    for known in _SPECS.values():
        if known != spec and (known.env_id == env_id or known.dataset == dataset):
            raise ValueError(f"cannot register {spec}: it conflicts with registered {known}")
    _SPECS[env_id] = spec
    return spec


def _find(name: str) -> EnvSpec | None:
    """The spec of a registered env id or dataset name, or None."""
    return _SPECS.get(name) or next((s for s in _SPECS.values() if s.dataset == name), None)


def specs(kind: str | None = "jax") -> tuple[EnvSpec, ...]:
    """The registered environments of ``kind`` (None: both), in registration order."""
    return tuple(s for s in _SPECS.values() if kind is None or s.kind == kind)


def env_ids(kind: str | None = "jax") -> tuple[str, ...]:
    """Ids of the registered environments of ``kind`` (None: both), in registration order."""
    return tuple(s.env_id for s in specs(kind))


def dataset_names(kind: str | None = "jax") -> tuple[str, ...]:
    """Dataset names of the registered environments of ``kind`` (None: both)."""
    return tuple(s.dataset for s in specs(kind))


def is_host_env(name: str) -> bool:
    """Whether ``name`` is a host environment: registered as one, or an unregistered
    gymnasium id (namespaced, ``"ns/Name-vN"``), which the host contract also admits."""
    found = _find(name)
    return found.kind == "host" if found else "/" in name


def spec(name: str) -> EnvSpec:
    """The :class:`EnvSpec` of a registered env id or dataset name."""
    found = _find(name)
    if found is None:
        expected = sorted([*env_ids(None), *dataset_names(None)])
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
    if spec(name).kind == "host":
        raise ValueError(
            f"{name!r} is a host environment; step it with lewm_jax.envs.host.HostBatch"
        )
    cls = env_class(name)
    frames.check_size(image_size)
    env = cls(image_size=image_size, **kwargs)
    return env, env.default_params


class _DatasetEnvIds(Mapping):
    """Read-only live view ``dataset name -> env id`` of the registry's JAX environments."""

    def __getitem__(self, dataset: str) -> str:
        for s in specs():
            if s.dataset == dataset:
                return s.env_id
        raise KeyError(dataset)

    def __iter__(self) -> Iterator[str]:
        return iter(dataset_names())

    def __len__(self) -> int:
        return len(specs())

    def __repr__(self) -> str:
        return repr(dict(self))


DATASET_ENV_IDS = _DatasetEnvIds()

register("two_room", "TwoRoom-v0", "lewm_jax.envs.two_room:TwoRoom")
register("push_t", "PushT-v0", "lewm_jax.envs.push_t:PushT")
register("reacher", "Reacher-v0", "lewm_jax.envs.reacher:Reacher")
register(
    "reacher_dmc",
    "lewm/ReacherDMC-v0",
    "lewm_jax.envs.host_reacher:DMCReacher",
    kind="host",
    extra="dmc",
    action_dim=2,
)
register(
    "cube",
    "lewm/CubeOGB-v0",
    "lewm_jax.envs.host_cube:OGBenchCube",
    kind="host",
    extra="cube",
    action_dim=5,
)
