"""experiments/bench/yardstick.py: the data and batch plan both sides train on, and (with the
reference interpreter, ``LEWM_TORCH_PYTHON``; BENCHMARKS.md) a tiny end-to-end comparison."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments.bench import yardstick
from experiments.configs.common import load_config
from lewm_jax.data.clips import ClipSource
from lewm_jax.data.datasets import load_episodes

SPEC = "experiments/configs/lewm.py:test,env=push_t"
TORCH_PYTHON = os.environ.get("LEWM_TORCH_PYTHON")


def test_the_plan_is_the_clips_lewm_jax_trains_on_and_the_file_its_episodes(tmp_path):
    config = load_config(SPEC)
    info = yardstick.write_data(config, tmp_path)
    assert info["steps"] == config.total_steps
    plan = np.load(tmp_path / "plan.npz")
    episodes = load_episodes(config.data, config.seed)
    src = ClipSource(
        episodes,
        batch_size=config.batch_size,
        num_frames=config.data.num_frames,
        frameskip=config.data.frameskip,
        seed=config.seed,
        train_fraction=config.data.train_fraction,
    )
    rows = episodes.ep_offset[plan["episodes"]] + plan["starts"]
    for step in range(config.total_steps):
        np.testing.assert_array_equal(rows[step], src.clip_indices(step))
    np.testing.assert_array_equal(plan["action_mean"], src.action_mean)
    assert json.loads(str(plan["optim"]))["lr"] == config.optim.lr
    # A clip never runs past its episode.
    span = config.data.num_frames * config.data.frameskip
    assert (plan["starts"] + span <= episodes.ep_len[plan["episodes"]]).all()
    # Written once: a second call keeps both files as they are.
    stamp = [(tmp_path / f).stat().st_mtime_ns for f in ("data.h5", "plan.npz")]
    yardstick.write_data(config, tmp_path)
    assert [(tmp_path / f).stat().st_mtime_ns for f in ("data.h5", "plan.npz")] == stamp


def test_the_file_is_checked_a_chunk_at_a_time_and_any_difference_is_named(tmp_path):
    from lewm_jax.data.hdf5 import HDF5Store

    config = load_config(SPEC)
    yardstick.write_data(config, tmp_path)
    episodes = load_episodes(config.data, config.seed)
    store = HDF5Store(tmp_path / "data.h5", chunk=7)  # several chunks per episode
    np.testing.assert_array_equal(np.concatenate(list(store.pixel_chunks())), episodes.pixels)
    yardstick.check_written(store, episodes)
    episodes.pixels[-1, 0, 0, 0] ^= 1  # the last chunk's last frame
    with pytest.raises(ValueError, match="'pixels' differs"):
        yardstick.check_written(store, episodes)
    episodes.pixels[-1, 0, 0, 0] ^= 1
    episodes.actions[3, 0] += 1.0
    with pytest.raises(ValueError, match="'actions' differs"):
        yardstick.check_written(store, episodes)


def test_configs_the_original_cannot_train_are_refused_in_one_line():
    config = load_config(SPEC)
    with config.unlocked():
        config.loss.regularizer = "vicreg"
    with pytest.raises(ValueError, match="'vicreg'"):
        yardstick.check_config(config)
    with config.unlocked():
        config.loss.regularizer, config.model.encoder = "sigreg", "R18w8"
    with pytest.raises(ValueError, match="'R18w8' is a ResNet, which the original does not"):
        yardstick.check_config(config)
    with config.unlocked():
        config.model.encoder, config.data.name = "Mu/8", "hdf5"
    with pytest.raises(ValueError, match="'hdf5' needs data.path"):
        yardstick.check_config(config)
    with config.unlocked():  # a run field that experiments.train would refuse
        config.data.name, config.checkpoint_every, config.keep_checkpoints_every = (
            "push_t",
            100,
            375,
        )
    with pytest.raises(ValueError, match="keep_checkpoints_every 375"):
        yardstick.check_config(config)


def test_a_file_dataset_is_copied_for_the_original_and_read_along_the_plan(tmp_path):
    """A collected file (Cube's case) is written once as ``data.h5`` for the original; the
    run config reads the file by its absolute path, its clips are the plan's, the copy
    holds the same episodes, and a resumed comparison refuses another config."""
    from lewm_jax.data import datasets
    from lewm_jax.data.hdf5 import HDF5Store, write_hdf5

    generated = load_config(SPEC)
    source = tmp_path / "collected.h5"
    write_hdf5(source, load_episodes(generated.data, generated.seed), env="PushT-v0")
    config = load_config(SPEC)
    with config.unlocked():
        config.data.name, config.data.path, config.data.env = "hdf5", str(source), "PushT-v0"
        config.planning.pairs = "train"  # a collected file has no held-out episodes
    yardstick.check_config(config)
    out = tmp_path / "ys"
    out.mkdir()
    yardstick.write_data(config, out)
    run = yardstick.run_config(config, out)
    assert run.data.path == str(source.resolve()) and run.data.env == "PushT-v0"
    copy = HDF5Store(out / "data.h5")
    yardstick.check_written(copy, load_episodes(run.data, run.seed))
    assert load_config(str(out / "config.json")).to_dict() == run.to_dict()
    src = ClipSource(
        datasets.open_store(run.data, run.seed),
        batch_size=run.batch_size,
        num_frames=run.data.num_frames,
        frameskip=run.data.frameskip,
        seed=run.seed,
        train_fraction=run.data.train_fraction,
    )
    plan = np.load(out / "plan.npz")
    rows = src.store.ep_offset[plan["episodes"]] + plan["starts"]
    for step in range(run.total_steps):
        np.testing.assert_array_equal(rows[step], src.clip_indices(step))
    assert yardstick.run_config(config, out).to_dict() == run.to_dict()  # resumed: same
    with config.unlocked():
        config.data.in_memory_gb = 2.0  # how fast, not what: a resumed comparison takes it
    yardstick.run_config(config, out)
    with config.unlocked():
        config.optim.lr *= 2
    with pytest.raises(ValueError, match="optim.lr"):
        yardstick.run_config(config, out)


@pytest.mark.skipif(
    not TORCH_PYTHON,
    reason="set LEWM_TORCH_PYTHON to a python with torch and stable-worldmodel (BENCHMARKS.md)",
)
def test_both_sides_train_on_the_plan_and_are_evaluated_on_the_same_pairs(tmp_path):
    out = tmp_path / "ys"
    cmd = [sys.executable, "-m", "experiments.bench.yardstick", f"--config={SPEC}"]
    cmd += [f"--out={out}", "--seeds=1", "--probe_episodes=10"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((out / "yardstick.json").read_text())
    ours, theirs = result["lewm_jax"], result["original"]
    assert ours["planning"]["protocol"] == theirs["planning"]["protocol"]
    starts = [[e["start"], e["goal"]] for e in ours["planning"]["episodes_detail"]]
    assert starts == [[e["start"], e["goal"]] for e in theirs["planning"]["episodes_detail"]]
    curve = json.loads((out / "original_summary.json").read_text())["curve"]
    assert len(curve) == load_config(SPEC).total_steps
    assert all(np.isfinite(r["pred_loss"]) for r in curve)
    assert "| original |" in done.stdout
