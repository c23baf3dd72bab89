"""Runs the PyTorch side of a side-by-side benchmark in the reference interpreter.

The reference (torch, transformers, stable-worldmodel) lives in its own interpreter, named by
``--reference_python`` or the ``LEWM_TORCH_PYTHON`` environment variable (install:
BENCHMARKS.md); the ``experiments/bench/torch_*.py`` scripts run there and hand their rows
back as JSON.
"""

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from lewm_jax import convert

ROOT = Path(__file__).resolve().parents[2]
ENV_VAR = "LEWM_TORCH_PYTHON"
# Our env id -> the original's (stable-worldmodel) id of the same environment.
ORIGINAL_ENVS = {"TwoRoom-v0": "swm/TwoRoom-v1", "PushT-v0": "swm/PushT-v1"}


def default_python() -> str:
    """The reference interpreter from the environment ('' when unset)."""
    return os.environ.get(ENV_VAR, "")


def write_official_config(config, path: Path) -> Path:
    """Writes the reference-format config.json of ``config``'s model and data sizes."""
    d = config.data
    official = convert.official_config_from_model(
        config.model, image_size=d.image_size, action_input_dim=d.frameskip * d.action_dim
    )
    Path(path).write_text(json.dumps(official, indent=2))
    return Path(path)


def run(python: str, module: str, args: list, timeout: float = 3600, *, npz: bool = False):
    """Runs ``python -m module *args --out FILE`` from the repository root; returns FILE's
    JSON (or, with ``npz``, its arrays as a dict).

    Raises:
        FileNotFoundError: ``python`` does not exist.
        RuntimeError: one line with the module and the last line it printed to stderr.
    """
    if not Path(python).exists():
        raise FileNotFoundError(f"reference python {python!r} does not exist (see BENCHMARKS.md)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / ("out.npz" if npz else "rows.json")
        cmd = [python, "-m", module, *map(str, args), "--out", str(out)]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not out.exists():
            lines = [x for x in done.stderr.splitlines() if x.strip()] or ["(no output)"]
            raise RuntimeError(f"{module} failed (exit {done.returncode}): {lines[-1][:300]}")
        if npz:
            with np.load(out) as f:
                return dict(f)
        return json.loads(out.read_text())
