"""Learning curves: kept checkpoints evaluated on the same pairs and probe episodes."""

import os

import pytest

from experiments.configs.lewm import get_config
from lewm_jax.analysis.curve import learning_curve
from lewm_jax.run import train_and_evaluate


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("curve") / "run"
    config = get_config("test,env=two_room").unlock()
    config.keep_checkpoints, config.keep_checkpoints_every = 1, 3
    config.planning.enabled = False
    train_and_evaluate(config.lock(), str(workdir))
    return workdir, config.planning


def test_every_kept_checkpoint_is_a_point_and_a_rerun_reuses_its_reports(run):
    workdir, plan = run
    rows = learning_curve(workdir, plan, probe_episodes=8, progress=False)
    assert [r["step"] for r in rows] == [3, 6]  # step 3 kept although keep_checkpoints is 1
    for r in rows:
        assert 0.0 <= r["success_rate"] <= 1.0 and len(r["successes_per_seed"]) == 1
        assert set(r["probe_r"]) and all(-1.0 <= v <= 1.0 for v in r["probe_r"].values())
        assert r["val_pred_loss"] > 0  # the test config validates at steps 3 and 6
    # The two checkpoints are different models: their probes differ.
    assert rows[0]["probe_r"] != rows[1]["probe_r"]
    for name in ("curve.md", "curve.png", "planning_cem_step3.json", "probe_step6.json"):
        assert (workdir / name).stat().st_size > 0
    stamp = os.stat(workdir / "planning_cem_step6.json").st_mtime_ns
    again = learning_curve(workdir, plan, steps=[6], probe_episodes=8, progress=False)
    assert again == rows[1:]
    assert os.stat(workdir / "planning_cem_step6.json").st_mtime_ns == stamp


def test_a_step_without_a_checkpoint_fails_in_one_line(run):
    workdir, plan = run
    with pytest.raises(ValueError, match=r"holds no checkpoint of steps \[4\]; has \[3, 6\]"):
        learning_curve(workdir, plan, steps=[4, 6], progress=False)


def test_the_validation_loss_is_the_last_one_at_or_before_the_checkpoint(tmp_path):
    """Checkpoints (e.g. every 375 steps) need not fall on validation steps (every 100)."""
    import json
    import math

    from lewm_jax.analysis.curve import _val_cell, _val_loss_at

    logged = [(100, 0.5), (200, 0.4), (200, 0.3), (300, 0.2)]  # step 200 again: resumed
    lines = [json.dumps({"step": s, "val_pred_loss": v}) for s, v in logged]
    lines.insert(1, json.dumps({"step": 150, "pred_loss": 9.0}))  # a training row
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert _val_loss_at(tmp_path, 250) == (0.3, 200)
    assert _val_loss_at(tmp_path, 300) == (0.2, 300)
    loss, at = _val_loss_at(tmp_path, 99)
    assert math.isnan(loss) and at is None
    assert _val_cell({"step": 250, "val_pred_loss": 0.3, "val_step": 200}) == "0.3000 (step 200)"
    assert _val_cell({"step": 300, "val_pred_loss": 0.2, "val_step": 300}) == "0.2000"
