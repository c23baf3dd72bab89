"""Surprise tests: t-test references, teacher-forced curves, perturbations, one end-to-end run."""

import functools
import hashlib
import math

import jax
import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax.analysis import surprise
from lewm_jax.data.collect import collect_episodes
from lewm_jax.data.episodes import action_stats
from lewm_jax.envs import make
from lewm_jax.models import build_model

SIZE, FRAMESKIP, STEPS = 32, 5, 21  # 5 frames per episode


@pytest.fixture(scope="module")
def two_room():
    env, params = make("TwoRoom-v0", image_size=SIZE)
    params = params.replace(terminate_on_success=False)
    eps = collect_episodes(env, params, env.expert_policy, jax.random.key(0), 3, STEPS)
    return env, params, eps


@pytest.fixture(scope="module")
def tiny_model():
    config = get_config("test")
    model = build_model(config.model, image_size=SIZE)
    pixels = np.zeros((1, 4, SIZE, SIZE, 3), np.uint8)
    actions = np.zeros((1, 4, FRAMESKIP * 2), np.float32)
    return model, jax.jit(model.init)(jax.random.key(0), pixels, actions)


@pytest.mark.parametrize(
    "d, t, p",
    [
        ([1.0, 3.0], 2.0, 1 - 2 / math.pi * math.atan(2.0)),  # df 1: Cauchy tails
        ([1.0, 2.0, 3.0], 2 * math.sqrt(3), 1 - math.sqrt(12 / 14)),  # df 2: 1 - t/sqrt(2+t^2)
        ([1.0, 2.0, 3.0, 4.0, 5.0], 3 * math.sqrt(2), 0.01323559956368269),  # scipy, df 4
        ([-1.0, -2.0, -3.0], -2 * math.sqrt(3), 1 - math.sqrt(12 / 14)),
    ],
)
def test_paired_t_test_reference_values(d, t, p):
    b = np.linspace(-1.0, 1.0, len(d))
    got_t, got_p = surprise.paired_t_test(np.asarray(d) + b, b)
    assert got_t == pytest.approx(t, rel=1e-9)
    assert got_p == pytest.approx(p, rel=1e-4)


def test_paired_t_test_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n, shift in [(5, 0.1), (20, 0.5), (50, 1.0), (50, 0.0)]:
        a, b = rng.normal(shift, 1.0, n), rng.normal(0.0, 1.0, n)
        ref = stats.ttest_rel(a, b)
        t, p = surprise.paired_t_test(a, b)
        assert t == pytest.approx(ref.statistic, rel=1e-9)
        assert p == pytest.approx(ref.pvalue, rel=1e-4, abs=1e-12)


def test_paired_t_test_constant_differences():
    assert surprise.paired_t_test([1.0, 2.0], [1.0, 2.0]) == (0.0, 1.0)
    assert surprise.paired_t_test([2.0, 3.0], [1.0, 2.0]) == (math.inf, 0.0)


def test_surprise_curve_equals_naive_loop(tiny_model):
    model, variables = tiny_model
    e, t, n = 2, 6, model.history
    pixels = np.random.default_rng(0).integers(0, 256, (e, t, SIZE, SIZE, 3), np.uint8)
    blocks = np.random.default_rng(1).normal(size=(e, t, FRAMESKIP * 2)).astype(np.float32)
    curve = np.asarray(surprise.surprise_curve(model, variables, pixels, blocks))
    assert curve.shape == (e, t - 1) and (curve >= 0).all()
    z = jax.jit(functools.partial(model.apply, method="encode"))(variables, pixels)
    emb = model.apply(variables, blocks, method="embed_actions")
    predict = jax.jit(functools.partial(model.apply, method="predict"))
    for i in range(t - 1):
        s = max(0, i - n + 1)
        pred = predict(variables, z[:, s : i + 1], emb[:, s : i + 1])
        want = np.mean(np.square(np.asarray(pred[:, -1]) - np.asarray(z[:, i + 1])), axis=-1)
        np.testing.assert_allclose(curve[:, i], want, rtol=1e-4, atol=1e-6)
    # Blocks beyond a window's read slot are masked out, even when not finite.
    blocks[:, 2] = np.nan
    masked = np.asarray(surprise.surprise_curve(model, variables, pixels, blocks))
    np.testing.assert_allclose(masked[:, :2], curve[:, :2], rtol=1e-5)


def test_default_colour_keeps_two_room_frames_bit_identical():
    env, params = make("TwoRoom-v0", image_size=SIZE)
    eps = collect_episodes(env, params, env.expert_policy, jax.random.key(0), 4, 30)
    # Digest of these frames with the default colour (drawn at 224 px and resized as the
    # original does; the renderer before that, drawing at 32 px, gave 60bcf312...).
    digest = hashlib.sha1(eps.pixels.tobytes()).hexdigest()
    assert digest == "a64d74a115254baf8a808874a309354f25be670c"
    _, state = env.reset_env(jax.random.key(3), params)
    red = np.asarray(env.render(state, params, colour=(255.0, 0.0, 0.0)))
    np.testing.assert_array_equal(np.asarray(env.render(state, params)), red)
    assert (np.asarray(env.render(state, params, colour=(0.0, 0.0, 255.0))) != red).any()


