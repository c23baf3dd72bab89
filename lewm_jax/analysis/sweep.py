"""Hyperparameter sweeps over a config's ``sweep(add, arg)`` grid.

A config file may define ``sweep(add, arg=None)``, calling ``add(**overrides)`` once per grid
point with dotted keys (``{"loss.sigreg_weight": 0.5, "seed": 1}``), ml-collections style.
Every point trains into ``<workdir>/<name>`` (the name spells its overrides) and is planned
where the dataset is plannable; a re-run reuses finished points and resumes unfinished ones
(:func:`lewm_jax.analysis.runs.run_one`). ``shard`` splits the grid for job arrays, and
:func:`report` rebuilds the results table from the run directories alone, so points
trained by the ``experiments.train`` commands of :func:`commands` are reported as well.
With ``population=N`` every N consecutive points are trained together in one compiled
program (:mod:`lewm_jax.training.population`), each still into its own run directory.
"""

import csv
import math
import re
from pathlib import Path

from lewm_jax.analysis.runs import (
    derive_config,
    final_metric,
    format_cell,
    new_record,
    read_record,
    run_one,
    write_record,
)
from lewm_jax.training import run_dir
from lewm_jax.training.reporting import saved_figure

RECORD_FILE = "sweep_run.json"
METRICS = ("pred_loss", "val_pred_loss", "sigreg_loss", "z_rank", "z_std", "mean_cosine")


def grid(sweep_fn, arg: str | None = None) -> list[dict]:
    """The overrides of every point ``sweep_fn(add, arg)`` adds, in order; one-line errors
    for an empty grid or a point added twice."""
    points: list[dict] = []

    def add(**overrides):
        if overrides in points:
            raise ValueError(f"sweep point {overrides} is added twice")
        points.append(dict(overrides))

    sweep_fn(add, arg)
    if not points:
        raise ValueError("the config's sweep() adds no point")
    return points


def point_name(overrides: dict) -> str:
    """The run directory name of a point: ``key=value`` pairs joined by ``,``."""
    text = ",".join(f"{k}={v}" for k, v in overrides.items()) or "base"
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)


def parse_shard(spec: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``; a one-line error otherwise."""
    m = re.fullmatch(r"(\d+)/(\d+)", spec.strip())
    if not m or not 0 <= int(m[1]) < int(m[2]):
        raise ValueError(f"--shard {spec!r} must be i/n with 0 <= i < n (e.g. 0/4)")
    return int(m[1]), int(m[2])


def shard(points: list[dict], index: int, count: int) -> list[dict]:
    """Points ``index, index + count, ...``: shard i of n, disjoint and covering the grid."""
    return points[index::count]


def configs(base, points: list[dict]) -> list:
    """The derived and validated config of every point, before anything is trained."""
    from lewm_jax.run import validate_config

    out = []
    for overrides in points:
        try:
            config = derive_config(base, overrides)
            validate_config(config)
        except (ValueError, TypeError, KeyError) as e:
            raise ValueError(f"sweep point {point_name(overrides)}: {e}") from None
        out.append(config)
    return out


def commands(config_spec: str, workdir, points: list[dict], flags: list[str] = ()) -> list[str]:
    """One ``experiments.train`` command per point (for a scheduler that runs them)."""
    lines = []
    for p in points:
        overrides = " ".join(f"--config.{k}={v}" for k, v in p.items())
        extra = " ".join(flags)
        lines.append(
            f"python -m experiments.train --config {config_spec} "
            f"--workdir {Path(workdir) / point_name(p)} {overrides} {extra}".rstrip()
        )
    return lines


def populations(derived: list, points: list[dict], size: int) -> list[list[int]]:
    """Indices of the points trained together: every ``size`` consecutive ones; a
    one-line error when a group's points differ in more than population fields."""
    from lewm_jax.training.population import check_population

    if size < 1:
        raise ValueError(f"--population must be >= 1 (points trained together), got {size}")
    groups = [list(range(i, min(i + size, len(points)))) for i in range(0, len(points), size)]
    for g in groups:
        try:
            check_population([derived[i] for i in g])
        except ValueError as e:
            names = f"{point_name(points[g[0]])} .. {point_name(points[g[-1]])}"
            raise ValueError(f"sweep points {names} cannot share a population: {e}") from None
    return groups


def _train_together(group, points, derived, workdir: Path, progress: bool) -> None:
    """Trains the group's points that are not trained yet as one population and records
    them as trained (the population's wall time is each member's ``train_s``)."""
    import time

    from lewm_jax.training.population import train_population

    where = dict(record_file=RECORD_FILE, what="sweep")
    todo = []
    for i in group:
        name = point_name(points[i])
        record = read_record(workdir / name, derived[i], name=name, **where)
        if "train_s" not in record:
            todo.append((i, name, record))
    if len(todo) < 2:  # one point alone trains as a plain run
        return
    if progress:
        print(f"sweep: training {len(todo)} points as one population", flush=True)
    t0 = time.perf_counter()
    train_population([derived[i] for i, _, _ in todo], [workdir / n for _, n, _ in todo])
    seconds = time.perf_counter() - t0
    for i, name, record in todo:
        record = new_record(name, points[i], derived[i], record)
        record.update(train_s=seconds, population=len(todo))
        write_record(workdir / name, record, record_file=RECORD_FILE)


def run(base, workdir, points, *, population=1, train_fn=None, plan_fn=None, progress=True) -> None:
    """Trains (and plans) every point not yet done, each in its own run directory;
    ``population`` consecutive points at a time are trained together."""
    from tqdm import tqdm

    if train_fn is None:
        from lewm_jax.run import train_and_evaluate as train_fn
    if plan_fn is None:
        from lewm_jax.planning.evaluate import evaluate_planning as plan_fn
    derived = configs(base, points)
    groups = populations(derived, points, population)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(points), desc="sweep", disable=not progress)
    for group in groups:
        _train_together(group, points, derived, workdir, progress)
        for i in group:
            name = point_name(points[i])
            bar.set_postfix_str(name)
            run_one(
                name, points[i], derived[i], workdir / name, train_fn, plan_fn,
                record_file=RECORD_FILE, progress=progress, what="sweep",
            )  # fmt: skip
            bar.update(1)
    bar.close()


