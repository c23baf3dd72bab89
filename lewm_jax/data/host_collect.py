"""Episode collection from an episode batch, N at a time: how host environments collect.

The counterpart of :func:`lewm_jax.data.collect.collect_episodes` (a JAX environment's fast
path) for any :class:`~lewm_jax.envs.batch.EpisodeBatch`, in practice the host
environments' :class:`~lewm_jax.envs.host.HostBatch`: every round resets the N episodes at
random (seeded), steps them ``max_steps - 1`` times with the scripted expert or uniform
random actions, and appends the N episodes to the flat :class:`~lewm_jax.data.episodes.Episodes`
layout (``write_hdf5`` turns it into an official-layout file). Shape letters: E episodes,
N environments, T steps per episode, A action dim, P physical-state dim.
"""

import time
from collections.abc import Iterator

import numpy as np

from lewm_jax.data.episodes import Episodes, concat_episodes, episode_offsets
from lewm_jax.envs.episodes import check_policy


def collect_host_episodes(
    batch,
    num_episodes: int,
    max_steps: int,
    *,
    seed: int = 0,
    policy: str = "expert",
    progress: bool = False,
):
    """Collects ``num_episodes`` episodes of ``max_steps`` frames each.

    Args:
        batch: an :class:`~lewm_jax.envs.batch.EpisodeBatch` (its N episodes step
            together; the last round's surplus episodes are dropped).
        num_episodes: E.
        max_steps: T, frames per episode (T - 1 actions; the last frame's action is NaN,
            as in the official files).
        seed: seed of the resets (round r seeds ``seed + r * N``) and of random actions.
        policy: ``"expert"`` (the environments' noisy scripted experts) or ``"random"``.
        progress: print a line per round.

    Returns:
        ``(episodes, timing)``: :class:`Episodes` with ``pixels (E*T, S, S, 3)`` uint8,
        ``actions (E*T, A)``, ``state (E*T, P)``; ``timing`` as :func:`host_timing`.
    """
    t0 = time.perf_counter()
    rounds = iter_host_episodes(
        batch, num_episodes, max_steps, seed=seed, policy=policy, progress=progress
    )
    episodes = concat_episodes(list(rounds))
    return episodes, host_timing(batch, t0, len(episodes.pixels))


def iter_host_episodes(
    batch,
    num_episodes: int,
    max_steps: int,
    *,
    seed: int = 0,
    policy: str = "expert",
    progress: bool = False,
) -> Iterator[Episodes]:
    """The episodes of :func:`collect_host_episodes` (same arguments), one round of N at a
    time, so that a collection larger than memory can be written as it goes
    (:class:`~lewm_jax.data.hdf5.HDF5Writer`)."""
    check_policy(policy)
    if num_episodes < 1 or max_steps < 2:
        raise ValueError(
            f"num_episodes must be >= 1 and max_steps >= 2, got {num_episodes} and {max_steps}"
        )
    n, rng = batch.num_envs, np.random.default_rng(seed)
    size = batch.image_size
    t0 = time.perf_counter()
    for r in range(-(-num_episodes // n)):
        frames, info = batch.reset(seed=seed + r * n)
        state = info["physical_state"]
        ep_px, ep_act, ep_state = [frames], [], [state]
        for _ in range(max_steps - 1):
            action = batch.policy_actions(policy, rng)
            frames, _, state = batch.step(action)
            ep_px.append(frames)
            ep_act.append(action)
            ep_state.append(state)
        ep_act.append(np.full_like(ep_act[0], np.nan))
        keep = min(n, num_episodes - r * n)
        px, act, st = (
            np.stack(rows, axis=1)[:keep].reshape(keep * max_steps, -1)
            for rows in (ep_px, ep_act, ep_state)
        )
        ep_len = np.full(keep, max_steps, np.int64)
        yield Episodes(
            pixels=px.reshape(-1, size, size, 3),
            actions=act.astype(np.float32),
            ep_offset=episode_offsets(ep_len),
            ep_len=ep_len,
            state=st.astype(np.float32),
        )
        if progress:
            done = min((r + 1) * n, num_episodes)
            rate = done * max_steps / (time.perf_counter() - t0)
            print(f"collect: {done}/{num_episodes} episodes, {rate:.1f} frames/s", flush=True)


def host_timing(batch, t0: float, frames: int) -> dict:
    """Seconds of ``wall_s`` (since ``t0``), the batch's ``sim_s``/``render_s``/``host_s``,
    and ``frames_per_s`` (stored frames per wall second)."""
    wall = time.perf_counter() - t0
    return {**batch.timing, "wall_s": wall, "frames_per_s": frames / wall}
