"""Push-T: physics invariants and the success criterion (the gymnax contract and determinism
of every registered env are in test_env_registry.py)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lewm_jax.envs import make, render
from lewm_jax.envs import push_t as pt
from lewm_jax.envs import push_t_physics as phys
from lewm_jax.frames import resize_frames

SIZE = 32
P = 7


@pytest.fixture(scope="module")
def env_and_params():
    return make("PushT-v0", image_size=SIZE)


def _criterion(ps, goal):
    """NumPy reference of the reference's eval_state."""
    pos_err = np.linalg.norm(ps[..., :4] - goal[..., :4], axis=-1)
    d = np.abs(ps[..., 4] - goal[..., 4]) % (2 * np.pi)
    return (pos_err < 20) & (np.minimum(d, 2 * np.pi - d) < np.pi / 9)


def _start(env, params, agent, block, angle, goal=None):
    ps = jnp.array([*agent, *block, angle, 0.0, 0.0], jnp.float32)
    goal = ps if goal is None else jnp.asarray(goal, jnp.float32)
    return env.reset_to_state(jax.random.key(0), ps, goal, params)[1]


def _run(env, params, state, action, steps):
    step = jax.jit(env.step_env)
    for i in range(steps):
        _, state, *_ = step(jax.random.key(i), state, jnp.asarray(action, jnp.float32), params)
    return state


def test_stays_in_arena_without_deep_penetration(env_and_params):
    """Random, expert and block-ramming actions over many keys keep every invariant."""
    env, params = env_and_params

    def ram(key, state, params):
        # Drive straight through the block so it gets jammed against the walls.
        cog = phys.block_cog(state.block_pos, state.block_angle)
        return jnp.clip((cog - state.agent_pos) / 30.0 + jax.random.normal(key, (2,)), -1, 1)

    def episode(key, which):
        k0, k1 = jax.random.split(key)
        _, state = env.reset_env(k0, params)

        def body(state, k):
            ka, ks = jax.random.split(k)
            policies = [env.random_policy, env.expert_policy, ram]
            action = jax.lax.switch(which, [lambda p=p: p(ka, state, params) for p in policies])
            _, state, *_ = env.step_env(ks, state, action, params)
            pen = phys.agent_block_penetration(state.agent_pos, state.block_pos, state.block_angle)
            return state, (
                phys.hull_vertices(state.block_pos, state.block_angle),
                state.agent_pos,
                pen,
            )

        return jax.lax.scan(body, state, jax.random.split(k1, 60))[1]

    keys = jax.random.split(jax.random.key(11), 96)
    which = jnp.arange(96) % 3
    verts, agent, pen = jax.device_get(jax.jit(jax.vmap(episode))(keys, which))
    tol = 1e-2
    assert verts.min() >= phys.ARENA_LO - tol and verts.max() <= phys.ARENA_HI + tol
    r = phys.AGENT_RADIUS
    assert agent.min() >= phys.ARENA_LO + r - tol and agent.max() <= phys.ARENA_HI - r + tol
    assert pen.max() < 1.0, pen.max()


def test_push_through_cog_translates_off_centre_rotates(env_and_params):
    env, params = env_and_params
    # Bar along y 200..230, stem x 241..271 down to y 320; the CoG is (256, 245).
    state = _start(env, params, (256.0, 360.0), (256.0, 200.0), 0.0)
    pushed = _run(env, params, state, (0.0, -0.5), 12)
    assert float(pushed.block_pos[1]) < 200.0 - 30.0
    assert abs(float(phys.wrap_angle(pushed.block_angle))) < 0.05

    # Under the right half of the bar: the upward push turns the T anticlockwise on screen.
    state = _start(env, params, (300.0, 260.0), (256.0, 200.0), 0.0)
    pushed = _run(env, params, state, (0.0, -0.5), 8)
    assert float(phys.wrap_angle(pushed.block_angle)) < -0.1
    assert float(jnp.linalg.norm(pushed.block_pos - jnp.array([256.0, 200.0]))) > 5.0


