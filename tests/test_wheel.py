"""The wheel as a user installs it: ``lewm_jax`` only, the core alone, then one extra.

Builds the wheel from a copy of the checkout, installs it with no extras into a fresh
virtual environment (no system site-packages, so a missing dependency shows), runs SIGReg,
the collapse metrics and the README's example there, then adds the ``envs`` extra and
steps Two-Room. Dependencies come from the package index at requirements.txt's pins
(pip's cache makes later runs faster).
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import lewm_jax

ROOT = Path(__file__).resolve().parents[1]
# Build outputs and local runs of the checkout: a clean clone has none of them.
NOT_SOURCE = (".git", "build", "dist", "*.egg-info", "__pycache__", "runs", "workdir*", ".*cache")
EXTRAS = {"models", "envs", "train", "data", "host", "dmc", "cube", "torch", "all"}

CORE_SCRIPT = """
import json, sys
import lewm_jax
jax_free = "jax" not in sys.modules  # the re-exports are imported on first use
import jax, jax.numpy as jnp
from lewm_jax import effective_rank, sigreg
from lewm_jax.metrics import collapse_metrics

z = jax.random.normal(jax.random.key(0), (256, 32))  # (B, D) ~ N(0, I)
line = z[:, :1] * jnp.ones((1, 32))  # every latent on one line: collapsed
key = jax.random.key(1)
report = {
    "jax_free": jax_free,
    "sigreg": [float(sigreg(z, key=key)), float(sigreg(line, key=key))],
    "sigreg_tbd": float(sigreg(z.reshape(2, 128, 32), key=key)),
    "rank": [float(effective_rank(z)), float(effective_rank(line))],
    "metrics": {k: float(v) for k, v in collapse_metrics(z, key).items()},
    "errors": {},
}
for module in ("flax", "lewm_jax.models", "lewm_jax.envs", "lewm_jax.planning",
               "lewm_jax.data.tfds", "lewm_jax.analysis.probe"):
    try:
        __import__(module)
    except ImportError as e:
        report["errors"][module] = str(e)
print(json.dumps(report))
"""

ENVS_SCRIPT = """
import json
import jax, numpy as np
from lewm_jax.envs import make

env, params = make("TwoRoom-v0", image_size=32)
obs, state = env.reset(jax.random.key(0), params)
action = env.action_space(params).sample(jax.random.key(1))
out = jax.jit(env.step)(jax.random.key(2), state, action, params)
try:
    import lewm_jax.data.tfds
    tfds_error = None
except ImportError as e:
    tfds_error = str(e)
