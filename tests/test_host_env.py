"""Host environments (lewm_jax.envs.host) on a real simulator: dm_control's reacher stepped
and rendered by MuJoCo (headless, MUJOCO_GL=egl from conftest.py) as a gymnasium vector env,
the closed loop that plans for it, and the one-line errors of the adapter."""

import gymnasium
import jax
import numpy as np
import pytest

pytest.importorskip("dm_control.suite", reason="needs the dmc extra (dm_control)")

from experiments.bench.reacher_replay import joint_error, ours_qpos  # noqa: E402
from lewm_jax.envs.host import HostBatch, make_host_env  # noqa: E402
from lewm_jax.planning.batch_loop import BatchLoop  # noqa: E402

REACHER = "lewm/ReacherDMC-v0"


def test_reacher_batch_starts_where_told_and_moves_as_the_jax_reacher():
    rng = np.random.default_rng(0)
    starts = np.c_[rng.uniform(-3, 3, (3, 2)), np.zeros((3, 2))].astype(np.float32)
    goals = starts.copy()
    goals[1, 0] += 0.5  # episodes 0 and 2 start at their goal
    actions = rng.uniform(-1, 1, (3, 8, 2)).astype(np.float32)
    with HostBatch(REACHER, 3, image_size=32, render_size=32) as batch:
        frames, info = batch.reset(starts, goals)
        assert frames.shape == (3, 32, 32, 3) and frames.dtype == np.uint8
        np.testing.assert_allclose(info["physical_state"], starts, atol=1e-6)
        assert info["success"].tolist() == [True, False, True]
        # The goal frame is the goal state as MuJoCo draws it: the start's frame when equal.
        np.testing.assert_array_equal(info["goal_frame"][0], frames[0])
        assert np.abs(info["goal_frame"][1].astype(int) - frames[1]).sum() > 0
        qpos = []
        for t in range(actions.shape[1]):
            frames, success, physical = batch.step(actions[:, t])
            qpos.append(physical[:, :2])
        assert batch.timing["render_s"] > 0 and batch.timing["sim_s"] > 0
    # Our pure-JAX Reacher matches dm_control to a few 1e-6 rad (test_reacher_dmc.py), both
    # ending an env step early where its first physics step reaches the goal.
    err = joint_error(ours_qpos(starts[:, :2], actions, goals[:, :2]), np.stack(qpos, axis=1))
    assert err.max() < 1e-4


@pytest.mark.slow  # the default run keeps one simulator test per host env (the first)
def test_the_expert_reaches_goals_that_random_actions_miss():
    rng = np.random.default_rng(1)
    starts = np.c_[rng.uniform(-1, 1, (4, 2)), np.zeros((4, 2))]
    goals = starts + np.array([0.6, -0.6, 0.0, 0.0])
    with HostBatch(REACHER, 4, image_size=16, render_size=16) as batch:
        rates = {}
        for policy in ("expert", "random"):
            loop = BatchLoop(batch, None, planner=policy, action_mean=np.zeros(2),
                            action_std=np.ones(2), budget=30, horizon=1, receding=1,
                            frameskip=1, keep_frames=False)  # fmt: skip
            out = loop(jax.random.key(0), None, starts, goals)
            assert not out["solved_at_start"].any() and np.isnan(out["final_cost"]).all()
            rates[policy] = out["success"].mean()
    assert rates["expert"] == 1.0 and rates["random"] < 1.0


class _NoGoal(gymnasium.Env):
    """Pixel frames but no goal: the contract's reset info is missing."""

    observation_space = gymnasium.spaces.Box(0, 255, (16, 16, 3), np.uint8)
    action_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def __init__(self, image_size=16):
        del image_size

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros((16, 16, 3), np.uint8), {}

    def step(self, action):
        return np.zeros((16, 16, 3), np.uint8), 0.0, False, False, {}


gymnasium.register("lewm_test/NoGoal-v0", entry_point=_NoGoal)


def test_bad_host_environments_fail_in_one_line():
    cases = [
        ("lewm/Nope-v0", 16, "host environment 'lewm/Nope-v0' is not installed"),
        ("CartPole-v1", 16, "host environment 'CartPole-v1' observes Box("),
        (REACHER, 16, None),
    ]
    for env_id, size, message in cases:
        if message is None:
            make_host_env(env_id, size).close()
            continue
        with pytest.raises(ValueError) as err:
            make_host_env(env_id, size)
        assert str(err.value).startswith(message) and "\n" not in str(err.value)
    with HostBatch("lewm_test/NoGoal-v0", 2, image_size=16) as batch:
        with pytest.raises(ValueError, match=r"^host environment '\S+' has no goal: its reset"):
            batch.reset(np.zeros((2, 4)), np.zeros((2, 4)))
    with HostBatch(REACHER, 1, image_size=16, render_size=16) as batch:
        with pytest.raises(ValueError) as err:
            BatchLoop(batch, None, planner="cem", action_mean=np.zeros(3), action_std=np.ones(3))
        assert str(err.value) == (
            "host environment 'lewm/ReacherDMC-v0' takes 2-D actions but the model was "
            "trained on 3-D actions"
        )


@pytest.mark.slow  # a run planned in a host simulator: test_host_cube.py, in the default run
def test_a_jax_reacher_run_is_evaluated_in_dm_control_from_the_same_pairs(tmp_path):
    from experiments.configs.lewm import get_config
    from lewm_jax.data.episodes import goal_pairs
    from lewm_jax.planning.evaluate import evaluate_planning
    from lewm_jax.planning.pairs import pair_episodes
    from lewm_jax.run import train_and_evaluate

    config = get_config("test,env=reacher")
    config.total_steps, config.planning.enabled = 1, False
    train_and_evaluate(config, str(tmp_path))
    plan = config.planning.copy_and_resolve_references()
    plan.update(num_episodes=2, gif_episodes=1)
    report = evaluate_planning(str(tmp_path), plan, progress=False, env=REACHER)
    assert report["protocol"]["env"] == REACHER
    assert (tmp_path / "planning_cem_reacherdmc-v0.json").exists()
    # The pairs of the pure-JAX evaluation: held-out Reacher-v0 episodes of seed 42.
    eps = pair_episodes(config, plan, 42)
    start, _ = goal_pairs(eps, 2, offset=plan.offset, seed=42)
    assert [r["start"] for r in report["episodes_detail"]] == start.tolist()
    timing = report["host_timing"]
    assert all(timing[k] > 0 for k in ("plan_s", "encode_s", "sim_s", "render_s", "host_s"))
    assert timing["plan_s"] + timing["encode_s"] + timing["host_s"] <= timing["wall_s"] + 1e-3
    with pytest.raises(ValueError, match="^env 'Reacher-v0' is not a host environment id"):
        evaluate_planning(str(tmp_path), plan, progress=False, env="Reacher-v0")
