"""Gradient planner: optax optimisation of a batch of plans through the differentiable cost.

Shape letters: S plan samples, H horizon, A action-block width.
"""

import jax
import jax.numpy as jnp
import optax
from jax import lax

from lewm_jax.planning.sampling import check_distribution, check_positive, evaluate, sample_plans

OPTIMIZERS = ("adamw", "adam", "sgd")


def _optimizer(name: str, lr: float, weight_decay: float) -> optax.GradientTransformation:
    if name == "adamw":
        return optax.adamw(lr, weight_decay=weight_decay)
    if name == "adam":
        return optax.adam(lr)
    if name == "sgd":
        return optax.sgd(lr)
    raise ValueError(f"unknown optimizer {name!r}; expected one of {OPTIMIZERS}")


def gradient_planner(
    key: jax.Array,
    cost_fn,
    init_mean: jax.Array,
    init_std,
    *,
    num_samples: int = 100,
    num_steps: int = 30,
    lr: float = 0.1,
    optimizer: str = "adamw",
    weight_decay: float = 0.01,
):
    """Minimises ``cost_fn`` by gradient descent on ``num_samples`` plans in parallel.

    Plans start at ``init_mean`` (sample 0) and ``init_mean + init_std * eps`` (the others);
    each step descends the sum of the costs, so every plan follows its own gradient. The
    paper's setting is AdamW, lr 0.1, 30 steps, 100 samples; ``weight_decay`` defaults to
    PyTorch AdamW's 0.01. The returned plan is the cheapest after the last step (its cost is
    evaluated once more; the reference ranks by the costs before the last update).

    Args:
        key: PRNG key.
        cost_fn: differentiable map from plans ``(S, H, A)`` to costs ``(S,)``; jittable.
        init_mean: initial plan ``(H, A)``.
        init_std: std of the initial perturbations, scalar or ``(H, A)``.
        num_samples: S, plans optimised in parallel.
        num_steps: optimizer steps.
        lr: learning rate.
        optimizer: ``"adamw"``, ``"adam"`` or ``"sgd"``.
        weight_decay: AdamW decoupled weight decay (ignored otherwise).

    Returns:
        ``(plan, info)``: the best plan ``(H, A)``; ``info`` has its ``cost``, the final
        ``costs (S,)`` and the per-step ``mean_cost`` and ``best_cost``, each ``(num_steps,)``.
    """
    mean, std = check_distribution(init_mean, init_std)
    check_positive(num_samples=num_samples, num_steps=num_steps)
    tx = _optimizer(optimizer, lr, weight_decay)
    plans = sample_plans(key, mean, std, num_samples)

    def total_cost(plans):
        costs = evaluate(cost_fn, plans)
        return costs.sum(), costs

    def step(carry, _):
        plans, opt_state = carry
        grads, costs = jax.grad(total_cost, has_aux=True)(plans)
        updates, opt_state = tx.update(grads, opt_state, plans)
        plans = optax.apply_updates(plans, updates)
        return (plans, opt_state), {"mean_cost": costs.mean(), "best_cost": costs.min()}

    (plans, _), history = lax.scan(step, (plans, tx.init(plans)), length=num_steps)
    costs = evaluate(cost_fn, plans)
    best = jnp.argmin(costs)
    return plans[best], {"cost": costs[best], "costs": costs, **history}


__all__ = ["OPTIMIZERS", "gradient_planner"]
