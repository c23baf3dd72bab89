"""Reacher replayed side by side with dm_control's reacher, the simulator behind the
reference ``swm/ReacherDMControl-v0``: same joint state, same actions, two MuJoCo steps per
env step (stable-worldmodel's action repeat), the wrist pushed into its soft limit."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "disable")  # physics only: no rendering context needed
suite = pytest.importorskip("dm_control.suite", reason="needs the dmc extra (dm_control)")

from lewm_jax.envs import make  # noqa: E402
from lewm_jax.envs import reacher as rc  # noqa: E402

STEPS, EPISODES = 100, 12


def _reference_rollout(env, q0, actions):
    """dm_control qpos (T, 2) after each env step of ``ACTION_REPEAT`` physics steps."""
    env.reset()
    with env.physics.reset_context():
        env.physics.data.qpos[:] = q0
        env.physics.data.qvel[:] = 0.0
    out = []
    for a in actions:
        for _ in range(rc.ACTION_REPEAT):
            env.step(a)
        out.append(env.physics.data.qpos.copy())
    return np.array(out)


def test_replay_matches_dm_control_including_the_soft_wrist_limit():
    dmc = suite.load("reacher", "hard")
    env, params = make("Reacher-v0", image_size=16)
    rng = np.random.default_rng(0)
    # Biased random actions: most episodes drive the wrist into a stop and hold it there.
    starts = np.stack(
        [rng.uniform(-np.pi, np.pi, EPISODES), rng.uniform(-2.7, 2.7, EPISODES)], axis=1
    )
    actions = np.clip(
        rng.uniform(-1, 1, (EPISODES, 1, 2)) + 0.5 * rng.normal(size=(EPISODES, STEPS, 2)), -1, 1
    )

    @jax.jit
    @jax.vmap
    def ours(q0, acts):
        _, state = env.reset_to_state(jax.random.key(0), q0, jnp.zeros(2), params)

        def step(state, a):
            _, state, *_ = env.step_env(jax.random.key(0), state, a, params)
            return state, state.qpos

        return jax.lax.scan(step, state, acts)[1]

    got = np.asarray(ours(jnp.asarray(starts, jnp.float32), jnp.asarray(actions, jnp.float32)))
    ref = np.stack([_reference_rollout(dmc, q, a) for q, a in zip(starts, actions, strict=True)])
    err = got - ref
    err[..., 0] = (err[..., 0] + np.pi) % (2 * np.pi) - np.pi  # ours wraps the shoulder
    assert np.abs(err).max() < 1e-4, np.abs(err).max()  # float32 vs float64: 2.7e-6 seen
    beyond = np.abs(ref[..., 1]) - rc.WRIST_LIMIT
    assert beyond.max() > 0.01  # the soft limit was exercised (the reference overshoots)
    # Half the motion per step would be far off: the same actions with one physics step.
    moved = np.abs(np.diff(ref[:, :10, 1], axis=1)).mean()
    assert moved > 0.05
