"""Anti-collapse objectives, the EMA target state and its old-checkpoint compatibility."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from experiments.configs.lewm import get_config
from lewm_jax import losses
from lewm_jax.analysis import ablation
from lewm_jax.data import datasets
from lewm_jax.data.clips import ClipSource
from lewm_jax.models import build_model
from lewm_jax.run import train_and_evaluate
from lewm_jax.training import checkpoint, objectives, run_dir, sharding
from lewm_jax.training import step as step_lib
from lewm_jax.training.optim import make_optimizer
from lewm_jax.training.state import init_train_state
from lewm_jax.training.step import make_train_step

# The default (sigreg) step is covered by tests/test_train.py; "none" runs here with EMA.
CASES = {
    "vicreg": {"loss.regularizer": "vicreg"},
    "pldm": {"loss.regularizer": "pldm"},
    "infonce": {"loss.regularizer": "infonce"},
    "ema": {"loss.regularizer": "none", "loss.ema_target": True, "loss.ema_decay": 0.9},
}
TERMS = {
    "vicreg": {"vicreg_variance", "vicreg_covariance"},
    "pldm": {"pldm_variance", "pldm_time_sim"},
    "infonce": {"infonce_loss"},
    "ema": set(),
}


@pytest.fixture(scope="module")
def setup():
    """Test config, model, optimizer, a host batch and one replicated initial state."""
    config = get_config("test")
    eps = datasets.load_episodes(config.data, config.seed)
    src = ClipSource(eps, batch_size=config.batch_size, seed=config.seed, train_fraction=1.0)
    model = build_model(config.model, image_size=config.data.image_size)
    tx = make_optimizer(config.optim, 100)
    local = src.batch(0)
    repl = sharding.replicated(sharding.make_mesh())
    init = jax.jit(lambda k: init_train_state(model, tx, k, local), out_shardings=repl)
    return config, model, tx, local, init(jax.random.key(0))


@pytest.mark.parametrize("case", list(CASES))
def test_every_objective_trains_sharded_with_finite_metrics(setup, case):
    base, model, tx, local, state = setup
    config = ablation.derive_config(base, CASES[case])
    mesh = sharding.make_mesh()
    repl, data = sharding.replicated(mesh), sharding.data_sharded(mesh)
    if config.loss.ema_target:
        # Offset from the online params, so that the EMA step visibly moves them.
        state = state.replace(target_params=jax.tree.map(lambda p: p + 1.0, state.params))
    step = jax.jit(
        make_train_step(model, tx, config.loss),
        in_shardings=(repl, data, repl),
        out_shardings=(repl, repl),
    )
    batch, key = sharding.to_global(local, mesh), jax.device_put(jax.random.key(1), repl)
    new, m = step(state, batch, key)
    expected = {"loss", "pred_loss", "reg_loss", "sigreg_loss", "grad_norm", "z_std", "z_rank"}
    assert set(m) >= expected | {"mean_cosine"} | TERMS[case]
    assert all(np.isfinite(float(v)) for v in m.values()), m
    if not config.loss.ema_target:
        assert new.target_params is None
        return
    # The target follows the updated online params by the decay ...
    tau = config.loss.ema_decay
    before, online, after = (
        jax.tree.leaves(t) for t in (state.target_params, new.params, new.target_params)
    )
    for t0, p1, t1 in zip(before, online, after, strict=True):
        np.testing.assert_allclose(t1, tau * t0 + (1 - tau) * p1, rtol=1e-5, atol=1e-7)
    assert any(not np.array_equal(t0, t1) for t0, t1 in zip(before, after, strict=True))

    # ... and gets no gradient through the targets it provides.
    def loss_of_target(target_params):
        target = step_lib._ema_targets(
            model, state.replace(target_params=target_params), batch["pixels"], train=True
        )
        return losses.prediction_loss(jnp.zeros_like(target), target)

    grads = jax.jit(jax.grad(loss_of_target))(state.target_params)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads))


def test_default_objective_equals_lewm_loss():
    config = get_config("test")
    kz, kp, ks = jax.random.split(jax.random.key(0), 3)
    z, pred = jax.random.normal(kz, (16, 4, 32)), jax.random.normal(kp, (16, 3, 32))
    loss, aux = objectives.objective(z, pred, key=ks, loss_config=config.loss)
    ref, ref_aux = losses.lewm_loss(
        z, pred, key=ks, sigreg_weight=0.09, num_proj=config.loss.num_proj, history=3
    )
    assert float(loss) == pytest.approx(float(ref), rel=1e-6)
    assert float(aux["sigreg_loss"]) == pytest.approx(float(ref_aux["sigreg_loss"]), rel=1e-6)
    # Other regularisers report the same SIGReg statistic, without its gradient.
    none = ablation.derive_config(config, {"loss.regularizer": "none"}).loss
    _, aux_none = objectives.objective(z, pred, key=ks, loss_config=none)
    assert float(aux_none["sigreg_loss"]) == pytest.approx(float(aux["sigreg_loss"]), rel=1e-6)
    g = jax.grad(lambda z: objectives.objective(z, pred, key=ks, loss_config=none)[0])(z)
    np.testing.assert_allclose(g[:, 1:], 2 * (z[:, 1:] - pred) / z[:, 1:].size, rtol=1e-5)


def test_bad_regularizer_fails_in_one_line_before_writing(tmp_path):
    config = get_config("test")
    config.loss.regularizer = "barlow"
    with pytest.raises(ValueError, match=r"^loss.regularizer 'barlow' not in \[") as err:
        train_and_evaluate(config, str(tmp_path / "run"))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="unknown ablation runs"):
        ablation.select_runs(["sigreg", "nope"])


def test_old_checkpoints_and_configs_stay_compatible(setup, tmp_path):
    config, model, tx, local, state = setup
    # A checkpoint written before TrainState had target_params: the four fields only.
    old = {k: getattr(state, k) for k in ("step", "params", "batch_stats", "opt_state")}
    manager = ocp.CheckpointManager(tmp_path / "old")
    manager.save(1, args=ocp.args.StandardSave(old))
    manager.wait_until_finished()
    restored = checkpoint.Checkpointer(tmp_path / "old", async_save=False).restore(state)
    assert restored.target_params is None
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    abstract = jax.eval_shape(
        lambda k: init_train_state(model, tx, k, local, ema_target=True), jax.random.key(0)
    )
    assert jax.tree.structure(abstract.target_params) == jax.tree.structure(state.params)
    ema_state = state.replace(target_params=jax.tree.map(jnp.copy, state.params))
    ckpt = checkpoint.Checkpointer(tmp_path / "ema", async_save=False)
    ckpt.save(1, ema_state)
    back = ckpt.restore(jax.tree.map(np.zeros_like, ema_state))
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(ema_state), strict=True):
        np.testing.assert_array_equal(a, b)
    # An EMA run's checkpoint read into a plain state (planning, probes, init_from):
    # the EMA target on disk is read and dropped.
    plain = ckpt.restore(jax.tree.map(np.zeros_like, state))
    assert plain.target_params is None
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)
    # A checkpoint whose tree holds target_params = None (written by an earlier version).
    manager = ocp.CheckpointManager(tmp_path / "none_entry")
    manager.save(1, args=ocp.args.StandardSave({**old, "target_params": None}))
    manager.wait_until_finished()
    restored = checkpoint.Checkpointer(tmp_path / "none_entry", async_save=False).restore(state)
    assert restored.target_params is None
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    # An old config (no loss.ema_target) matches a default one but not an EMA one.
    stored = json.loads(config.to_json())
    del stored["loss"]["ema_target"], stored["loss"]["regularizer"]
    assert run_dir.config_mismatch(stored, config.to_dict()) == []
    ema = ablation.derive_config(config, {"loss.ema_target": True})
    assert run_dir.config_mismatch(stored, ema.to_dict()) == ["loss.ema_target"]
