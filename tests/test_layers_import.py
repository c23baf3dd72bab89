"""The layering of lewm_jax: every module imports only its own package or lower layers.

Layers, lowest first (docs/layout.md): the leaves, losses, metrics, models and envs (side
by side, neither importing the other), data, training, planning, the run entry point, and
analysis and the converter on top. An import inside a function counts like any other.
"""

import ast
import shutil
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lewm_jax"
LAYERS = {
    "__init__": 0,
    "_deps": 0,
    "frames": 0,
    "malloc": 0,
    "losses": 1,
    "metrics": 2,
    "models": 3,
    "envs": 3,
    "data": 4,
    "training": 5,
    "planning": 6,
    "run": 7,
    "analysis": 8,
    "convert": 8,
}


def _unit(parts: list[str]) -> str:
    """The layer unit of module ``lewm_jax.<parts>``: its sub-package or top-level module."""
    return parts[0].removesuffix(".py")


def upward_imports(package: Path = PACKAGE) -> list[str]:
    """``"importer -> imported"`` for every import of a module of a higher layer."""
    bad = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).parts
        unit = _unit(list(rel))
        assert unit in LAYERS, f"{path} is in no layer; add it to LAYERS and docs/layout.md"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] != "lewm_jax" or len(parts) < 2 or parts[1] not in LAYERS:
                    continue
                other = parts[1]
                if other != unit and LAYERS[other] >= LAYERS[unit]:
                    bad.append(f"lewm_jax/{'/'.join(rel)} -> {name}")
    return sorted(set(bad))


def test_no_module_imports_a_higher_or_sibling_layer():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path):
    # The same walk over a copy with one planted upward import reports exactly it.
    copy = tmp_path / "lewm_jax"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    step = copy / "training" / "step.py"
    step.write_text(step.read_text() + "\nfrom lewm_jax.planning import cem\n")
    assert upward_imports(copy) == ["lewm_jax/training/step.py -> lewm_jax.planning"]
