"""What the multi-run commands share: derived configs, one run trained and planned once.

A run is the base config plus dotted-key overrides, trained into its own directory and
then evaluated with closed-loop planning. Its record file marks the stages done, so a
re-run reuses finished runs and resumes unfinished ones (training resumes from its
checkpoints). Used by the ablation and the sweeps.
"""

import json
import math
import time
from pathlib import Path

FINAL_ROWS = 5  # "final" training metrics average the last this many logged steps


def derive_config(base, overrides: dict):
    """A copy of ``base`` with dotted-key ``overrides`` applied; ``base`` is left untouched."""
    config = base.copy_and_resolve_references()
    for dotted, value in overrides.items():
        *path, name = dotted.split(".")
        node = config
        for part in path:
            node = node[part]
        if name not in node:
            raise ValueError(f"override {dotted!r} names no field of the config")
        node[name] = value
    return config


def final_metric(rows: list[dict], key: str) -> float:
    """Mean of ``key`` over the last :data:`FINAL_ROWS` finite logged values (NaN if none)."""
    vals = [r[key] for r in rows if key in r and math.isfinite(r[key])][-FINAL_ROWS:]
    return sum(vals) / len(vals) if vals else math.nan


def format_cell(value) -> str:
    """A Markdown table cell: yes/no for booleans, 4 significant digits, "-" for NaN."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def read_record(directory, config, *, name, record_file, what) -> dict:
    """A run's record (``{}`` when there is none); a one-line error when it was made with
    another config."""
    path = Path(directory) / record_file
    record = json.loads(path.read_text()) if path.exists() else {}
    if record and record.get("config") != json.loads(config.to_json()):
        raise ValueError(
            f"{what} run {name!r} in {str(directory)!r} was made with a different config; "
            "use a new workdir"
        )
    return record


def write_record(directory, record: dict, *, record_file) -> None:
    """Writes a run's record (the stages it has done)."""
    (Path(directory) / record_file).write_text(json.dumps(record, indent=2))


def new_record(name, overrides, config, record: dict) -> dict:
    """``record`` with the run's name, overrides and config in front."""
    return {"run": name, "overrides": overrides, "config": json.loads(config.to_json()), **record}


def run_one(
    name, overrides, config, directory: Path, train_fn, plan_fn, *, record_file, progress, what
) -> dict:
    """Trains and plans one run unless its record says done; returns the record.

    Args:
        name: the run's name (in messages and the record).
        overrides: the dotted overrides that made ``config``.
        config: the run's config.
        directory: its run directory.
        train_fn: ``(config, workdir) -> summary``; not called when the record says the run
            is trained (e.g. by a population).
        plan_fn: ``(workdir, plan_config, config=, progress=) -> report``.
        record_file: the record's file name in ``directory``.
        progress: print one line per stage.
        what: the command, for messages ("ablation", "sweep").
    """
    where = dict(name=name, record_file=record_file, what=what)
    record = read_record(directory, config, **where)
    if record.get("done"):
        return record
    record = new_record(name, overrides, config, record)
    if "train_s" not in record:
        t0 = time.perf_counter()
        train_fn(config, str(directory))
        record["train_s"] = time.perf_counter() - t0
        write_record(directory, record, record_file=record_file)
    record["plan_s"], record["planning"] = 0.0, None
    if config.planning.enabled:
        if progress:
            print(f"{what}: {name}: planning", flush=True)
        t0 = time.perf_counter()
        report = plan_fn(str(directory), config.planning, config=config, progress=progress)
        record["plan_s"] = time.perf_counter() - t0
        record["planning"] = {k: report[k] for k in ("success_rate", "ci95", "episodes")}
    record["done"] = True
    write_record(directory, record, record_file=record_file)
    return record