def report(base, workdir, points: list[dict]) -> list[dict]:
    """The results table of the grid's points that have started, from their run
    directories alone (metrics, planning report, record and linear probe r when present);
    also written as ``sweep.md``, ``sweep.csv`` and ``sweep.png`` in ``workdir``."""
    from lewm_jax.analysis.probe import linear_r
    from lewm_jax.planning.checks import report_stem

    workdir = Path(workdir)
    table = []
    for overrides, config in zip(points, configs(base, points), strict=True):
        directory = workdir / point_name(overrides)
        rows = run_dir.read_metrics(directory)
        if not rows:
            continue
        train = [r for r in rows if "pred_loss" in r]
        plan_file = run_dir.report_path(directory, report_stem(config.planning), ".json")
        plan = run_dir.read_json(plan_file) if plan_file.exists() else {}
        record_file = directory / RECORD_FILE
        record = run_dir.read_json(record_file) if record_file.exists() else {}
        # python -m experiments.probe --workdir <point> writes it
        probe_file = run_dir.report_path(directory, "probe", ".json")
        probe_r = (
            linear_r(run_dir.read_json(probe_file, "probe report")) if probe_file.exists() else {}
        )
        ci = plan.get("ci95", (math.nan, math.nan))
        table.append(
            {
                "run": point_name(overrides),
                **{f"override:{k}": v for k, v in overrides.items()},
                "steps": rows[-1]["step"],
                **{k: final_metric(train if k != "val_pred_loss" else rows, k) for k in METRICS},
                "success_rate": plan.get("success_rate", math.nan),
                "ci95_lo": ci[0],
                "ci95_hi": ci[1],
                "train_s": record.get("train_s", math.nan),
                "population": record.get("population", 1),
                "plan_s": record.get("plan_s", math.nan),
                **{f"probe_r:{name}": r for name, r in probe_r.items()},
            }
        )
    if not table:
        raise FileNotFoundError(f"{str(workdir)!r} holds no run of this sweep yet")
    columns = list(dict.fromkeys(k for r in table for k in r))
    (workdir / "sweep.md").write_text(format_markdown(table, columns))
    with (workdir / "sweep.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(table)
    plot(table, workdir / "sweep.png")
    return table


def format_markdown(table: list[dict], columns: list[str]) -> str:
    """The results table: overrides, final metrics, success with its 95 % interval."""
    shown = [c for c in columns if c not in ("ci95_lo", "ci95_hi")]
    head = [c.removeprefix("override:") for c in shown] + ["95 % CI"]
    lines = ["# Sweep", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table:
        ci = "-" if math.isnan(r["ci95_lo"]) else f"{r['ci95_lo']:.2f}-{r['ci95_hi']:.2f}"
        lines.append("| " + " | ".join(format_cell(r.get(c, "")) for c in shown) + f" | {ci} |")
    return "\n".join(lines) + "\n"


def _order(value):
    """Numbers in numeric order, then any other values (e.g. "Mi/8") in text order."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def plot(table: list[dict], path) -> None:
    """Success and collapse metrics (effective rank, z std) against each swept value,
    averaged over the other overrides (e.g. seeds) with their spread."""
    swept = [k for k in table[0] if k.startswith("override:")]
    keys = [("success_rate", "planning success"), ("z_rank", "effective rank"), ("z_std", "z std")]
    with saved_figure(path, nrows=len(swept), ncols=3, figsize=(12, 3.2 * len(swept))) as (
        _,
        axes,
    ):
        axes = axes.reshape(len(swept), 3)
        for row, key in zip(axes, swept, strict=True):
            values = sorted({r[key] for r in table if key in r}, key=_order)
            for ax, (metric, title) in zip(row, keys, strict=True):
                groups = [[r[metric] for r in table if r.get(key) == v] for v in values]
                means = [sum(g) / len(g) for g in groups]
                ax.plot(range(len(values)), means, "o-")
                for i, g in enumerate(groups):
                    ax.plot([i] * len(g), g, ".", color="gray")
                ax.set_xticks(range(len(values)), [str(v) for v in values])
                ax.set_xlabel(key.removeprefix("override:"))
                ax.set_title(title)
