"""The base class of host environments: the contract of :mod:`lewm_jax.envs.host` in code,
with the method names of :class:`~lewm_jax.envs.base.PixelEnv`.

A subclass wraps one simulator and implements five methods; the gymnasium ``reset`` and
``step`` with the contract's info keys are derived here, so every host environment reports
the same things the same way:

- ``physical_state()``: the (P,) float32 state that ``set_physical_state`` accepts;
- ``set_physical_state(state)``: puts the simulator in that state;
- ``start(options)``: begins an episode (``options`` holds ``"state"`` and ``"goal"``, or
  nothing for a random start and goal) and returns the goal frame;
- ``simulate(action)``: one env step with the clipped action; returns
  ``(frame, sim_s, render_s)``;
- ``goal_error()``: distance to the goal (the reward is its negative), and ``is_success()``;
- optionally ``expert_policy()``: the scripted (oracle) action, the expert baseline.

Class attributes as :class:`~lewm_jax.envs.base.PixelEnv`'s: ``env_id`` (the registered
gymnasium id) and, for probes, ``probe_targets`` (names of physical-state columns: the
leading ones, or those at ``probe_columns``) and ``angle_targets`` (which are angles).

Shape letters: S frame side, P physical state, A action dim.
"""

from typing import ClassVar

import gymnasium
import numpy as np


class HostEnv(gymnasium.Env):
    """A host environment: uint8 ``(S, S, 3)`` frames, ``[-1, 1]^A`` actions, a goal state.

    Args:
        image_size: S.
        action_dim: A.
    """

    metadata = {"render_modes": ["rgb_array"]}
    render_mode = "rgb_array"
    env_id: ClassVar[str] = ""  # the registered gymnasium id, e.g. "lewm/CubeOGB-v0"
    probe_targets: ClassVar[tuple[str, ...]] = ()  # names of physical-state columns
    angle_targets: ClassVar[tuple[str, ...]] = ()  # those of them that are angles
    probe_columns: ClassVar[tuple[int, ...]] = ()  # their columns, if not the leading

    def __init__(self, image_size: int, action_dim: int):
        self.image_size = image_size
        self.observation_space = gymnasium.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)

    # The simulator's part (see the module docstring).
    def physical_state(self) -> np.ndarray:
        raise NotImplementedError

    def set_physical_state(self, state) -> None:
        raise NotImplementedError

    def frame(self) -> np.ndarray:
        """The current ``(S, S, 3)`` uint8 frame."""
        raise NotImplementedError

    def start(self, options: dict) -> np.ndarray:
        raise NotImplementedError

    def simulate(self, action: np.ndarray) -> tuple[np.ndarray, float, float]:
        raise NotImplementedError

    def goal_error(self) -> float:
        raise NotImplementedError

    def is_success(self) -> bool:
        raise NotImplementedError

    # Derived: the gymnasium API with the contract's info keys.
    def reset(self, *, seed=None, options=None):
        """Starts at ``options["state"]`` with goal ``options["goal"]`` (else random ones).

        Returns:
            ``(frame, info)``: info holds ``success`` (the start already meets the goal),
            ``physical_state`` and ``goal_frame``.
        """
        super().reset(seed=seed)
        goal_frame = self.start(options or {})
        info = {
            "success": bool(self.is_success()),
            "physical_state": self.physical_state(),
            "goal_frame": goal_frame,
        }
        return self.frame(), info

    def step(self, action):
        """One env step. Never terminates or truncates: the caller keeps the budget.

        Returns:
            gymnasium's 5-tuple; info holds ``success``, ``physical_state`` and the
            seconds ``sim_s`` and ``render_s`` the step spent simulating and rendering.
        """
        action = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        frame, sim_s, render_s = self.simulate(action)
        info = {
            "success": bool(self.is_success()),
            "physical_state": self.physical_state(),
            "sim_s": sim_s,
            "render_s": render_s,
        }
        return frame, -float(self.goal_error()), False, False, info

    def render(self):
        """The current frame (gymnasium's rgb_array render)."""
        return self.frame()
