"""Test setup: 8 fake CPU devices so the data-parallel path is always exercised, one XLA
compilation cache for the session, and tiny trained runs that tests share (each test gets
its own copy). Under pytest-xdist (setup.cfg) every worker process is its own session: its
own cache and its own tiny runs."""

import os
import shutil
import tempfile

import pytest

# Must happen before jax is imported anywhere in the test session. The tests' programs are
# tiny and most of their time is compilation, so the CPU backend compiles without LLVM's
# optimisation passes (the same HLO, run a little slower; BENCHMARKS.md, "Test suite").
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# MuJoCo picks its OpenGL backend once per process: headless EGL for the host environments
# that render (tests/test_host_env.py); physics-only tests need none.
os.environ.setdefault("MUJOCO_GL", "egl")
# Tests compile the same small programs many times over (each trained tiny run its train
# step, each evaluation its planner), in this process and in the commands they start: a
# program compiled once is read back from this cache instead of compiled again. The folder
# is new for every session (a run of the suite starts cold) and removed at its end.
_XLA_CACHE = tempfile.mkdtemp(prefix="lewm_jax_test_xla_cache_")
os.environ["JAX_COMPILATION_CACHE_DIR"] = _XLA_CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.1"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

from lewm_jax import malloc  # noqa: E402  (before JAX starts its threads, as the commands do)

malloc.tune()


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_XLA_CACHE, ignore_errors=True)


def _shared_run(tmp_path_factory, name: str, arg: str, **overrides):
    """Trains ``get_config(arg)`` with ``overrides`` once; returns ``copy(dest)``, which
    gives each test its own ``(config, workdir, summary)``: a deep copy of the config and
    a copy of the run directory under ``dest``, so that no test sees another's writes."""
    import copy

    from experiments.configs.lewm import get_config
    from lewm_jax.run import train_and_evaluate

    config = get_config(arg)
    for k, v in overrides.items():
        config[k] = v
    workdir = tmp_path_factory.mktemp(name) / "run"
    summary = train_and_evaluate(config, str(workdir))

    def copy_run(dest):
        dest = dest / "run"
        shutil.copytree(workdir, dest)
        return copy.deepcopy(config), dest, copy.deepcopy(summary)

    return copy_run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The ``test`` config trained once (moving dot, 6 steps): ``tiny_run(dest)``."""
    return _shared_run(tmp_path_factory, "tiny_run", "test")


@pytest.fixture(scope="session")
def tiny_two_room_run(tmp_path_factory):
    """``test,env=two_room`` trained 2 steps and planned once: ``tiny_two_room_run(dest)``."""
    return _shared_run(tmp_path_factory, "tiny_two_room", "test,env=two_room", total_steps=2)
