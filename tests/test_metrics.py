"""Collapse metrics: NumPy references, collapsed vs Gaussian latents, no gradients, jit."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lewm_jax import losses, metrics


def gaussian(n=2048, d=16, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def unit_projections(key, d, m):
    a = np.asarray(jax.random.normal(key, (d, m), jnp.float32), np.float64)
    return a / np.linalg.norm(a, axis=0, keepdims=True)


def test_mean_cosine_matches_numpy():
    z = np.random.default_rng(1).normal(size=(3, 7, 5)) + 0.5
    x = z.reshape(-1, 5)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    gram = u @ u.T
    want = (gram.sum() - np.trace(gram)) / (len(x) * (len(x) - 1))
    got = metrics.mean_cosine_similarity(jnp.asarray(z, jnp.float32))
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_projection_normality_matches_numpy():
    key = jax.random.key(2)
    z = np.random.default_rng(2).exponential(size=(500, 6))
    got = metrics.projection_normality(jnp.asarray(z, jnp.float32), key, num_proj=32, level=0.01)
    p = z @ unit_projections(key, 6, 32)
    s = (p - p.mean(0)) / p.std(0)
    skew, kurt = (s**3).mean(0), (s**4).mean(0) - 3
    jb = 500 / 6 * (skew**2 + kurt**2 / 4)
    # chi2(2) survival function is exp(-x / 2): reject where the p-value is below the level.
    reject = np.mean(np.exp(-jb / 2) < 0.01)
    np.testing.assert_allclose(float(got["mean_abs_skew"]), np.abs(skew).mean(), rtol=1e-4)
    np.testing.assert_allclose(
        float(got["mean_abs_excess_kurtosis"]), np.abs(kurt).mean(), rtol=1e-4
    )
    np.testing.assert_allclose(float(got["jb_reject_fraction"]), reject)


def test_sigreg_statistic_is_pooled_sigreg_without_gradient():
    key = jax.random.key(3)
    z = jnp.asarray(gaussian(256, 8).reshape(4, 64, 8) * 1.5)
    got = metrics.sigreg_statistic(z, key, num_proj=64)
    want = losses.sigreg(z.reshape(1, 256, 8), key=key, num_proj=64)
    np.testing.assert_allclose(float(got), float(want), rtol=1e-6)
    g = jax.grad(lambda x: metrics.sigreg_statistic(x, key, num_proj=64))(z)
    assert float(jnp.abs(g).sum()) == 0.0


def test_metrics_on_gaussian_vs_collapsed():
    key = jax.random.key(4)
    run = jax.jit(functools.partial(metrics.collapse_metrics, num_proj=64))
    good = run(jnp.asarray(gaussian()), key)
    point = run(jnp.full((2048, 16), 0.7), key)
    line = run(jnp.asarray(gaussian()[:, :1] * np.ones(16, np.float32)), key)
    assert set(good) == {
        "effective_rank",
        "mean_std",
        "mean_cosine",
        "sigreg",
        "mean_abs_skew",
        "mean_abs_excess_kurtosis",
        "jb_reject_fraction",
    }
    assert all(bool(jnp.isfinite(v)) for m in (good, point, line) for v in m.values())
    assert float(good["effective_rank"]) > 14 and float(line["effective_rank"]) < 1.1
    assert abs(float(good["mean_std"]) - 1) < 0.05 and float(point["mean_std"]) < 1e-5
    assert abs(float(good["mean_cosine"])) < 0.01 and float(point["mean_cosine"]) > 0.999
    assert float(point["sigreg"]) > 100 * float(good["sigreg"])
    assert float(line["sigreg"]) > 10 * float(good["sigreg"])
    # Normality of random projections: Gaussian passes, a point does not (kurtosis -3).
    assert float(good["jb_reject_fraction"]) <= 0.2 and float(good["mean_abs_skew"]) < 0.1
    assert float(point["jb_reject_fraction"]) == 1.0
    np.testing.assert_allclose(float(point["mean_abs_excess_kurtosis"]), 3.0, rtol=1e-3)


def test_normality_rejects_heavy_tails():
    g = gaussian(2048, 4, seed=5)
    heavy = jnp.asarray(np.sign(g) * g**2)
    out = metrics.projection_normality(heavy, jax.random.key(6), num_proj=64)
    assert float(out["jb_reject_fraction"]) > 0.9
    assert float(out["mean_abs_excess_kurtosis"]) > 1.0


def test_bad_inputs_raise_one_line_errors():
    cases = [
        (ValueError, "(1, 4)", lambda: metrics.mean_cosine_similarity(jnp.zeros((1, 4)))),
        (
            ValueError,
            "1.5",
            lambda: metrics.projection_normality(jnp.ones((8, 4)), None, level=1.5),
        ),
        (ValueError, "(5,)", lambda: metrics.collapse_metrics(jnp.zeros(5), jax.random.key(0))),
    ]
    for exc, text, fn in cases:
        with pytest.raises(exc) as info:
            fn()
        assert text in str(info.value) and "\n" not in str(info.value), str(info.value)
