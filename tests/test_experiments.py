"""The command-line entry point, run as real subprocesses: errors, SIGKILL and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax.run import train_and_evaluate
from lewm_jax.training.checkpoint import Checkpointer

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "experiments/configs/lewm.py:test"
# Long enough that the kill lands mid-run, with frequent synchronous checkpoints.
OVERRIDES = {"total_steps": 10, "checkpoint_every": 2, "log_every": 1, "eval_every": 100}


def _command(workdir, **overrides):
    flags = [f"--config.{k}={v}" for k, v in {**OVERRIDES, **overrides}.items()]
    return [
        sys.executable,
        "-m",
        "experiments.train",
        f"--config={CONFIG}",
        f"--workdir={workdir}",
        *flags,
    ]


def _run(args, **kw):
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, **kw)


def _final_params(workdir):
    ckpt = Checkpointer(Path(workdir) / "checkpoints", async_save=False)
    restored = ckpt.manager.restore(ckpt.latest_step())
    return ckpt.latest_step(), restored


def test_sigkilled_run_resumes_to_bit_exact_parameters(tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _command(killed), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ckpts = killed / "checkpoints"
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            found = ckpts.glob("*") if ckpts.exists() else []
            steps = [int(p.name) for p in found if p.name.isdigit()]
            if steps and max(steps) >= 4:
                break
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    step_at_kill = Checkpointer(ckpts, async_save=False).latest_step()
    assert 0 < step_at_kill < OVERRIDES["total_steps"]

    resumed = _run(_command(killed))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from step {step_at_kill}" in resumed.stdout

    config = get_config("test")
    for k, v in OVERRIDES.items():
        config[k] = v
    train_and_evaluate(config, str(tmp_path / "straight"))

    s1, a = _final_params(killed)
    s2, b = _final_params(tmp_path / "straight")
    assert s1 == s2 == OVERRIDES["total_steps"]
    for x, y in zip(jax_leaves(a), jax_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    # Same data order: the per-step losses of both runs agree exactly, no step missing.
    la, lb = _losses(killed), _losses(tmp_path / "straight")
    assert list(la) == list(range(1, OVERRIDES["total_steps"] + 1)) and la == lb


def jax_leaves(tree):
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _losses(workdir):
    rows = [json.loads(r) for r in (Path(workdir) / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def test_bad_size_and_unknown_field_give_one_line_errors(tmp_path):
    bad = _run(
        [sys.executable, "-m", "experiments.train", "--config=experiments/configs/lewm.py:huge"]
    )
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        "error: --config=experiments/configs/lewm.py:huge: unknown size 'huge'; expected one of "
        "('paper', 'cpu', 'ablation', 'test')"
    ]
    typo = _run(_command(tmp_path / "w", **{"optim.lrr": 0.1}))
    assert typo.returncode != 0 and len(typo.stderr.strip().splitlines()) == 1
    assert "optim has no field 'lrr'" in typo.stderr
    indivisible = _run(_command(tmp_path / "w", batch_size=12))
    assert indivisible.returncode != 0
    assert indivisible.stderr.strip().splitlines()[-1].startswith("error: batch_size 12")
    assert not (tmp_path / "w").exists()


def test_plan_command_evaluates_planners_and_refuses_bad_inputs(tiny_two_room_run, tmp_path):
    config, run, _ = tiny_two_room_run(tmp_path)
    plan = [sys.executable, "-m", "experiments.plan", f"--workdir={run}"]
    ok = _run([*plan, "--planners=cem,gradient,mppi"])
    assert ok.returncode == 0, ok.stderr[-2000:]
    for name in ("cem", "gradient", "mppi"):
        report = json.loads((run / f"planning_{name}.json").read_text())
        assert report["episodes"] == config.planning.num_episodes
        assert 0.0 <= report["success_rate"] <= 1.0 and (run / f"planning_{name}.gif").exists()
        assert f"| {name} | two_room |" in ok.stdout
    cases = {
        "--horizon=3": "planning horizon 3 blocks x frameskip 5 = 15 env steps exceeds the budget",
        f"--workdir={tmp_path / 'nope'}": "does not exist",
        "--config=experiments/configs/lewm.py:cpu": "belongs to a different config",
        "--planner=beam": "unknown planner 'beam'",
        "--seeds=0": "planning.num_seeds must be >= 1, got 0",
        "--pairs=val": "unknown planning.pairs 'val'; expected one of ('heldout', 'train')",
    }
    for flag, message in cases.items():
        bad = _run([*plan, flag])
        assert bad.returncode != 0
        assert bad.stderr.strip().splitlines()[-1].startswith("error: ") and message in bad.stderr


def test_probe_command_probes_a_named_checkpoint_into_its_own_report(tiny_two_room_run, tmp_path):
    _, run, _ = tiny_two_room_run(tmp_path)
    probe = [sys.executable, "-m", "experiments.probe", f"--workdir={run}", "--episodes=10"]
    ok = _run([*probe, "--step=2"])
    assert ok.returncode == 0, ok.stderr[-2000:]
    report = json.loads((run / "probe_step2.json").read_text())
    assert report["step"] == 2 and "TwoRoom-v0, step 2:" in ok.stdout
    assert not (run / "probe.json").exists()  # the latest checkpoint's report is its own
    bad = _run([*probe, "--step=7"])
    assert bad.returncode != 0 and "holds no checkpoint of step 7; has [2]" in bad.stderr


def test_command_errors_print_only_their_first_line():
    from experiments.cli import exit_with_error

    with pytest.raises(SystemExit) as done:
        exit_with_error(ValueError("Error: trees differ:\n  target_params: MISSING\n  more"))
    assert done.value.code == "error: Error: trees differ:"
    with pytest.raises(SystemExit) as done:
        exit_with_error(KeyError())
    assert done.value.code == "error: KeyError"
