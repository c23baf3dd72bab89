"""Training: the sharded pure step, train_and_evaluate, checkpoints and input checks."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax.data import datasets
from lewm_jax.data.clips import ClipSource
from lewm_jax.models import build_model
from lewm_jax.run import train_and_evaluate
from lewm_jax.training import sharding
from lewm_jax.training.checkpoint import Checkpointer
from lewm_jax.training.optim import make_optimizer
from lewm_jax.training.state import init_train_state
from lewm_jax.training.step import make_eval_step, make_train_step


def _setup(config):
    eps = datasets.load_episodes(config.data, config.seed)
    src = ClipSource(eps, batch_size=config.batch_size, seed=config.seed, train_fraction=1.0)
    model = build_model(config.model, image_size=config.data.image_size)
    tx = make_optimizer(config.optim, 100)
    return src, model, tx


def test_sharded_train_step_compiles_once_and_lowers_the_loss():
    config = get_config("test")
    assert len(jax.devices()) == 8
    src, model, tx = _setup(config)
    mesh = sharding.make_mesh()
    repl, data = sharding.replicated(mesh), sharding.data_sharded(mesh)
    batch = sharding.to_global(src.batch(0), mesh)
    assert batch["pixels"].sharding.spec[0] == "data"
    state = jax.jit(lambda k: init_train_state(model, tx, k, batch), out_shardings=repl)(
        jax.random.key(0)
    )
    step = jax.jit(
        chex.assert_max_traces(make_train_step(model, tx, config.loss), n=1),
        in_shardings=(repl, data, repl),
        out_shardings=(repl, repl),
        donate_argnums=0,
    )
    key = jax.device_put(jax.random.key(1), repl)
    losses = []
    for _ in range(8):
        state, m = step(state, batch, key)
        losses.append(float(m["pred_loss"]))
    assert int(state.step) == 8
    assert set(m) >= {"loss", "pred_loss", "sigreg_loss", "grad_norm", "z_std", "z_rank"}
    assert set(m) >= {"reg_loss", "mean_cosine"}
    assert all(np.isfinite(float(v)) for v in m.values())
    assert losses[-1] < losses[0]
    leaf = jax.tree.leaves(state.params)[0]
    assert leaf.sharding.is_fully_replicated


@pytest.mark.parametrize("encoder", ["Mu/8", "R18w8"])
def test_sharded_step_equals_single_device_step(encoder):
    """Also for a ResNet encoder, whose BatchNorm statistics must span the global batch."""
    config = get_config("test")
    config.model.encoder = encoder
    src, model, tx = _setup(config)
    local = src.batch(0)
    state0 = init_train_state(model, tx, jax.random.key(0), local)
    fn = make_train_step(model, tx, config.loss)
    one, m1 = jax.jit(fn)(state0, local, jax.random.key(1))
    mesh = sharding.make_mesh()
    repl = sharding.replicated(mesh)
    eight, m8 = jax.jit(fn, in_shardings=(repl, sharding.data_sharded(mesh), repl))(
        jax.device_put(state0, repl), sharding.to_global(local, mesh), jax.random.key(1)
    )
    np.testing.assert_allclose(float(m8["loss"]), float(m1["loss"]), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(eight.params), jax.tree.leaves(one.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_train_and_evaluate_writes_logs_and_checkpoints(tiny_run, tmp_path):
    config, workdir, out = tiny_run(tmp_path)  # the test config trained from scratch
    assert out["steps_run"] == config.total_steps and out["origin"] == "started from scratch"
    rows = [json.loads(r) for r in (workdir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "pred_loss" in r]
    assert [r["step"] for r in train_rows] == list(range(1, config.total_steps + 1))
    assert any("val_pred_loss" in r for r in rows)
    assert (workdir / "curves.png").stat().st_size > 0
    assert json.loads((workdir / "config.json").read_text())["model"]["encoder"] == "Mu/8"
    ckpt = Checkpointer(workdir / "checkpoints", async_save=False)
    assert ckpt.latest_step() == config.total_steps


def test_checkpoint_round_trip_is_exact(tmp_path):
    config = get_config("test")
    src, model, tx = _setup(config)
    state = init_train_state(model, tx, jax.random.key(0), src.batch(0))
    ckpt = Checkpointer(tmp_path, keep=2, async_save=True)
    ckpt.save(5, state)
    ckpt.wait()
    restored = ckpt.restore(jax.tree.map(np.zeros_like, state))
    ckpt.close()
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_checkpoints_at_multiples_of_keep_every_are_kept(tmp_path):
    config = get_config("test")
    src, model, tx = _setup(config)
    state = init_train_state(model, tx, jax.random.key(0), src.batch(0))
    ckpt = Checkpointer(tmp_path, keep=1, async_save=False, keep_every=3)
    for step in range(1, 8):
        ckpt.save(step, state)
    assert ckpt.all_steps() == [3, 6, 7]
    ckpt.close()


def _assert_untouched(tmp_path):
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("batch_size", 12, "not divisible by the 8 devices"),
        ("data.image_size", 30, "multiple of the patch size"),
        ("model.encoder", "R19", "unknown ResNet variant 'R19'"),
        ("model.encoder", "R18w0", "unknown ResNet variant 'R18w0'"),
        ("model.encoder", "vit", "unknown model.encoder 'vit'"),
        ("model.dtype", "float16", "model.dtype"),
        ("data.name", "nope", "unknown dataset"),
    ],
)
def test_bad_configs_fail_before_anything_is_written(tmp_path, field, value, match):
    config = get_config("test")
    node, name = (
        (config, field) if "." not in field else (config[field.split(".")[0]], field.split(".")[1])
    )
    node[name] = value
    with pytest.raises(ValueError, match=match):
        train_and_evaluate(config, str(tmp_path / "run"))
    _assert_untouched(tmp_path)


def test_dataset_that_disagrees_with_the_config_is_rejected(tmp_path, monkeypatch):
    config = get_config("test")
    real = datasets.DATASETS["moving_dot"]

    def wrong_size(data_config, key, num_episodes):
        eps = real(data_config, key, num_episodes)
        return type(eps)(eps.pixels[:, :16, :16], eps.actions, eps.ep_offset, eps.ep_len)

    monkeypatch.setitem(datasets.DATASETS, "moving_dot", wrong_size)
    with pytest.raises(ValueError, match=r"frames have shape \(16, 16, 3\)"):
        train_and_evaluate(config, str(tmp_path / "run"))
    config.data.action_dim = 3
    monkeypatch.setitem(datasets.DATASETS, "moving_dot", real)
    with pytest.raises(ValueError, match="actions have dimension 2"):
        train_and_evaluate(config, str(tmp_path / "run"))
    _assert_untouched(tmp_path)


def test_workdir_of_another_model_is_refused_and_left_intact(tiny_run, tmp_path):
    config, workdir, _ = tiny_run(tmp_path)
    before = sorted(p.name for p in (workdir / "checkpoints").iterdir())
    config.model.latent_dim = 48
    with pytest.raises(ValueError, match="model.latent_dim"):
        train_and_evaluate(config, str(workdir))
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == before


def test_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    config = get_config("test")
    config.total_steps, config.checkpoint_every, config.log_every = 4, 2, 1
    train_and_evaluate(config, str(tmp_path))
    config.total_steps = 8
    config.optim.lr = float("inf")  # optimizer-only change: the workdir still matches
    with pytest.raises(FloatingPointError, match="non-finite loss at step 6"):
        train_and_evaluate(config, str(tmp_path))
    assert Checkpointer(tmp_path / "checkpoints", async_save=False).latest_step() == 4


def test_validation_normalises_as_training_and_reports_the_running_statistics_apart():
    """Validation losses use the batch's BatchNorm statistics (as the training loss, no
    dropout); ``pred_loss_running`` uses the stored running statistics, which lag."""
    config = get_config("test")
    src, model, tx = _setup(config)
    batch = src.batch(0)
    state = init_train_state(model, tx, jax.random.key(0), batch)
    # Running statistics far from this batch's: as after fast early training.
    stale = jax.tree.map(lambda x: x + 3.0, state.batch_stats)
    state = state.replace(batch_stats=stale)
    metrics = jax.jit(make_eval_step(model, config.loss))(state, batch, jax.random.key(1))
    variables = {"params": state.params, "batch_stats": stale}
    (z, pred), _ = model.apply(
        variables,
        batch["pixels"],
        batch["actions"],
        train=False,
        batch_stats=True,
        mutable=["batch_stats"],
    )
    z_run, pred_run = model.apply(variables, batch["pixels"], batch["actions"], train=False)
    h = model.history
    np.testing.assert_allclose(metrics["pred_loss"], np.mean((pred - z[:, 1 : h + 1]) ** 2), 1e-5)
    running = np.mean((pred_run - z_run[:, 1 : h + 1]) ** 2)
    np.testing.assert_allclose(metrics["pred_loss_running"], running, 1e-5)
    assert abs(float(metrics["pred_loss_running"]) - float(metrics["pred_loss"])) > 1e-3
    # Batch statistics do not depend on the stored ones.
    fresh = jax.jit(make_eval_step(model, config.loss))(
        state.replace(batch_stats=jax.tree.map(jnp.zeros_like, stale)), batch, jax.random.key(1)
    )
    np.testing.assert_allclose(fresh["pred_loss"], metrics["pred_loss"], 1e-6)
