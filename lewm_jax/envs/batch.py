"""N episodes stepped together, behind one interface for both kinds of environment.

An :class:`EpisodeBatch` resets its N episodes to given start and goal states (or random
ones), steps them with ``(N, A)`` actions, reports each step's success by the environment's
own criterion, gives the baseline policies' actions and closes. :class:`JaxBatch` implements
it for a pure-JAX environment (each call one compiled function, vmapped over the N
episodes); :class:`lewm_jax.envs.host.HostBatch` for gymnasium simulators on the host.
Loops written against it (:class:`lewm_jax.planning.batch_loop.BatchLoop`,
:func:`lewm_jax.data.host_collect.collect_host_episodes`) run on either; a JAX environment's
fast path stays the compiled closed loop and collector, which run whole episodes as one
program. :func:`make_batch` picks the kind from the registry.
Shape letters: N episodes, S frame side, P physical state, A action dim.
"""

import time
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np

from lewm_jax import envs
from lewm_jax.envs.episodes import check_policy


class EpisodeBatch(Protocol):
    """The interface of a batch of N episodes (attributes ``env_id``, ``num_envs`` N,
    ``image_size`` S, ``action_dim`` A and ``timing``, seconds spent so far by kind, with
    ``"host_s"`` the wall time of its reset and step calls).

    Constraints: ``reset`` before ``step``; frames are uint8 ``(N, S, S, 3)``; success is
    the environment's criterion after the step (or, from ``reset``, at the start); a random
    reset with the same seed starts the same episodes.
    """

    env_id: str
    num_envs: int
    image_size: int
    action_dim: int
    timing: dict

    def reset(self, states=None, goals=None, *, seed: int | None = None):
        """``(frames, info)``: info holds ``success (N,)``, ``physical_state (N, P)`` and
        ``goal_frame (N, S, S, 3)``."""

    def step(self, actions):
        """``(frames, success (N,) bool, physical_state (N, P))`` after ``actions (N, A)``."""

    def policy_actions(self, name: str, rng: np.random.Generator) -> np.ndarray:
        """``(N, A)`` float32 actions of the baseline policy ``name`` for the current step."""

    def close(self) -> None:
        """Releases the simulators."""


def check_reset_args(n: int, states, goals) -> None:
    """One-line errors for a reset's states and goals (both or neither, N of each)."""
    if (states is None) != (goals is None):
        raise ValueError("give both states and goals, or neither")
    if states is not None and (len(states) != n or len(goals) != n):
        raise ValueError(f"expected {n} states and goals, got {len(states)} and {len(goals)}")


def check_actions(actions, n: int, a: int) -> np.ndarray:
    """``actions`` as float32 ``(N, A)``, or a one-line error naming its shape."""
    actions = np.asarray(actions, np.float32)
    if actions.shape != (n, a):
        raise ValueError(f"expected actions of shape {(n, a)}, got {actions.shape}")
    return actions


def random_actions(rng: np.random.Generator, n: int, a: int) -> np.ndarray:
    """``(N, A)`` float32 uniform actions in [-1, 1] from ``rng``: the random policy of
    every batch, drawn on the host so that both kinds draw the same actions."""
    return rng.uniform(-1.0, 1.0, (n, a)).astype(np.float32)


