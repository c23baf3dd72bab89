"""The run directory: the one module that writes and reads what a training run leaves.

Layout of a workdir::

    config.json          the config that made the run (written once, atomically)
    action_stats.json    per-dimension mean/std of the raw actions that clips are z-scored
                         with (planning and analysis de-normalise with the same values)
    checkpoints/<step>/  orbax TrainState checkpoints (keep-N; see ``checkpoint``)
    metrics.jsonl        one JSON row per logged training or validation step
    events.out.tfevents.*  the same rows as TensorBoard scalars (one file per start)
    curves.png           loss and collapse-indicator curves

Later commands add their reports beside these (``planning_<planner>.*``, ``probe.json``,
``surprise.*``) under names from :func:`report_path`. :func:`load_run` is the one way a
finished run is loaded (planning, probes, surprise, conversion).
"""

import dataclasses
import functools
import json
import os
from pathlib import Path

import numpy as np

CONFIG_FILE = "config.json"
ACTION_STATS_FILE = "action_stats.json"
CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"
# Fields outside the compared sections that change the TrainState's layout, and their
# values in configs written before the fields existed.
STATE_FIELDS = {"loss.ema_target": False}
# Fields inside the compared sections that change how fast a run goes, not what it computes
# (the loader's batches are the same whatever its workers): a resume may change them.
SPEED_FIELDS = ("data.num_workers", "data.prefetch", "data.in_memory_gb")


def check_workdir(workdir: str | os.PathLike) -> Path:
    """Creates ``workdir`` if needed and fails early with one line if it is not writable."""
    path = Path(workdir)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"workdir {str(path)!r} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write_probe.{os.getpid()}"  # one per process: hosts share workdirs
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise PermissionError(f"workdir {str(path)!r} is not writable: {e.strerror}") from None
    return path


def read_json(path: str | os.PathLike, what: str = "file"):
    """Parses a JSON file; one-line ValueError naming the file when it is not JSON.

    Args:
        path: the file.
        what: what the file should be, for the message (e.g. ``"official config"``).
    """
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{what} {str(path)!r} is not a JSON file ({e})") from None


def _write_atomic(path: Path, text: str) -> None:
    # A crash never leaves a half-written file: write aside, then rename over.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_config(workdir: str | os.PathLike) -> dict | None:
    """The config dict stored in ``workdir``, or None if there is none."""
    path = Path(workdir) / CONFIG_FILE
    return read_json(path, "run config") if path.exists() else None


def write_config(workdir: str | os.PathLike, config_json: str) -> None:
    """Writes ``config.json`` atomically."""
    _write_atomic(Path(workdir) / CONFIG_FILE, config_json)


