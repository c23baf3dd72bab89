"""The anti-collapse ablation: runs, table, CSV, plot and reuse of finished runs."""

import csv

import pytest

from experiments.configs.lewm import get_config
from lewm_jax.analysis import ablation
from lewm_jax.training import run_dir


def _fake_train(calls):
    """Stands in for train_and_evaluate: writes config.json and a short metrics.jsonl."""

    def train_fn(config, workdir):
        calls.append(workdir)
        workdir = run_dir.check_workdir(workdir)
        run_dir.write_config(workdir, config.to_json())
        lam = config.loss.sigreg_weight
        log = run_dir.MetricsLog(workdir)
        log.write([{"step": s, "pred_loss": 1.0 / s, "z_rank": 3.0 + lam + s} for s in (1, 2)])
        log.write([{"step": 2, "val_pred_loss": 0.4}])
        return {}

    return train_fn


def test_ablation_writes_table_csv_and_plot_and_reuses_finished_runs(tmp_path):
    base = get_config("test")
    base.planning.enabled = True
    calls = []

    def plan_fn(workdir, plan_config, *, config, progress):
        return {"success_rate": 0.5, "ci95": [0.1, 0.9], "episodes": 4}

    kw = dict(train_fn=_fake_train(calls), plan_fn=plan_fn, progress=False)
    table = ablation.run_ablation(base, tmp_path, ["pred_only", "lam2"], **kw)
    assert [r["run"] for r in table] == ["pred_only", "lam2"]
    assert table[0]["regularizer"] == "none" and table[0]["lam"] == 0.0
    assert table[1]["lam"] == 2.0 and table[1]["z_rank"] == pytest.approx(6.5)
    assert table[0]["pred_loss"] == pytest.approx(0.75) and table[0]["val_pred_loss"] == 0.4
    assert all(r["success_rate"] == 0.5 and r["wall_s"] >= r["train_s"] for r in table)
    assert base.loss.regularizer == "sigreg"  # the base config is never mutated
    md = (tmp_path / "ablation.md").read_text()
    assert "| pred_only | none | 0 | no | 0.75 | 0.4 |" in md and "SIGReg λ sweep" in md
    with (tmp_path / "ablation.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["pred_only", "lam2"]
    assert list(rows[0]) == list(ablation.COLUMNS)
    assert (tmp_path / "ablation.png").stat().st_size > 0
    # Finished runs are reused; a changed base config is refused rather than mixed in.
    again = ablation.run_ablation(base, tmp_path, ["lam2", "pred_only"], **kw)
    assert len(calls) == 2 and again[0] == table[1]
    base.total_steps = 3
    with pytest.raises(ValueError, match="different config"):
        ablation.run_ablation(base, tmp_path, ["lam2"], **kw)
