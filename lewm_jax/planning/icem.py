"""Improved cross-entropy method (iCEM, Pinneri et al. 2020): colored noise, elite reuse,
momentum and keep-the-best on top of CEM.

Shape letters: S plan samples, H horizon, A action-block width, K elites.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from lewm_jax.planning.sampling import check_distribution, check_positive, evaluate


def colored_noise(key: jax.Array, shape: tuple[int, int, int], beta: float) -> jax.Array:
    """Gaussian noise ``(S, H, A)`` whose power spectrum along H falls as ``1 / f**beta``.

    Each ``(sample, action dimension)`` series is the inverse real FFT of complex Gaussian
    coefficients scaled by ``f**(-beta / 2)``, then divided by its exact per-step std, so
    every entry is N(0, 1) and only the correlation along H depends on ``beta``: 0 is white
    noise (independent steps), 1 pink, 2 brown (smooth, low-frequency dominated). The zero
    frequency takes the lowest nonzero one's scale, so with H <= 3 every beta is white.

    Args:
        key: PRNG key.
        shape: ``(S, H, A)``; the colored axis is H.
        beta: spectral exponent, >= 0 (a Python number: the scaling is a constant).

    Returns:
        ``(S, H, A)`` float32 noise, stationary along H with unit variance per step.
    """
    num, horizon, width = shape
    freqs = np.fft.rfftfreq(horizon)  # (F,) cycles per step, F = H // 2 + 1
    # 1/f diverges at f = 0: the mean level gets the scale of the lowest resolvable frequency.
    scale = np.maximum(freqs, 1.0 / horizon) ** (-beta / 2.0)
    # The zero and (even H) Nyquist coefficients of a real series are real; the others split
    # their unit power between the real and imaginary parts. With beta = 0 this is white noise.
    real_only = (np.arange(freqs.size) == 0) | (np.arange(freqs.size) * 2 == horizon)
    part_std = np.where(real_only, 1.0, math.sqrt(0.5)) * scale
    re, im = jax.random.normal(key, (2, num, freqs.size, width), jnp.float32)
    im = jnp.where(real_only[:, None], 0.0, im)
    coeffs = lax.complex(re, im) * part_std[:, None].astype(np.float32)
    noise = jnp.fft.irfft(coeffs, n=horizon, axis=1)
    # Var(x_t) = (sum over coefficients of their power, each complex one counted twice) / H^2,
    # the same for every t.
    power = np.where(real_only, 1.0, 2.0) * scale**2
    return noise * np.float32(horizon / math.sqrt(power.sum()))


def icem(
    key: jax.Array,
    cost_fn,
    init_mean: jax.Array,
    init_std,
    *,
    num_samples: int = 100,
    num_iters: int = 30,
    num_elites: int = 10,
    noise_beta: float = 2.0,
    elite_fraction: float = 0.3,
    momentum: float = 0.1,
):
    """Minimises ``cost_fn`` over plans with iCEM.

    CEM with four of iCEM's changes. Plans are ``mean + std * noise`` with colored noise
    (``colored_noise``) correlated along the horizon H of action blocks: the planner sees
    only ``(H, A)`` blocks, so the frameskip steps inside one block are A's dimensions, not
    a time axis. Sample 0 is the current mean. The cheapest ``elite_fraction`` of each
    iteration's K elites (rounded down) replaces that many fresh draws next iteration and is
    re-evaluated (S - kept fresh plans + kept elites, static shapes). The mean and std move
    to the elites' mean and (unbiased) std with ``momentum``: ``new = momentum * old + (1 -
    momentum) * elite statistic``. The cheapest plan ever evaluated is returned. Left out,
    as the planner is one pure call with static shapes: shifting elites between MPC steps
    and shrinking S over iterations. Defaults: iCEM's beta 2, fraction 0.3, momentum 0.1,
    and 100 samples / 10 elites (iCEM's budget, a third of CEM's 300).

    Args:
        key: PRNG key.
        cost_fn: maps plans ``(S, H, A)`` to costs ``(S,)``; jittable.
        init_mean: initial mean plan ``(H, A)``.
        init_std: initial std, scalar or ``(H, A)``.
        num_samples: S, plans evaluated per iteration (kept elites included).
        num_iters: iterations.
        num_elites: K, plans that refit the distribution (2 <= K <= S).
        noise_beta: spectral exponent of the noise along H (>= 0; 0 is white).
        elite_fraction: share of the elites kept for the next iteration, in [0, 1].
        momentum: weight of the old mean and std in each update, in [0, 1).

    Returns:
        ``(plan, info)``: the cheapest plan evaluated ``(H, A)``; ``info`` has its ``cost``,
        the final ``mean`` and ``std`` ``(H, A)``, and per-iteration ``best_cost`` and
        ``elite_cost`` (mean elite cost), each ``(num_iters,)``.
    """
    mean, std = check_distribution(init_mean, init_std)
    check_positive(num_samples=num_samples, num_iters=num_iters)
    if not 2 <= num_elites <= num_samples:
        raise ValueError(f"num_elites must be in [2, num_samples={num_samples}], got {num_elites}")
    if not 0 <= elite_fraction <= 1:
        raise ValueError(f"elite_fraction must be in [0, 1], got {elite_fraction}")
    if not noise_beta >= 0:
        raise ValueError(f"noise_beta must be >= 0, got {noise_beta}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    # The epsilon keeps 0.3 * 10 = 3 from flooring to 2 when the product lands just below.
    num_kept = math.floor(elite_fraction * num_elites + 1e-9)
    if num_kept >= num_samples:
        raise ValueError(
            f"elite_fraction={elite_fraction} keeps {num_kept} elites, leaving no fresh plans "
            f"among num_samples={num_samples}"
        )
    num_fresh = num_samples - num_kept

    def draw(key, mean, std, num):
        return mean + std * colored_noise(key, (num, *mean.shape), noise_beta)

    def iteration(carry, key):
        mean, std, kept, best_plan, best_cost = carry
        fresh = draw(key, mean, std, num_fresh).at[0].set(mean)
        plans = jnp.concatenate([fresh, kept], axis=0)
        neg_costs, idx = lax.top_k(-evaluate(cost_fn, plans), num_elites)
        elites = plans[idx]
        mean = momentum * mean + (1 - momentum) * elites.mean(axis=0)
        std = momentum * std + (1 - momentum) * elites.std(axis=0, ddof=1)
        better = -neg_costs[0] < best_cost
        best_plan = jnp.where(better, elites[0], best_plan)
        best_cost = jnp.where(better, -neg_costs[0], best_cost)
        history = {"best_cost": -neg_costs[0], "elite_cost": -neg_costs.mean()}
        return (mean, std, elites[:num_kept], best_plan, best_cost), history

    key_init, key_iters = jax.random.split(key)
    # The first iteration has no elites yet: its kept slots are more draws from the start.
    kept = draw(key_init, mean, std, num_kept)
    carry = (mean, std, kept, mean, jnp.float32(jnp.inf))
    (mean, std, _, plan, cost), history = lax.scan(
        iteration, carry, jax.random.split(key_iters, num_iters)
    )
    return plan, {"cost": cost, "mean": mean, "std": std, **history}


__all__ = ["colored_noise", "icem"]