print(json.dumps({
    "obs": [list(obs.shape), str(obs.dtype)],
    "next_obs": [list(out[0].shape), str(out[0].dtype)],
    "step_outputs": len(out),
    "moved": float(np.abs(env.physical_state(out[1]) - env.physical_state(state)).max()),
    "tfds_error": tfds_error,
}))
"""


def _run(cmd, cwd, timeout=900) -> str:
    """stdout of ``cmd``, run outside the checkout with no PYTHONPATH; fails with its stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built by ``pip wheel`` from a copy of the checkout without build outputs."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist", src], tmp)
    (built,) = (tmp / "dist").glob("lewm_jax-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """The python of a fresh venv holding the wheel and its core dependencies only."""
    tmp = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", tmp / "venv"], tmp)
    python = tmp / "venv" / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", "-c", ROOT / "requirements.txt", wheel], tmp)
    yield python
    shutil.rmtree(tmp / "venv")  # about 1 GB once the envs extra is in


@pytest.fixture(scope="module")
def core_report(venv) -> dict:
    """What CORE_SCRIPT finds in the core-only venv (before any extra is added to it)."""
    return json.loads(_run([venv, "-c", CORE_SCRIPT], venv.parents[2]))


@pytest.fixture(scope="module")
def envs_report(venv, wheel, core_report) -> dict:
    """What ENVS_SCRIPT finds once the envs extra is installed into the same venv."""
    del core_report  # taken first, while the venv holds the core only
    req = ROOT / "requirements.txt"
    _run([venv, "-m", "pip", "install", "-q", "-c", req, f"{wheel}[envs]"], venv.parents[2])
    return json.loads(_run([venv, "-c", ENVS_SCRIPT], venv.parents[2]))


def test_the_wheel_holds_lewm_jax_only(wheel):
    files = zipfile.ZipFile(wheel)
    names = files.namelist()
    top = sorted({n.split("/")[0] for n in names})
    assert top == ["lewm_jax", f"lewm_jax-{lewm_jax.__version__}.dist-info"]
    assert {"lewm_jax/_deps.py", "lewm_jax/data/tfds.py", "lewm_jax/envs/two_room.py"} <= set(names)
    # No installed module may import the checkout's commands or dataset builder.
    for name in names:
        if name.endswith(".py"):
            for node in ast.walk(ast.parse(files.read(name))):
                if isinstance(node, ast.Import):
                    roots = [a.name.split(".")[0] for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    roots = [node.module.split(".")[0]]
                else:
                    continue
                assert not {"experiments", "data"} & set(roots), f"{name} imports {roots}"


def test_the_wheel_metadata_names_the_version_core_and_extras(wheel):
    meta = zipfile.ZipFile(wheel).read(f"lewm_jax-{lewm_jax.__version__}.dist-info/METADATA")
    fields = re.findall(r"^([\w-]+): (.*)$", meta.decode(), re.MULTILINE)
    assert ("Version", lewm_jax.__version__) in fields
    core = [v for k, v in fields if k == "Requires-Dist" and "extra ==" not in v]
    assert sorted(re.match(r"[\w-]+", r).group() for r in core) == ["chex", "jax", "numpy"]
    assert {v for k, v in fields if k == "Provides-Extra"} == EXTRAS


def test_the_core_install_runs_sigreg_and_the_collapse_metrics(core_report):
    r = core_report
    assert r["jax_free"]
    gaussian, collapsed = r["sigreg"]
    assert 0.0 < gaussian < 3.0 and collapsed > 10 * gaussian
    assert 0.0 < r["sigreg_tbd"] < 3.0
    assert r["rank"][0] > 25 and r["rank"][1] < 1.01
    assert set(r["metrics"]) >= {"effective_rank", "mean_std", "mean_cosine", "sigreg"}
    assert r["metrics"]["mean_std"] == pytest.approx(1.0, abs=0.1)


def test_the_core_install_names_the_extra_of_each_missing_dependency(core_report):
    assert core_report["errors"] == {
        "flax": "No module named 'flax'",
        "lewm_jax.models": "lewm_jax.models needs flax: pip install 'lewm_jax[models]'",
        "lewm_jax.envs": "lewm_jax.envs needs gymnax: pip install 'lewm_jax[envs]'",
        "lewm_jax.planning": "lewm_jax.planning needs optax: pip install 'lewm_jax[models]'",
        "lewm_jax.data.tfds": (
            "lewm_jax.data.tfds needs tensorflow_datasets: pip install 'lewm_jax[data]'"
        ),
        "lewm_jax.analysis.probe": (
            "lewm_jax.analysis.probe needs optax: pip install 'lewm_jax[train]'"
        ),
    }


def test_the_readme_example_runs_on_the_core_install(venv):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Using the losses in your code", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    out = _run([venv, "-c", code + "print(float(loss), float(rank))"], venv.parents[2])
    loss, rank = map(float, out.split())
    assert 0.0 < loss < 3.0 and 25 < rank <= 32


def test_the_envs_extra_steps_two_room(envs_report):
    r = envs_report
    assert r["obs"] == r["next_obs"] == [[32, 32, 3], "uint8"]
    assert r["step_outputs"] == 6  # gymnax 1.0: obs, state, reward, terminated, truncated, info
    assert r["moved"] > 0
    assert r["tfds_error"] == (
        "lewm_jax.data.tfds needs tensorflow_datasets: pip install 'lewm_jax[data]'"
    )
