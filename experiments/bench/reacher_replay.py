"""Replaying the same actions in our Reacher and in dm_control's reacher (no flags, so that
tests import it): the shared part of tests/test_reacher_dmc.py and
``experiments.bench.reacher_dmc``. Shape letters: E episodes, T env steps."""

import jax
import jax.numpy as jnp
import numpy as np


def random_replay(rng, episodes: int, steps: int):
    """Start angles ``(E, 2)`` and actions ``(E, T, 2)``: a random bias per episode plus
    noise, so that most episodes push the wrist into its soft limit and hold it there."""
    starts = np.stack(
        [rng.uniform(-np.pi, np.pi, episodes), rng.uniform(-2.7, 2.7, episodes)], axis=1
    )
    noise = 0.5 * rng.normal(size=(episodes, steps, 2))
    return starts, np.clip(rng.uniform(-1, 1, (episodes, 1, 2)) + noise, -1, 1)


def ours_qpos(starts, actions) -> np.ndarray:
    """Our Reacher's joint angles ``(E, T, 2)`` after each env step, from rest."""
    from lewm_jax.envs import make

    env, params = make("Reacher-v0", image_size=16)

    @jax.jit
    @jax.vmap
    def rollout(q0, acts):
        _, state = env.reset_to_state(jax.random.key(0), q0, jnp.zeros(2), params)

        def step(state, a):
            _, state, *_ = env.step_env(jax.random.key(0), state, a, params)
            return state, state.qpos

        return jax.lax.scan(step, state, acts)[1]

    return np.asarray(rollout(jnp.asarray(starts, jnp.float32), jnp.asarray(actions, jnp.float32)))


def dmc_qpos(dmc, starts, actions) -> np.ndarray:
    """dm_control's joint angles ``(E, T, 2)``, ``ACTION_REPEAT`` physics steps per step."""
    from lewm_jax.envs.reacher import ACTION_REPEAT

    out = np.zeros(actions.shape, np.float64)
    for e, (q0, acts) in enumerate(zip(starts, actions, strict=True)):
        dmc.reset()
        with dmc.physics.reset_context():
            dmc.physics.data.qpos[:] = q0
            dmc.physics.data.qvel[:] = 0.0
        for t, a in enumerate(acts):
            for _ in range(ACTION_REPEAT):
                dmc.step(a)
            out[e, t] = dmc.physics.data.qpos
    return out


def joint_error(got, ref) -> np.ndarray:
    """Worst joint's absolute angle error ``(E, T)``, the shoulder's wrapped."""
    err = got - ref
    err[..., 0] = (err[..., 0] + np.pi) % (2 * np.pi) - np.pi
    return np.abs(err).max(axis=-1)
