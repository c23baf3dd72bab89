"""Pure-JAX pixel environments as gymnax environments.

``make(name, image_size)`` returns ``(env, env_params)`` like ``gymnax.make``. Every
environment here follows one contract, which the collector, the planners' closed-loop
evaluation and the probes rely on:

- ``env = Cls(image_size=...)``: the frame size is static; observations are uint8
  ``(image_size, image_size, 3)`` frames.
- gymnax 1.0 API: ``reset_env(key, params) -> (obs, state)``,
  ``step_env(key, state, action, params) -> (obs, state, reward, terminated, info)``;
  ``env.step`` (auto-reset) returns 6 values. Actions are float ``(A,)`` in [-1, 1].
- ``info["physical_state"]``: float32 ``(P,)`` low-dimensional state (agent position,
  block pose, joint angles), ``info["success"]``: bool, the paper's criterion against the
  goal held in the state.
- ``physical_state(state) -> (P,)``, ``goal_state(state) -> (P,)``.
- ``reset_to_state(key, physical_state, goal_state, params) -> (obs, state)``: start an
  episode from a given state (e.g. a dataset frame) with a given goal.
- ``render(state, params) -> (H, W, 3) uint8``; ``render_goal(state, params)``: the goal
  image (the scene with the agent/block/arm at the goal).
- ``is_success(physical_state, goal_state, params) -> bool``.
- ``expert_policy(key, state, params) -> (A,)`` (noisy scripted) and
  ``random_policy(key, state, params) -> (A,)`` for data collection.
"""

import importlib

_REGISTRY = {
    "TwoRoom-v0": "lewm_jax.envs.two_room:TwoRoom",
    "PushT-v0": "lewm_jax.envs.push_t:PushT",
    "Reacher-v0": "lewm_jax.envs.reacher:Reacher",
}

ENV_NAMES = tuple(_REGISTRY)


def make(name: str, image_size: int = 64, **kwargs):
    """Creates a registered environment.

    Args:
        name: one of ``ENV_NAMES``.
        image_size: side of the square uint8 frames (224 for the paper, 64 for CPU runs).
        **kwargs: further constructor arguments of the environment.

    Returns:
        ``(env, env_params)``.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown environment {name!r}; expected one of {list(_REGISTRY)}")
    if not isinstance(image_size, int) or image_size < 16:
        raise ValueError(f"image_size must be an int >= 16, got {image_size!r}")
    module, cls = _REGISTRY[name].split(":")
    env = getattr(importlib.import_module(module), cls)(image_size=image_size, **kwargs)
    return env, env.default_params
