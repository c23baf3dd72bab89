"""The planners by name, and the one check of a planner name and its settings.

Every planner is a pure ``planner(key, cost_fn, init_mean, init_std, **settings) ->
(plan (H, A), info)``; ``settings`` are its keyword-only arguments.
"""

import inspect

# The fixed baseline policies, which the planning evaluation runs like planners (baselines.py).
from lewm_jax.envs.episodes import POLICIES
from lewm_jax.planning.cem import cem
from lewm_jax.planning.gradient import gradient_planner
from lewm_jax.planning.icem import icem
from lewm_jax.planning.mppi import mppi

PLANNERS = {"cem": cem, "gradient": gradient_planner, "icem": icem, "mppi": mppi}


def check_planner(name: str, settings: dict | None = None, *, policies: bool = False) -> None:
    """One-line errors for an unknown planner or a setting it does not take.

    Args:
        name: a key of ``PLANNERS`` (or, with ``policies``, of ``POLICIES``).
        settings: keyword settings meant for it (only their names are checked here; each
            planner checks the values it is called with).
        policies: also accept the baseline policies (where a planner's report is made:
            the planning evaluation), which take no settings.
    """
    if policies and name in POLICIES:  # a fixed baseline policy evaluated like a planner
        if settings:
            raise ValueError(f"policy {name!r} takes no settings, got {sorted(settings)}")
        return
    if name not in PLANNERS:
        also = f" or a baseline policy {POLICIES}" if policies else ""
        raise ValueError(f"unknown planner {name!r}; expected one of {sorted(PLANNERS)}{also}")
    params = inspect.signature(PLANNERS[name]).parameters
    allowed = sorted(k for k, p in params.items() if p.kind is p.KEYWORD_ONLY)
    unknown = sorted(set(settings or {}) - set(allowed))
    if unknown:
        raise ValueError(f"planner {name!r} has no settings {unknown}; expected some of {allowed}")
