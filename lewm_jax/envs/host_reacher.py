"""dm_control's reacher as a host environment (``lewm/ReacherDMC-v0``): the simulator that
stable-worldmodel's ``swm/ReacherDMControl-v0`` (qpos_match) steps, behind the contract of
:mod:`lewm_jax.envs.host`.

The same task as the pure-JAX :class:`lewm_jax.envs.reacher.Reacher` (which matches its
dynamics to a few 1e-6 rad): one env step is ``ACTION_REPEAT`` MuJoCo steps, the physical
state ``[shoulder, wrist, shoulder_vel, wrist_vel]``, success every joint within
``success_tol`` of the goal configuration. Frames are MuJoCo's render of camera 0 with the
target hidden, at ``render_size`` (224 px, as the official data) and resized bilinearly to
``image_size`` as that data is resized for training (``render_size=image_size`` renders
directly: faster, slightly different edges). Needs an OpenGL backend: ``MUJOCO_GL=egl`` (set unless
given) or ``osmesa``.
"""

import os
import time

import numpy as np

from lewm_jax.envs.host_env import HostEnv
from lewm_jax.envs.reacher import (
    ACTION_REPEAT,
    WRIST_LIMIT,
    EnvParams,
)
from lewm_jax.frames import resize_frames

RENDER_SIZE = 224  # dm_control renders here; frames are resized to image_size


def _wrap(x):
    return (np.asarray(x) + np.pi) % (2 * np.pi) - np.pi


class DMCReacher(HostEnv):
    """dm_control ``reacher`` with uint8 frame observations and a goal configuration."""

    env_id = "lewm/ReacherDMC-v0"
    probe_targets = ("shoulder", "wrist")  # the leading columns, as the JAX Reacher's
    angle_targets = ("shoulder", "wrist")

    def __init__(
        self, image_size: int = 64, render_size: int = RENDER_SIZE, render_mode: str = "rgb_array"
    ):
        os.environ.setdefault("MUJOCO_GL", "egl")
        from dm_control import suite

        super().__init__(image_size, action_dim=2)
        self.render_size, self.render_mode = render_size, render_mode
        self._dmc = suite.load("reacher", "hard")
        model = self._dmc.physics.model
        model.geom_rgba[model.name2id("target", "geom"), 3] = 0.0  # as stable-worldmodel
        self.params = EnvParams()
        self._goal = np.zeros(2)

    def set_physical_state(self, state) -> None:
        """Joint angles, and velocities when given (else zero)."""
        state = np.asarray(state, np.float64)
        with self._dmc.physics.reset_context():
            self._dmc.physics.data.qpos[:] = state[:2]
            self._dmc.physics.data.qvel[:] = state[2:4] if len(state) >= 4 else 0.0

    def frame(self) -> np.ndarray:
        frame = self._dmc.physics.render(self.render_size, self.render_size, camera_id=0)
        return resize_frames(frame, self.image_size)  # as file datasets are resized

    def physical_state(self) -> np.ndarray:
        """(4,) float32 joint angles (shoulder wrapped) and velocities."""
        d = self._dmc.physics.data
        return np.array([_wrap(d.qpos[0]), d.qpos[1], *d.qvel], np.float32)

    def _error(self) -> np.ndarray:
        """(2,) wrapped joint-angle error to the goal."""
        return _wrap(self.physical_state()[:2] - self._goal)

    def goal_error(self) -> float:
        return float(np.linalg.norm(self._error()))

    def is_success(self) -> bool:
        return bool(np.all(np.abs(self._error()) < self.params.success_tol))

    def _configuration(self) -> np.ndarray:
        rng = self.np_random
        return np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-WRIST_LIMIT, WRIST_LIMIT)])

    def start(self, options: dict) -> np.ndarray:
        """At ``options["state"]`` with goal ``options["goal"]`` (else random ones)."""
        self._dmc.reset()
        start = options.get("state", self._configuration())
        goal = np.asarray(options.get("goal", self._configuration()), np.float64)
        self._goal = goal[:2].copy()
        self.set_physical_state(goal[:2])
        goal_frame = self.frame()
        self.set_physical_state(start)
        return goal_frame

    def simulate(self, action: np.ndarray) -> tuple[np.ndarray, float, float]:
        """``ACTION_REPEAT`` MuJoCo steps, ending after the first one that reaches the goal
        (as stable-worldmodel's wrapper stops when its qpos_match task terminates)."""
        t0 = time.perf_counter()
        for _ in range(ACTION_REPEAT):
            self._dmc.step(action)
            if self.is_success():
                break
        t1 = time.perf_counter()
        frame = self.frame()
        return frame, t1 - t0, time.perf_counter() - t1

    def expert_policy(self) -> np.ndarray:
        """The JAX Reacher's noisy PD expert towards the goal (one waypoint: the goal)."""
        p = self.params
        q = self.physical_state()
        err = np.array([_wrap(self._goal[0] - q[0]), self._goal[1] - q[1]])
        pd = p.expert_kp * err - p.expert_kd * q[2:]
        noise = p.expert_noise * self.np_random.normal(size=2)
        return np.clip(pd + noise, -1.0, 1.0).astype(np.float32)
