"""Real multi-host training: 2 processes x 4 CPU devices (gloo) against 1 process x 8.

The processes are started by ``experiments/launch.sh local 2``, the launcher docs/multihost.md
documents, with explicit ``--coordinator_address/--num_processes/--process_id``.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax.run import train_and_evaluate
from lewm_jax.training import run_dir

ROOT = Path(__file__).resolve().parents[1]
# Adam's eps well above the rounding noise: parameters whose gradient is exactly zero
# (a LayerNorm bias before BatchNorm, attention key biases) otherwise move by +-lr on
# float noise, and reduction order differs between gloo and in-process all-reduce.
OVERRIDES = {
    "total_steps": 12,
    "checkpoint_every": 2,
    "log_every": 2,
    "eval_every": 6,
    "planning.enabled": False,
    "optim.eps": 1e-3,
}


def _config():
    c = get_config("test").unlock()
    for k, v in OVERRIDES.items():
        section, _, field = k.rpartition(".")
        (c[section] if section else c)[field] = v
    return c.lock()


def _command(workdir) -> list[str]:
    flags = [f"--config.{k}={v}" for k, v in OVERRIDES.items()]
    return [
        str(ROOT / "experiments/launch.sh"),
        "local",
        "2",
        "--config",
        "experiments/configs/lewm.py:test",
        f"--workdir={workdir}",
        *flags,
    ]


def _env():
    # 4 devices per process, compiled with this session's other XLA flags (conftest.py),
    # as the one-process run they are compared with.
    count = "--xla_force_host_platform_device_count"
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(count)]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return env | {
        "XLA_FLAGS": " ".join([*flags, f"{count}=4"]),
        "JAX_PLATFORMS": "cpu",
        "PYTHON": sys.executable,
    }


def _launch(workdir) -> str:
    out = subprocess.run(
        _command(workdir), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


def _variables(workdir):
    return jax.tree.map(np.asarray, run_dir.load_run(workdir).variables)


def _clips_read(log: str) -> dict[int, tuple[int, str]]:
    found = re.findall(r"process (\d) of 2 read (\d+) training clips \(rows (\d+-\d+)", log)
    return {int(p): (int(n), rows) for p, n, rows in found}


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("two") / "run"
    return workdir, _launch(workdir)


def test_two_processes_train_as_one_process_with_eight_devices(two_process_run, tmp_path):
    workdir, log = two_process_run
    # Each process read only its own rows of every global batch of 16.
    assert _clips_read(log) == {0: (12 * 8, "0-7"), 1: (12 * 8, "8-15")}
    one = tmp_path / "one"
    train_and_evaluate(_config(), str(one))  # this process: 8 devices
    a, b = _variables(workdir), _variables(one)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        # Params and BatchNorm statistics, each leaf to 1e-3 of its own scale (reached:
        # max |diff| 2e-5 after 12 steps; float rounding of two all-reduce orders, compounded).
        assert np.abs(x - y).max() <= 1e-3 * np.abs(y).max() + 1e-6
    # Loss, SIGReg and the collapse metrics are global-batch statistics in both runs.
    two_rows, one_rows = run_dir.read_metrics(workdir), run_dir.read_metrics(one)
    assert [r["step"] for r in two_rows] == [r["step"] for r in one_rows]
    for r2, r1 in zip(two_rows, one_rows, strict=True):
        for k in r1:
            # mean_cosine averages cosines near 0: its rounding is absolute (seen: 2.9e-6).
            atol = 1e-5 if k == "mean_cosine" else 0.0
            np.testing.assert_allclose(
                r2[k], r1[k], rtol=2e-5, atol=atol, err_msg=f"{k} at {r1['step']}"
            )

    # One run directory, written once (by process 0).
    def files(d):  # event file names carry host, time and pid
        return sorted("events" if p.name.startswith("events.") else p.name for p in d.iterdir())

    assert files(workdir) == files(one)


def test_both_processes_killed_and_restarted_resume_to_the_same_parameters(
    two_process_run, tmp_path
):
    workdir = tmp_path / "killed"
    proc = subprocess.Popen(
        _command(workdir),
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while not (workdir / "checkpoints" / "2").is_dir() and time.time() < deadline:
        assert proc.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # both processes and the launcher, mid-run
    proc.wait()
    killed_at = run_dir.checkpointer(workdir, async_save=False).latest_step()
    assert killed_at is not None and killed_at < 12
    log = _launch(workdir)
    assert f"resumed from step {killed_at}" in log
    done, _ = two_process_run
    a, b = _variables(workdir), _variables(done)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)  # bit-exact: same topology, same clips
    assert run_dir.read_metrics(workdir) == run_dir.read_metrics(done)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _train_cli(tmp_path, *flags):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.train",
            "--config",
            "experiments/configs/lewm.py:test",
            f"--workdir={tmp_path / 'run'}",
            *flags,
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_unreachable_coordinator_fails_in_bounded_time_with_one_line(tmp_path):
    t0 = time.time()
    out = _train_cli(
        tmp_path,
        f"--coordinator_address=localhost:{_free_port()}",
        "--num_processes=2",
        "--process_id=1",
        "--initialization_timeout=3",
    )
    assert out.returncode == 1 and time.time() - t0 < 60
    assert re.fullmatch(
        r"error: coordinator localhost:\d+ did not answer within 3 s; .*\n", out.stderr
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--num_processes=3", "--process_id=0", "--coordinator_address=localhost:1"],
            "error: batch_size 16 is not divisible by --num_processes 3",
        ),
        (
            ["--num_processes=2", "--process_id=2", "--coordinator_address=localhost:1"],
            "error: --process_id 2 must be in [0, 2)",
        ),
        (
            ["--num_processes=2"],
            "error: --coordinator_address, --num_processes and --process_id go together",
        ),
        (
            ["--num_processes=2", "--process_id=0", "--coordinator_address=nohost"],
            "error: --coordinator_address 'nohost' must be host:port",
        ),
    ],
)
def test_bad_cluster_flags_fail_in_one_line(tmp_path, flags, message):
    out = _train_cli(tmp_path, *flags)
    assert out.returncode == 1 and out.stderr.startswith(message), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
