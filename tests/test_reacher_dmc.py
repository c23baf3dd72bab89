"""Reacher replayed side by side with dm_control's reacher, the simulator behind the
reference ``swm/ReacherDMControl-v0``: same joint state, same actions, two MuJoCo steps per
env step (stable-worldmodel's action repeat), the wrist pushed into its soft limit."""

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")  # physics only here; conftest.py sets it already
suite = pytest.importorskip("dm_control.suite", reason="needs the dmc extra (dm_control)")

from experiments.bench.reacher_replay import (  # noqa: E402
    dmc_qpos,
    joint_error,
    ours_qpos,
    random_replay,
)
from lewm_jax.envs import reacher as rc  # noqa: E402


def test_replay_matches_dm_control_including_the_soft_wrist_limit():
    starts, actions = random_replay(np.random.default_rng(0), 12, 100)
    ref = dmc_qpos(suite.load("reacher", "hard"), starts, actions)
    err = joint_error(ours_qpos(starts, actions), ref)
    assert err.max() < 1e-4, err.max()  # float32 against float64: 3.1e-6 seen
    # The soft limit was exercised: the reference passes the stop and springs back.
    assert (np.abs(ref[..., 1]) - rc.WRIST_LIMIT).max() > 0.01
    # Two physics steps per env step: a wrist driven from rest moves > 0.05 rad per step.
    assert np.abs(np.diff(ref[:, :10, 1], axis=1)).mean() > 0.05
