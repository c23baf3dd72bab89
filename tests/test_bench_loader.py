"""experiments/bench/loader_speed.py on a tiny layout: files, timings, verdicts, JSON, errors."""

import json

import pytest

from experiments.bench import loader_speed

# The "test" config (32 px clips, batch 16) read from a 32 px file and a 48 px one resized.
TINY = {"tiny": ("test", (32, 48))}


def test_tiny_run_writes_json_with_positive_rates(tmp_path, monkeypatch):
    # A train step faster than any loader, without compiling one: every row is "slower".
    fast = dict(batch=16, dtype="float32", s_per_step=1e-6, clips_per_s=1.6e7)
    monkeypatch.setattr(loader_speed, "time_step", lambda *args: fast)
    doc = loader_speed.run(
        ["tiny"],
        ["hdf5", "hdf5_blosc"],
        [0],
        workdir=tmp_path,
        layout_table=TINY,
        train_step={"tiny": 0},
        steps=2,
        repeats=2,
        episodes=4,
        unique_episodes=2,
    )
    doc = json.loads(json.dumps(doc))  # what --out writes

    assert {"meta", "files", "train_steps", "rows"} <= doc.keys()
    assert doc["meta"]["cpus_available"] >= 1 and doc["meta"]["h5py"]
    assert {(f["source"], f["stored_px"]) for f in doc["files"]} == {
        (s, px) for s in ("hdf5", "hdf5_blosc") for px in (32, 48)
    }
    blosc = [f for f in doc["files"] if f["source"] == "hdf5_blosc"]
    assert all(f["pixel_ratio"] > 1.5 for f in blosc)  # rendered frames compress
    assert [(r["source"], r["stored_px"]) for r in doc["rows"]] == [
        ("hdf5", 32),
        ("hdf5_blosc", 32),
        ("hdf5", 48),
        ("hdf5_blosc", 48),
    ]
    for r in doc["rows"]:
        assert r["image_size"] == 32 and r["batch"] == 16 and len(r["windows"]) == 2
        assert 0 < r["clips_per_s_min"] <= r["clips_per_s"] <= r["clips_per_s_max"]
        assert r["loader_slower"] is True and r["step_clips_per_s"] == fast["clips_per_s"]
        assert "threads in one process" in r["why"]
    assert "resizing" in doc["rows"][-1]["why"] and doc["rows"][-1]["clip_costs"]["resize_ms"] > 0
    table = loader_speed.format_table(doc)
    assert table.count("| tiny |") == 4 and "**yes**" in table


def test_bad_flag_values_are_named():
    with pytest.raises(ValueError, match=r"\['zarr'\] not allowed.*hdf5, hdf5_blosc, tfds"):
        loader_speed.check_choices("sources", ["hdf5", "zarr"], loader_speed.SOURCES)
    with pytest.raises(ValueError, match="'-1' is not a worker count"):
        loader_speed.check_workers(["0", "-1"])
    assert loader_speed.check_workers(["0", "2"]) == [0, 2]
    assert loader_speed.check_train_batch(["paper:16"], ["cpu", "paper"]) == {"cpu": 0, "paper": 16}
    with pytest.raises(ValueError, match="'gpu:8'"):
        loader_speed.check_train_batch(["gpu:8"], ["cpu"])
