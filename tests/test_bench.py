"""Benchmark scripts in experiments/bench: tiny runs of their timing, combining and JSON code.

The reference side of the environment benchmark runs stable-worldmodel in another
interpreter: set ``LEWM_TORCH_PYTHON`` to a python with torch, stable-worldmodel and its
Push-T dependencies (pygame, pymunk, shapely, opencv-python-headless) to include it.
"""

import json
import os
import sys

import jax
import numpy as np
import pytest

from experiments.bench import env_speed
from lewm_jax.envs import make

TORCH_PYTHON = os.environ.get("LEWM_TORCH_PYTHON")
needs_torch = pytest.mark.skipif(
    not TORCH_PYTHON,
    reason="set LEWM_TORCH_PYTHON to a python with torch and stable-worldmodel "
    "(install: BENCHMARKS.md) to time the reference environments",
)


def _reference_row(env, size, b, mode, fps):
    return dict(env=env, image_size=size, num_envs=b, mode=mode, frames_per_s=fps)


def test_env_speed_lewm_side_writes_json(tmp_path):
    result = env_speed.run(["TwoRoom-v0"], [16], [1, 2], min_seconds=0.01)
    path = tmp_path / "env_speed.json"
    path.write_text(json.dumps(result))
    loaded = json.loads(path.read_text())

    assert loaded["meta"]["reference"] is None
    assert [(r["env"], r["image_size"], r["num_envs"]) for r in loaded["rows"]] == [
        ("TwoRoom-v0", 16, 1),
        ("TwoRoom-v0", 16, 2),
    ]
    assert all(r["lewm_jax"] > 0 and r["reference"] == {} for r in loaded["rows"])
    (summary,) = loaded["summary"]
    assert summary["lewm_jax_best"] == max(r["lewm_jax"] for r in loaded["rows"])
    assert summary["ratio"] is None and summary["meets_target"] is None
    assert "lewm_jax" in env_speed.format_table(loaded)


def test_combine_ratios_and_best_vectorised():
    ours = [
        dict(env="PushT-v0", image_size=64, num_envs=1, frames_per_s=1000.0),
        dict(env="PushT-v0", image_size=64, num_envs=64, frames_per_s=64000.0),
        dict(env="Reacher-v0", image_size=64, num_envs=1, frames_per_s=500.0),
    ]
    theirs = [
        _reference_row("PushT-v1", 64, 1, "single", 250.0),
        _reference_row("PushT-v1", 64, 1, "world", 200.0),
        _reference_row("PushT-v1", 64, 8, "async", 400.0),
        _reference_row("PushT-v1", 64, 8, "sync", None),  # a failed mode
    ]
    result = env_speed.combine(ours, theirs)

    rows = {(r["env"], r["num_envs"]): r for r in result["rows"]}
    assert list(rows) == [("PushT-v0", 1), ("PushT-v0", 8), ("PushT-v0", 64), ("Reacher-v0", 1)]
    assert rows["PushT-v0", 1]["ratio"] == 4.0  # against their best mode at B = 1 (single)
    assert rows["PushT-v0", 8]["lewm_jax"] is None and rows["PushT-v0", 8]["ratio"] is None
    assert rows["PushT-v0", 64]["reference"] == {}
    assert rows["Reacher-v0", 1]["reference_env"] is None
    push_t, reacher = result["summary"]
    # Our best B against their best vectorised mode; "single" does not count.
    assert (push_t["lewm_jax_num_envs"], push_t["reference_mode"]) == (64, "async")
    assert push_t["ratio"] == 160.0 and push_t["meets_target"]
    assert reacher["ratio"] is None
    table = env_speed.format_table(result)
    assert "ref async" in table and "160.0x" in table


def test_reference_failures_are_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^reference python .* does not exist") as err:
        env_speed.run_reference(str(tmp_path / "nope"), ["TwoRoom-v0"], [16], [1], ["world"], 0.01)
    assert "\n" not in str(err.value)
    # This interpreter lacks the reference packages: the script fails, reported in one line.
    with pytest.raises(
        RuntimeError, match=r"torch\.envs failed \(exit 1\): ModuleNotFoundError"
    ) as err:
        env_speed.run_reference(sys.executable, ["TwoRoom-v0"], [16], [1], ["world"], 0.01)
    assert "\n" not in str(err.value)


@needs_torch
def test_env_speed_with_reference():
    result = env_speed.run(
        ["TwoRoom-v0"],
        [16],
        [1],
        min_seconds=0.01,
        reference_python=TORCH_PYTHON,
        reference_num_envs=[1, 2],
        reference_modes=["single", "world"],
    )
    assert result["meta"]["reference"]["torch"]
    rows = {r["num_envs"]: r for r in result["rows"]}
    assert set(rows[1]["reference"]) == {"single", "world"} and rows[1]["ratio"] > 0
    assert rows[2]["reference"]["world"] > 0 and rows[2]["lewm_jax"] is None
    assert result["summary"][0]["reference_mode"] == "world"


