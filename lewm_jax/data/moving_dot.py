"""Procedurally generated episodes: a red dot driven by velocity actions in a box.

A stand-in dataset with known dynamics for tests and quick runs: the action (a velocity
direction in [-1, 1]^2) is held for a random number of steps with small noise, the dot
moves ``speed`` per step and stops at the box edges. Generated in one compiled call
(``vmap`` over episodes of a ``lax.scan`` over steps).
Shape letters: E episodes, L steps per episode, H/W pixels.
"""

import jax
import jax.numpy as jnp
import numpy as np

from lewm_jax.data.episodes import Episodes


def _render_dot(pos: jax.Array, image_size: int, sigma: float) -> jax.Array:
    """White canvas with a grey frame and a red Gaussian blob at ``pos`` in [0, 1]^2."""
    c = (jnp.arange(image_size) + 0.5) / image_size
    d2 = jnp.square(c[None, :] - pos[0]) + jnp.square(c[:, None] - pos[1])
    alpha = jnp.exp(-0.5 * d2 / sigma**2)[..., None]
    edge = (c < 0.05) | (c > 0.95)
    frame = (edge[None, :] | edge[:, None])[..., None]
    canvas = jnp.where(frame, 0.6, 1.0) * jnp.ones(3)
    img = (1 - alpha) * canvas + alpha * jnp.array([0.9, 0.1, 0.1])
    return jnp.round(img * 255).astype(jnp.uint8)


def _episode(key, length: int, image_size: int, speed: float, sigma: float):
    k_pos, k_steps = jax.random.split(key)
    pos0 = jax.random.uniform(k_pos, (2,), minval=0.1, maxval=0.9)

    def step(carry, k):
        pos, vel = carry
        k_switch, k_dir, k_noise = jax.random.split(k, 3)
        new_dir = jax.random.uniform(k_dir, (2,), minval=-1.0, maxval=1.0)
        vel = jnp.where(jax.random.bernoulli(k_switch, 0.15), new_dir, vel)
        action = jnp.clip(vel + 0.1 * jax.random.normal(k_noise, (2,)), -1.0, 1.0)
        frame = _render_dot(pos, image_size, sigma)
        next_pos = jnp.clip(pos + speed * action, 0.1, 0.9)
        return (next_pos, vel), (frame, action, pos)

    vel0 = jax.random.uniform(k_steps, (2,), minval=-1.0, maxval=1.0)
    keys = jax.random.split(jax.random.fold_in(k_steps, 1), length)
    _, (frames, actions, states) = jax.lax.scan(step, (pos0, vel0), keys)
    return frames, actions, states


def moving_dot_episodes(
    key: jax.Array,
    *,
    num_episodes: int,
    episode_len: int,
    image_size: int,
    speed: float = 0.04,
) -> Episodes:
    """Generates ``num_episodes`` episodes of ``episode_len`` steps.

    The last action of every episode is NaN, as in recorded datasets where no action
    follows the final observation.

    Args:
        key: PRNG key.
        num_episodes: E.
        episode_len: L, steps per episode.
        image_size: side of the square uint8 frames.
        speed: distance per step in units of the image side.

    Returns:
        :class:`~lewm_jax.data.episodes.Episodes` with ``state`` = dot position ``(N, 2)``.
    """
    if num_episodes < 1 or episode_len < 2 or image_size < 8:
        raise ValueError(
            f"need num_episodes >= 1, episode_len >= 2, image_size >= 8; got "
            f"{num_episodes}, {episode_len}, {image_size}"
        )
    keys = jax.random.split(key, num_episodes)
    gen = jax.jit(
        jax.vmap(lambda k: _episode(k, episode_len, image_size, speed, sigma=0.06)),
    )
    frames, actions, states = jax.device_get(gen(keys))
    actions = np.array(actions, np.float32)
    actions[:, -1] = np.nan
    n = num_episodes * episode_len
    return Episodes(
        pixels=np.asarray(frames).reshape(n, image_size, image_size, 3),
        actions=actions.reshape(n, 2),
        ep_offset=np.arange(num_episodes, dtype=np.int64) * episode_len,
        ep_len=np.full(num_episodes, episode_len, np.int64),
        state=np.asarray(states, np.float32).reshape(n, 2),
    )
