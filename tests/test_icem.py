"""iCEM: colored-noise statistics, quadratic optima against CEM, elite reuse, settings, and a
closed loop with a tiny model."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax.envs import make
from lewm_jax.models import build_model
from lewm_jax.planning import PLANNERS, cem, check_planner, closed_loop, icem
from lewm_jax.planning.icem import colored_noise

# A smooth 8-block target, so the noise color matters (with H <= 3 every beta is white).
TARGET = jnp.sin(jnp.linspace(0.0, 3.0, 8))[:, None] * jnp.array([1.0, -1.5])  # (H, A)
WEIGHTS = jnp.array([1.0, 3.0])  # an anisotropic bowl


def quadratic(plans):
    return jnp.sum(WEIGHTS * jnp.square(plans - TARGET), axis=(1, 2))


def test_colored_noise_has_unit_variance_and_a_1_over_f_beta_spectrum():
    # 8192 series per beta: the standard errors below are about 1-2 %, the margins 5-10x that.
    stats = {}
    for beta in (0.0, 2.0):
        noise = np.asarray(colored_noise(jax.random.key(0), (4096, 8, 2), beta))
        assert noise.shape == (4096, 8, 2) and noise.dtype == np.float32
        np.testing.assert_allclose(noise.mean(axis=(0, 2)), 0.0, atol=0.06)
        np.testing.assert_allclose(noise.var(axis=(0, 2)), 1.0, atol=0.1)
        lag1 = float(np.mean(noise[:, 1:] * noise[:, :-1]))
        power = np.mean(np.abs(np.fft.rfft(noise, axis=1)) ** 2, axis=(0, 2))
        stats[beta] = lag1, power[1] / power[3]  # two interior frequencies, 1/8 and 3/8
    # White: no lag-1 correlation, a flat spectrum. Brown: lag-1 correlation 0.58 and power
    # at 1/8 nine times that at 3/8 ((3/8 / 1/8)^2), in theory.
    assert abs(stats[0.0][0]) < 0.05 and 0.8 < stats[0.0][1] < 1.25
    assert stats[2.0][0] > 0.45 and 6.0 < stats[2.0][1] < 13.0
    # With H <= 3 the only nonzero frequency sets the zero frequency's scale too: white.
    np.testing.assert_allclose(
        colored_noise(jax.random.key(1), (4, 3, 2), 2.0),
        colored_noise(jax.random.key(1), (4, 3, 2), 0.0),
        rtol=1e-5,
    )


@pytest.mark.parametrize("beta, tol", [(0.0, 0.03), (2.0, 0.2)])
def test_icem_finds_quadratic_minimum_and_jits_once(beta, tol):
    # Brown noise explores smooth plans and resolves each block's entry less finely on this
    # separable bowl (about 0.05-0.1 off at this budget), hence its looser tolerance.
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def solve(key, mean, std):
        return icem(
            key, quadratic, mean, std, num_samples=200, num_iters=20, num_elites=20, noise_beta=beta
        )

    for seed in range(2):  # second call: new key and initial mean, no retrace
        mean0 = jnp.full(TARGET.shape, 0.1 * seed, jnp.float32)
        plan, info = solve(jax.random.key(seed), mean0, jnp.float32(1.0))
        assert plan.shape == TARGET.shape
        np.testing.assert_allclose(plan, TARGET, atol=tol)
        assert info["mean"].shape == info["std"].shape == TARGET.shape
        assert info["best_cost"].shape == info["elite_cost"].shape == (20,)
        assert all(np.all(np.isfinite(v)) for v in jax.tree.leaves(info))


def test_icem_beats_cem_at_the_same_small_sample_count():
    settings = dict(num_samples=16, num_iters=5, num_elites=4)
    keys = jax.random.split(jax.random.key(1), 16)
    init = jnp.zeros(TARGET.shape)
    icem_plans = jax.jit(jax.vmap(lambda k: icem(k, quadratic, init, 1.0, **settings)[0]))(keys)
    cem_plans = jax.jit(jax.vmap(lambda k: cem(k, quadratic, init, 1.0, **settings)[0]))(keys)
    # Mean cost over 16 seeds; about 4.9 against 11.3 when written.
    assert float(quadratic(icem_plans).mean()) <= float(quadratic(cem_plans).mean())


def test_elite_reuse_keeps_the_best_cost_non_increasing():
    settings = dict(num_samples=16, num_iters=8, num_elites=4)
    keys = jax.random.split(jax.random.key(2), 4)
    init = jnp.zeros(TARGET.shape)

    def best_costs(fraction):
        run = jax.vmap(lambda k: icem(k, quadratic, init, 1.0, elite_fraction=fraction, **settings))
        plans, info = jax.jit(run)(keys)
        return np.asarray(quadratic(plans)), jax.tree.map(np.asarray, info)

    cost, info = best_costs(0.3)  # keeps the best elite of 4
    assert np.all(np.diff(info["best_cost"], axis=1) <= 0)
    # The returned plan is the best ever evaluated.
    np.testing.assert_allclose(info["cost"], info["best_cost"].min(axis=1))
    np.testing.assert_allclose(cost, info["cost"], rtol=1e-5)
    # Without reuse an iteration's best can be worse than the last one's (seen on these keys).
    assert np.any(np.diff(best_costs(0.0)[1]["best_cost"], axis=1) > 0)


@pytest.mark.parametrize(
    "settings, match",
    [
        (
            dict(num_samples=10, num_elites=11),
            r"num_elites must be in \[2, num_samples=10\], got 11",
        ),
        (dict(num_samples=10, num_elites=1), r"num_elites must be in \[2, num_samples=10\], got 1"),
        (dict(num_iters=0), "num_iters must be >= 1, got 0"),
        (dict(elite_fraction=1.5), r"elite_fraction must be in \[0, 1\], got 1.5"),
        (dict(elite_fraction=-0.1), r"elite_fraction must be in \[0, 1\], got -0.1"),
        (dict(noise_beta=-1.0), "noise_beta must be >= 0, got -1.0"),
        (dict(noise_beta=float("nan")), "noise_beta must be >= 0, got nan"),
        (dict(momentum=1.0), r"momentum must be in \[0, 1\), got 1.0"),
        (dict(momentum=-0.5), r"momentum must be in \[0, 1\), got -0.5"),
        (
            dict(num_samples=4, num_elites=4, elite_fraction=1.0),
            "elite_fraction=1.0 keeps 4 elites, leaving no fresh plans among num_samples=4",
        ),
    ],
)
def test_bad_settings_raise_one_line_errors(settings, match):
    with pytest.raises(ValueError, match=match) as err:
        icem(jax.random.key(0), quadratic, jnp.zeros(TARGET.shape), 1.0, **settings)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("size", ["paper", "test"])
def test_icem_is_registered_and_the_configs_settings_are_its_own(size):
    assert PLANNERS["icem"] is icem
    settings = get_config(size).planning.settings.icem
    check_planner("icem", settings)  # names only; tracing the call checks the values
    plan = jax.eval_shape(
        lambda k: icem(k, quadratic, jnp.zeros(TARGET.shape), 1.0, **settings)[0],
        jax.random.key(0),
    )
    assert plan.shape == TARGET.shape


def test_icem_runs_in_the_compiled_closed_loop():
    config = get_config("test")
    env, params = make("PushT-v0", image_size=32)
    model = build_model(config.model, image_size=32)
    pixels = jnp.zeros((1, 4, 32, 32, 3), jnp.uint8)
    # An "rbg" key: its init program compiles faster on CPU than threefry's.
    variables = jax.jit(model.init)(jax.random.key(0, impl="rbg"), pixels, jnp.zeros((1, 4, 10)))
    run = closed_loop.make_closed_loop(
        env,
        params,
        model,
        planner="icem",
        planner_settings=dict(config.planning.settings.icem),
        action_mean=np.zeros(2),
        action_std=np.ones(2),
        budget=10,
        horizon=2,
        receding=1,
        frameskip=5,
    )
    keys = jax.random.split(jax.random.key(0), 3)
    start_state = jnp.stack([env.physical_state(env.reset(k, params)[1]) for k in keys[:2]])
    goal_frame = jnp.zeros((2, 32, 32, 3), jnp.uint8)
    out = run(keys[2], variables, start_state, start_state, goal_frame)
    assert out["frames"].shape == (2, 11, 32, 32, 3) and out["frames"].dtype == jnp.uint8
    assert bool(jnp.all(out["success"]))  # goal = start: solved at step 0
    assert bool(jnp.all(jnp.isfinite(out["final_cost"])))
