"""Pixel environments stepped on the host in their own simulator, N episodes together.

The world model and the planners run compiled on the accelerator; a host environment runs
its simulator (MuJoCo, ...) and renderer on the CPU, as a gymnasium vector env. Any
gymnasium environment that keeps this contract works with the closed-loop evaluation
(:mod:`lewm_jax.planning.batch_loop`, ``experiments.plan --env=...``):

- ``gymnasium.make(env_id, image_size=S)`` makes it; observations are uint8 ``(S, S, 3)``
  frames (a ``Box``) and actions a ``Box`` in ``[-1, 1]^A``;
- ``reset(options={"state": (P,), "goal": (P,)})`` starts the episode at that physical
  state with that goal (``options=None``: a random start and goal); the info holds
  ``"success"`` (the start already meets the goal), ``"physical_state"`` (P,) and
  ``"goal_frame"`` (the goal state as this simulator renders it);
- ``step(action)``'s info holds ``"success"`` (the environment's own criterion),
  ``"physical_state"``, ``"sim_s"`` and ``"render_s"`` (seconds spent simulating and
  rendering that step); episodes should neither terminate nor truncate (the caller keeps
  the budget), since a vector env resets finished episodes;
- optionally ``expert_policy()``: a noisy scripted (oracle) action, the expert baseline.

:class:`lewm_jax.envs.host_env.HostEnv` writes this contract in code; this package's
environments subclass it and are registered with both kinds of environment in
:mod:`lewm_jax.envs` (kind ``"host"``), from where they are registered with gymnasium
under their ``lewm/...`` ids; ``HostBatch("lewm/ReacherDMC-v0", 8, image_size=64)`` steps 8.
Shape letters: N episodes, S frame side, P physical state, A action dim.
"""

import time

import numpy as np

from lewm_jax import envs
from lewm_jax._deps import require
from lewm_jax.envs.batch import check_actions, check_reset_args, random_actions
from lewm_jax.envs.episodes import check_policy

_RESET_KEYS = ("success", "physical_state", "goal_frame")
_STEP_KEYS = ("success", "physical_state")


def _gymnasium():
    require("lewm_jax.envs.host", "host", "gymnasium")
    import gymnasium

    for spec in envs.specs("host"):
        if spec.env_id not in gymnasium.registry:
            gymnasium.register(spec.env_id, entry_point=spec.entry_point, disable_env_checker=True)
    return gymnasium


def _make(gymnasium, env_id: str, image_size: int, env_kwargs: dict):
    """``gymnasium.make`` with ``image_size`` for environments that take it (ours do)."""
    try:
        return gymnasium.make(env_id, image_size=image_size, **env_kwargs)
    except TypeError as e:
        if "image_size" not in str(e):
            raise
    return gymnasium.make(env_id, **env_kwargs)  # its own frame size, checked by the caller


def make_host_env(env_id: str, image_size: int, **env_kwargs):
    """One host environment (gymnasium), checked against the contract's spaces.

    ``env_kwargs`` go to its constructor (e.g. ``render_size`` of the DMC reacher).
    """
    gymnasium = _gymnasium()
    try:
        env = _make(gymnasium, env_id, image_size, env_kwargs)
    except ImportError as e:
        host = {s.env_id: s.extra for s in envs.specs("host")}
        extra = host.get(env_id, "host")
        raise ImportError(
            f"host environment {env_id!r} needs {e.name}: pip install 'lewm_jax[{extra}]'",
            name=e.name,
        ) from None
    except gymnasium.error.Error as e:
        raise ValueError(
            f"host environment {env_id!r} is not installed ({str(e).splitlines()[0]}); "
            f"expected a registered gymnasium id such as {sorted(envs.env_ids('host'))}"
        ) from None
    check_spaces(env_id, env, image_size)
    return env


def check_spaces(env_id: str, env, image_size: int) -> None:
    """One-line errors for an environment without frame observations or box actions."""
    obs, act = env.observation_space, env.action_space
    shape = (image_size, image_size, 3)
    if getattr(obs, "dtype", None) != np.uint8 or tuple(getattr(obs, "shape", ())) != shape:
        raise ValueError(
            f"host environment {env_id!r} observes {obs}; expected uint8 {shape} pixel frames"
        )
    if getattr(act, "shape", None) is None or len(act.shape) != 1 or act.dtype.kind != "f":
        raise ValueError(f"host environment {env_id!r} acts with {act}; expected a 1-D float Box")


def _missing(env_id: str, info: dict, keys, where: str) -> None:
    missing = [k for k in keys if k not in info]
    if missing:
        raise ValueError(
            f"host environment {env_id!r} has no goal: its {where} info lacks {missing}; "
            "expected the lewm_jax.envs.host contract (reset(options={'state', 'goal'}))"
        )


