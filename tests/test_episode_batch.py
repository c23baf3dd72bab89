"""The episode-batch interface over a pure-JAX environment (JaxBatch), and the loops
written against it (BatchLoop, collect_host_episodes) running on one.

The host kind (HostBatch) is exercised in test_host_env.py and test_host_cube.py.
"""

import jax
import numpy as np
import pytest

from lewm_jax import envs
from lewm_jax.data.collect import collect_episodes
from lewm_jax.data.episodes import goal_pairs
from lewm_jax.data.host_collect import collect_host_episodes
from lewm_jax.envs.batch import JaxBatch, make_batch
from lewm_jax.planning.baselines import make_policy_loop
from lewm_jax.planning.batch_loop import BatchLoop

SIZE = 16


@pytest.fixture(scope="module")
def two_room():
    env, params = envs.make("two_room", image_size=SIZE)
    eps = collect_episodes(env, params, env.expert_policy, jax.random.key(0), 8, 60)
    return env, params, eps


def test_jax_batch_steps_as_the_environment(two_room):
    env, params, eps = two_room
    start, goal = goal_pairs(eps, 4, offset=25, seed=0)
    batch = make_batch("TwoRoom-v0", 4, image_size=SIZE)
    assert isinstance(batch, JaxBatch) and batch.action_dim == env.action_dim
    frames, info = batch.reset(eps.state[start], eps.state[goal], seed=3)
    np.testing.assert_array_equal(frames, eps.pixels[start])
    np.testing.assert_array_equal(info["goal_frame"], eps.pixels[goal])
    np.testing.assert_array_equal(info["physical_state"], eps.state[start])
    actions = np.random.default_rng(0).uniform(-1, 1, (5, 4, env.action_dim)).astype(np.float32)
    rows = [batch.step(a) for a in actions]  # (frames, success, physical_state) per step
    batch.close()
    # The same actions stepped by hand, one episode at a time, give the same steps.
    reset_to, step = jax.jit(env.reset_to_state), jax.jit(env.step_env)
    for i in range(4):
        key = jax.random.key(0)
        _, state = reset_to(key, eps.state[start[i]], eps.state[goal[i]], params)
        for t, (frames, success, physical) in enumerate(rows):
            obs, state, _, _, info = step(key, state, actions[t, i], params)
            np.testing.assert_array_equal(frames[i], np.asarray(obs))
            assert success[i] == bool(info["success"])
            np.testing.assert_allclose(physical[i], info["physical_state"], atol=1e-6)


def test_batch_loop_on_a_jax_batch_agrees_with_the_compiled_policy_loop(two_room):
    env, params, eps = two_room
    start, goal = goal_pairs(eps, 16, offset=25, seed=0)
    s, g = eps.state[start], eps.state[goal]
    rates = {}
    for policy in ("expert", "random"):
        compiled = make_policy_loop(env, params, policy, budget=50)
        ref = jax.device_get(compiled(jax.random.key(1), None, s, g, eps.pixels[goal]))
        with make_batch("two_room", 16, image_size=SIZE) as batch:
            loop = BatchLoop(
                batch, None, planner=policy, action_mean=np.zeros(2), action_std=np.ones(2)
            )
            out = loop(jax.random.key(1), None, s, g)
        np.testing.assert_array_equal(out["solved_at_start"], ref["solved_at_start"])
        np.testing.assert_array_equal(out["frames"][:, 0], eps.pixels[start])
        assert out["frames"].shape == ref["frames"].shape
        assert np.all(out["first_success"][out["success"]] <= 50)
        assert np.all(out["first_success"][~out["success"]] == 50)
        rates[policy] = (out["success"].mean(), ref["success"].mean())
    # Different noise, the same policies: the expert solves most pairs either way, and
    # clearly more than random actions.
    assert min(rates["expert"]) >= 0.8, rates
    assert rates["expert"][0] > rates["random"][0] + 0.3, rates


def test_collect_from_a_jax_batch_stores_consistent_frames_and_states(two_room):
    env, _, _ = two_room
    with make_batch("two_room", 3, image_size=SIZE) as batch:
        eps, timing = collect_host_episodes(batch, 5, 6, seed=2)
        again, _ = collect_host_episodes(batch, 5, 6, seed=2)
    assert eps.pixels.shape == (30, SIZE, SIZE, 3) and list(eps.ep_len) == [6] * 5
    drawn = jax.vmap(env.render_physical)(eps.state)
    np.testing.assert_array_equal(eps.pixels, np.asarray(drawn))
    assert np.isnan(eps.actions[5::6]).all() and not np.isnan(eps.actions[0::6]).any()
    np.testing.assert_array_equal(eps.pixels, again.pixels)  # seeded
    assert timing["host_s"] > 0 and timing["frames_per_s"] > 0


def test_episode_batch_bad_input_is_one_line():
    with pytest.raises(ValueError, match=r"^unknown environment 'nope'; expected one of"):
        make_batch("nope", 2, image_size=SIZE)
    with pytest.raises(ValueError, match=r"^num_envs must be an int >= 1, got 0$"):
        JaxBatch("two_room", 0, image_size=SIZE)
    batch = JaxBatch("two_room", 2, image_size=SIZE)
    with pytest.raises(ValueError, match=r"^TwoRoom-v0: call reset\(\) before step\(\)$"):
        batch.step(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"^give both states and goals, or neither$"):
        batch.reset(np.zeros((2, 2)))
    batch.reset(seed=0)
    with pytest.raises(ValueError, match=r"^expected actions of shape \(2, 2\), got \(3, 2\)$"):
        batch.step(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"^unknown policy 'oracle'; expected one of"):
        batch.policy_actions("oracle", np.random.default_rng(0))


def test_a_collection_is_written_round_by_round_and_a_failed_one_touches_nothing(tmp_path):
    """What python -m data.collect_host does: rounds appended to the file as they come equal
    the whole collection; a collection that fails midway leaves the file already there as
    it was, and no temporary file."""
    from lewm_jax.data.hdf5 import HDF5Writer, load_hdf5
    from lewm_jax.data.host_collect import iter_host_episodes

    path = tmp_path / "a.h5"
    with make_batch("two_room", 3, image_size=SIZE) as batch:
        whole, _ = collect_host_episodes(batch, 5, 6, seed=2)
        with HDF5Writer(path, env="TwoRoom-v0") as writer:
            for episodes in iter_host_episodes(batch, 5, 6, seed=2):
                writer.append(episodes)
        before = path.read_bytes()
        with pytest.raises(RuntimeError, match="killed"), HDF5Writer(path) as writer:
            for episodes in iter_host_episodes(batch, 5, 6, seed=3):
                writer.append(episodes)
                raise RuntimeError("killed")
    back = load_hdf5(path)
    for a, b in (
        (whole.pixels, back.pixels),
        (whole.actions, back.actions),
        (whole.state, back.state),
        (whole.ep_len, back.ep_len),
    ):
        np.testing.assert_array_equal(a, b)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["a.h5"]