def test_perturbations_change_frames_only_from_step_on(two_room):
    env, params, eps = two_room
    step = 2
    idx = eps.ep_offset[:, None] + np.arange(STEPS)
    args = (
        jax.random.split(jax.random.key(1), len(idx)),
        eps.state[idx[:, 0]],
        eps.state[idx[:, -1]],
        np.nan_to_num(eps.actions[idx]),
    )
    frames = {}
    for kind in surprise.KINDS:
        make_frames = surprise.perturbed_frames(
            env, params, kind, step=step, frameskip=FRAMESKIP, colour=(0.0, 0.0, 255.0)
        )
        frames[kind] = np.asarray(jax.jit(jax.vmap(make_frames))(*args))
    control = frames["control"]
    np.testing.assert_array_equal(control, eps.pixels[idx[:, ::FRAMESKIP]])
    for kind in ("teleport", "colour"):
        np.testing.assert_array_equal(frames[kind][:, :step], control[:, :step])
        changed = (frames[kind][:, step:] != control[:, step:]).any(axis=(2, 3, 4))
        assert changed.all(), kind


def test_run_surprise_end_to_end(two_room, tiny_model):
    env, params, eps = two_room
    model, variables = tiny_model
    mean, std = action_stats(eps.actions)
    report = surprise.run_surprise(
        model,
        variables,
        env,
        params,
        eps,
        key=jax.random.key(2),
        action_mean=mean,
        action_std=std,
        frameskip=FRAMESKIP,
    )
    assert report["num_frames"] == 5 and report["step"] == 2 and report["episodes"] == 3
    for kind in surprise.KINDS:
        curve = report["curves"][kind]
        assert curve.shape == (3, 4) and np.isfinite(curve).all()
        assert report["at_step"][kind]["mean"] == pytest.approx(curve[:, 1].mean(), rel=1e-6)
    np.testing.assert_array_equal(
        report["curves"]["teleport"][:, :1], report["curves"]["control"][:, :1]
    )
    for kind in ("teleport", "colour"):
        assert 0.0 <= report["tests"][kind]["p"] <= 1.0


def _bad_calls():
    model = build_model(get_config("test").model, image_size=SIZE)
    env, params = make("TwoRoom-v0", image_size=SIZE)
    reacher, reacher_params = make("Reacher-v0", image_size=SIZE)
    px = np.zeros((2, 3, SIZE, SIZE, 3), np.uint8)
    blocks = np.zeros((2, 3, 10), np.float32)
    return [
        (lambda: surprise.paired_t_test([1.0, 2.0], [1.0]), "shape"),
        (lambda: surprise.paired_t_test([1.0], [1.0]), "E >= 2"),
        (lambda: surprise.paired_t_test([1.0, np.nan], [1.0, 2.0]), "finite"),
        (lambda: surprise.surprise_curve(model, {}, px[:, :1], blocks[:, :1]), "T >= 2"),
        (lambda: surprise.surprise_curve(model, {}, px.astype(np.float32), blocks), "uint8"),
        (lambda: surprise.surprise_curve(model, {}, px, blocks[:, :2]), "action_blocks"),
        (
            lambda: surprise.perturbed_frames(env, params, "swap", step=1, frameskip=5, colour=0),
            "kind",
        ),
        (
            lambda: surprise.perturbed_frames(
                reacher, reacher_params, "colour", step=1, frameskip=5, colour=0
            ),
            "colour parameter",
        ),
    ]


@pytest.mark.parametrize("i", range(8))
def test_bad_inputs_give_one_line_errors(i):
    call, match = _bad_calls()[i]
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("step", [0, 5])
def test_run_surprise_rejects_bad_step(two_room, tiny_model, step):
    env, params, eps = two_room
    model, variables = tiny_model
    with pytest.raises(ValueError, match=r"step must be in \[1, 4\]") as info:
        surprise.run_surprise(
            model,
            variables,
            env,
            params,
            eps,
            key=jax.random.key(0),
            action_mean=np.zeros(2),
            action_std=np.ones(2),
            frameskip=FRAMESKIP,
            step=step,
        )
    assert "\n" not in str(info.value)


def test_colour_flag_parses_rgb_and_rejects_bad_values():
    from experiments.cli import parse_rgb

    assert parse_rgb(["200", "40", "40.5"], flag="--colour") == (200.0, 40.0, 40.5)
    for bad in (["0", "0"], ["0", "0", "256"], ["red", "0", "0"], ["-1", "0", "0"]):
        with pytest.raises(ValueError, match="--colour .*expected three numbers R,G,B in 0..255"):
            parse_rgb(bad, flag="--colour")
