"""Planning from pixels: encode the current and goal frames once, then run a planner.

Shape letters: H horizon, A action-block width, D latent; frames are uint8 ``(side, side, 3)``.
"""

import functools

import jax
import jax.numpy as jnp

from lewm_jax.planning.cost import make_latent_cost
from lewm_jax.planning.registry import PLANNERS, check_planner


def check_frame(frame: jax.Array, side: int, name: str) -> None:
    """Raises a one-line error unless ``frame`` is a uint8 ``(side, side, 3)`` image."""
    want = (side, side, 3)
    if tuple(frame.shape) != want:
        raise ValueError(f"{name} must have shape {want}, got {tuple(frame.shape)}")
    if frame.dtype != jnp.uint8:
        raise TypeError(f"{name} must be uint8 in [0, 255], got dtype {frame.dtype}")


def make_pixel_planner(
    model, *, planner: str = "cem", cost: str = "terminal", rollout=None, **settings
):
    """Returns ``plan(key, variables, frame, goal_frame, init_mean, init_std=1.0)``.

    ``plan`` checks the frames, encodes both in one call (evaluation mode), builds the latent
    cost from a rollout and runs the planner, all under one ``jax.jit`` that is traced
    once per plan shape (``variables`` is an argument, so new checkpoints do not retrace).
    It returns the planner's ``(plan (H, A), info)``; ``info`` also holds ``z_init`` and
    ``z_goal`` ``(D,)``.

    Args:
        model: the JEPA.
        planner: ``"cem"``, ``"gradient"``, ``"icem"`` or ``"mppi"`` (see ``PLANNERS``).
        cost: ``"terminal"`` or ``"all_steps"`` (see ``lewm_jax.planning.COSTS``).
        rollout: rollout function (default ``lewm_jax.planning.rollout.rollout_cached``).
        **settings: keyword settings of the planner, e.g. ``num_samples=300``.
    """
    check_planner(planner, settings)
    solve = functools.partial(PLANNERS[planner], **settings)

    @jax.jit
    def plan_frames(key, variables, frames, init_mean, init_std):
        z = model.apply(variables, frames[:, None], method="encode")[:, 0]
        cost_fn = make_latent_cost(model, variables, z[0], z[1], cost=cost, rollout=rollout)
        best, info = solve(key, cost_fn, init_mean, init_std)
        return best, {**info, "z_init": z[0], "z_goal": z[1]}

    def plan(key, variables, frame, goal_frame, init_mean, init_std=1.0):
        """Plans from uint8 frames ``(side, side, 3)``; see :func:`make_pixel_planner`."""
        check_frame(frame, model.image_size, "frame")
        check_frame(goal_frame, model.image_size, "goal_frame")
        frames = jnp.stack([jnp.asarray(frame), jnp.asarray(goal_frame)])
        return plan_frames(key, variables, frames, init_mean, init_std)

    return plan
