"""Optional dependencies: the one-line error, and every check agrees with setup.cfg's extras."""

import ast
import configparser
import importlib.metadata
import re
from pathlib import Path

import pytest

from lewm_jax._deps import require

ROOT = Path(__file__).resolve().parents[1]


def _normalise(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _extras() -> dict[str, set[str]]:
    """setup.cfg's extras as sets of distribution names, self-references expanded."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    raw = {
        extra: [re.match(r"[\w.\-]+(\[[\w,]+\])?", line).group() for line in value.split()]
        for extra, value in cfg["options.extras_require"].items()
    }

    def expand(extra):
        dists = set()
        for req in raw[extra]:
            if req.startswith("lewm_jax["):
                for inner in req[len("lewm_jax[") : -1].split(","):
                    dists |= expand(inner)
            else:
                dists.add(_normalise(req))
        return dists

    return {extra: expand(extra) for extra in raw}


def _require_calls() -> list[tuple[str, str, tuple[str, ...]]]:
    """``(package, extra, modules)`` of every ``require(...)`` call in lewm_jax."""
    calls = []
    for path in sorted((ROOT / "lewm_jax").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "require":
                package, extra, *modules = (ast.literal_eval(a) for a in node.args)
                calls.append((package, extra, tuple(modules)))
    return calls


def test_a_missing_module_raises_one_line_naming_the_extra():
    with pytest.raises(ImportError) as err:
        require("lewm_jax.envs", "envs", "json", "no_such_module_xyz")
    assert str(err.value) == "lewm_jax.envs needs no_such_module_xyz: pip install 'lewm_jax[envs]'"
    assert err.value.name == "no_such_module_xyz"
    require("lewm_jax.envs", "envs", "json")  # present: no error


def test_every_check_names_an_extra_that_installs_its_modules():
    extras = _extras()
    assert {"models", "envs", "train", "data", "torch", "all"} <= set(extras)
    others = [dists for extra, dists in extras.items() if extra not in ("all", "torch")]
    assert extras["all"] == set().union(*others)  # all = every extra but torch
    providers = importlib.metadata.packages_distributions()
    calls = _require_calls()
    assert {c[0] for c in calls} >= {"lewm_jax.models", "lewm_jax.envs", "lewm_jax.data.tfds"}
    for package, extra, modules in calls:
        assert extra in extras, f"{package}: no extra {extra!r} in setup.cfg"
        for module in modules:
            dists = {_normalise(d) for d in providers.get(module, [])}
            assert dists & extras[extra], f"{package}: [{extra}] does not install {module}"
