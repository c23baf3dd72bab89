"""Real failures: corrupted or truncated checkpoints, unwritable workdirs, full disks."""

import os
from pathlib import Path

import pytest

from experiments.configs.lewm import get_config
from lewm_jax import checkpoint
from lewm_jax.train import train_and_evaluate


def _config(steps, every):
    config = get_config("test")
    config.total_steps, config.checkpoint_every, config.log_every = steps, every, 1
    config.eval_every = 100
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


def test_unfinished_save_is_ignored(tmp_path):
    """A run killed mid-save leaves an orbax temporary directory; resume ignores it."""
    train_and_evaluate(_config(2, 2), str(tmp_path))
    partial = tmp_path / "checkpoints" / "4.orbax-checkpoint-tmp-1234"
    (partial / "default").mkdir(parents=True)
    (partial / "default" / "garbage").write_bytes(os.urandom(100))
    out = train_and_evaluate(_config(4, 2), str(tmp_path))
    assert out["origin"] == "resumed from step 2" and out["steps_run"] == 2


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
        checkpoint.check_workdir(tmp_path / "run")
