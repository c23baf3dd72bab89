"""VICReg, PLDM, InfoNCE and NT-Xent: NumPy references, behaviour, gradients, sharding."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from lewm_jax import losses
from lewm_jax.training import ema, sharding


def rng(seed):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- NumPy references (float64)


def np_cov(x):
    """Unbiased covariance of x (N, D) over the first axis, written out with explicit loops."""
    xc = x - x.mean(0)
    n, d = x.shape
    return np.array([[(xc[:, i] * xc[:, j]).sum() / (n - 1) for j in range(d)] for i in range(d)])


def np_offdiag_sq(c):
    return sum(c[i, j] ** 2 for i in range(len(c)) for j in range(len(c)) if i != j)


def np_hinge(x, gamma=1.0, eps=1e-4):
    return np.mean(np.maximum(gamma - np.sqrt(x.var(0, ddof=1) + eps), 0))


def vicreg_numpy(a, b=None, w=(25.0, 25.0, 1.0)):
    views = [a] if b is None else [a, b]
    inv = 0.0 if b is None else np.mean((a - b) ** 2)
    var = np.mean([np_hinge(v) for v in views])
    cov = sum(np_offdiag_sq(np_cov(v)) / v.shape[1] for v in views)
    return w[0] * inv + w[1] * var + w[2] * cov, (inv, var, cov)


def pldm_numpy(z, pred, actions, idm, w):
    b, t, d = z.shape
    terms = {
        "pred": np.mean((pred - z[:, 1:]) ** 2),
        "variance": np.mean([np_hinge(z[:, i]) for i in range(t)]),
        "covariance": np.mean([np_offdiag_sq(np_cov(z[:, i])) / (d * (d - 1)) for i in range(t)]),
        "time_sim": np.mean((z[:, 1:] - z[:, :-1]) ** 2),
        "time_variance": np.mean([np_hinge(z[j]) for j in range(b)]),
        "time_covariance": np.mean([np_offdiag_sq(np_cov(z[j])) / (d * (d - 1)) for j in range(b)]),
        "idm": np.mean((idm(z[:, :-1], z[:, 1:]) - actions) ** 2),
    }
    return sum(w[k] * terms[k] for k in terms), terms


def np_unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def np_xent(logits, labels):
    m = logits.max(1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(1)) + m[:, 0]
    return lse - logits[np.arange(len(labels)), labels]


def info_nce_numpy(q, k, tau, symmetric=False):
    sim = np_unit(q) @ np_unit(k).T / tau
    loss = np_xent(sim, np.arange(len(q))).mean()
    return 0.5 * (loss + np_xent(sim.T, np.arange(len(q))).mean()) if symmetric else loss


def nt_xent_numpy(a, b, tau):
    n = len(a)
    z = np_unit(np.concatenate([a, b]))
    sim = z @ z.T / tau
    np.fill_diagonal(sim, -np.inf)
    labels = np.concatenate([np.arange(n) + n, np.arange(n)])
    return np_xent(sim, labels).mean()


PLDM_W = dict(
    pred=1.0, variance=2.2, covariance=13.0, time_sim=0.5, time_variance=0.19,
    time_covariance=0.0, idm=2.0,
)  # fmt: skip


def linear_idm(z_t, z_t1):
    return (z_t1 - z_t)[..., :2] * 0.5 + z_t[..., 2:4]


# ---------------------------------------------------------------- reference values


@pytest.mark.parametrize("two_views", [False, True])
def test_vicreg_matches_numpy(two_views):
    a = rng(0).normal(size=(32, 6)) * [0.3, 1, 2, 0.5, 1.5, 0.1] + 0.7
    b = a + 0.4 * rng(1).normal(size=a.shape) if two_views else None
    loss, terms = losses.vicreg_loss(
        jnp.asarray(a, jnp.float32), None if b is None else jnp.asarray(b, jnp.float32)
    )
    want, (inv, var, cov) = vicreg_numpy(a, b)
    np.testing.assert_allclose(float(loss), want, rtol=1e-4)
    got = [float(terms[k]) for k in ("invariance", "variance", "covariance")]
    np.testing.assert_allclose(got, [inv, var, cov], rtol=1e-4, atol=1e-7)
    x = jnp.asarray(a, jnp.float32)
    np.testing.assert_allclose(float(losses.variance_loss(x)), np_hinge(a), rtol=1e-4)
    want_cov = np_offdiag_sq(np_cov(a)) / 6
    np.testing.assert_allclose(float(losses.covariance_loss(x)), want_cov, rtol=1e-4)


def test_pldm_matches_numpy():
    z = rng(2).normal(size=(6, 5, 4)) * [1.0, 0.5, 2.0, 0.2] + 0.3
    pred = z[:, 1:] + 0.1 * rng(3).normal(size=(6, 4, 4))
    actions = rng(4).normal(size=(6, 4, 2))
    pldm = jax.jit(functools.partial(losses.pldm_loss, time_cov_weight=0.7))
    with_idm = jax.jit(
        functools.partial(losses.pldm_loss, time_cov_weight=0.7, inverse_model=linear_idm)
    )
    loss, terms = with_idm(*(jnp.asarray(x, jnp.float32) for x in (z, pred, actions)))
    want, want_terms = pldm_numpy(z, pred, actions, linear_idm, {**PLDM_W, "time_covariance": 0.7})
    np.testing.assert_allclose(float(loss), want, rtol=1e-4)
    for k, v in want_terms.items():
        np.testing.assert_allclose(float(terms[k]), v, rtol=1e-4, err_msg=k)
    # Without the inverse-dynamics hook the term is reported as 0 and left out of the loss.
    loss_no_idm, terms = pldm(jnp.asarray(z, jnp.float32), jnp.asarray(pred, jnp.float32))
    assert float(terms["idm"]) == 0.0
    np.testing.assert_allclose(float(loss_no_idm), want - 2.0 * want_terms["idm"], rtol=1e-4)


@pytest.mark.parametrize("symmetric", [False, True])
def test_info_nce_matches_numpy(symmetric):
    q, k = rng(5).normal(size=(2, 12, 8))
    got = losses.info_nce(jnp.asarray(q), jnp.asarray(k), temperature=0.2, symmetric=symmetric)
    np.testing.assert_allclose(float(got), info_nce_numpy(q, k, 0.2, symmetric), rtol=1e-5)


def test_nt_xent_matches_numpy():
    a, b = rng(6).normal(size=(2, 10, 8))
    got = losses.nt_xent(jnp.asarray(a), jnp.asarray(b), temperature=0.3)
    np.testing.assert_allclose(float(got), nt_xent_numpy(a, b, 0.3), rtol=1e-5)


# ---------------------------------------------------------------- behaviour


def test_vicreg_variance_term_sanity():
    z = rng(7).normal(size=(4096, 16))
    collapsed = np.full((64, 16), 0.3)
    np.testing.assert_allclose(float(losses.variance_loss(jnp.asarray(collapsed))), 0.99, rtol=1e-3)
    assert float(losses.variance_loss(jnp.asarray(z, jnp.float32))) < 0.02
    whitened = (z - z.mean(0)) / z.std(0, ddof=1)
    assert float(losses.variance_loss(jnp.asarray(whitened, jnp.float32))) == 0.0
    # Covariance: ~0 for independent dimensions, large when every dimension is the same.
    assert float(losses.covariance_loss(jnp.asarray(z, jnp.float32))) < 0.01
    line = np.repeat(z[:, :1], 16, axis=1)
    np.testing.assert_allclose(float(losses.covariance_loss(jnp.asarray(line))), 15.0, rtol=0.1)
    _, terms = losses.vicreg_loss(jnp.asarray(z), jnp.asarray(z))
    assert float(terms["invariance"]) == 0.0


def test_pldm_temporal_terms_sanity():
    static = np.repeat(rng(8).normal(size=(16, 1, 8)), 5, axis=1)  # no change over time
    _, terms = losses.pldm_loss(jnp.asarray(static), jnp.asarray(static[:, 1:]))
    assert float(terms["time_sim"]) == 0.0 and float(terms["pred"]) == 0.0
    np.testing.assert_allclose(float(terms["time_variance"]), 0.99, rtol=1e-3)
    z = jnp.asarray(rng(9).normal(size=(16, 5, 8)), jnp.float32)
    actions = linear_idm(z[:, :-1], z[:, 1:])
    _, terms = losses.pldm_loss(z, z[:, 1:], actions, inverse_model=linear_idm)
    assert float(terms["idm"]) == 0.0


def test_contrastive_sanity():
    keys = jax.random.split(jax.random.key(10), 3)
    n, d = 64, 512
    q = jax.random.normal(keys[0], (n, d))
    assert float(losses.info_nce(q, q + 0.01 * jax.random.normal(keys[1], (n, d)))) < 0.05
    assert float(losses.nt_xent(q, q)) < 0.05
    # Random pairs: cosines ~ N(0, 1/D), so at temperature 1 every candidate is equally likely.
    r = jax.random.normal(keys[2], (n, d))
    np.testing.assert_allclose(float(losses.info_nce(q, r, temperature=1.0)), np.log(n), atol=0.05)
    np.testing.assert_allclose(
        float(losses.nt_xent(q, r, temperature=1.0)), np.log(2 * n - 1), atol=0.05
    )


def test_gradients_finite():
    z = jax.random.normal(jax.random.key(11), (16, 4, 8))
    fns = [
        lambda x: losses.vicreg_loss(x[:, 0], x[:, 1])[0],
        # Nearly collapsed: sqrt(var + eps) keeps the variance hinge's gradient finite.
        lambda x: losses.vicreg_loss(1.0 + 1e-4 * x[:, 0])[0],
        lambda x: losses.pldm_loss(x, x[:, 1:] * 0.5, x[:, 1:, :2], inverse_model=linear_idm)[0],
        lambda x: losses.info_nce(x[:, 0], x[:, 1], symmetric=True),
        lambda x: losses.nt_xent(x[:, 0], 0 * x[:, 1]),  # all-zero second view
    ]
    # One compilation for all five gradients keeps the test fast.
    grads = jax.jit(lambda x: [jax.grad(fn)(x) for fn in fns])(z)
    for g in grads:
        assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).sum()) > 0
    # Exactly collapsed: a stationary point of VICReg, with a finite (zero) gradient.
    g = jax.grad(lambda x: losses.vicreg_loss(x)[0])(jnp.ones((16, 8)))
    assert bool(jnp.all(jnp.isfinite(g)))


def test_bad_inputs_raise_one_line_errors():
    z2, z3 = jnp.zeros((8, 4)), jnp.zeros((8, 3, 4))
    cases = [
        (ValueError, "(8, 3, 4)", lambda: losses.vicreg_loss(z3)),
        (ValueError, "(8, 5)", lambda: losses.vicreg_loss(z2, jnp.zeros((8, 5)))),
        (TypeError, "int32", lambda: losses.variance_loss(z2.astype(jnp.int32))),
        (ValueError, "B = 1", lambda: losses.covariance_loss(z2[:1])),
        (ValueError, "(8, 3, 4)", lambda: losses.pldm_loss(z3, z3)),
        (ValueError, "together", lambda: losses.pldm_loss(z3, z3[:, 1:], z3[:, 1:])),
        (
            ValueError,
            "(8, 3, 2)",
            lambda: losses.pldm_loss(z3, z3[:, 1:], jnp.zeros((8, 3, 2)), inverse_model=linear_idm),
        ),  # fmt: skip
        (
            ValueError,
            "(8, 2, 2)",
            lambda: losses.inverse_dynamics_loss(
                z3, jnp.zeros((8, 2, 3)), inverse_model=linear_idm
            ),
        ),  # fmt: skip
        (ValueError, "-0.5", lambda: losses.info_nce(z2, z2, temperature=-0.5)),
        (ValueError, "(8, 3, 4)", lambda: losses.nt_xent(z3, z3)),
        (ValueError, "1.5", lambda: ema.ema_update({"w": z2}, {"w": z2}, 1.5)),
    ]
    for exc, text, fn in cases:
        with pytest.raises(exc) as info:
            fn()
        assert text in str(info.value) and "\n" not in str(info.value), str(info.value)


# ---------------------------------------------------------------- data parallelism

PARALLEL_CASES = {
    "vicreg_two_views": (
        lambda a, b, axis_name=None: losses.vicreg_loss(a, b, axis_name=axis_name),
        2,
    ),
    "vicreg_one_view": (lambda a, axis_name=None: losses.vicreg_loss(a, axis_name=axis_name), 2),
    "pldm": (
        lambda z, p, a, axis_name=None: losses.pldm_loss(
            z, p, a, inverse_model=linear_idm, time_cov_weight=0.3, axis_name=axis_name
        ),
        3,
    ),
    "info_nce": (functools.partial(losses.info_nce, temperature=0.2), 2),
    "info_nce_symmetric": (functools.partial(losses.info_nce, symmetric=True), 2),
    "nt_xent": (functools.partial(losses.nt_xent, temperature=0.3), 2),
}


def parallel_inputs(name):
    k = jax.random.split(jax.random.key(12), 3)
    if name == "pldm":
        z = jax.random.normal(k[0], (32, 4, 6)) * 1.3 + 0.5
        return z, z[:, 1:] + 0.1, jax.random.normal(k[1], (32, 3, 2))
    a = jax.random.normal(k[0], (32, 6)) * 0.7 + 0.2
    b = a + 0.5 * jax.random.normal(k[1], (32, 6))
    return (a,) if name == "vicreg_one_view" else (a, b)


@pytest.mark.parametrize("name", sorted(PARALLEL_CASES))
def test_sharded_equals_single_device(name):
    """jit over a batch sharded on 8 devices, and shard_map with axis_name, vs one device."""
    fn, _ = PARALLEL_CASES[name]
    mesh = sharding.make_mesh()
    assert mesh.devices.size == 8
    inputs = parallel_inputs(name)
    single = jax.jit(fn)(*(jax.device_put(x, jax.devices()[0]) for x in inputs))
    sharded = [jax.device_put(x, NamedSharding(mesh, P("data"))) for x in inputs]
    jitted = jax.jit(fn)(*sharded)
    specs = tuple(P("data") for _ in inputs)
    mapped = jax.jit(
        jax.shard_map(
            functools.partial(fn, axis_name="data"), mesh=mesh, in_specs=specs, out_specs=P()
        )
    )(*sharded)
    for out in (jitted, mapped):
        jax.tree.map(
            lambda x, y: np.testing.assert_allclose(x, y, rtol=2e-5, atol=1e-6), out, single
        )


@pytest.mark.parametrize("name", ["vicreg_two_views", "info_nce_symmetric", "nt_xent"])
def test_shard_map_gradients_equal_single_device(name):
    """Gradients flow through the psums and the all_gather of the keys to every shard."""
    fn, _ = PARALLEL_CASES[name]
    scalar = lambda *xs, axis_name=None: jax.tree.leaves(fn(*xs, axis_name=axis_name))[0]
    inputs = parallel_inputs(name)
    argnums = tuple(range(len(inputs)))
    single = jax.jit(jax.grad(scalar, argnums))(*inputs)
    mesh = sharding.make_mesh()
    specs = tuple(P("data") for _ in inputs)
    mapped = jax.jit(jax.shard_map(
        jax.grad(functools.partial(scalar, axis_name="data"), argnums),
        mesh=mesh, in_specs=specs, out_specs=specs,
    ))(*inputs)  # fmt: skip
    for got, want in zip(mapped, single, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- EMA
