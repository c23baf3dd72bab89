"""Rollout tests: the fixed-window scans equal naive step-by-step prediction."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax.models import build_model
from lewm_jax.planning import terminal_cost
from lewm_jax.planning.rollout import predict_token, rollout, rollout_cached

S, A = 4, 3
ROLLOUTS = {"scan": rollout, "cached": rollout_cached}
# Jitted once per module so tests with equal shapes share compilations.
JITTED = {name: jax.jit(fn, static_argnums=0) for name, fn in ROLLOUTS.items()}


def _init_dynamics(module, z, actions):
    return module.predict(z, module.embed_actions(actions))


@pytest.fixture(scope="module")
def model_and_variables():
    """Test-size model with perturbed AdaLN (at init every block is the identity, so the
    actions would not matter); only the parts a rollout uses are initialised."""
    model = build_model(get_config("test").model, image_size=32)
    z, actions = jnp.zeros((1, model.history, model.latent_dim)), jnp.zeros((1, model.history, A))
    # An "rbg" key: its init program compiles faster on CPU than threefry's.
    key = jax.random.key(0, impl="rbg")
    variables = jax.jit(model.init, static_argnames="method")(
        key, z, actions, method=_init_dynamics
    )
    params = jax.tree_util.tree_map_with_path(
        lambda path, p: (
            p + 0.3 * jax.random.normal(jax.random.key(len(str(path))), p.shape)
            if "adaln" in jax.tree_util.keystr(path)
            else p
        ),
        variables["params"],
    )
    return model, {"params": params, "batch_stats": variables["batch_stats"]}


def naive_rollout(model, variables, z0, context_actions, actions):
    """The reference algorithm: grow the context, truncate to the last N, predict."""
    emb = model.apply(
        variables, jnp.concatenate([context_actions, actions], 1), method="embed_actions"
    )
    zs, n = z0, model.history
    for _ in range(actions.shape[1]):
        t = zs.shape[1]
        ctx = min(t, n)
        pred = model.apply(variables, zs[:, -ctx:], emb[:, t - ctx : t], method="predict")
        zs = jnp.concatenate([zs, pred[:, -1:]], axis=1)
    return zs[:, z0.shape[1] :]


NAIVE = jax.jit(naive_rollout, static_argnums=0)


def _inputs(t0, horizon, d):
    kz, kc, ka = jax.random.split(jax.random.key(t0 * 10 + horizon), 3)
    z0 = jax.random.normal(kz, (S, t0, d))
    return z0, jax.random.normal(kc, (S, t0 - 1, A)), jax.random.normal(ka, (S, horizon, A))


@pytest.mark.parametrize("name", sorted(ROLLOUTS))
@pytest.mark.parametrize("t0, horizon", [(1, 5), (4, 3)])  # fill then slide; T0 > N
def test_rollout_equals_naive_prediction(model_and_variables, name, t0, horizon):
    model, variables = model_and_variables
    z0, ctx, actions = _inputs(t0, horizon, model.latent_dim)
    want = NAIVE(model, variables, z0, ctx, actions)
    got = JITTED[name](model, variables, z0, actions, context_actions=ctx)
    assert got.shape == (S, horizon, model.latent_dim) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, atol=1e-5)
    # The plan matters (the window case included): the comparison is not vacuous.
    other = JITTED[name](model, variables, z0, actions + 1.0, context_actions=ctx)
    assert np.abs(np.asarray(other - got)[:, -1]).max() > 1e-3


def test_decode_mode_equals_full_pass_token_by_token(model_and_variables):
    model, variables = model_and_variables
    n, d = model.history, model.latent_dim
    kz, ke = jax.random.split(jax.random.key(5))
    z, e = jax.random.normal(kz, (S, n, d)), jax.random.normal(ke, (S, n, d))
    want = model.apply(variables, z, e, method="predict")
    # flax's decode pattern: a decode init on the full window sizes the cache; it adds no
    # parameters (checkpoints and the weights converter see the same tree).
    init = model.init(jax.random.key(0), z, e, decode=True, method="predict")
    shapes = jax.tree.map(jnp.shape, init["params"])
    assert shapes == jax.tree.map(jnp.shape, {k: variables["params"][k] for k in shapes})
    assert "cache" not in variables and "cache" in init

    step = jax.jit(functools.partial(predict_token, model, variables))
    cache = init["cache"]
    for t in range(n):
        got, cache = step(cache, z[:, t : t + 1], e[:, t : t + 1])
        np.testing.assert_allclose(got[:, 0], want[:, t], atol=1e-6)
    assert int(cache["predictor"]["cache_index"]) == n
    with pytest.raises(ValueError, match="one token per call"):
        model.apply({**variables, "cache": cache}, z, e, decode=True, method="predict")


def test_single_frame_context_and_single_trace(model_and_variables):
    model, variables = model_and_variables
    chex.clear_trace_counter()
    fn = jax.jit(chex.assert_max_traces(rollout_cached, n=1), static_argnums=0)
    z0, ctx, actions = _inputs(1, 5, model.latent_dim)
    out = fn(model, variables, z0[:, 0], actions)
    np.testing.assert_array_equal(out, fn(model, variables, z0[:, 0], actions))
    fn(model, variables, z0[:, 0] + 1.0, actions - 1.0)  # new values, no retrace
    want = JITTED["cached"](model, variables, z0, actions, context_actions=ctx)
    np.testing.assert_allclose(out, want, atol=1e-6)


def test_cached_rollout_gradient_matches_finite_differences(model_and_variables):
    model, variables = model_and_variables
    z0, ctx, actions = _inputs(1, 5, model.latent_dim)
    goal = jnp.zeros((model.latent_dim,))

    def cost(a):
        pred = JITTED["cached"](model, variables, z0, a, context_actions=ctx)
        return terminal_cost(pred, goal).sum()

    grad = jax.jit(
        jax.grad(lambda a: terminal_cost(rollout_cached(model, variables, z0, a), goal).sum())
    )(actions)
    direction = jax.random.normal(jax.random.key(9), actions.shape)
    eps = 1e-2
    numeric = (cost(actions + eps * direction) - cost(actions - eps * direction)) / (2 * eps)
    analytic = jnp.sum(grad * direction)
    assert abs(float(analytic)) > 1e-3  # the plan moves the final latent
    np.testing.assert_allclose(analytic, numeric, rtol=1e-2)


def test_bfloat16_cached_rollout_tracks_float32(model_and_variables):
    model, variables = model_and_variables  # float32 params serve any compute dtype
    z0, ctx, actions = _inputs(1, 5, model.latent_dim)
    want = JITTED["cached"](model, variables, z0, actions, context_actions=ctx)
    got = JITTED["cached"](model.clone(dtype=jnp.bfloat16), variables, z0, actions)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, atol=0.05 * float(jnp.abs(want).max()))


def test_bad_inputs_raise_one_line_errors(model_and_variables):
    model, variables = model_and_variables
    z0, ctx, actions = _inputs(2, 3, model.latent_dim)
    with pytest.raises(ValueError, match=r"\(S, H, A\)"):
        rollout(model, variables, z0, actions[0])
    with pytest.raises(ValueError, match="horizon"):
        rollout(model, variables, z0, actions[:, :0], context_actions=ctx)
    with pytest.raises(ValueError, match="context_actions of shape"):
        rollout_cached(model, variables, z0, actions)
    with pytest.raises(ValueError, match=r"context_actions must have shape \(4, 1, 3\)"):
        rollout(model, variables, z0, actions, context_actions=ctx[:, :, :2])
    with pytest.raises(ValueError, match="z0 must have shape"):
        rollout(model, variables, z0[:2], actions, context_actions=ctx)
