"""The run directory: what training leaves, and the one loader of a finished run."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax.data import datasets
from lewm_jax.data.episodes import action_stats
from lewm_jax.training import run_dir


@pytest.fixture(scope="module")
def trained(tiny_run, tmp_path_factory):
    config, workdir, _ = tiny_run(tmp_path_factory.mktemp("run"))
    return config, workdir


def test_training_saves_the_action_statistics_it_normalised_with(trained):
    config, workdir = trained
    mean, std = run_dir.read_action_stats(workdir)
    want = action_stats(datasets.load_episodes(config.data, config.seed).actions)
    np.testing.assert_array_equal(mean, want[0])
    np.testing.assert_array_equal(std, want[1])
    assert mean.dtype == np.float32 and mean.shape == (config.data.action_dim,)


def test_load_run_reads_config_checkpoint_and_statistics(trained):
    config, workdir = trained
    run = run_dir.load_run(workdir, config)
    assert run.step == config.total_steps
    assert run.config.model.to_dict() == config.model.to_dict()
    assert set(run.variables) == {"params", "batch_stats"}
    np.testing.assert_array_equal(run.action_stats[1], run_dir.read_action_stats(workdir)[1])
    other = get_config("test")
    with other.unlocked():
        other.model.latent_dim = 48
    with pytest.raises(ValueError, match=r"different config \(model.latent_dim\)"):
        run_dir.load_run(workdir, other)


def test_run_written_before_the_statistics_file_recomputes_them_once(trained, tmp_path, capsys):
    config, workdir = trained
    old = tmp_path / "old"
    shutil.copytree(workdir, old)
    (old / run_dir.ACTION_STATS_FILE).unlink()
    stats = run_dir.load_run(old).action_stats
    assert "recomputing it from the training dataset" in capsys.readouterr().out
    np.testing.assert_array_equal(stats[0], run_dir.read_action_stats(workdir)[0])
    # Saved, so the next load reads the file and prints nothing.
    assert (old / run_dir.ACTION_STATS_FILE).exists()
    again = run_dir.load_run(old).action_stats
    np.testing.assert_array_equal(again[1], stats[1])
    assert "recomputing" not in capsys.readouterr().out


def test_bad_run_directories_fail_in_one_line(trained, tmp_path):
    _, workdir = trained
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_dir.load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        run_dir.load_run(tmp_path / "empty")
    bad = tmp_path / "bad"
    shutil.copytree(workdir, bad)
    (bad / run_dir.CONFIG_FILE).write_bytes(b"\xab\xcd not json")
    with pytest.raises(ValueError, match=rf"run config '{bad / 'config.json'}' is not a JSON"):
        run_dir.load_run(bad)
    (bad / run_dir.CONFIG_FILE).write_text((workdir / run_dir.CONFIG_FILE).read_text())
    (bad / run_dir.ACTION_STATS_FILE).write_text(json.dumps({"mean": [0.0], "std": [0.0]}))
    with pytest.raises(ValueError, match="std > 0"):
        _ = run_dir.load_run(bad).action_stats


def test_metrics_log_keeps_one_history_on_resume(tmp_path):
    log = run_dir.MetricsLog(tmp_path)
    log.write([{"step": s, "loss": float(s)} for s in (1, 2, 3)])
    assert [r["step"] for r in run_dir.read_metrics(tmp_path)] == [1, 2, 3]
    run_dir.MetricsLog(tmp_path, resume_step=2)
    assert [r["step"] for r in run_dir.read_metrics(tmp_path)] == [1, 2]
    assert run_dir.read_metrics(tmp_path / "none") == []


def _events(workdir):
    """``(step, tag, value)`` of every scalar, and the purge steps, in the event files."""
    import struct

    from tensorboardX.proto import event_pb2

    scalars, purges = [], []
    for path in sorted(Path(workdir).glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):  # TFRecord: length, its CRC, the record, its CRC
            (n,) = struct.unpack("<Q", data[i : i + 8])
            event = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
            i += 16 + n
            scalars += [(event.step, v.tag, v.simple_value) for v in event.summary.value]
            if event.HasField("session_log") and event.session_log.status == 1:  # START
                purges.append(event.step)
    return scalars, purges


def test_metrics_also_go_to_tensorboard_event_files(tmp_path):
    log = run_dir.MetricsLog(tmp_path)
    log.write([{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25, "z_rank": 3.0}])
    log.close()
    scalars, _ = _events(tmp_path)
    assert scalars == [(1, "loss", 0.5), (2, "loss", 0.25), (2, "z_rank", 3.0)]
    resumed = run_dir.MetricsLog(tmp_path, resume_step=1)  # step 2 is dropped on resume
    resumed.write([{"step": 2, "loss": 0.125}])
    resumed.close()
    assert [r["loss"] for r in run_dir.read_metrics(tmp_path)] == [0.5, 0.125]
    scalars, purges = _events(tmp_path)
    assert purges == [2] and scalars[-1] == (2, "loss", 0.125)
