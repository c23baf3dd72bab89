"""Optimizer: AdamW with linear warmup and cosine decay to 0, after global-norm clipping."""

import optax


def make_schedule(lr: float, total_steps: int, warmup_fraction: float) -> optax.Schedule:
    """Linear warmup from 0 over ``warmup_fraction`` of the steps, then cosine to 0.

    Args:
        lr: peak learning rate.
        total_steps: number of optimizer steps of the run.
        warmup_fraction: fraction of ``total_steps`` spent warming up (0.01 in LeWM).
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    warmup = max(1, int(round(warmup_fraction * total_steps)))
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=lr,
        warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1),
        end_value=0.0,
    )


def make_optimizer(optim_config, total_steps: int) -> optax.GradientTransformation:
    """Builds the optax chain from ``config.optim`` (read-only).

    Args:
        optim_config: fields ``lr``, ``weight_decay``, ``b1``, ``b2``, ``eps``,
            ``grad_clip`` (0 disables clipping) and ``warmup_fraction``. ``lr`` and
            ``weight_decay`` may be traced arrays (population training vmaps over them).
        total_steps: number of optimizer steps of the run.
    """
    # The peak scales a unit-peak schedule (warmup and cosine are linear in the peak; equal
    # up to rounding), so that the peak may be a traced array and a run computes its rate
    # the same way alone and as a member of a population.
    unit = make_schedule(1.0, total_steps, optim_config.warmup_fraction)
    lr = optim_config.lr

    def schedule(count):
        return lr * unit(count)

    chain = [optax.clip_by_global_norm(optim_config.grad_clip)] if optim_config.grad_clip else []
    chain.append(
        optax.adamw(
            schedule,
            b1=optim_config.b1,
            b2=optim_config.b2,
            eps=optim_config.eps,
            weight_decay=optim_config.weight_decay,
        )
    )
    return optax.chain(*chain)


def check_optim_config(optim_config) -> None:
    """One-line errors for ``config.optim`` values AdamW or the schedule cannot use."""
    c = optim_config
    checks = (
        ("lr", c.lr > 0, "> 0"),
        ("weight_decay", c.weight_decay >= 0, ">= 0"),
        ("b1", 0 <= c.b1 < 1, "in [0, 1)"),
        ("b2", 0 <= c.b2 < 1, "in [0, 1)"),
        ("eps", c.eps > 0, "> 0"),
        ("grad_clip", c.grad_clip >= 0, ">= 0 (0 = off)"),
        ("warmup_fraction", 0 <= c.warmup_fraction < 1, "in [0, 1)"),
    )
    for name, ok, expected in checks:
        if not ok:
            raise ValueError(f"optim.{name} must be {expected}, got {c[name]}")
