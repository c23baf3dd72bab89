"""OGBench Cube as a host environment, on the real simulator: MuJoCo steps and renders
(headless, MUJOCO_GL=egl from conftest.py) OGBench's CubeEnv; data collection with its
oracle into the official HDF5 layout; training on that file and planning in the simulator."""

import h5py
import jax
import numpy as np
import pytest

pytest.importorskip("ogbench", reason="needs the cube extra (ogbench)")

from lewm_jax.data.hdf5 import HDF5Store, write_hdf5  # noqa: E402
from lewm_jax.data.host_collect import collect_host_episodes  # noqa: E402
from lewm_jax.envs.host import HostBatch  # noqa: E402
from lewm_jax.planning.batch_loop import BatchLoop  # noqa: E402

CUBE = "lewm/CubeOGB-v0"
CUBE_XYZ = slice(14, 17)  # the cube's free joint in qpos (after the arm and the gripper)


@pytest.fixture(scope="module")
def collected():
    with HostBatch(CUBE, 2, image_size=16, fast_render=True) as batch:
        episodes, timing = collect_host_episodes(batch, 4, 10, seed=0)
    return episodes, timing


def test_collection_writes_the_official_layout_and_reads_back(collected, tmp_path):
    episodes, timing = collected
    assert episodes.pixels.shape == (40, 16, 16, 3) and episodes.pixels.dtype == np.uint8
    assert episodes.actions.shape == (40, 5) and episodes.state.shape == (40, 41)
    assert episodes.ep_len.tolist() == [10] * 4 and episodes.ep_offset.tolist() == [0, 10, 20, 30]
    assert np.isnan(episodes.actions[9::10]).all() and np.isfinite(episodes.actions[:9]).all()
    assert np.abs(episodes.actions[:9]).max() <= 1.0
    assert timing["render_s"] > 0 and timing["frames_per_s"] > 0
    # The four episodes (two rounds of two simulators) start from different random scenes.
    assert len({tuple(episodes.state[o, CUBE_XYZ].round(4)) for o in (0, 10, 20, 30)}) == 4
    path = tmp_path / "cube.h5"
    write_hdf5(path, episodes, compression="blosc")
    back = HDF5Store(path).to_episodes()
    np.testing.assert_array_equal(back.pixels, episodes.pixels)
    np.testing.assert_array_equal(back.state, episodes.state)
    assert back.actions.shape == (40, 5)


def test_reads_the_official_cube_single_expert_layout(tmp_path):
    """stable-worldmodel's cube_single_expert.h5: 224 px frames, 5-D actions, proprio and
    state columns, ``episode_idx`` instead of ``ep_idx`` (here at 32 px)."""
    rng = np.random.default_rng(0)
    ep_len = np.array([7, 5])
    n = int(ep_len.sum())
    path = tmp_path / "cube_single_expert.h5"
    with h5py.File(path, "w") as f:
        f["pixels"] = rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
        f["action"] = rng.uniform(-1, 1, (n, 5)).astype(np.float32)
        f["proprio"] = rng.normal(size=(n, 14)).astype(np.float32)
        f["state"] = rng.normal(size=(n, 41)).astype(np.float32)
        f["ep_len"], f["ep_offset"] = ep_len, np.array([0, 7])
        f["episode_idx"] = np.repeat([0, 1], ep_len)
        f["step_idx"] = np.concatenate([np.arange(7), np.arange(5)])
    store = HDF5Store(path, image_size=16)
    assert store.action_dim == 5 and store.frame_shape == (16, 16, 3)
    eps = store.to_episodes()
    assert eps.pixels.shape == (12, 16, 16, 3) and eps.actions.shape == (12, 5)
    assert eps.state.shape == (12, 41)


@pytest.mark.slow  # the default run keeps the collection and the trained run planned here
def test_resets_to_a_stored_state_and_the_oracle_places_the_cube(collected):
    episodes, _ = collected
    starts = episodes.state[[0, 10]].copy()
    goals = starts.copy()
    # Episode 0: the cube 15 cm across the table from where it starts; episode 1: at goal.
    goals[0, CUBE_XYZ][:2] = [0.425, -0.15 if starts[0, CUBE_XYZ][1] > 0 else 0.15]
    with HostBatch(CUBE, 2, image_size=16, fast_render=True) as batch:
        frames, info = batch.reset(starts, goals, seed=0)
        np.testing.assert_allclose(info["physical_state"], starts, atol=1e-5)
        assert info["success"].tolist() == [False, True]
        np.testing.assert_array_equal(info["goal_frame"][1], frames[1])
        rates = {}
        for policy, budget in (("expert", 70), ("random", 20)):
            loop = BatchLoop(batch, None, planner=policy, action_mean=np.zeros(5),
                            action_std=np.ones(5), budget=budget, horizon=1, receding=1,
                            frameskip=1, keep_frames=False)  # fmt: skip
            out = loop(jax.random.key(0), None, starts[:1].repeat(2, 0), goals[:1].repeat(2, 0))
            assert not out["solved_at_start"].any()
            rates[policy] = out["success"].mean()
        assert batch.timing["sim_s"] > 0 and batch.timing["render_s"] > 0
    assert rates["expert"] > 0 and rates["random"] == 0