# --- experiments/bench/plan_speed.py: one CEM plan, lewm_jax vs stable-worldmodel ---

PLAN_CEM = dict(num_samples=8, num_iters=2, num_elites=2)
TEST_SIZE_PARAMS = 67_918  # parameters of the "test" model (action_dim 2, frameskip 5)


def test_plan_speed_pairs_the_cem_row_with_a_reference_row_of_the_same_model():
    from experiments.bench import plan_speed

    rows = plan_speed.run(
        ["test"], ["cem"], ["cached"], "float32", 1, 2, settings={"cem": PLAN_CEM}
    )
    (row,) = rows
    assert (row["params"], row["num_samples"], row["num_iters"]) == (TEST_SIZE_PARAMS, 8, 2)
    assert row["median_s"] > 0
    ref = dict(size="test", params=TEST_SIZE_PARAMS, samples=8, iterations=2, topk=2, horizon=2)
    ref.update(dtype="float32", seconds=1.0, median_cpu_s=1.0, device="cpu", threads=1)
    (pair,) = plan_speed.compare(rows, [ref])
    assert pair["ref_params"] == pair["params"] == TEST_SIZE_PARAMS
    assert pair["speedup"] == round(1.0 / row["median_s"], 2)
    with pytest.raises(ValueError, match="differs from the reference"):
        plan_speed.compare(rows, [{**ref, "params": TEST_SIZE_PARAMS + 1}])


@pytest.mark.skipif(
    not TORCH_PYTHON,
    reason="set LEWM_TORCH_PYTHON to a python with torch and stable-worldmodel "
    "(install: BENCHMARKS.md) to time the reference CEM plan",
)
def test_reference_cem_plan_runs_the_same_size_model():
    from experiments.bench import plan_speed

    ref = plan_speed.time_reference("test", "float32", 1, 2, PLAN_CEM, TORCH_PYTHON, threads=1)
    assert ref["params"] == TEST_SIZE_PARAMS
    assert (ref["samples"], ref["iterations"], ref["topk"], ref["horizon"]) == (8, 2, 2, 2)
    assert ref["seconds"] > 0


def test_env_speed_program_computes_every_pixel_of_every_frame():
    # The timed program must not let XLA skip pixels: its output is the XOR of all frames,
    # which we recompute here step by step from the same keys.
    env, params = make("PushT-v0", image_size=16)
    num_envs, steps = 2, 3
    xor = np.asarray(env_speed.stepping_program(env, params, num_envs, steps)(jax.random.key(4)))

    k_reset, k_steps = jax.random.split(jax.random.key(4))
    _, state = jax.vmap(env.reset_env, (0, None))(jax.random.split(k_reset, num_envs), params)
    expected = np.zeros_like(xor)
    for k in jax.random.split(k_steps, steps):
        k_act, k_env = jax.random.split(k)
        actions = jax.random.uniform(k_act, (num_envs, 2), minval=-1.0, maxval=1.0)
        obs, state, *_ = jax.vmap(env.step_env, (0, 0, 0, None))(
            jax.random.split(k_env, num_envs), state, actions, params
        )
        assert np.asarray(obs).any()
        expected ^= np.asarray(obs)
    np.testing.assert_array_equal(xor, expected)
    assert xor.shape == (num_envs, 16, 16, 3) and xor.any()


def test_reacher_size_counts_more_changed_pixels_at_larger_frames(tmp_path):
    import subprocess

    out = tmp_path / "size.json"
    cmd = [sys.executable, "-m", "experiments.bench.reacher_size", "--sizes=32,64"]
    subprocess.run([*cmd, "--configs=4", f"--json={out}"], check=True, capture_output=True)
    sizes = json.loads(out.read_text())["sizes"]
    for joint in ("shoulder", "wrist"):
        small, large = sizes["32"][joint], sizes["64"][joint]
        assert 0 < small["changed_pixels"] < large["changed_pixels"]
    # Moving the shoulder moves the whole arm: more pixels than the forearm alone.
    assert sizes["64"]["shoulder"]["changed_pixels"] > sizes["64"]["wrist"]["changed_pixels"]


def test_train_speed_times_another_encoder_and_refuses_a_bad_one():
    from experiments.bench import train_speed

    row = train_speed.time_train_step("test", 8, 0, "", 1, encoder="R18w8")
    assert row["encoder"] == "R18w8" and row["s_per_step"] > 0
    with pytest.raises(ValueError, match="unknown ResNet variant 'R17'"):
        train_speed.time_train_step("test", 8, 0, "", 1, encoder="R17")
