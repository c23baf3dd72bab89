"""Test setup: 8 fake CPU devices so the data-parallel path is always exercised."""

import os

# Must happen before jax is imported anywhere in the test session.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# MuJoCo picks its OpenGL backend once per process: headless EGL for the host environments
# that render (tests/test_host_env.py); physics-only tests need none.
os.environ.setdefault("MUJOCO_GL", "egl")

from lewm_jax import malloc  # noqa: E402  (before JAX starts its threads, as the commands do)

malloc.tune()
