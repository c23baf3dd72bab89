"""Population training: members equal their runs alone, per-member run directories,
resume of members at different steps, and configs that cannot share a population."""

import shutil

import jax
import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax.analysis import sweep
from lewm_jax.analysis.runs import derive_config
from lewm_jax.run import train_and_evaluate
from lewm_jax.training import run_dir
from lewm_jax.training.population import check_population, train_population

# Adam's eps well above float rounding: parameters whose gradient is exactly zero (the
# ViT's final LayerNorm bias, a norm bias before a BatchNorm) otherwise turn the rounding
# differences of vmapped vs plain matmuls into +-lr steps (as in tests/test_multihost.py).
BASE = {"optim.eps": 1e-3}
# Two members share seed 3072 (one batch read for both), one has its own seed and data;
# weight, learning rate and weight decay are traced per member.
POINTS = [
    {"loss.sigreg_weight": 0.09},
    {"loss.sigreg_weight": 0.5},
    {"seed": 3073, "optim.lr": 3e-4, "optim.weight_decay": 0.01},
]
TRAIN_KEYS = ("loss", "pred_loss", "sigreg_loss", "grad_norm", "z_std", "z_rank", "mean_cosine")


def _configs():
    base = derive_config(get_config("test"), BASE)
    return [derive_config(base, p) for p in POINTS]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("population")
    configs = _configs()
    pop = [root / f"member{i}" for i in range(len(configs))]
    alone = [root / f"alone{i}" for i in range(len(configs))]
    summaries = train_population(configs, pop)
    for c, w in zip(configs, alone, strict=True):
        train_and_evaluate(c, str(w))
    return configs, pop, alone, summaries


def test_members_equal_their_runs_alone(trained):
    configs, pop, alone, summaries = trained
    assert [s["steps_run"] for s in summaries] == [6, 6, 6]
    for c, p, a in zip(configs, pop, alone, strict=True):
        # The member's run directory is a run of its own config.
        assert run_dir.read_config(p) == run_dir.read_config(a) == c.to_dict()
        np.testing.assert_array_equal(run_dir.read_action_stats(p), run_dir.read_action_stats(a))
        rows_p, rows_a = run_dir.read_metrics(p), run_dir.read_metrics(a)
        assert [r["step"] for r in rows_p] == [r["step"] for r in rows_a]
        for rp, ra in zip(rows_p, rows_a, strict=True):
            assert rp.keys() == ra.keys()
            for k in rp.keys() & set(TRAIN_KEYS):
                # Vmapped and plain matmuls round differently and the rounding grows with
                # the steps; seen here: up to 1.1e-5 relative, 2.9e-5 for grad_norm at step
                # 6. A member given another's weight, lr or batch is off by percents.
                np.testing.assert_allclose(
                    rp[k], ra[k], rtol=1e-4, err_msg=f"{k} step {ra['step']}"
                )
            for k in (k for k in rp if k.startswith("val_")):
                # Eval mode normalises with the BatchNorm running statistics of 6 steps,
                # which amplify the rounding (seen here: up to about 2e-3 relative).
                np.testing.assert_allclose(
                    rp[k], ra[k], rtol=1e-2, err_msg=f"{k} step {ra['step']}"
                )
        x, y = run_dir.load_run(p), run_dir.load_run(a)
        assert x.step == y.step == 6
        for u, v in zip(jax.tree.leaves(x.variables), jax.tree.leaves(y.variables), strict=True):
            u, v = np.asarray(u), np.asarray(v)
            assert np.abs(u - v).max() <= 1e-3 * np.abs(v).max() + 1e-6
    # The members really differ: the weight and the seed change what is trained.
    finals = [run_dir.read_metrics(p)[-2]["sigreg_loss"] for p in pop]
    assert len(set(finals)) == 3


def test_members_resume_together_from_the_step_they_share(trained, tmp_path):
    configs, pop, _, _ = trained
    copies = [tmp_path / p.name for p in pop]
    for p, c in zip(pop, copies, strict=True):
        shutil.copytree(p, c)
    # As if killed between two members' saves: member 1 lacks its last checkpoint.
    shutil.rmtree(copies[1] / "checkpoints" / "6")
    summaries = train_population(configs, copies)
    assert [s["origin"] for s in summaries] == ["resumed from step 3"] * 3
    assert [s["steps_run"] for s in summaries] == [3, 3, 3]
    for p, c in zip(pop, copies, strict=True):
        a, b = run_dir.load_run(p), run_dir.load_run(c)
        assert b.step == 6
        for u, v in zip(jax.tree.leaves(a.variables), jax.tree.leaves(b.variables), strict=True):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))  # deterministic
        assert run_dir.read_metrics(p) == run_dir.read_metrics(c)


def test_a_sweep_trains_its_points_as_populations(tmp_path):
    base = derive_config(get_config("test"), BASE)
    points = sweep.grid(lambda add, arg: [add(**{"loss.sigreg_weight": v}) for v in (0.09, 0.5)])
    sweep.run(base, tmp_path, points, population=2, progress=False)
    table = sweep.report(base, tmp_path, points)
    assert [r["population"] for r in table] == [2, 2]
    assert [r["steps"] for r in table] == [6, 6]
    assert table[0]["train_s"] == table[1]["train_s"]  # one program trained both
    assert table[0]["sigreg_loss"] != table[1]["sigreg_loss"]


@pytest.mark.parametrize(
    "override, message",
    [
        ({"model.latent_dim": 16}, "members differ in model.latent_dim (32 vs 16)"),
        ({"batch_size": 8}, "members differ in batch_size (16 vs 8)"),
        ({"loss.regularizer": "vicreg"}, "members differ in loss.regularizer ('sigreg' vs"),
    ],
)
def test_members_that_differ_in_shapes_or_the_loop_fail_in_one_line(tmp_path, override, message):
    base = get_config("test")
    with pytest.raises(ValueError, match=r"only seed, loss.sigreg_weight") as e:
        train_population([base, derive_config(base, override)], [tmp_path / "a", tmp_path / "b"])
    assert message in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_population_fields_and_planning_may_differ():
    base = get_config("test")
    other = derive_config(base, {"seed": 1, "optim.lr": 0.1, "planning.num_episodes": 2})
    assert check_population([base, other]) == ["seed", "optim.lr"]
    with pytest.raises(ValueError, match="must differ"):
        train_population([base, base], ["/tmp/same", "/tmp/same"])


def test_the_population_speed_benchmark_times_both_ways():
    from experiments.bench import population_speed

    row = population_speed.time_population("test", "moving_dot", 2, steps=1, repeats=2)
    assert row["members"] == 2 and row["devices"] == 8
    assert 0 < row["alone_step_s_range"][0] <= row["alone_step_s"] <= row["alone_step_s_range"][1]
    assert row["population_clips_per_s_per_member"] == row["batch_size"] / row["population_step_s"]
    seq = row["batch_size"] / (2 * row["alone_step_s"])
    assert row["sequential_clips_per_s_per_member"] == pytest.approx(seq)