def test_a_bad_cube_state_fails_in_one_line():
    with HostBatch(CUBE, 1, image_size=16, fast_render=True) as batch:
        with pytest.raises(ValueError) as err:
            batch.reset(np.zeros((1, 4)), np.zeros((1, 4)))
    assert str(err.value) == ("OGBench cube state has shape (4,); expected (41,) = qpos then qvel")


def test_a_cube_run_trains_on_its_file_and_plans_in_the_simulator(collected, tmp_path):
    from experiments.configs.cube import get_config
    from lewm_jax.planning.evaluate import evaluate_planning
    from lewm_jax.run import train_and_evaluate

    episodes, _ = collected
    path = tmp_path / "cube.h5"
    write_hdf5(path, episodes)
    config = get_config("test")
    config.data.path, config.data.image_size = str(path), 16
    config.total_steps, config.planning.enabled = 1, False
    config.data.frameskip, config.data.train_fraction = 1, 0.5  # 28 clips of 4 frames
    config.batch_size = 8
    config.planning.update(offset=2, budget=2, horizon=1, receding=1, dataset_episodes=3)
    workdir = tmp_path / "run"
    train_and_evaluate(config, str(workdir))
    plan = config.planning.copy_and_resolve_references()
    plan.update(num_episodes=2, gif_episodes=1)
    report = evaluate_planning(str(workdir), plan, progress=False)
    assert report["protocol"]["env"] == CUBE and report["protocol"]["pairs"] == "train"
    assert len(report["episodes_detail"]) == 2
    timing = report["host_timing"]
    assert all(timing[k] > 0 for k in ("plan_s", "sim_s", "render_s", "host_s"))


def test_probes_read_the_cube_and_gripper_of_fresh_oracle_episodes():
    from experiments.configs.cube import get_config
    from lewm_jax.analysis.probe import physical_targets
    from lewm_jax.data.datasets import probe_episodes
    from lewm_jax.envs.host_cube import OGBenchCube

    env = OGBenchCube(image_size=16, fast_render=True)
    model = env._env._model
    adr = {
        n: int(model.joint(n).qposadr[0])
        for n in ("object_joint_0", "ur5e/robotiq/right_driver_joint")
    }
    env.close()
    cube = adr["object_joint_0"]
    assert OGBenchCube.probe_columns == (
        cube,
        cube + 1,
        cube + 2,
        adr["ur5e/robotiq/right_driver_joint"],
    )
    config = get_config("test")
    config.data.image_size, config.data.episode_len = 16, 5
    name, episodes = probe_episodes(config.data, jax.random.key(0), 3)
    assert name == CUBE and episodes.state.shape == (15, 41) and episodes.ep_len.tolist() == [5] * 3
    y, names = physical_targets(name, episodes.state)
    assert names == ["cube_x", "cube_y", "cube_z", "gripper"]
    np.testing.assert_array_equal(y[:, :3], episodes.state[:, CUBE_XYZ])
    assert len({tuple(episodes.state[o, CUBE_XYZ].round(4)) for o in (0, 5, 10)}) == 3


def test_probe_episodes_are_kept_in_the_cache_and_read_back_equal(tmp_path):
    from experiments.configs.cube import get_config
    from lewm_jax.data.datasets import probe_episodes

    config = get_config("test")
    config.data.image_size, config.data.episode_len = 16, 4
    _, first = probe_episodes(config.data, jax.random.key(0), 2, cache_dir=tmp_path)
    (kept,) = tmp_path.glob("probe_episodes_*.h5")
    name, again = probe_episodes(config.data, jax.random.key(0), 2, cache_dir=tmp_path)
    assert name == CUBE and list(tmp_path.iterdir()) == [kept]
    for field in ("pixels", "actions", "ep_len", "ep_offset", "state"):
        np.testing.assert_array_equal(getattr(again, field), getattr(first, field))
    probe_episodes(config.data, jax.random.key(1), 2, cache_dir=tmp_path)  # other inputs
    assert len(list(tmp_path.glob("probe_episodes_*.h5"))) == 2
