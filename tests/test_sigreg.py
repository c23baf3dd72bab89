"""SIGReg and the LeWM loss: NumPy reference, statistical behaviour, gradients, sharding."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from lewm_jax import losses
from lewm_jax.training import sharding


def sigreg_numpy(z, proj, knots=17):
    """Section 3 of LEWM_FACTS.md written independently in float64 NumPy."""
    t = np.linspace(0, 3, knots)
    dt = 3 / (knots - 1)
    trap = np.full(knots, 2 * dt)
    trap[0] = trap[-1] = dt
    phi = np.exp(-(t**2) / 2)
    w = trap * phi
    x = np.einsum("tbd,dm->tbm", z, proj)[..., None] * t  # (T, B, M, K)
    err = (np.cos(x).mean(1) - phi) ** 2 + np.sin(x).mean(1) ** 2
    return float(((err @ w) * z.shape[1]).mean())


def projections(key, d, m):
    a = np.asarray(jax.random.normal(key, (d, m), jnp.float32), np.float64)
    return a / np.linalg.norm(a, axis=0, keepdims=True)


def test_sigreg_matches_numpy_reference():
    key = jax.random.key(0)
    z = np.random.default_rng(0).normal(size=(3, 64, 16)) * 1.3 + 0.2
    got = losses.sigreg(jnp.asarray(z, jnp.float32), key=key, num_proj=128)
    want = sigreg_numpy(z, projections(key, 16, 128))
    np.testing.assert_allclose(float(got), want, rtol=2e-5)


def test_sigreg_rank2_and_knots():
    key = jax.random.key(1)
    z = np.random.default_rng(1).normal(size=(50, 8))
    got = losses.sigreg(jnp.asarray(z, jnp.float32), key=key, num_proj=32, knots=9)
    want = sigreg_numpy(z[None], projections(key, 8, 32), knots=9)
    np.testing.assert_allclose(float(got), want, rtol=2e-5)


@pytest.mark.parametrize("batch", [256, 2048])
def test_sigreg_small_for_gaussian_and_does_not_grow_with_batch(batch):
    z = jax.random.normal(jax.random.key(2), (2, batch, 32))
    value = float(losses.sigreg(z, key=jax.random.key(3), num_proj=256))
    # For i.i.d. N(0, 1) projections, E[B |ecf(t) - phi(t)|^2] = 1 - phi(t)^2 whatever B.
    _, phi, w = losses.epps_pulley_weights(17)
    expected = float(jnp.sum(w * (1 - phi**2)))
    assert 0.75 * expected < value < 1.25 * expected


@pytest.mark.parametrize(
    "transform",
    [
        lambda z: jnp.zeros_like(z) + 0.3,  # collapsed to a point
        lambda z: z[..., :1] * jnp.ones_like(z),  # collapsed to a line
        lambda z: z + 2.0,  # shifted
        lambda z: 3.0 * z,  # scaled up
        lambda z: 0.2 * z,  # scaled down
    ],
)
def test_sigreg_large_for_non_gaussian(transform):
    z = jax.random.normal(jax.random.key(4), (2, 512, 32))
    gaussian = float(losses.sigreg(z, key=jax.random.key(5), num_proj=256))
    bad = float(losses.sigreg(transform(z), key=jax.random.key(5), num_proj=256))
    assert bad > 20 * gaussian


def test_sigreg_gradients_finite_and_push_towards_gaussian():
    z = 0.1 * jax.random.normal(jax.random.key(6), (2, 128, 16))
    loss = functools.partial(losses.sigreg, key=jax.random.key(7), num_proj=64)
    g = jax.grad(loss)(z)
    assert bool(jnp.all(jnp.isfinite(g)))
    stepped = z - 0.5 * g / jnp.linalg.norm(g) * jnp.sqrt(z.size)
    assert float(loss(stepped)) < float(loss(z))


def test_sigreg_bad_inputs():
    with pytest.raises(AssertionError):
        losses.sigreg(jnp.zeros((2, 3, 4, 5)), key=jax.random.key(0))
    with pytest.raises(TypeError, match="floating"):
        losses.sigreg(jnp.zeros((4, 3), jnp.int32), key=jax.random.key(0))
    with pytest.raises(ValueError, match="num_proj"):
        losses.sigreg(jnp.zeros((4, 3)), key=jax.random.key(0), num_proj=0)


def test_sigreg_sharded_equals_single_device():
    """jit with the batch sharded over 8 devices, and shard_map with axis_name."""
    mesh = sharding.make_mesh()
    assert mesh.devices.size == 8
    z = jax.random.normal(jax.random.key(8), (3, 64, 16)) * 1.5 + 0.1
    key = jax.random.key(9)
    single = losses.sigreg(jax.device_put(z, jax.devices()[0]), key=key, num_proj=128)

    z_sharded = jax.device_put(z, NamedSharding(mesh, P(None, "data")))
    jitted = jax.jit(functools.partial(losses.sigreg, num_proj=128))(z_sharded, key=key)

    mapped = jax.shard_map(
        functools.partial(losses.sigreg, key=key, num_proj=128, axis_name="data"),
        mesh=mesh,
        in_specs=P(None, "data"),
        out_specs=P(),
    )(z_sharded)
    # Without axis_name each shard would average over its own 8 samples only.
    local_only = jax.shard_map(
        lambda zs: losses.sigreg(zs, key=key, num_proj=128)[None],
        mesh=mesh,
        in_specs=P(None, "data"),
        out_specs=P("data"),
    )(z_sharded)

    np.testing.assert_allclose(float(jitted), float(single), rtol=1e-5)
    np.testing.assert_allclose(float(mapped), float(single), rtol=1e-5)
    assert abs(float(local_only.mean()) - float(single)) > 1e-3


def test_lewm_loss_combines_terms():
    key = jax.random.key(10)
    z = jax.random.normal(key, (8, 4, 16))
    pred = z[:, 1:] + 0.1
    loss, aux = losses.lewm_loss(z, pred, key=key, sigreg_weight=0.5, num_proj=32)
    np.testing.assert_allclose(float(aux["pred_loss"]), 0.01, rtol=1e-4)
    sig = losses.sigreg(jnp.swapaxes(z, 0, 1), key=key, num_proj=32)
    np.testing.assert_allclose(float(aux["sigreg_loss"]), float(sig), rtol=1e-6)
    np.testing.assert_allclose(float(loss), 0.01 + 0.5 * float(sig), rtol=1e-5)
    with pytest.raises(AssertionError):
        losses.lewm_loss(z, pred[:, :2], key=key)
    with pytest.raises(ValueError, match="history"):
        losses.lewm_loss(z[:, :3], pred, key=key)


def test_losses_module_is_flax_free():
    import subprocess
    import sys

    code = "import sys, lewm_jax.losses, lewm_jax.metrics; print('flax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
