"""Episode collection and policy evaluation for the pure-JAX environments.

Everything runs as one compiled program per chunk of ``batch`` environments: ``vmap`` over
environments of a ``lax.scan`` over time, calling ``env.step_env`` (no auto-reset). Episodes
of different lengths share the scan; a mask marks the frames that belong to each episode
and NumPy compacts them into the flat :class:`~lewm_jax.data.episodes.Episodes` layout.
Every episode draws its randomness from its own key (``split(key, E)[e]``), so the data do
not depend on ``batch``.

A policy is any ``policy(key, env_state, env_params) -> (A,)``, e.g. ``env.expert_policy``.
Shape letters: E episodes, T time steps, B environments per chunk, N stored steps,
A action dim, P physical-state dim, H/W pixels.
"""

import math
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from lewm_jax.data.episodes import Episodes, concat_episodes, episode_offsets, goal_pairs

_CHUNK_BYTES = 1 << 30  # default bound on the pixels of one chunk


def _check(num_episodes: int, max_steps: int, min_steps: int | None) -> None:
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if min_steps is not None and not 1 <= min_steps <= max_steps:
        raise ValueError(f"min_steps must be in [1, max_steps={max_steps}], got {min_steps}")


def _chunks(fn, keys: jax.Array, batch: int):
    """Yields host results of the jitted ``fn`` on ``keys`` in chunks of exactly ``batch``.

    The last chunk is padded with repeated keys (and trimmed), so ``fn`` compiles once.
    """
    for start in range(0, keys.shape[0], batch):
        chunk = keys[start : start + batch]
        n = chunk.shape[0]
        if n < batch:
            chunk = jnp.concatenate([chunk, jnp.repeat(chunk[:1], batch - n, axis=0)])
        yield jax.tree.map(lambda x, n=n: np.asarray(x)[:n], jax.device_get(fn(chunk)))


def make_rollout(env, env_params, policy, max_steps: int, min_steps: int | None = None):
    """Returns ``rollout(key) -> dict`` of one episode of at most ``max_steps`` frames.

    The episode lasts ``max_steps`` frames, or a length drawn uniformly from
    ``[min_steps, max_steps]``, and ends earlier on the frame that follows a ``terminated``
    step. Outputs over T = ``max_steps``: ``pixels (T, H, W, 3)`` uint8, ``actions (T, A)``
    (the action taken after observing each frame), ``state (T, P)``, ``valid (T,)`` (frame
    belongs to the episode), ``last (T,)`` (final frame of the episode).
    """

    def rollout(key):
        k_reset, k_len, k_steps = jax.random.split(key, 3)
        obs, state = env.reset_env(k_reset, env_params)
        length = max_steps
        if min_steps is not None:
            length = jax.random.randint(k_len, (), min_steps, max_steps + 1)

        def body(carry, t):
            obs, state, ended, arrived = carry
            k_act, k_env = jax.random.split(jax.random.fold_in(k_steps, t))
            action = policy(k_act, state, env_params)
            last = ~ended & ((t == length - 1) | arrived)
            out = {
                "pixels": obs,
                "actions": action,
                "state": env.physical_state(state),
                "valid": ~ended,
                "last": last,
            }
            obs, state, _, terminated, _ = env.step_env(k_env, state, action, env_params)
            return (obs, state, ended | last, terminated), out

        init = (obs, state, jnp.array(False), jnp.array(False))
        return jax.lax.scan(body, init, jnp.arange(max_steps))[1]

    return rollout


def collect_episodes(
    env,
    env_params,
    policy,
    key: jax.Array,
    num_episodes: int,
    max_steps: int,
    *,
    min_steps: int | None = None,
    batch: int | None = None,
) -> Episodes:
    """Collects ``num_episodes`` episodes into the flat dataset layout.

    Args:
        env: an environment of :mod:`lewm_jax.envs`.
        env_params: its parameters (e.g. Two-Room's ``terminate_on_success`` ends episodes at
            the frame after success).
        policy: ``policy(key, env_state, env_params) -> (A,)``.
        key: PRNG key.
        num_episodes: E.
        max_steps: longest episode, in frames.
        min_steps: if given, each episode's length is drawn uniformly from
            ``[min_steps, max_steps]`` (before any termination).
        batch: environments per compiled chunk (default: as many as fit ~1 GiB of pixels).

    Returns:
        :class:`Episodes` with ``pixels (N, H, W, 3)`` uint8 holding every frame,
        ``actions (N, A)`` float32 (NaN on the last frame of each episode), ``ep_offset``
        and ``ep_len (E,)`` int64, and ``state (N, P)`` float32, the physical state.
    """
    chunks = iter_episodes(
        env, env_params, policy, key, num_episodes, max_steps, min_steps=min_steps, batch=batch
    )
    return concat_episodes(list(chunks))


