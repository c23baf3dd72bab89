"""Two-Room and Reacher: physical invariants, success criterion, reset_to_state, the episode
collector and input validation (the gymnax contract and determinism of every registered env
are in test_env_registry.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lewm_jax.data.collect import collect_episodes, offset_goal_success_rate
from lewm_jax.data.episodes import Episodes
from lewm_jax.envs import make, render
from lewm_jax.envs import reacher as rc
from lewm_jax.envs import two_room as tr
from lewm_jax.frames import resize_frames

SIZE = 32
ENVS = {"TwoRoom-v0": 2, "Reacher-v0": 4}  # name -> P


@pytest.fixture(scope="module", params=list(ENVS))
def setup(request):
    env, params = make(request.param, image_size=SIZE)
    return {
        "name": request.param,
        "env": env,
        "params": params,
        "reset": jax.jit(env.reset_env),
        "step": jax.jit(env.step_env),
    }


def _criterion(name, ps, goal):
    """NumPy reference of the paper's success criteria."""
    if name == "TwoRoom-v0":
        return np.linalg.norm(ps[..., :2] - goal[..., :2], axis=-1) < 16.0
    d = np.abs(ps[..., :2] - goal[..., :2]) % (2 * np.pi)
    return np.all(np.minimum(d, 2 * np.pi - d) < 0.05, axis=-1)


def _random_walks(env, params, num: int, steps: int):
    """Physical states (E, T + 1, P) under random, extreme (+-3, clipped) and expert actions."""

    def episode(key, which):
        k0, k1 = jax.random.split(key)
        _, state = env.reset_env(k0, params)

        def body(state, k):
            ka, ks = jax.random.split(k)
            extreme = 3.0 * jnp.sign(jax.random.normal(ka, (2,)))
            action = jax.lax.switch(
                which,
                [
                    lambda: env.random_policy(ka, state, params),
                    lambda: extreme,
                    lambda: env.expert_policy(ka, state, params),
                ],
            )
            _, state, *_ = env.step_env(ks, state, action, params)
            return state, env.physical_state(state)

        first = env.physical_state(state)
        rest = jax.lax.scan(body, state, jax.random.split(k1, steps))[1]
        return jnp.concatenate([first[None], rest])

    keys = jax.random.split(jax.random.key(11), num)
    return np.asarray(jax.jit(jax.vmap(episode))(keys, jnp.arange(num) % 3))


def test_two_room_never_leaves_arena_or_crosses_wall():
    env, params = make("TwoRoom-v0", image_size=SIZE)
    params = params.replace(terminate_on_success=False)
    ps = _random_walks(env, params, 192, 80)
    x, y = ps[..., 0], ps[..., 1]
    lo, hi = tr.MARGIN + tr.RADIUS, tr.CANVAS - tr.MARGIN - tr.RADIUS
    assert x.min() >= lo and y.min() >= lo and x.max() <= hi and y.max() <= hi
    in_door = np.abs(y - tr.DOOR_Y) <= tr.DOOR_HALF + tr.DOOR_TOL
    in_band = (x > tr.BAND_LO) & (x < tr.BAND_HI)
    assert in_band.any() and not (in_band & ~in_door).any()
    crossed = (x[:, 1:] < tr.WALL_X) != (x[:, :-1] < tr.WALL_X)
    assert crossed.any() and in_door[:, 1:][crossed].all()
    # The start frame is sampled outside the wall band with a reachable, far target.
    assert not in_band[:, 0].any()


def test_reacher_joint_limits_and_bounded_speed():
    env, params = make("Reacher-v0", image_size=SIZE)
    ps = _random_walks(env, params, 96, 60)
    assert np.isfinite(ps).all()
    assert ps[..., 0].min() >= -np.pi and ps[..., 0].max() < np.pi
    # MuJoCo's soft limit: extreme actions push the wrist a little past the stop, not far.
    assert rc.WRIST_LIMIT < np.abs(ps[..., 1]).max() <= rc.WRIST_LIMIT + 0.25  # 0.16 seen
    assert np.abs(ps[..., 2:]).max() < 20.0  # damping caps speeds near 5 rad/s


