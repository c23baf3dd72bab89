"""Anti-collapse ablation: one model and dataset trained with each regulariser in turn.

Every run is the base config plus the few overrides in :data:`RUNS`. :func:`run_ablation`
trains each run into ``<workdir>/<run>``, evaluates closed-loop planning there, and writes
``ablation.md``, ``ablation.csv`` and ``ablation.png`` (loss, rank, scale and cosine curves
of all runs) into ``workdir``. A finished run leaves ``<run>/ablation_run.json``; runs with
one are reused, and unfinished ones resume from their checkpoints, so re-running the same
command continues an interrupted ablation. Wall times are those of the attempts that
completed (time spent in a killed attempt is not counted).
"""

import csv
import math
from pathlib import Path

from lewm_jax.analysis.runs import derive_config, final_metric, format_cell, run_one
from lewm_jax.training import run_dir
from lewm_jax.training.reporting import saved_figure

__all__ = ["RUNS", "derive_config", "format_markdown", "plot_runs", "run_ablation", "summarize"]

RUNS = {
    "pred_only": {"loss.regularizer": "none"},
    "sigreg": {"loss.regularizer": "sigreg"},
    "vicreg": {"loss.regularizer": "vicreg"},
    "pldm": {"loss.regularizer": "pldm"},
    "ema": {"loss.regularizer": "none", "loss.ema_target": True},
    "infonce": {"loss.regularizer": "infonce"},
    # With pred_only (lambda 0) and sigreg (the base lambda, 0.09): the lambda sweep.
    "lam0.01": {"loss.regularizer": "sigreg", "loss.sigreg_weight": 0.01},
    "lam0.5": {"loss.regularizer": "sigreg", "loss.sigreg_weight": 0.5},
    "lam2": {"loss.regularizer": "sigreg", "loss.sigreg_weight": 2.0},
}
RECORD_FILE = "ablation_run.json"
COLUMNS = (
    "run",
    "regularizer",
    "lam",
    "ema",
    "pred_loss",
    "val_pred_loss",
    "z_rank",
    "z_std",
    "mean_cosine",
    "sigreg_loss",
    "success_rate",
    "ci95_lo",
    "ci95_hi",
    "train_s",
    "plan_s",
    "wall_s",
)


def select_runs(names: list[str] | None) -> list[str]:
    """The requested run names in the order given (all of :data:`RUNS` for None/empty)."""
    if not names:
        return list(RUNS)
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        raise ValueError(f"unknown ablation runs {unknown}; expected names from {list(RUNS)}")
    return list(names)


def summarize(record: dict, rows: list[dict]) -> dict:
    """One table row: the run's final metrics, planning success and timings."""
    loss = record["config"]["loss"]
    plan = record.get("planning") or {}
    ci = plan.get("ci95", (math.nan, math.nan))
    reg = loss.get("regularizer", "sigreg")
    train = [r for r in rows if "pred_loss" in r]
    return {
        "run": record["run"],
        "regularizer": reg,
        "lam": loss["sigreg_weight"] if reg == "sigreg" else 0.0,
        "ema": bool(loss.get("ema_target", False)),
        **{k: final_metric(train, k) for k in ("pred_loss", "z_rank", "z_std", "mean_cosine")},
        "sigreg_loss": final_metric(train, "sigreg_loss"),
        "val_pred_loss": final_metric(rows, "val_pred_loss"),
        "success_rate": plan.get("success_rate", math.nan),
        "ci95_lo": ci[0],
        "ci95_hi": ci[1],
        "train_s": record["train_s"],
        "plan_s": record["plan_s"],
        "wall_s": record["train_s"] + record["plan_s"],
    }


def format_markdown(table: list[dict]) -> str:
    """The results table, then the SIGReg lambda sweep (lambda 0 = prediction only)."""
    header = [
        "| run | regularizer | λ | EMA | pred loss | val pred loss | eff. rank | z std "
        "| mean cos | SIGReg stat | success | 95 % CI | train s | plan s | wall s |",
        "|" + "---|" * 15,
    ]
    lines = ["# Anti-collapse ablation", "", *header]
    for r in table:
        ci = "-" if math.isnan(r["ci95_lo"]) else f"{r['ci95_lo']:.2f}-{r['ci95_hi']:.2f}"
        cells = [format_cell(r[k]) for k in COLUMNS[:11]] + [ci]
        cells += [f"{r[k]:.0f}" for k in ("train_s", "plan_s", "wall_s")]
        lines.append("| " + " | ".join(cells) + " |")
    sweep = sorted(
        (r for r in table if r["regularizer"] in ("sigreg", "none") and not r["ema"]),
        key=lambda r: r["lam"],
    )
    lines += ["", "## SIGReg λ sweep", "", "| λ | run | pred loss | eff. rank | success |"]
    lines.append("|---|---|---|---|---|")
    for r in sweep:
        cells = [format_cell(r[k]) for k in ("lam", "run", "pred_loss", "z_rank", "success_rate")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_runs(curves: dict[str, list[dict]], path) -> None:
    """2x2 PNG of every run's training pred loss, effective rank, z std and mean cosine."""
    keys = [
        ("pred_loss", "prediction loss"),
        ("z_rank", "effective rank of z"),
        ("z_std", "mean per-dim std of z"),
        ("mean_cosine", "mean cosine similarity of z"),
    ]
    with saved_figure(path, nrows=2, ncols=2, figsize=(13, 9)) as (_, axes):
        for ax, (key, title) in zip(axes.flat, keys, strict=True):
            for i, (name, rows) in enumerate(curves.items()):
                pts = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    style = "--" if name.startswith("lam") else "-"
                    ax.plot(xs, ys, style, color=f"C{i % 10}", label=name)
            ax.set_xlabel("step")
            ax.set_title(title)
        axes[0, 0].set_yscale("log")
        axes[0, 0].legend(fontsize=8)


def run_ablation(base_config, workdir, runs=None, *, train_fn=None, plan_fn=None, progress=True):
    """Trains, plans and tabulates the ablation runs (see the module docstring).

    Args:
        base_config: the config every run derives from (never mutated).
        workdir: directory holding one subdirectory per run and the summary files.
        runs: run names from :data:`RUNS` (default: all).
        train_fn: ``(config, workdir) -> summary``; default :func:`lewm_jax.run.train_and_evaluate`.
        plan_fn: ``(workdir, plan_config, config=, progress=) -> report``; default
            ``planning.evaluate.evaluate_planning``.
        progress: print one line per stage.

    Returns:
        The table: one dict per run with the keys of :data:`COLUMNS`.
    """
    names = select_runs(runs)
    if train_fn is None:
        from lewm_jax.run import train_and_evaluate as train_fn
    if plan_fn is None:
        from lewm_jax.planning.evaluate import evaluate_planning as plan_fn
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    table, curves = [], {}
    for name in names:
        config = derive_config(base_config, RUNS[name])
        if progress:
            print(f"ablation: {name}: {RUNS[name]}", flush=True)
        record = run_one(
            name,
            RUNS[name],
            config,
            workdir / name,
            train_fn,
            plan_fn,
            record_file=RECORD_FILE,
            progress=progress,
            what="ablation",
        )
        curves[name] = run_dir.read_metrics(workdir / name)
        table.append(summarize(record, curves[name]))
    (workdir / "ablation.md").write_text(format_markdown(table))
    with (workdir / "ablation.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    plot_runs(curves, workdir / "ablation.png")
    return table
