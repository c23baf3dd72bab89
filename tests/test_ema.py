"""EMA targets: the update rule and the gradient barrier of the target branch."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lewm_jax.training import ema


def test_ema_update_math():
    target = {"w": jnp.array([1.0, 2.0]), "b": jnp.array([0.5], jnp.bfloat16), "n": jnp.array(3)}
    online = {"w": jnp.array([3.0, -2.0]), "b": jnp.array([1.5], jnp.bfloat16), "n": jnp.array(7)}
    new = ema.ema_update(target, online, 0.75)
    np.testing.assert_allclose(new["w"], [1.5, 1.0])
    assert new["b"].dtype == jnp.bfloat16 and float(new["b"][0]) == 0.75
    assert int(new["n"]) == 7
    np.testing.assert_allclose(new["w"], optax.incremental_update(online, target, 0.25)["w"])
    np.testing.assert_allclose(ema.ema_update(target, online, 1.0)["w"], target["w"])
    np.testing.assert_allclose(ema.ema_update(target, online, 0.0)["w"], online["w"])


def test_target_apply_blocks_gradients():
    apply_fn = lambda p, x: jnp.tanh(x @ p["w"])
    online = {"w": jnp.eye(3) * 0.5}
    target = {"w": jnp.eye(3)}
    x = jnp.ones((2, 3))

    def byol_like(online, target, x):
        return jnp.sum((apply_fn(online, x) - ema.target_apply(apply_fn, target, x)) ** 2)

    g_online, g_target, g_x = jax.grad(byol_like, argnums=(0, 1, 2))(online, target, x)
    assert float(jnp.abs(g_online["w"]).sum()) > 0
    assert float(jnp.abs(g_target["w"]).sum()) == 0.0
    # The input gets gradient from the online branch only: the target output is a constant.
    const = apply_fn(target, x)
    g_x_online = jax.grad(lambda x: jnp.sum((apply_fn(online, x) - const) ** 2))(x)
    np.testing.assert_allclose(g_x, g_x_online, rtol=1e-6)
