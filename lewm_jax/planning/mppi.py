"""Model-predictive path-integral (MPPI) planner, as in stable-worldmodel's ``MPPISolver``.

Shape letters: S plan samples, H horizon, A action-block width, K elites.
"""

import jax
import jax.numpy as jnp
from jax import lax

from lewm_jax.planning.sampling import check_distribution, check_positive, evaluate, sample_plans


def mppi(
    key: jax.Array,
    cost_fn,
    init_mean: jax.Array,
    init_std,
    *,
    num_samples: int = 300,
    num_iters: int = 30,
    num_elites: int | None = 30,
    temperature: float = 0.5,
):
    """Minimises ``cost_fn`` with MPPI: the mean moves to a softmax(-cost / temperature)
    weighted average of the cheapest plans; the std stays at ``init_std``.

    Defaults follow the reference solver: 300 samples, 30 iterations, the 30 cheapest plans
    weighted (``num_elites=None`` weights all samples), temperature 0.5 in cost units (the
    squared latent distance). Sample 0 of each iteration is the current mean.

    Args:
        key: PRNG key.
        cost_fn: maps plans ``(S, H, A)`` to costs ``(S,)``; jittable.
        init_mean: initial mean plan ``(H, A)``.
        init_std: sampling std, scalar or ``(H, A)``; fixed over iterations.
        num_samples: S, plans per iteration.
        num_iters: iterations.
        num_elites: K cheapest plans that are weighted, or None for all S.
        temperature: softmax temperature (> 0); lower is greedier.

    Returns:
        ``(plan, info)``: the final mean ``(H, A)``; ``info`` has per-iteration ``best_cost``
        and ``elite_cost`` (mean cost of the weighted plans), each ``(num_iters,)``.
    """
    mean, std = check_distribution(init_mean, init_std)
    num_elites = num_samples if num_elites is None else num_elites
    check_positive(num_samples=num_samples, num_iters=num_iters, num_elites=num_elites)
    if num_elites > num_samples:
        raise ValueError(f"num_elites must be <= num_samples={num_samples}, got {num_elites}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")

    def iteration(mean, key):
        plans = sample_plans(key, mean, std, num_samples)
        neg_costs, idx = lax.top_k(-evaluate(cost_fn, plans), num_elites)
        # top_k sorts, so neg_costs[0] is minus the minimum: a stable softmax shift.
        weights = jax.nn.softmax((neg_costs - neg_costs[0]) / temperature)
        new_mean = jnp.einsum("k,kha->ha", weights, plans[idx])
        return new_mean, {"best_cost": -neg_costs[0], "elite_cost": -neg_costs.mean()}

    mean, history = lax.scan(iteration, mean, jax.random.split(key, num_iters))
    return mean, history


__all__ = ["mppi"]