class _Factory:
    """Makes one environment; picklable, and registers the ``lewm/`` ids first, so that
    spawned worker processes (which import gymnasium afresh) can make it too."""

    def __init__(self, env_id: str, image_size: int, env_kwargs: dict):
        self.env_id, self.image_size, self.env_kwargs = env_id, image_size, env_kwargs

    def __call__(self):
        return _make(_gymnasium(), self.env_id, self.image_size, self.env_kwargs)


class HostBatch:
    """N episodes of a host environment stepped together (a gymnasium vector env): the
    host kind of :class:`~lewm_jax.envs.batch.EpisodeBatch`.

    ``asynchronous`` steps them in N worker processes (gymnasium's ``AsyncVectorEnv``);
    ``env_kwargs`` go to every environment's constructor.

    Attributes:
        env_id: the gymnasium id.
        num_envs: N.
        image_size: S.
        action_dim: A.
        timing: seconds spent so far in ``"sim_s"`` and ``"render_s"`` (summed over the N
            environments, as they report it) and ``"host_s"`` (wall time of the vector env's
            reset and step calls).
    """

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        *,
        image_size: int,
        asynchronous: bool = False,
        **env_kwargs,
    ):
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        gymnasium = _gymnasium()
        make_host_env(env_id, image_size, **env_kwargs).close()  # one-line errors first
        make = _Factory(env_id, image_size, env_kwargs)
        vector = gymnasium.vector.AsyncVectorEnv if asynchronous else gymnasium.vector.SyncVectorEnv
        kwargs = {"context": "spawn"} if asynchronous else {}  # OpenGL contexts do not fork
        self.vec = vector([make] * num_envs, **kwargs)
        self.env_id, self.num_envs, self.image_size = env_id, num_envs, image_size
        self.action_dim = int(self.vec.single_action_space.shape[0])
        self.timing = {"sim_s": 0.0, "render_s": 0.0, "host_s": 0.0}
        self._started = False

    def reset(self, states=None, goals=None, *, seed: int | None = None):
        """Starts every episode: at ``states (N, P)`` with ``goals (N, P)``, or random ones.

        Returns:
            ``(frames (N, S, S, 3) uint8, info)`` with ``info["success"] (N,)`` bool,
            ``info["physical_state"] (N, P)`` and ``info["goal_frame"] (N, S, S, 3)``.
        """
        n = self.num_envs
        check_reset_args(n, states, goals)
        t0 = time.perf_counter()
        frames, rows = [None] * n, [None] * n
        # A masked reset keeps the other environments' last observations, so all must have
        # one: the batch's first reset starts with a plain reset of all of them.
        if not self._started:
            self.vec.reset(seed=seed)
            self._started = True
        for i in range(n):  # the vector API passes one options dict to all: one env at a time
            options = {"reset_mask": np.arange(n) == i}
            if states is not None:
                options.update(state=np.asarray(states[i]), goal=np.asarray(goals[i]))
            # Environment i's seed is seed + i (an int seed would give it seed + 2 i).
            seeds = None if seed is None else [seed + i if j == i else None for j in range(n)]
            obs, info = self.vec.reset(seed=seeds, options=options)
            _missing(self.env_id, info, _RESET_KEYS, "reset")
            frames[i] = obs[i]
            rows[i] = {k: info[k][i] for k in _RESET_KEYS}
        self.timing["host_s"] += time.perf_counter() - t0
        info = {k: np.stack([r[k] for r in rows]) for k in _RESET_KEYS}
        info["success"] = info["success"].astype(bool)
        return np.stack(frames), info

    def step(self, actions):
        """Steps every episode with ``actions (N, A)``.

        Returns:
            ``(frames (N, S, S, 3) uint8, success (N,) bool, physical_state (N, P))``.
        """
        actions = check_actions(actions, self.num_envs, self.action_dim)
        t0 = time.perf_counter()
        obs, _, _, _, info = self.vec.step(actions)
        self.timing["host_s"] += time.perf_counter() - t0
        _missing(self.env_id, info, _STEP_KEYS, "step")
        for k in ("sim_s", "render_s"):
            self.timing[k] += float(np.sum(info.get(k, 0.0)))
        return obs, info["success"].astype(bool), info["physical_state"]

    def expert_actions(self) -> np.ndarray:
        """``(N, A)`` actions of the environments' scripted oracles."""
        try:
            actions = self.vec.call("expert_policy")
        except AttributeError:
            raise ValueError(
                f"host environment {self.env_id!r} has no expert_policy(); expected an "
                "environment with a scripted oracle (or collect with the random policy)"
            ) from None
        return np.stack(actions).astype(np.float32)

    def policy_actions(self, name: str, rng: np.random.Generator) -> np.ndarray:
        """``(N, A)`` float32 actions of the baseline policy ``name``
        (:data:`~lewm_jax.envs.episodes.POLICIES`): the oracles', or uniform ones from ``rng``."""
        check_policy(name)
        if name == "expert":
            return self.expert_actions()
        return random_actions(rng, self.num_envs, self.action_dim)

    def close(self) -> None:
        """Closes the simulators."""
        self.vec.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