def test_success_flag_matches_criterion(env_and_params):
    env, params = env_and_params
    rng = np.random.default_rng(0)
    n = 64
    ps = np.stack(
        [
            rng.uniform(50, 450, n),
            rng.uniform(50, 450, n),
            rng.uniform(100, 400, n),
            rng.uniform(100, 400, n),
            rng.uniform(0, 2 * np.pi, n),
            np.zeros(n),
            np.zeros(n),
        ],
        axis=1,
    )
    # Agent far from the block so a zero action leaves everything in place.
    ps[:, :2] = ps[:, 2:4] + np.array([0.0, -100.0])
    goal = ps.copy()
    goal[:, :4] += rng.normal(0, 9, (n, 4))
    goal[:, 4] = np.mod(goal[:, 4] + rng.normal(0, 0.35, n), 2 * np.pi)
    goal[0, 4], ps[0, 4] = 0.05, 2 * np.pi - 0.05  # the angle error wraps around 0

    def one(p, g):
        _, state = env.reset_to_state(jax.random.key(0), p, g, params)
        _, _, _, terminated, info = env.step_env(jax.random.key(1), state, jnp.zeros(2), params)
        return terminated, info["success"], info["physical_state"]

    terminated, success, after = jax.device_get(jax.jit(jax.vmap(one))(ps, goal))
    expected = _criterion(after.astype(np.float64), goal)
    np.testing.assert_array_equal(success, expected)
    np.testing.assert_array_equal(terminated, success)
    assert 0 < expected.sum() < n and expected[0]


def test_reset_to_state_reproduces_state(env_and_params):
    env, params = env_and_params
    reset, step = jax.jit(env.reset_env), jax.jit(env.step_env)
    obs, state = reset(jax.random.key(8), params)
    for i in range(5):
        obs, state, *_ = step(jax.random.key(i), state, jnp.array([0.7, 0.4]), params)
    restored_obs, restored = env.reset_to_state(
        jax.random.key(0), env.physical_state(state), env.goal_state(state), params
    )
    chex.assert_trees_all_close(restored.replace(time=state.time), state, atol=1e-5)
    np.testing.assert_array_equal(restored_obs, obs)
    a = jnp.array([-0.5, 0.9])
    np.testing.assert_allclose(
        env.physical_state(step(jax.random.key(9), restored, a, params)[1]),
        env.physical_state(step(jax.random.key(9), state, a, params)[1]),
        atol=1e-4,
    )


@pytest.mark.parametrize("size", [16, 50, 224])
def test_window_render_matches_drawing_every_pixel(size):
    # Frames are drawn at 224 px in two windows (agent, block) and only what they reach is
    # resized; the oracle draws every pixel at 224 px and resizes it with Pillow.
    env, _ = make("PushT-v0", image_size=size)
    native, _ = make("PushT-v0", image_size=224)
    grid = (np.arange(224) + 0.5) * pt.WORLD / 224 - 0.5  # as the env samples the table
    grid = jnp.asarray(grid.astype(np.float32))
    background = native._draw_background(grid)

    def every_pixel(ps):
        return render.to_uint8(native._draw(ps, grid[None, :], grid[:, None], background))

    k_state, k_pose = jax.random.split(jax.random.key(size))
    states = jax.vmap(pt.sample_state)(jax.random.split(k_state, 300))
    # Agent and block partly or wholly off the table too: windows are clipped to the frame.
    states = states.at[:60, :4].set(
        jax.random.uniform(k_pose, (60, 4), minval=-100.0, maxval=612.0)
    )
    got = np.asarray(jax.jit(jax.vmap(env.render_physical))(states)).astype(int)
    want = resize_frames(np.asarray(jax.jit(jax.vmap(every_pixel))(states)), size).astype(int)
    # Equal up to float rounding of the same formula in differently fused code.
    assert np.abs(got - want).max() <= 1 and (got != want).mean() < 1e-5
    on_table = got[60:] != np.asarray(env._canvas.background, int)
    assert on_table.any(axis=(1, 2, 3)).all()
    single = np.asarray(jax.jit(env.render_physical)(states[7]))
    nested = jax.jit(jax.vmap(jax.vmap(env.render_physical)))(states[:6].reshape(2, 3, P))
    np.testing.assert_array_equal(single, got[7])
    np.testing.assert_array_equal(np.asarray(nested).reshape(6, size, size, 3), got[:6])
