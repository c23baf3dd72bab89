"""Planners over action plans and latent planning costs.

Every planner is a pure ``planner(key, cost_fn, init_mean, init_std, **settings) ->
(plan (H, A), info)`` that jits once for a fixed ``cost_fn`` closure.
"""

from lewm_jax._deps import require

require("lewm_jax.planning", "models", "optax")

from lewm_jax.planning.cem import cem  # noqa: E402
from lewm_jax.planning.cost import (  # noqa: E402
    COSTS,
    all_steps_cost,
    make_latent_cost,
    terminal_cost,
)
from lewm_jax.planning.gradient import gradient_planner  # noqa: E402
from lewm_jax.planning.icem import icem  # noqa: E402
from lewm_jax.planning.mppi import mppi  # noqa: E402
from lewm_jax.planning.pixels import make_pixel_planner  # noqa: E402
from lewm_jax.planning.registry import PLANNERS, check_planner  # noqa: E402

__all__ = [
    "COSTS",
    "PLANNERS",
    "all_steps_cost",
    "cem",
    "check_planner",
    "gradient_planner",
    "icem",
    "make_latent_cost",
    "make_pixel_planner",
    "mppi",
    "terminal_cost",
]
