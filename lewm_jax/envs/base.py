"""The contract every pixel environment of :mod:`lewm_jax.envs` implements.

The collector, the planners' closed-loop evaluation, the probes and the surprise tests
rely on it, so a new environment subclasses :class:`PixelEnv` and writes only what is
its own:

- ``EnvState`` (a gymnax state with a ``goal`` field, the goal physical state) and
  ``EnvParams`` (a subclass of :class:`EnvParams`; shape-determining constants such as
  the frame size stay constructor arguments, not traced params);
- ``reset_env(key, params)``, ``reset_to_state(key, physical_state, goal_state, params)``
  and ``step_env(key, state, action, params)``, which ends with :meth:`PixelEnv.transition`;
- ``physical_state(state) -> (P,)`` float32: the low-dimensional state (agent position,
  block pose, joint angles), the layout datasets store and probes read;
- ``render_physical(physical_state) -> (H, W, 3)`` uint8 (plus ``colour=`` when the class
  sets ``recolourable``);
- ``is_success(physical_state, goal_state, params) -> bool``, the paper's criterion;
- ``expert_policy(key, state, params) -> (A,)``, a noisy scripted policy for data;
- class attributes ``env_id`` (``"TwoRoom-v0"``), ``action_dim`` (A), ``probe_targets``
  (names of the leading physical-state columns, or of ``probe_columns``), ``angle_targets``
  (which of them are angles, probed as sin/cos) and ``recolourable``.

The base class derives the rest: observations are the rendered frame, ``render`` and
``render_goal`` draw the physical and the goal state, episodes terminate on success when
``params.terminate_on_success`` and truncate at ``params.max_steps_in_episode`` (gymnax's
``step`` auto-resets after either), actions are float ``(A,)`` in [-1, 1] and
``random_policy`` draws them uniformly.
"""

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from lewm_jax import frames
from lewm_jax.envs.episodes import check_policy


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Parameters every environment has; subclasses add their own and may change defaults."""

    max_steps_in_episode: int = 100
    terminate_on_success: bool = True


class PixelEnv(environment.Environment):
    """A gymnax environment with uint8 ``(image_size, image_size, 3)`` frame observations."""

    env_id: ClassVar[str] = ""  # the registered id, e.g. "TwoRoom-v0"
    action_dim: ClassVar[int] = 2  # A
    probe_targets: ClassVar[tuple[str, ...]] = ()  # names of the leading physical columns
    angle_targets: ClassVar[tuple[str, ...]] = ()  # those of them that are angles
    probe_columns: ClassVar[tuple[int, ...]] = ()  # their state columns, if not the leading
    recolourable: ClassVar[bool] = False  # render_physical takes a ``colour`` RGB triple

    def __init__(self, image_size: int = 64):
        super().__init__()
        self.image_size = frames.check_size(image_size)
        self.obs_shape = (image_size, image_size, 3)

    # Subclasses implement these (besides reset_env, reset_to_state and step_env).

    def physical_state(self, state) -> jax.Array:
        """(P,) float32 physical state of ``state``."""
        raise NotImplementedError

    def render_physical(self, physical_state: jax.Array) -> jax.Array:
        """Renders a (P,) physical state to a uint8 (H, W, 3) frame."""
        raise NotImplementedError

    def is_success(self, physical_state, goal_state, params) -> jax.Array:
        """Bool (): whether ``physical_state (P,)`` meets the goal ``goal_state (P,)``."""
        raise NotImplementedError

    def expert_policy(self, key: jax.Array, state, params) -> jax.Array:
        """Noisy scripted (A,) action in [-1, 1]."""
        raise NotImplementedError

    # Derived from the above.

    def goal_state(self, state) -> jax.Array:
        """(P,) float32 goal state."""
        return state.goal.astype(jnp.float32)

    def render(self, state, params=None, colour=None) -> jax.Array:
        """Current frame, uint8 (H, W, 3).

        Args:
            state: the env state.
            params: unused (the frame depends on the state only).
            colour: optional (3,) RGB agent colour in [0, 255]; recolourable envs only.
        """
        if colour is None:
            return self.render_physical(self.physical_state(state))
        if not self.recolourable:
            raise ValueError(f"{self.name} cannot recolour its agent; expected e.g. TwoRoom-v0")
        return self.render_physical(self.physical_state(state), colour)

    def render_goal(self, state, params=None) -> jax.Array:
        """Goal frame, uint8 (H, W, 3): the scene drawn at the goal state."""
        return self.render_physical(self.goal_state(state))

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        """Observation hook: the rendered frame."""
        return self.render(state, params)

    def is_terminated(self, state, params) -> jax.Array:
        """Success, when ``params.terminate_on_success`` (truncation is gymnax's own)."""
        success = self.is_success(self.physical_state(state), self.goal_state(state), params)
        return success & params.terminate_on_success

    def transition(self, state, reward: jax.Array, params, physical=None):
        """The common tail of ``step_env`` once ``state`` holds the new step.

        Args:
            state: the state after the step.
            reward: () float32.
            params: the env params.
            physical: ``physical_state(state)`` when the caller has it already.

        Returns:
            ``(obs, state, reward, terminated, info)`` with ``info["physical_state"]`` (P,)
            and ``info["success"]`` ().
        """
        physical = self.physical_state(state) if physical is None else physical
        success = self.is_success(physical, self.goal_state(state), params)
        info = {"physical_state": physical, "success": success}
        terminated = success & params.terminate_on_success
        return self.get_obs(state), state, reward, terminated, info

    def random_policy(self, key: jax.Array, state, params) -> jax.Array:
        """Uniform (A,) action in [-1, 1]^A."""
        return jax.random.uniform(key, (self.action_dim,), minval=-1.0, maxval=1.0)

    def policy(self, name: str):
        """The baseline policy ``name`` (:data:`~lewm_jax.envs.episodes.POLICIES`):
        ``policy(key, state, params) -> (A,)``."""
        check_policy(name)
        return self.random_policy if name == "random" else self.expert_policy

    @property
    def name(self) -> str:
        return self.env_id or type(self).__name__

    @property
    def num_actions(self) -> int:
        return self.action_dim

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self.action_dim,), jnp.float32)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(0, 255, self.obs_shape, jnp.uint8)
