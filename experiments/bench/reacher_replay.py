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


def ours_qpos(starts, actions, goals=None, *, success: bool = False):
    """Our Reacher's joint angles ``(E, T, 2)`` after each env step, from rest; with
    ``success``, also its success flags ``(E, T)``. ``goals (E, 2)`` default to far away
    (the env step ends early when its first physics step reaches the goal)."""
    from lewm_jax.envs import make

    env, params = make("Reacher-v0", image_size=16)
    if goals is None:  # a goal no arm reaches: the wrist cannot bend 4 rad
        goals = np.tile([0.0, 4.0], (len(starts), 1))

    @jax.jit
    @jax.vmap
    def rollout(q0, goal, acts):
        _, state = env.reset_to_state(jax.random.key(0), q0, goal, params)

        def step(state, a):
            _, state, _, _, info = env.step_env(jax.random.key(0), state, a, params)
            return state, (state.qpos, info["success"])

        return jax.lax.scan(step, state, acts)[1]

    args = (starts, goals, actions)
    qpos, ok = rollout(*(jnp.asarray(x, jnp.float32) for x in args))
    return (np.asarray(qpos), np.asarray(ok)) if success else np.asarray(qpos)


def dmc_qpos(dmc, starts, actions, goals=None, *, tol: float = 0.05, success: bool = False):
    """dm_control's joint angles ``(E, T, 2)``, stepped as stable-worldmodel's
    ``swm/ReacherDMControl-v0`` (qpos_match) steps it: ``ACTION_REPEAT`` physics steps per
    env step, stopping after one that brings every joint within ``tol`` of ``goals (E, 2)``
    (that env then terminates). With ``success``, also the success flags ``(E, T)``:
    the criterion after each env step, the shoulder's difference wrapped (the original
    compares raw qpos: the same unless the shoulder has turned a full circle)."""
    from lewm_jax.envs.reacher import ACTION_REPEAT

    def reached(q, goal):
        err = q - goal
        err[0] = (err[0] + np.pi) % (2 * np.pi) - np.pi
        return bool(np.all(np.abs(err) < tol))

    out = np.zeros(actions.shape, np.float64)
    ok = np.zeros(actions.shape[:2], bool)
    for e, (q0, acts) in enumerate(zip(starts, actions, strict=True)):
        goal = None if goals is None else np.asarray(goals[e], np.float64)
        dmc.reset()
        with dmc.physics.reset_context():
            dmc.physics.data.qpos[:] = q0
            dmc.physics.data.qvel[:] = 0.0
        for t, a in enumerate(acts):
            for _ in range(ACTION_REPEAT):
                dmc.step(a)
                if goal is not None and reached(dmc.physics.data.qpos, goal):
                    break
            out[e, t] = dmc.physics.data.qpos
            ok[e, t] = goal is not None and reached(out[e, t].copy(), goal)
    return (out, ok) if success else out


def joint_error(got, ref) -> np.ndarray:
    """Worst joint's absolute angle error ``(E, T)``, the shoulder's wrapped."""
    err = got - ref
    err[..., 0] = (err[..., 0] + np.pi) % (2 * np.pi) - np.pi
    return np.abs(err).max(axis=-1)
