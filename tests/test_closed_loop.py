"""Closed-loop MPC: protocol checks, one compiled vmapped loop, success bookkeeping."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax.data.episodes import Episodes, goal_pairs
from lewm_jax.envs import make
from lewm_jax.models import build_model
from lewm_jax.planning import closed_loop


def _model():
    config = get_config("test")
    model = build_model(config.model, image_size=32)
    pixels = jnp.zeros((1, 4, 32, 32, 3), jnp.uint8)
    variables = model.init(jax.random.key(0), pixels, jnp.zeros((1, 4, 10)))
    return model, variables


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"horizon": 11}, "exceeds the budget of 50 steps"),
        ({"receding": 6}, "exceeds the planning horizon 5"),
        ({"budget": 0}, "budget must be >= 1"),
    ],
)
def test_bad_protocols_are_refused(kwargs, match):
    args = {"budget": 50, "horizon": 5, "receding": 5, "frameskip": 5} | kwargs
    with pytest.raises(ValueError, match=match):
        closed_loop.check_protocol(**args)


def test_eval_episode_sampling_keeps_goals_in_the_same_episode():
    eps = Episodes(
        np.zeros((70, 4, 4, 3), np.uint8), np.zeros((70, 2)), np.array([0, 30]), np.array([30, 40])
    )
    start, goal = goal_pairs(eps, 10, offset=25, seed=0)
    assert np.all(goal - start == 25)
    assert np.all((goal < 30) | (start >= 30))  # never crosses the episode boundary
    np.testing.assert_array_equal(start, goal_pairs(eps, 10, offset=25, seed=0)[0])
    with pytest.raises(ValueError, match="only 20 frames have a goal 25 steps later"):
        goal_pairs(eps, 21, offset=25, seed=0)


def test_closed_loop_runs_all_episodes_in_one_program_and_checks_success():
    env, params = make("PushT-v0", image_size=32)
    model, variables = _model()
    run = closed_loop.make_closed_loop(
        env,
        params,
        model,
        planner="cem",
        planner_settings={"num_samples": 8, "num_iters": 2, "num_elites": 2},
        action_mean=np.zeros(2),
        action_std=np.ones(2),
        budget=10,
        horizon=2,
        receding=1,
        frameskip=5,
    )
    keys = jax.random.split(jax.random.key(0), 3)
    start_state = jnp.stack([env.physical_state(env.reset(k, params)[1]) for k in keys[:2]])
    goal_state = start_state.at[0].set(start_state[0])  # episode 0: goal = start (solved)
    goal_state = goal_state.at[1, 2:4].add(150.0)  # episode 1: block far away (unsolved)
    goal_frame = jnp.zeros((2, 32, 32, 3), jnp.uint8)
    out = run(keys[2], variables, start_state, goal_state, goal_frame)
    assert out["frames"].shape == (2, 11, 32, 32, 3) and out["frames"].dtype == jnp.uint8
    assert bool(out["success"][0]) and int(out["first_success"][0]) == 0
    assert not bool(out["success"][1]) and int(out["first_success"][1]) == 10
    # Solved at start exactly when the start already meets the goal criterion.
    at_goal = jax.vmap(lambda s, g: env.is_success(s, g, params))(start_state, goal_state)
    np.testing.assert_array_equal(out["solved_at_start"], at_goal)
    np.testing.assert_array_equal(out["solved_at_start"], [True, False])
    first = jax.vmap(lambda s, g: env.reset_to_state(keys[2], s, g, params)[0])
    np.testing.assert_array_equal(out["frames"][:, 0], first(start_state, goal_state))


def test_wilson_interval():
    lo, hi = closed_loop.wilson_interval(43, 50)
    assert 0.73 < lo < 0.75 and 0.92 < hi < 0.94
    assert closed_loop.wilson_interval(0, 50)[0] == 0.0
