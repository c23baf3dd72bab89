"""Closed-loop model-predictive control in a pure-JAX environment, all episodes at once.

The paper's protocol (LEWM_FACTS section 4): each episode starts from a dataset frame,
the goal is the frame ``offset`` env steps later in the same episode, the agent has a
budget of env steps, replans every ``receding`` action blocks (of ``frameskip`` raw
actions each) with a planner over ``horizon`` blocks, and succeeds if the environment's
criterion holds at any step. Every episode's whole loop (encode, plan, step) is one
compiled program, vmapped over episodes.
Shape letters: E episodes, H horizon, A action-block width, P physical state, D latent.
"""

import functools
import math

import jax
import jax.numpy as jnp

from lewm_jax.envs.episodes import start_success, track_success
from lewm_jax.planning.cost import make_latent_cost
from lewm_jax.planning.registry import PLANNERS, check_planner


def check_protocol(*, budget: int, horizon: int, receding: int, frameskip: int) -> None:
    """One-line errors for a planning protocol that cannot run."""
    for name, v in (("budget", budget), ("horizon", horizon), ("receding", receding)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if receding > horizon:
        raise ValueError(f"receding {receding} blocks exceeds the planning horizon {horizon}")
    if horizon * frameskip > budget:
        raise ValueError(
            f"planning horizon {horizon} blocks x frameskip {frameskip} = "
            f"{horizon * frameskip} env steps exceeds the budget of {budget} steps"
        )


def make_env_step(env, env_params, budget: int):
    """Returns ``env_step((state, success, first, t), (action, key)) -> (carry, obs)``: one
    env step that records whether, and at which step ``first``, the criterion first held;
    steps at or past ``budget`` do not count. Start the carry with :func:`start_tracking`."""

    def env_step(carry, xs):
        state, success, first, t = carry
        action, k = xs
        obs, state, _, _, info = env.step_env(k, state, action, env_params)
        success, first = track_success(success, first, info["success"] & (t < budget), t)
        return (state, success, first, t + 1), obs

    return env_step


def start_tracking(env, env_params, start_state, goal_state, budget: int):
    """``(solved_at_start, first)``: an episode may start inside the goal region, which
    counts as a success at step 0 (as in the reference); otherwise ``first = budget``."""
    at_goal = env.is_success(start_state, goal_state, env_params)
    return at_goal, start_success(at_goal, budget)


def make_replan(
    model,
    *,
    planner: str = "cem",
    planner_settings: dict | None = None,
    cost: str = "terminal",
    action_mean,
    action_std,
    horizon: int = 5,
    receding: int = 5,
    frameskip: int = 5,
):
    """Returns ``(encode, replan)``, one episode's planning step (pure; vmap it over episodes).

    ``encode(variables, frame (H, W, 3)) -> (D,)``; ``replan(key, variables, obs (H, W, 3),
    z_goal (D,)) -> (raw (receding * frameskip, A_raw), cost ())``: plans ``horizon`` blocks
    from the observation towards the goal latent and returns the first ``receding`` blocks as
    raw env actions (de-normalised, clipped to [-1, 1]) with the plan's cost. The pure-JAX
    closed loop below and the batch loop (:mod:`lewm_jax.planning.batch_loop`) share it.
    Arguments as :func:`make_closed_loop`'s.
    """
    check_planner(planner, planner_settings)
    solve = functools.partial(PLANNERS[planner], **(planner_settings or {}))
    mean = jnp.asarray(action_mean, jnp.float32)
    std = jnp.asarray(action_std, jnp.float32)
    a_raw = mean.shape[0]
    block = frameskip * a_raw

    def encode(variables, frame):
        return model.apply(variables, frame[None, None], method="encode")[0, 0]

    def replan(key, variables, obs, z_goal):
        cost_fn = make_latent_cost(model, variables, encode(variables, obs), z_goal, cost=cost)
        init = jnp.zeros((horizon, block), jnp.float32)
        plan, _ = solve(key, cost_fn, init, 1.0)  # the paper: mean 0, std 1 every plan
        raw = plan[:receding].reshape(receding * frameskip, a_raw) * std + mean
        return jnp.clip(raw, -1.0, 1.0), cost_fn(plan[None])[0]

    return encode, replan


def make_closed_loop(
    env,
    env_params,
    model,
    *,
    planner: str = "cem",
    planner_settings: dict | None = None,
    cost: str = "terminal",
    action_mean,
    action_std,
    budget: int = 50,
    horizon: int = 5,
    receding: int = 5,
    frameskip: int = 5,
):
    """Returns ``run(key, variables, start_state (E, P), goal_state (E, P), goal_frame
    (E, H, W, 3)) -> dict`` of per-episode results, jitted and vmapped over episodes.

    Results: ``success (E,)`` bool (criterion at any step), ``first_success (E,)`` env
    step of the first success (or ``budget``), ``solved_at_start (E,)`` bool (the start
    already meets the criterion: success at step 0 without planning), ``frames (E,
    budget + 1, H, W, 3)`` uint8 observations, ``final_cost (E,)`` planning cost of the
    last plan.

    Args:
        env: an environment of ``lewm_jax.envs``.
        env_params: its parameters.
        model: the JEPA (evaluation mode).
        planner: ``"cem"``, ``"gradient"``, ``"icem"`` or ``"mppi"``.
        planner_settings: keyword settings of the planner.
        cost: ``"terminal"`` or ``"all_steps"``.
        action_mean: per-dimension mean ``(A_raw,)`` of the training data's raw actions.
        action_std: their std ``(A_raw,)``; plans live in z-scored space and are
            de-normalised with these two before stepping.
        budget: env steps per episode.
        horizon: planned action blocks H.
        receding: blocks executed before replanning.
        frameskip: raw actions per block.
    """
    check_protocol(budget=budget, horizon=horizon, receding=receding, frameskip=frameskip)
    encode, plan_step = make_replan(
        model,
        planner=planner,
        planner_settings=planner_settings,
        cost=cost,
        action_mean=action_mean,
        action_std=action_std,
        horizon=horizon,
        receding=receding,
        frameskip=frameskip,
    )
    num_plans = math.ceil(budget / (receding * frameskip))
    env_step = make_env_step(env, env_params, budget)

    def episode(key, variables, start_state, goal_state, goal_frame):
        k_reset, k_loop = jax.random.split(key)
        obs, state = env.reset_to_state(k_reset, start_state, goal_state, env_params)
        z_goal = encode(variables, goal_frame)

        def replan(carry, k):
            state, obs, success, first, t = carry
            k_plan, k_env = jax.random.split(k)
            raw, plan_cost = plan_step(k_plan, variables, obs, z_goal)
            keys = jax.random.split(k_env, receding * frameskip)
            (state, success, first, t), frames = jax.lax.scan(
                env_step, (state, success, first, t), (raw, keys)
            )
            return (state, frames[-1], success, first, t), (frames, plan_cost)

        at_goal, first = start_tracking(env, env_params, start_state, goal_state, budget)
        carry = (state, obs, at_goal, first, jnp.int32(0))
        (_, _, success, first, _), (frames, costs) = jax.lax.scan(
            replan, carry, jax.random.split(k_loop, num_plans)
        )
        frames = frames.reshape(-1, *frames.shape[2:])[:budget]
        return {
            "success": success,
            "first_success": first,
            "solved_at_start": at_goal,
            "frames": jnp.concatenate([obs[None], frames], axis=0),
            "final_cost": costs[-1],
        }

    @jax.jit
    def run(key, variables, start_state, goal_state, goal_frame):
        keys = jax.random.split(key, start_state.shape[0])
        return jax.vmap(episode, in_axes=(0, None, 0, 0, 0))(
            keys, variables, start_state, goal_state, goal_frame
        )

    return run


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))
