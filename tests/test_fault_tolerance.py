"""Real failures: a kill mid-save, corrupted checkpoints, non-finite losses, bad workdirs.

Dataset faults (truncated or mislaid-out files, resumed data order) are in
test_fault_tolerance_data.py.
"""

import hashlib
import json
import math
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax.data.clips import ClipSource
from lewm_jax.run import train_and_evaluate
from lewm_jax.training import checkpoint, run_dir
from lewm_jax.training.run_dir import METRICS_FILE

ROOT = Path(__file__).resolve().parents[1]

# Trains with the test config in a fresh process and SIGKILLs itself halfway through
# writing the checkpoint of step argv[2]: orbax writes the tree metadata (_METADATA)
# after the array data and before the commit rename, so half of it is written, then the
# process dies with the arrays on disk and the step still in its temporary directory.
KILLED_MID_SAVE = """
import json, os, signal, sys
from orbax.checkpoint._src.path import async_path
from experiments.configs.lewm import get_config
from lewm_jax.run import train_and_evaluate

workdir, kill_step, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
write_text = async_path.write_text

async def write_half_then_die(path, text):
    if path.name == "_METADATA" and path.parent.parent.name.startswith(kill_step + "."):
        path.write_text(text[: len(text) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return await write_text(path, text)

async_path.write_text = write_half_then_die
config = get_config("test")
for k, v in overrides.items():
    config[k] = v
train_and_evaluate(config, workdir)
"""


def _overrides(steps, every):
    return {"total_steps": steps, "checkpoint_every": every, "log_every": 1, "eval_every": 100}


def _config(steps, every):
    config = get_config("test")
    for k, v in _overrides(steps, every).items():
        config[k] = v
    return config


