"""Planner tests: known quadratic optima, single traces, CEM vs brute force on the model."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax.models import build_model
from lewm_jax.planning import (
    all_steps_cost,
    cem,
    gradient_planner,
    make_latent_cost,
    make_pixel_planner,
    mppi,
    terminal_cost,
)
from lewm_jax.planning import pixels as pixel_planning
from lewm_jax.planning.rollout import rollout

TARGET = jnp.array([[0.8, -1.2], [1.5, 0.3], [-0.4, 0.9]])  # (H, A) = (3, 2)
WEIGHTS = jnp.array([1.0, 3.0])  # an anisotropic bowl


def quadratic(plans):
    return jnp.sum(WEIGHTS * jnp.square(plans - TARGET), axis=(1, 2))


PLANNER_CASES = {
    "cem": (cem, dict(num_samples=200, num_iters=20, num_elites=20), 1.0, 0.02),
    "mppi": (mppi, dict(num_samples=200, num_iters=40, temperature=0.05), 0.1, 0.05),
    "adamw": (gradient_planner, dict(num_samples=8, num_steps=60, lr=0.1), 1.0, 0.05),
    "adam": (
        gradient_planner,
        dict(num_samples=8, num_steps=60, lr=0.1, optimizer="adam"),
        1.0,
        0.05,
    ),
}


@pytest.mark.parametrize("name", sorted(PLANNER_CASES))
def test_planner_finds_quadratic_minimum_and_jits_once(name):
    planner, settings, std, tol = PLANNER_CASES[name]
    chex.clear_trace_counter()  # parametrized copies of `solve` share one counter

    @jax.jit
    @chex.assert_max_traces(n=1)
    def solve(key, mean, std):
        return planner(key, quadratic, mean, std, **settings)

    for seed in range(2):  # second call: new key and initial mean, no retrace
        mean0 = jnp.full(TARGET.shape, 0.1 * seed, jnp.float32)
        plan, info = solve(jax.random.key(seed), mean0, jnp.float32(std))
        assert plan.shape == TARGET.shape
        np.testing.assert_allclose(plan, TARGET, atol=tol)
        assert all(np.all(np.isfinite(v)) for v in jax.tree.leaves(info))


def test_cem_history_improves_and_std_shrinks():
    plan, info = cem(jax.random.key(0), quadratic, jnp.zeros((3, 2)), 1.0, num_iters=10)
    assert info["elite_cost"].shape == (10,)
    assert info["elite_cost"][-1] < 0.01 * info["elite_cost"][0]
    assert np.all(info["std"] < 0.1)


@pytest.mark.parametrize(
    "planner, settings, match",
    [
        (cem, dict(num_samples=10, num_elites=11), "num_elites"),
        (cem, dict(num_samples=10, num_elites=1), "num_elites"),
        (cem, dict(num_iters=0), "num_iters"),
        (mppi, dict(temperature=0.0), "temperature"),
        (mppi, dict(num_samples=5, num_elites=6), "num_elites"),
        (gradient_planner, dict(optimizer="lbfgs"), "optimizer"),
        (gradient_planner, dict(num_steps=0), "num_steps"),
    ],
)
def test_bad_settings_raise(planner, settings, match):
    with pytest.raises(ValueError, match=match):
        planner(jax.random.key(0), quadratic, jnp.zeros((3, 2)), 1.0, **settings)


def test_bad_distributions_and_costs_raise():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"horizon"):
        cem(key, quadratic, jnp.zeros((0, 2)), 1.0)
    with pytest.raises(ValueError, match=r"\(H, A\)"):
        cem(key, quadratic, jnp.zeros((3,)), 1.0)
    with pytest.raises(ValueError, match="broadcast"):
        mppi(key, quadratic, jnp.zeros((3, 2)), jnp.ones((4,)))
    with pytest.raises(ValueError, match="cost_fn"):
        cem(key, lambda p: p.sum(-1), jnp.zeros((3, 2)), 1.0)
    with pytest.raises(ValueError, match="z_goal"):
        terminal_cost(jnp.zeros((4, 3, 8)), jnp.zeros((7,)))
    with pytest.raises(ValueError, match=r"\(S, H, D\)"):
        all_steps_cost(jnp.zeros((4, 8)), jnp.zeros((8,)))


def test_costs_on_known_latents():
    pred = jnp.stack([jnp.ones((2, 4)), jnp.zeros((2, 4))])  # (S=2, H=2, D=4)
    goal = jnp.ones((4,))
    np.testing.assert_allclose(terminal_cost(pred, goal), [0.0, 4.0])
    np.testing.assert_allclose(all_steps_cost(pred, goal), [0.0, 8.0])


@pytest.fixture(scope="module")
def model_and_variables():
    """Test-size model (A = 2) with AdaLN perturbed: at init the blocks ignore actions."""
    config = get_config("test")
    model = build_model(config.model, image_size=config.data.image_size)
    side = config.data.image_size
    pixels, actions = jnp.zeros((1, 4, side, side, 3), jnp.uint8), jnp.zeros((1, 4, 2))
    # An "rbg" key: its init program compiles faster on CPU than threefry's.
    variables = jax.jit(model.init)(jax.random.key(0, impl="rbg"), pixels, actions)
    params = jax.tree_util.tree_map_with_path(
        lambda path, p: (
            p + jax.random.normal(jax.random.key(len(str(path))), p.shape)
            if "adaln" in jax.tree_util.keystr(path)
            else p
        ),
        variables["params"],
    )
    return model, {"params": params, "batch_stats": variables["batch_stats"]}


def test_cem_with_model_matches_brute_force_grid(model_and_variables):
    model, variables = model_and_variables
    z_init = jax.random.normal(jax.random.key(1), (model.latent_dim,))
    grid_1d = jnp.linspace(-2.0, 2.0, 21)
    grid = jnp.stack(jnp.meshgrid(grid_1d, grid_1d, indexing="ij"), -1).reshape(-1, 1, 2)
    z0 = jnp.broadcast_to(z_init, (grid.shape[0], model.latent_dim))
    z_final = jax.jit(rollout, static_argnums=0)(model, variables, z0, grid)[:, -1]
    # The goal is the prediction for an off-centre grid action, so the brute-force minimum
    # (cost 0) is known; the other grid costs show the actions matter.
    target = int(np.argmin(np.abs(grid - jnp.array([1.2, -0.6])).sum((1, 2))))
    grid_costs = np.sum(np.square(z_final - z_final[target]), axis=-1)
    best = int(np.argmin(grid_costs))
    assert best == target and np.median(grid_costs) > 1e-3
    cost_fn = make_latent_cost(model, variables, z_init, z_final[target])
    plan, _ = jax.jit(lambda k: cem(k, cost_fn, jnp.zeros((1, 2)), 1.0))(jax.random.key(2))
    plan_cost = float(jax.jit(cost_fn)(plan[None])[0])
    assert plan_cost <= grid_costs[best] + 1e-4 * np.median(grid_costs)
    np.testing.assert_allclose(plan, grid[best], atol=0.02)


def test_pixel_planner_checks_frames_and_jits_once(model_and_variables, monkeypatch):
    model, variables = model_and_variables
    chex.clear_trace_counter()
    # The planner body runs only while tracing, so this counts traces of the whole plan.
    monkeypatch.setitem(pixel_planning.PLANNERS, "cem", chex.assert_max_traces(cem, n=1))
    side = model.image_size
    plan_fn = make_pixel_planner(model, planner="cem", num_samples=16, num_iters=3, num_elites=4)
    frames = jax.random.randint(jax.random.key(3), (2, side, side, 3), 0, 256).astype(jnp.uint8)
    init = jnp.zeros((5, 2))
    plan, info = plan_fn(jax.random.key(0), variables, frames[0], frames[1], init)
    assert plan.shape == (5, 2) and info["z_goal"].shape == (model.latent_dim,)
    plan_fn(jax.random.key(1), variables, frames[1], frames[0], init + 0.5, 0.5)
    with pytest.raises(ValueError, match=rf"\({side}, {side}, 3\), got \(1, {side}, {side}, 3\)"):
        plan_fn(jax.random.key(0), variables, frames[:1], frames[1], init)
    with pytest.raises(TypeError, match="uint8"):
        plan_fn(jax.random.key(0), variables, frames[0].astype(jnp.float32), frames[1], init)
    with pytest.raises(ValueError, match="unknown planner"):
        make_pixel_planner(model, planner="random")
