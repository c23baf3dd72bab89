"""Cross-entropy-method planner (the LeWM paper's default).

Shape letters: S plan samples, H horizon, A action-block width, K elites.
"""

import jax
from jax import lax

from lewm_jax.planning.sampling import check_distribution, check_positive, evaluate, sample_plans


def cem(
    key: jax.Array,
    cost_fn,
    init_mean: jax.Array,
    init_std,
    *,
    num_samples: int = 300,
    num_iters: int = 30,
    num_elites: int = 30,
):
    """Minimises ``cost_fn`` over plans with the cross-entropy method.

    Each iteration draws ``num_samples`` plans from a diagonal Gaussian (sample 0 is the
    current mean), keeps the ``num_elites`` cheapest and refits the mean and the (unbiased,
    like ``torch.std``) standard deviation to them. Defaults are the paper's: 300 samples,
    30 iterations, 30 elites; start from mean 0, std 1 on z-scored actions.

    Args:
        key: PRNG key.
        cost_fn: maps plans ``(S, H, A)`` to costs ``(S,)``; jittable.
        init_mean: initial mean plan ``(H, A)``.
        init_std: initial std, scalar or ``(H, A)``.
        num_samples: S, plans per iteration.
        num_iters: iterations.
        num_elites: K, plans that refit the distribution (2 <= K <= S).

    Returns:
        ``(plan, info)``: the final mean ``(H, A)``; ``info`` has the final ``std (H, A)`` and
        per-iteration ``best_cost`` and ``elite_cost`` (mean elite cost), each ``(num_iters,)``.
    """
    mean, std = check_distribution(init_mean, init_std)
    check_positive(num_samples=num_samples, num_iters=num_iters)
    if not 2 <= num_elites <= num_samples:
        raise ValueError(f"num_elites must be in [2, num_samples={num_samples}], got {num_elites}")

    def iteration(carry, key):
        mean, std = carry
        plans = sample_plans(key, mean, std, num_samples)
        neg_costs, idx = lax.top_k(-evaluate(cost_fn, plans), num_elites)
        elites = plans[idx]
        new = (elites.mean(axis=0), elites.std(axis=0, ddof=1))
        return new, {"best_cost": -neg_costs[0], "elite_cost": -neg_costs.mean()}

    (mean, std), history = lax.scan(iteration, (mean, std), jax.random.split(key, num_iters))
    return mean, {"std": std, **history}


__all__ = ["cem"]