def test_success_flag_matches_criterion(setup):
    env, params, name = setup["env"], setup["params"], setup["name"]
    rng = np.random.default_rng(0)
    n = 128
    keys = jax.random.split(jax.random.key(2), n)
    starts = jax.jit(jax.vmap(lambda k: env.physical_state(env.reset_env(k, params)[1])))(keys)
    starts = np.array(starts)
    goals = starts.copy()
    scale = 12.0 if name == "TwoRoom-v0" else 0.035
    goals[:, :2] += rng.normal(0.0, scale, (n, 2))
    if name == "Reacher-v0":  # a goal across the shoulder's +-pi seam still matches
        starts[0, 0], goals[0, 0] = np.pi - 0.01, -np.pi + 0.01

    def one(s, g):
        _, state = env.reset_to_state(jax.random.key(0), s, g, params)
        _, _, _, _, info = env.step_env(jax.random.key(1), state, jnp.zeros(2), params)
        return info["success"], info["physical_state"], env.is_success(s, g, params)

    success, after, direct = jax.device_get(jax.jit(jax.vmap(one))(starts, goals))
    expected = _criterion(name, after.astype(np.float64), goals)
    np.testing.assert_array_equal(success, expected)
    np.testing.assert_array_equal(direct, _criterion(name, starts.astype(np.float64), goals))
    assert 0 < expected.sum() < n
    if name == "Reacher-v0":
        assert expected[0]


def test_reset_to_state_reproduces_state(setup):
    env, params, reset, step = setup["env"], setup["params"], setup["reset"], setup["step"]
    obs, state = reset(jax.random.key(8), params)
    a = jnp.array([0.7, 0.4])
    for i in range(5):
        obs, state, *_ = step(jax.random.key(i), state, a, params)
    restored_obs, restored = env.reset_to_state(
        jax.random.key(0), env.physical_state(state), env.goal_state(state), params
    )
    np.testing.assert_allclose(env.physical_state(restored), env.physical_state(state))
    np.testing.assert_allclose(env.goal_state(restored), env.goal_state(state))
    np.testing.assert_array_equal(restored_obs, obs)
    np.testing.assert_allclose(
        env.physical_state(step(jax.random.key(9), restored, -a, params)[1]),
        env.physical_state(step(jax.random.key(9), state, -a, params)[1]),
        atol=1e-5,
    )


def test_two_room_geometry_at_224():
    img = tr.background()
    black = img[..., 0] == 0
    assert black[100, 107:118].all() and not black[100, 106] and not black[100, 118]
    assert not black[35:64, 107:118].any() and black[34, 112] and black[64, 112]
    assert black[100, 10:14].all() and black[100, 210:214].all() and not black[100, 14]
    env, params = make("TwoRoom-v0", image_size=224)
    frame = np.asarray(jax.jit(env.render_physical)(jnp.array([60.3, 150.6])))
    np.testing.assert_array_equal(frame[151, 60], [255, 0, 0])  # peak-normalised dot
    assert frame[151, 80, 1] > 200 and frame[151, 67, 1] < 160  # std 7 px


@pytest.mark.parametrize("size", [16, 50, 64, 224])
def test_two_room_window_render_equals_resizing_a_whole_drawing(size):
    # The renderer draws only a window around the dot at 224 px and resizes only what it
    # reaches; the oracle draws every pixel at 224 px and resizes with Pillow.
    env, _ = make("TwoRoom-v0", image_size=size)
    c = np.arange(tr.CANVAS, dtype=np.float32)
    background = jnp.asarray(tr.background())

    def every_pixel(pos, colour):
        gx = jnp.exp(-0.5 * jnp.square((c - pos[0]) / env._std))
        gy = jnp.exp(-0.5 * jnp.square((c - pos[1]) / env._std))
        alpha = (gy / gy.max())[:, None] * (gx / gx.max())[None, :]
        img = render.composite(background, alpha, colour)
        return render.to_uint8(img, truncate=True)

    k_pos, k_col = jax.random.split(jax.random.key(size))
    # Positions beyond the image too: the window is clipped to the frame.
    pos = jax.random.uniform(k_pos, (200, 2), minval=-30.0, maxval=tr.CANVAS + 30.0)
    colours = jax.random.randint(k_col, (200, 3), 0, 256).astype(jnp.float32)
    colours = colours.at[:100].set(jnp.asarray(tr._RED))
    want = resize_frames(np.asarray(jax.jit(jax.vmap(every_pixel))(pos, colours)), size)
    got = jax.jit(jax.vmap(env.render_physical))(pos[:100])
    np.testing.assert_array_equal(got, want[:100])
    got = jax.jit(jax.vmap(env.render_physical))(pos[100:], colours[100:])
    np.testing.assert_array_equal(got, want[100:])


