"""Fixed policies under the planners' protocol: the random and expert baselines.

``make_policy_loop`` has the interface of :func:`closed_loop.make_closed_loop`'s ``run``, so
:func:`lewm_jax.planning.evaluate.evaluate_planning` evaluates a policy on exactly the
start/goal pairs, seeds and budget of a planner and reports it the same way. The random
policy samples uniform actions; the expert is the environment's scripted expert steering
towards the goal state (it sees the true state, which no planner does: an upper reference).
Shape letters: E episodes, P physical state, H/W pixels.
"""

import jax
import jax.numpy as jnp

POLICIES = ("random", "expert")


def make_policy_loop(env, env_params, policy: str, *, budget: int):
    """Returns ``run(key, variables, start_state (E, P), goal_state (E, P), goal_frame
    (E, H, W, 3)) -> dict`` for a fixed policy, jitted and vmapped over episodes.

    Results as the closed loop's: ``success``, ``first_success`` (or ``budget``),
    ``solved_at_start``, ``frames (E, budget + 1, H, W, 3)`` and ``final_cost`` (NaN: no plan).
    ``variables`` and ``goal_frame`` are ignored (a policy reads the true state).

    Args:
        env: an environment of ``lewm_jax.envs``.
        env_params: its parameters.
        policy: ``"random"`` or ``"expert"``.
        budget: env steps per episode.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {POLICIES}")
    act = env.random_policy if policy == "random" else env.expert_policy

    def episode(key, start_state, goal_state):
        k_reset, k_loop = jax.random.split(key)
        obs, state = env.reset_to_state(k_reset, start_state, goal_state, env_params)
        at_goal = env.is_success(start_state, goal_state, env_params)

        def step(carry, k):
            state, success, first, t = carry
            k_act, k_env = jax.random.split(k)
            action = act(k_act, state, env_params)
            obs, state, _, _, info = env.step_env(k_env, state, action, env_params)
            hit = info["success"]
            first = jnp.where(hit & ~success, t + 1, first)
            return (state, success | hit, first, t + 1), obs

        carry = (state, at_goal, jnp.where(at_goal, 0, budget).astype(jnp.int32), jnp.int32(0))
        (_, success, first, _), frames = jax.lax.scan(step, carry, jax.random.split(k_loop, budget))
        return {
            "success": success,
            "first_success": first,
            "solved_at_start": at_goal,
            "frames": jnp.concatenate([obs[None], frames], axis=0),
            "final_cost": jnp.float32(jnp.nan),
        }

    @jax.jit
    def run(key, variables, start_state, goal_state, goal_frame):
        del variables, goal_frame
        keys = jax.random.split(key, start_state.shape[0])
        return jax.vmap(episode)(keys, start_state, goal_state)

    return run