class JaxBatch:
    """N episodes of a pure-JAX environment of :mod:`lewm_jax.envs` stepped together.

    Every call is one jitted function vmapped over the episodes; arrays come back as NumPy.
    ``env_kwargs`` go to the environment's constructor. Attributes as :class:`EpisodeBatch`.
    """

    def __init__(self, env_id: str, num_envs: int, *, image_size: int, **env_kwargs):
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        env, params = envs.make(env_id, image_size=image_size, **env_kwargs)
        self.env, self.params = env, params
        self.env_id, self.num_envs, self.image_size = env.env_id, num_envs, image_size
        self.action_dim = env.action_dim
        self.timing = {"host_s": 0.0}
        self._state, self._key = None, jax.random.key(0)

        def start(obs, state):
            physical = env.physical_state(state)
            goal = env.goal_state(state)
            info = {
                "success": env.is_success(physical, goal, params),
                "physical_state": physical,
                "goal_frame": env.render_physical(goal),
            }
            return obs, state, info

        def reset_to(key, physical_state, goal_state):
            return start(*env.reset_to_state(key, physical_state, goal_state, params))

        def step(key, state, action):
            obs, state, _, _, info = env.step_env(key, state, action, params)
            return obs, state, info["success"], info["physical_state"]

        self._reset_to = jax.jit(jax.vmap(reset_to))
        self._reset_random = jax.jit(jax.vmap(lambda k: start(*env.reset_env(k, params))))
        self._step = jax.jit(jax.vmap(step))
        self._expert = jax.jit(jax.vmap(lambda k, s: env.expert_policy(k, s, params)))

    def _keys(self):
        self._key, key = jax.random.split(self._key)
        return jax.random.split(key, self.num_envs)

    def reset(self, states=None, goals=None, *, seed: int | None = None):
        """Starts every episode at ``states (N, P)`` with ``goals (N, P)``, or random ones;
        ``seed`` seeds the random starts and the environments' own noise (the expert's)."""
        check_reset_args(self.num_envs, states, goals)
        t0 = time.perf_counter()
        self._key = jax.random.key(0 if seed is None else seed)
        if states is None:
            obs, self._state, info = self._reset_random(self._keys())
        else:
            f32 = lambda x: jnp.asarray(np.asarray(x), jnp.float32)  # noqa: E731
            obs, self._state, info = self._reset_to(self._keys(), f32(states), f32(goals))
        obs, info = jax.device_get((obs, info))
        self.timing["host_s"] += time.perf_counter() - t0
        return obs, {**info, "success": np.asarray(info["success"], bool)}

    def step(self, actions):
        """Steps every episode with ``actions (N, A)``; returns ``(frames, success,
        physical_state)``."""
        if self._state is None:
            raise ValueError(f"{self.env_id}: call reset() before step()")
        actions = check_actions(actions, self.num_envs, self.action_dim)
        t0 = time.perf_counter()
        obs, self._state, success, physical = self._step(self._keys(), self._state, actions)
        obs, success, physical = jax.device_get((obs, success, physical))
        self.timing["host_s"] += time.perf_counter() - t0
        return obs, np.asarray(success, bool), physical

    def policy_actions(self, name: str, rng: np.random.Generator) -> np.ndarray:
        """``(N, A)`` float32 actions of the baseline policy ``name``: the scripted experts'
        (their noise from the batch's key) or uniform ones from ``rng``, as HostBatch's."""
        check_policy(name)
        if name == "random":
            return random_actions(rng, self.num_envs, self.action_dim)
        if self._state is None:
            raise ValueError(f"{self.env_id}: call reset() before asking for expert actions")
        return np.asarray(self._expert(self._keys(), self._state), np.float32)

    def close(self) -> None:
        """Drops the episodes' state (nothing else to release)."""
        self._state = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_batch(name: str, num_envs: int, *, image_size: int, **env_kwargs) -> EpisodeBatch:
    """The :class:`EpisodeBatch` of ``num_envs`` episodes of the registered environment
    ``name`` (env id or dataset name; an unregistered namespaced gymnasium id is a host
    environment): a :class:`JaxBatch` or a :class:`~lewm_jax.envs.host.HostBatch`."""
    if envs.is_host_env(name):
        from lewm_jax.envs.host import HostBatch

        known = name in envs.env_ids(None) or name in envs.dataset_names(None)
        env_id = envs.env_id(name) if known else name
        return HostBatch(env_id, num_envs, image_size=image_size, **env_kwargs)
    return JaxBatch(name, num_envs, image_size=image_size, **env_kwargs)