def test_paste_single_batched_and_nested_vmap_agree():
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.integers(0, 256, (2, 3, 7, 8, 3)), jnp.uint8)
    patches = jnp.asarray(rng.integers(0, 256, (2, 3, 4, 2, 3)), jnp.uint8)
    starts = jnp.asarray(rng.integers(0, 4, (2, 3, 2)), jnp.int32)
    want = np.array(images)
    for i in range(2):
        for j in range(3):
            y, x = np.asarray(starts[i, j])
            want[i, j, y : y + 4, x : x + 2] = patches[i, j]
    nested = jax.jit(jax.vmap(jax.vmap(render.paste)))(images, patches, starts)
    np.testing.assert_array_equal(nested, want)
    one = jax.jit(jax.vmap(render.paste))(images[1], patches[1], starts[1])
    np.testing.assert_array_equal(one, want[1])
    # An unbatched image (a background) is broadcast over the batch.
    shared = jax.vmap(render.paste, (None, 0, 0))(images[0, 0], patches[0], starts[0])
    for j in range(3):
        np.testing.assert_array_equal(
            shared[j], render.paste(images[0, 0], patches[0, j], starts[0, j])
        )


def test_collector_layout_lengths_and_termination():
    env, params = make("TwoRoom-v0", image_size=SIZE)
    eps = collect_episodes(
        env, params, env.random_policy, jax.random.key(0), 7, 12, min_steps=3, batch=4
    )
    assert isinstance(eps, Episodes) and eps.pixels.dtype == np.uint8
    assert eps.pixels.shape[1:] == (SIZE, SIZE, 3) and eps.state.shape == (eps.pixels.shape[0], 2)
    assert len(set(eps.ep_len.tolist())) > 1 and eps.ep_len.min() >= 1 and eps.ep_len.max() <= 12
    np.testing.assert_array_equal(eps.ep_offset[1:], np.cumsum(eps.ep_len)[:-1])
    last = eps.ep_offset + eps.ep_len - 1
    assert np.isnan(eps.actions[last]).all()
    others = np.delete(eps.actions, last, axis=0)
    assert np.isfinite(others).all() and np.abs(others).max() <= 1.0
    # Frames are the rendering of the recorded state, and states follow the actions.
    np.testing.assert_array_equal(eps.pixels[5], env.render_physical(jnp.asarray(eps.state[5])))
    o = eps.ep_offset[0]
    moved = tr.collide(eps.state[o], eps.state[o] + params.speed * eps.actions[o])
    np.testing.assert_allclose(moved, eps.state[o + 1], atol=1e-4)

    # Terminating on success ends every episode on the frame after the first step.
    easy = params.replace(success_radius=1e4, terminate_on_success=True)
    eps = collect_episodes(env, easy, env.expert_policy, jax.random.key(1), 3, 10)
    np.testing.assert_array_equal(eps.ep_len, [2, 2, 2])

    # Goal = start: the offset protocol succeeds at step 0.
    rate = offset_goal_success_rate(
        env, params, eps, env.random_policy, jax.random.key(2), num_episodes=4, offset=0, budget=2
    )
    assert rate == 1.0
    with pytest.raises(ValueError, match="only 3 frames have a goal 1 steps later"):
        offset_goal_success_rate(env, params, eps, env.random_policy, jax.random.key(2), offset=1)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: make("Nope-v0"), "unknown environment"),
        (lambda: make("TwoRoom-v0", image_size=0), "frame size 0 is not a positive integer"),
        (lambda: make("Reacher-v0", image_size=64.0), "frame size 64.0 is not a positive"),
        (lambda: collect_episodes(None, None, None, jax.random.key(0), 0, 5), "num_episodes"),
        (
            lambda: collect_episodes(None, None, None, jax.random.key(0), 2, 5, min_steps=6),
            "min_steps",
        ),
    ],
)
def test_bad_inputs_give_one_line_errors(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_env_report_frame_strip_rows_and_columns():
    from experiments.env_report import frame_strip

    env, params = make("TwoRoom-v0", image_size=SIZE)
    eps = collect_episodes(env, params, env.expert_policy, jax.random.key(0), 3, 20)
    strip = frame_strip(eps, num_rows=2, num_frames=5)
    assert strip.dtype == np.uint8 and strip.shape == (2 * SIZE, 5 * (SIZE + 2), 3)
    first = eps.pixels[eps.ep_offset[1]]
    np.testing.assert_array_equal(strip[SIZE:, :SIZE], first)