def _truncate_arrays(step_dir: Path) -> int:
    """Truncates every array data file of a checkpoint to half its size, as a disk fault would."""
    files = [p for p in step_dir.rglob("*") if p.is_file() and p.stat().st_size > 64]
    data = [p for p in files if p.parent.name == "d"]
    for p in data:
        with open(p, "r+b") as f:
            f.truncate(p.stat().st_size // 2)
    return len(data)


def test_corrupt_latest_checkpoint_is_reported_and_the_previous_one_used(tmp_path, capsys):
    train_and_evaluate(_config(4, 2), str(tmp_path))
    assert _truncate_arrays(tmp_path / "checkpoints" / "4") > 0
    out = train_and_evaluate(_config(6, 2), str(tmp_path))
    printed = capsys.readouterr().out
    assert "checkpoint step 4 is unreadable" in printed and "moved to 4.corrupt" in printed
    assert out["origin"] == "resumed from step 2" and out["steps_run"] == 4
    assert (tmp_path / "checkpoints" / "4.corrupt").is_dir()  # kept for inspection
    ckpt = checkpoint.Checkpointer(tmp_path / "checkpoints", async_save=False)
    assert ckpt.all_steps()[-1] == 6

    # The resumed history equals an uninterrupted run's: no clip repeated or skipped.
    straight = train_and_evaluate(_config(6, 2), str(tmp_path / "straight"))
    assert straight["loss"] == out["loss"]


def test_no_readable_checkpoint_is_an_error_not_a_silent_restart(tmp_path):
    train_and_evaluate(_config(2, 2), str(tmp_path))
    _truncate_arrays(tmp_path / "checkpoints" / "2")
    with pytest.raises(RuntimeError, match="no readable checkpoint"):
        train_and_evaluate(_config(4, 2), str(tmp_path))


def test_unwritable_workdir_fails_before_training():
    # /proc refuses new directories even to root, so this holds on any CI user.
    with pytest.raises(PermissionError, match="'/proc/lewm_run' is not writable"):
        train_and_evaluate(_config(2, 2), "/proc/lewm_run")


def test_workdir_that_is_a_file_or_on_a_full_disk_fails_before_training(tmp_path, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        train_and_evaluate(_config(2, 2), str(f))

    def full(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(PermissionError, match="No space left on device"):
        run_dir.check_workdir(tmp_path / "run")


def _record_batches(monkeypatch) -> list:
    """Makes training record ``(step, clip starts, data digest)`` of each batch it consumes."""
    seen = []
    iterate = ClipSource.iterate

    def recording(self, start_step=0, stop_step=None, **kwargs):
        inner = iterate(self, start_step, stop_step, **kwargs)
        try:
            for step, batch in inner:
                data = batch["pixels"].tobytes() + batch["actions"].tobytes()
                seen.append((step, tuple(self.clip_indices(step)), hashlib.sha1(data).hexdigest()))
                yield step, batch
        finally:
            inner.close()

    monkeypatch.setattr(ClipSource, "iterate", recording)
    return seen


def _checkpoints(workdir):
    """Steps on disk and the arrays of the latest one."""
    ckpt = checkpoint.Checkpointer(Path(workdir) / "checkpoints", async_save=False)
    latest = ckpt.manager.restore(ckpt.latest_step())
    return ckpt.all_steps(), [np.asarray(x) for x in jax.tree.leaves(latest)]


def _losses(workdir):
    rows = [json.loads(r) for r in (Path(workdir) / METRICS_FILE).read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def test_run_killed_while_writing_a_checkpoint_resumes_from_the_last_complete_one(
    tmp_path, monkeypatch
):
    killed, ckpts = tmp_path / "killed", tmp_path / "killed" / "checkpoints"
    run = _overrides(16, 4)  # saves at 4, 8, 12, 16; the test config has 14 steps per epoch
    child = subprocess.run(
        [sys.executable, "-c", KILLED_MID_SAVE, str(killed), "8", json.dumps(run)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == -signal.SIGKILL, f"not killed mid-save: {child.stderr[-2000:]}"
    partial = [p for p in ckpts.iterdir() if p.name.startswith("8.orbax-checkpoint-tmp")]
    assert len(partial) == 1
    assert sorted(p.name for p in ckpts.iterdir() if p.name.isdigit()) == ["4"]
    arrays = [p for p in partial[0].rglob("*") if p.is_file() and p.parent.name == "d"]
    assert arrays and all(p.stat().st_size > 0 for p in arrays)  # the data was on disk
    with pytest.raises(json.JSONDecodeError):  # and its metadata cut off mid-write
        json.loads(next(partial[0].rglob("_METADATA")).read_text())

    seen = _record_batches(monkeypatch)
    out = train_and_evaluate(_config(16, 4), str(killed))
    assert out["origin"] == "resumed from step 4" and out["steps_run"] == 12
    resumed = [r for r in seen if r[0] < 16]
    seen.clear()
    train_and_evaluate(_config(16, 4), str(tmp_path / "straight"))
    straight = [r for r in seen if r[0] < 16]

    # The resumed run consumed exactly the uninterrupted run's batches from step 4 on, across
    # the epoch boundary at step 14 (a new shuffle): no clip repeated or skipped.
    assert [r[0] for r in straight] == list(range(16)) and resumed == straight[4:]
    assert set(straight[13][1]) != set(straight[14][1])
    assert sorted(p.name for p in ckpts.iterdir()) == ["12", "16", "8"]  # partial one gone
    (steps_a, a), (steps_b, b) = _checkpoints(killed), _checkpoints(tmp_path / "straight")
    assert steps_a == steps_b == [8, 12, 16]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert _losses(killed) == _losses(tmp_path / "straight")
    assert list(_losses(killed)) == list(range(1, 17))


def test_non_finite_loss_stops_training_before_any_checkpoint_of_it(tmp_path, monkeypatch):
    batch = ClipSource.batch

    def poisoned(self, step):
        out = batch(self, step)
        if self.split == "train" and step == 4:  # the batch of step 5 carries NaN actions
            out = {**out, "actions": np.full_like(out["actions"], np.nan)}
        return out

    monkeypatch.setattr(ClipSource, "batch", poisoned)
    config = _config(8, 3)
    config.log_every = 4  # step 6 saves but is not due a log: only the pre-save check sees it
    with pytest.raises(FloatingPointError) as err:
        train_and_evaluate(config, str(tmp_path))
    assert str(err.value) == (
        "non-finite loss at step 5 (checked steps 5-6); training stopped without saving; "
        f"last good checkpoint: step 3 in {tmp_path / 'checkpoints'}"
    )
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["3"]
    ckpt = checkpoint.Checkpointer(tmp_path / "checkpoints", async_save=False)
    restored = jax.tree.leaves(ckpt.manager.restore(3))
    assert restored and all(np.isfinite(np.asarray(x)).all() for x in restored)
    losses = _losses(tmp_path)
    assert list(losses) == [1, 2, 3, 4] and all(math.isfinite(v) for v in losses.values())
