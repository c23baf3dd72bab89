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

from lewm_jax.planning.closed_loop import make_env_step, start_tracking


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
    act = env.policy(policy)
    env_step = make_env_step(env, env_params, budget)

    def episode(key, start_state, goal_state):
        k_reset, k_loop = jax.random.split(key)
        obs, state = env.reset_to_state(k_reset, start_state, goal_state, env_params)
        at_goal, first = start_tracking(env, env_params, start_state, goal_state, budget)

        def step(carry, k):
            k_act, k_env = jax.random.split(k)
            return env_step(carry, (act(k_act, carry[0], env_params), k_env))

        carry = (state, at_goal, first, jnp.int32(0))
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