def iter_episodes(
    env,
    env_params,
    policy,
    key: jax.Array,
    num_episodes: int,
    max_steps: int,
    *,
    min_steps: int | None = None,
    batch: int | None = None,
) -> Iterator[Episodes]:
    """The episodes of :func:`collect_episodes` (same arguments), a chunk of ``batch`` at a
    time, so that a dataset larger than memory can be written as it is collected."""
    _check(num_episodes, max_steps, min_steps)
    frame_bytes = math.prod(env.obs_shape)
    batch = batch or max(1, min(num_episodes, _CHUNK_BYTES // (max_steps * frame_bytes)))
    rollout = jax.jit(jax.vmap(make_rollout(env, env_params, policy, max_steps, min_steps)))
    for out in _chunks(rollout, jax.random.split(key, num_episodes), batch):
        valid = out["valid"]
        actions = np.where(out["last"][..., None], np.nan, out["actions"]).astype(np.float32)
        ep_len = valid.sum(axis=1).astype(np.int64)
        yield Episodes(
            pixels=out["pixels"][valid],
            actions=actions[valid],
            ep_offset=episode_offsets(ep_len),
            ep_len=ep_len,
            state=out["state"][valid].astype(np.float32),
        )


def _evaluate(env, env_params, policy, budget: int):
    """``run(key, start (P,), goal (P,)) -> success`` bool: criterion at any step <= budget."""

    def run(key, start, goal):
        k_reset, k_steps = jax.random.split(key)
        _, state = env.reset_to_state(k_reset, start, goal, env_params)

        def body(carry, k):
            state, success = carry
            k_act, k_env = jax.random.split(k)
            action = policy(k_act, state, env_params)
            _, state, _, _, info = env.step_env(k_env, state, action, env_params)
            return (state, success | info["success"]), None

        success = env.is_success(start, goal, env_params)
        keys = jax.random.split(k_steps, budget)
        return jax.lax.scan(body, (state, success), keys)[0][1]

    return run


def success_rate(
    env, env_params, policy, key: jax.Array, num_episodes: int, max_steps: int | None = None
) -> float:
    """Fraction of episodes from ``env.reset_env`` in which ``policy`` meets the criterion.

    Success is the env's criterion at any step within ``max_steps`` (default
    ``env_params.max_steps_in_episode``); no frames are kept, so rendering is skipped.
    """
    max_steps = max_steps or env_params.max_steps_in_episode
    _check(num_episodes, max_steps, None)
    run = _evaluate(env, env_params, policy, max_steps)

    def episode(key):
        k_reset, k_run = jax.random.split(key)
        _, state = env.reset_env(k_reset, env_params)
        return run(k_run, env.physical_state(state), env.goal_state(state))

    keys = jax.random.split(key, num_episodes)
    return float(np.mean(jax.device_get(jax.jit(jax.vmap(episode))(keys))))


def offset_goal_success_rate(
    env,
    env_params,
    episodes: Episodes,
    policy,
    key: jax.Array,
    *,
    num_episodes: int = 50,
    offset: int = 25,
    budget: int = 50,
    seed: int = 42,
) -> float:
    """The paper's evaluation protocol with a fixed policy instead of a planner.

    Start = a random dataset frame (``default_rng(seed)``, without replacement), goal = the
    frame ``offset`` steps later in the same episode; ``policy`` runs ``budget`` steps from
    ``env.reset_to_state(start, goal)``; success if the criterion holds at any step.

    Args:
        env: the environment the episodes come from.
        env_params: its parameters.
        episodes: dataset with a ``state (N, P)`` column.
        policy: ``policy(key, env_state, env_params) -> (A,)``, e.g. ``env.random_policy``.
        key: PRNG key of the rollouts.
        num_episodes: E, evaluation episodes.
        offset: env steps between start and goal frames.
        budget: env steps per episode.
        seed: seed of the choice of start frames.
    """
    if episodes.state is None:
        raise ValueError("episodes need a physical `state` column to reset the env")
    start, goal = goal_pairs(episodes, num_episodes, offset=offset, seed=seed)
    run = jax.jit(jax.vmap(_evaluate(env, env_params, policy, budget)))
    keys = jax.random.split(key, num_episodes)
    success = run(keys, episodes.state[start], episodes.state[goal])
    return float(np.mean(jax.device_get(success)))
