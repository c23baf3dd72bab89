"""Sweeps: the grid of a config's sweep(), shards, commands, runs, reuse and the table."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.configs import lewm
from lewm_jax.analysis import sweep

ROOT = Path(__file__).resolve().parents[1]


def test_the_paper_grid_and_its_shards():
    points = sweep.grid(lewm.sweep, "cpu")
    assert len(points) == 15 and points[0] == {"loss.sigreg_weight": 0.0, "seed": 3072}
    assert sweep.point_name(points[0]) == "loss.sigreg_weight=0.0,seed=3072"
    shards = [sweep.shard(points, i, 4) for i in range(4)]
    assert sorted(map(sweep.point_name, sum(shards, []))) == sorted(map(sweep.point_name, points))
    assert sweep.parse_shard("3/4") == (3, 4)
    cmd = sweep.commands("experiments/configs/lewm.py:cpu", "runs/s", points[:1], ["--x=1"])
    assert cmd == [
        "python -m experiments.train --config experiments/configs/lewm.py:cpu --workdir "
        "runs/s/loss.sigreg_weight=0.0,seed=3072 --config.loss.sigreg_weight=0.0 "
        "--config.seed=3072 --x=1"
    ]


@pytest.mark.parametrize("spec", ["4/4", "-1/2", "1", "a/b"])
def test_bad_shards(spec):
    with pytest.raises(ValueError, match=r"--shard .* must be i/n"):
        sweep.parse_shard(spec)


def test_the_test_sweep_trains_reports_and_reuses_finished_points(tmp_path):
    """The CI sweep: 2 tiny points trained for real, then the table from the run dirs."""
    from lewm_jax.run import train_and_evaluate

    base, points = lewm.get_config("test"), sweep.grid(lewm.sweep, "test")
    calls = []

    def train_fn(config, workdir):
        calls.append(workdir)
        return train_and_evaluate(config, workdir)

    sweep.run(base, tmp_path, points, train_fn=train_fn, progress=False)
    table = sweep.report(base, tmp_path, points)
    assert [r["override:loss.sigreg_weight"] for r in table] == [0.09, 0.5]
    for r in table:
        assert r["steps"] == base.total_steps and math.isfinite(r["z_rank"])
        assert math.isnan(r["success_rate"])  # moving_dot has nothing to plan in
    # The weight changes what is trained: the two SIGReg statistics differ.
    assert table[0]["sigreg_loss"] != table[1]["sigreg_loss"]
    with (tmp_path / "sweep.csv").open() as f:
        assert [r["run"] for r in csv.DictReader(f)] == [sweep.point_name(p) for p in points]
    assert "| loss.sigreg_weight |" in (tmp_path / "sweep.md").read_text()
    assert (tmp_path / "sweep.png").stat().st_size > 0
    sweep.run(base, tmp_path, points, train_fn=train_fn, progress=False)
    assert len(calls) == 2  # finished points are reused, not retrained
    (tmp_path / "sweep.md").unlink()
    assert sweep.report(base, tmp_path, points) == table  # rebuilt from the run dirs alone
    # A point probed afterwards (experiments.probe writes probe.json) gets its r columns.
    probe = {"names": ["x", "y"], "linear": {"x": {"pearson_r": 0.5}, "y": {"pearson_r": 0.25}}}
    (tmp_path / sweep.point_name(points[1]) / "probe.json").write_text(json.dumps(probe))
    probed = sweep.report(base, tmp_path, points)
    assert (probed[1]["probe_r:x"], probed[1]["probe_r:y"]) == (0.5, 0.25)
    assert "probe_r:x" not in probed[0] and "| probe_r:x |" in (tmp_path / "sweep.md").read_text()


def _cli(tmp_path, config_file, *flags):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.sweep",
            f"--config={config_file}",
            f"--workdir={tmp_path / 'sweep'}",
            *flags,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "body, flags, message",
    [
        ("", [], "defines no sweep(add, arg)"),
        (
            "def sweep(add, arg=None):\n    add(**{'loss.nope': 1})\n",
            [],
            "sweep point loss.nope=1: override 'loss.nope' names no field of the config",
        ),
        ("def sweep(add, arg=None):\n    add(seed=1)\n", ["--shard=2/2"], "--shard '2/2'"),
        (
            "def sweep(add, arg=None):\n    add(seed=1)\n    add(**{'model.latent_dim': 16})\n",
            ["--population=2"],
            "sweep points seed=1 .. model.latent_dim=16 cannot share a population: population "
            "members differ in model.latent_dim (32 vs 16); only seed,",
        ),
        ("def sweep(add, arg=None):\n    add(seed=1)\n", ["--population=0"], "got 0"),
    ],
)
def test_bad_sweeps_fail_in_one_line_before_anything_runs(tmp_path, body, flags, message):
    config = tmp_path / "cfg.py"
    config.write_text(f"from experiments.configs.lewm import get_config  # noqa: F401\n{body}")
    out = _cli(tmp_path, f"{config}:test", *flags)
    assert out.returncode == 1 and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "sweep").exists()


CONFIG_FILES = sorted(
    p for p in (ROOT / "experiments" / "configs").glob("*.py") if "def get_config" in p.read_text()
)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("size", ["cpu", "test"])
def test_every_config_file_builds_and_validates_its_sweep(path, size):
    """Each experiment config file loads at every CI-relevant size, and every point of its
    sweep derives a config that passes validation (frame size vs patch, widths, data)."""
    from experiments.configs.common import load_module
    from lewm_jax.run import validate_config

    module = load_module(str(path))
    base = module.get_config(size)
    if base.data.name == "hdf5":  # a file dataset is named on the command line
        base.data.path = "episodes.h5"
    validate_config(base)
    if hasattr(module, "sweep"):
        points = sweep.grid(module.sweep, size)
        assert len(sweep.configs(base, points)) == len(points)


def test_a_sweep_point_whose_frames_do_not_fit_the_patch_fails_in_one_line():
    with pytest.raises(ValueError, match=r"image_size=100.*not a multiple of the patch size 8"):
        sweep.configs(lewm.get_config("test"), [{"data.image_size": 100, "model.encoder": "Mu/8"}])


def test_the_plot_orders_text_overrides_beside_numbers(tmp_path):
    row = {"success_rate": 0.1, "z_rank": 1.0, "z_std": 1.0}
    table = [{"override:model.encoder": e, **row} for e in ("Mi/8", "Mi/16")]
    sweep.plot(table, tmp_path / "s.png")  # encoders are not numbers: no float() of them
    assert (tmp_path / "s.png").stat().st_size > 0
