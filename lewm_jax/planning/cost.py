"""Planning costs on predicted latents, batched over plan samples.

Shape letters: S plan samples, H horizon, A action-block width, T0 context frames, D latent.
"""

import jax
import jax.numpy as jnp

from lewm_jax.planning.rollout import rollout_cached


def _check(pred: jax.Array, z_goal: jax.Array) -> None:
    if pred.ndim != 3 or pred.shape[1] < 1:
        raise ValueError(f"pred must have shape (S, H, D) with H >= 1, got {tuple(pred.shape)}")
    if z_goal.shape != pred.shape[2:]:
        raise ValueError(f"z_goal must have shape ({pred.shape[2]},), got {tuple(z_goal.shape)}")


def terminal_cost(pred: jax.Array, z_goal: jax.Array) -> jax.Array:
    """LeWM's cost ``||z_H - z_goal||^2`` (summed over D) of the last predicted latent.

    Args:
        pred: predicted latents ``(S, H, D)``.
        z_goal: goal latent ``(D,)``.

    Returns:
        Costs ``(S,)``.
    """
    _check(pred, z_goal)
    return jnp.sum(jnp.square(pred[:, -1] - z_goal), axis=-1)


def all_steps_cost(pred: jax.Array, z_goal: jax.Array) -> jax.Array:
    """``sum_t ||z_t - z_goal||^2`` over every predicted step (rewards reaching early).

    Args:
        pred: predicted latents ``(S, H, D)``.
        z_goal: goal latent ``(D,)``.

    Returns:
        Costs ``(S,)``.
    """
    _check(pred, z_goal)
    return jnp.sum(jnp.square(pred - z_goal), axis=(1, 2))


COSTS = {"terminal": terminal_cost, "all_steps": all_steps_cost}


def check_cost(name: str) -> None:
    """One-line error unless ``name`` is a key of ``COSTS``."""
    if name not in COSTS:
        raise ValueError(f"unknown cost {name!r}; expected one of {sorted(COSTS)}")


def make_latent_cost(
    model, variables, z_init, z_goal, *, context_actions=None, cost="terminal", rollout=None
):
    """Returns ``cost_fn(plans (S, H, A)) -> (S,)`` that rolls the model out from ``z_init``.

    Args:
        model: the JEPA.
        variables: its variables (evaluation mode is used).
        z_init: current latent ``(D,)`` or context latents ``(T0, D)``, oldest first.
        z_goal: goal latent ``(D,)``.
        context_actions: ``(T0 - 1, A)`` action blocks between the context frames.
        cost: ``"terminal"`` (the paper's) or ``"all_steps"``, see ``COSTS``.
        rollout: rollout function (default the exact KV-cached ``rollout_cached``).
    """
    check_cost(cost)
    if z_init.ndim not in (1, 2) or z_init.shape[-1:] != z_goal.shape:
        raise ValueError(
            f"z_init must have shape (D,) or (T0, D) and z_goal (D,), got "
            f"{tuple(z_init.shape)} and {tuple(z_goal.shape)}"
        )
    cost_of, roll = COSTS[cost], rollout or rollout_cached

    def cost_fn(plans: jax.Array) -> jax.Array:
        s = plans.shape[0]
        z0 = jnp.broadcast_to(z_init, (s, *z_init.shape))
        ctx = None
        if context_actions is not None:
            ctx = jnp.broadcast_to(context_actions, (s, *context_actions.shape))
        pred = roll(model, variables, z0, plans, context_actions=ctx)
        return cost_of(pred, z_goal)

    return cost_fn