def flatten(d: dict, prefix: str = "") -> dict:
    """A nested config dict as ``{dotted key: value}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_mismatch(stored: dict, current: dict, sections=("model", "data")) -> list[str]:
    """Dotted keys under ``sections`` or in ``STATE_FIELDS`` that differ between two configs."""
    flat = flatten
    diffs = []
    for s in sections:
        a, b = flat(stored.get(s, {}), f"{s}."), flat(current.get(s, {}), f"{s}.")
        keys = sorted((a.keys() | b.keys()) - set(SPEED_FIELDS))
        diffs += [k for k in keys if a.get(k) != b.get(k)]

    def get(d, dotted, default):
        for name in dotted.split("."):
            d = d.get(name, default) if isinstance(d, dict) else default
        return d

    diffs += [k for k, v in STATE_FIELDS.items() if get(stored, k, v) != get(current, k, v)]
    return diffs


def write_action_stats(workdir: str | os.PathLike, mean, std) -> None:
    """Writes the per-dimension action ``mean`` and ``std`` ``(A,)`` atomically."""
    doc = {
        "mean": np.asarray(mean, np.float32).tolist(),
        "std": np.asarray(std, np.float32).tolist(),
    }
    _write_atomic(Path(workdir) / ACTION_STATS_FILE, json.dumps(doc, indent=2))


def read_action_stats(workdir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray] | None:
    """``(mean (A,), std (A,))`` float32 stored in ``workdir``, or None if absent."""
    path = Path(workdir) / ACTION_STATS_FILE
    if not path.exists():
        return None
    doc = read_json(path, "action statistics")
    try:
        mean, std = (np.asarray(doc[k], np.float32) for k in ("mean", "std"))
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{str(path)!r} must hold lists 'mean' and 'std'") from None
    if mean.ndim != 1 or mean.shape != std.shape or not np.all(std > 0):
        raise ValueError(f"{str(path)!r}: 'mean' and 'std' must be (A,) with std > 0")
    return mean, std


def checkpointer(workdir: str | os.PathLike, **kwargs):
    """The :class:`~lewm_jax.training.checkpoint.Checkpointer` of ``workdir/checkpoints``."""
    from lewm_jax.training.checkpoint import Checkpointer

    return Checkpointer(Path(workdir) / CHECKPOINT_DIR, **kwargs)


def read_metrics(workdir: str | os.PathLike) -> list[dict]:
    """All rows of ``workdir/metrics.jsonl`` (an empty list when there is none)."""
    path = Path(workdir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


class MetricsLog:
    """Appends one JSON object per row to ``<workdir>/metrics.jsonl``, and the same scalars
    to TensorBoard event files in ``workdir`` (tensorboardX, no TensorFlow), so that
    ``tensorboard --logdir <dir of runs>`` shows runs side by side under their directory
    names (a sweep's spell its overrides).

    Args:
        workdir: run directory.
        resume_step: on resume, rows for steps after this one (from a run that died after
            its last checkpoint) are dropped, so the file describes a single history; the
            event files drop them too (TensorBoard's purge step).
    """

    def __init__(self, workdir: str | os.PathLike, resume_step: int = 0):
        from tensorboardX import SummaryWriter

        self.workdir = Path(workdir)
        self.path = self.workdir / METRICS_FILE
        if self.path.exists():
            kept = [r for r in self.read() if r["step"] <= resume_step]
            _write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self._events = SummaryWriter(
            logdir=str(self.workdir), purge_step=resume_step + 1 if resume_step else None
        )

    def write(self, rows: list[dict]) -> None:
        """Appends rows (each with an int ``step``) and flushes them to disk."""
        with self.path.open("a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        for r in rows:
            for k, v in r.items():
                if k != "step" and isinstance(v, int | float):
                    self._events.add_scalar(k, v, r["step"])
        self._events.flush()

    def read(self) -> list[dict]:
        """All rows written so far."""
        return read_metrics(self.workdir)

    def close(self) -> None:
        """Closes the event file."""
        self._events.close()


def report_path(workdir: str | os.PathLike, stem: str, suffix: str) -> Path:
    """Where a command's report ``<stem><suffix>`` (e.g. ``planning_cem``, ``.json``) goes."""
    return Path(workdir) / f"{stem}{suffix}"


@dataclasses.dataclass(frozen=True)
class Run:
    """A finished (or interrupted) training run, loaded for evaluation.

    Attributes:
        workdir: the run directory.
        config: the stored config (an ml_collections ConfigDict).
        model: the JEPA it describes.
        variables: ``{"params", "batch_stats"}`` of the latest checkpoint.
        step: the checkpoint's step.
    """

    workdir: Path
    config: object
    model: object
    variables: dict
    step: int

    @functools.cached_property
    def action_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean (A,), std (A,))`` of the training data's raw actions.

        Read from ``action_stats.json``. Runs written before training saved it get them
        recomputed once from the training dataset, with a notice, and saved when the
        workdir is writable.
        """
        stats = read_action_stats(self.workdir)
        if stats is not None:
            return stats
        from lewm_jax.data import datasets
        from lewm_jax.data.episodes import action_stats

        print(
            f"lewm_jax: notice: {str(self.workdir)!r} has no {ACTION_STATS_FILE} (written "
            "before runs saved it); recomputing it from the training dataset",
            flush=True,
        )
        # The one streaming pass training makes; never the frames read into memory for it.
        store = datasets.open_store(self.config.data, self.config.seed, in_memory=False)
        stats = action_stats(store.action_chunks())
        try:
            write_action_stats(self.workdir, *stats)
        except OSError:
            pass  # a read-only run directory still loads; the statistics are recomputed
        return stats


def load_run(workdir: str | os.PathLike, config=None, step: int | None = None) -> Run:
    """Loads a checkpoint of a run for planning, probes, surprise or conversion.

    Args:
        workdir: a training run's directory.
        config: the run's config; when given it must match the stored one (model, data).
        step: the checkpoint's step (default: the latest).

    Returns:
        The :class:`Run`. EMA-target runs load their online params: the predictor was
        trained on them.
    """
    import ml_collections

    from lewm_jax.models import build_model
    from lewm_jax.training.state import abstract_train_state

    workdir = Path(workdir)
    if not workdir.is_dir():
        raise FileNotFoundError(f"workdir {str(workdir)!r} does not exist")
    stored = read_config(workdir)
    if stored is None:
        raise FileNotFoundError(f"workdir {str(workdir)!r} has no {CONFIG_FILE}")
    if config is not None:
        diffs = config_mismatch(stored, config.to_dict())
        if diffs:
            raise ValueError(
                f"checkpoint in {str(workdir)!r} belongs to a different config ({', '.join(diffs)})"
            )
    config = ml_collections.ConfigDict(stored)
    ckpt = checkpointer(workdir, async_save=False)
    kept = ckpt.all_steps()
    if not kept:
        raise FileNotFoundError(f"workdir {str(workdir)!r} holds no checkpoint")
    if step is not None and step not in kept:
        raise ValueError(f"workdir {str(workdir)!r} holds no checkpoint of step {step}; has {kept}")
    step = kept[-1] if step is None else step
    model = build_model(config.model, image_size=config.data.image_size)
    state = ckpt.restore(abstract_train_state(model, config), step)
    ckpt.close()
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    return Run(workdir=workdir, config=config, model=model, variables=variables, step=step)
