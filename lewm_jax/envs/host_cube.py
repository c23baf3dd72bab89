"""OGBench's single-cube pick-and-place as a host environment (``lewm/CubeOGB-v0``): the
simulator behind stable-worldmodel's ``swm/OGBCube-v0`` and the paper's Cube results,
behind the contract of :mod:`lewm_jax.envs.host`.

A UR5e arm with a Robotiq gripper and one cube in MuJoCo (OGBench's ``CubeEnv``,
``env_type="single"``, pixel observations from its ``front_pixels`` camera, target marker
hidden). Action: 5-D in ``[-1, 1]`` (end-effector xyz, yaw, gripper), one env step =
OGBench's 0.05 s control step. The physical state is MuJoCo's ``qpos`` then ``qvel`` (21 +
20 = 41 values, the reference's ``state``); success is the cube within 4 cm of the goal
state's cube position (OGBench's criterion, its target moved there).

A reset without a goal is OGBench's data-collection reset (random arm, cube and target);
:meth:`OGBenchCube.expert_policy` is OGBench's Markov oracle with the reference
collection's Gaussian noise, which after such a reset picks a new random target whenever it
has placed the cube (so one episode shows several pick-and-places, as the official data).
``fast_render`` trades MuJoCo's 4096 px shadow map and 4x multisampling for a 1024 px map
and none: 2.3-2.5 times the frames/s with a software OpenGL (llvmpipe) renderer, frames
within about 1/255 on average at 64 px (BENCHMARKS.md, "OGBench Cube").
Needs ``ogbench`` (``pip install 'lewm_jax[cube]'``) and an OpenGL backend: ``MUJOCO_GL=egl``
(set unless given) or ``osmesa``.
"""

import os
import time

import numpy as np

from lewm_jax.envs.host_env import HostEnv
from lewm_jax.frames import resize_frames

SUCCESS_DISTANCE = 0.04  # m, cube to target (OGBench's threshold)
ACTION_NOISE = 0.1  # the reference collection's noise bound: per episode xi ~ U(0, 0.1)
NOISE_SCALE = np.array([1.0, 1.0, 1.0, 3.0, 10.0])  # per action dim, times xi (the reference's)


class OGBenchCube(HostEnv):
    """OGBench ``CubeEnv`` (single cube) with uint8 frame observations and a goal state."""

    env_id = "lewm/CubeOGB-v0"
    # The cube's position (the object the task moves) and the gripper's opening; the arm's
    # pose is in joint angles, probed through what it does to the cube and gripper.
    probe_targets = ("cube_x", "cube_y", "cube_z", "gripper")
    probe_columns = (14, 15, 16, 6)  # qpos of object_joint_0 and the right driver joint

    def __init__(
        self,
        image_size: int = 64,
        render_size: int | None = None,
        fast_render: bool = False,
        render_mode: str = "rgb_array",
    ):
        os.environ.setdefault("MUJOCO_GL", "egl")
        from ogbench.manipspace.envs.cube_env import CubeEnv
        from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle

        super().__init__(image_size, action_dim=5)
        self.render_mode = render_mode
        self.render_size = render_size or image_size
        self._env = CubeEnv(
            env_type="single",
            ob_type="pixels",
            mode="data_collection",
            visualize_info=False,  # no target marker or success colour in the frames
            terminate_at_goal=False,
            width=self.render_size,
            height=self.render_size,
        )
        self._env.reset(seed=0)  # builds the MuJoCo model
        if fast_render:
            quality = self._env._model.vis.quality
            quality.shadowsize, quality.offsamples = 1024, 0
            self._env._renderer.close()  # the first reset rendered: rebuild at this quality
            self._env._initialize_renderer()
        self._render_s = 0.0
        render = self._env.get_pixel_observation

        def timed_render():  # OGBench renders inside step(): time it there
            t0 = time.perf_counter()
            frame = render()
            self._render_s += time.perf_counter() - t0
            return frame

        self._env.get_pixel_observation = timed_render
        model = self._env._model
        self.nq, self.nv = model.nq, model.nv
        self._target = self._env._cube_target_mocap_ids[0]
        self._cube_adr = int(model.joint("object_joint_0").qposadr[0])
        self._oracle = CubeMarkovOracle(env=self._env, min_norm=0.4)
        self._info, self._xi, self._collecting = {}, 0.0, True

    def frame(self) -> np.ndarray:
        return resize_frames(self._env.render(), self.image_size)

    def physical_state(self) -> np.ndarray:
        """(41,) float32: qpos then qvel."""
        d = self._env._data
        return np.concatenate([d.qpos, d.qvel]).astype(np.float32)

    def set_physical_state(self, state) -> None:
        state = np.asarray(state, np.float64)
        if state.shape != (self.nq + self.nv,):
            raise ValueError(
                f"OGBench cube state has shape {state.shape}; expected ({self.nq + self.nv},) "
                "= qpos then qvel"
            )
        import mujoco

        self._env.set_state(state[: self.nq], state[self.nq :])
        mujoco.mj_rnePostConstraint(self._env._model, self._env._data)  # gripper contact

    def goal_error(self) -> float:
        """Metres from the cube to its goal position."""
        d = self._env._data
        return float(np.linalg.norm(d.joint("object_joint_0").qpos[:3] - d.mocap_pos[self._target]))

    def is_success(self) -> bool:
        return self.goal_error() <= SUCCESS_DISTANCE

    def start(self, options: dict) -> np.ndarray:
        """At ``options["state"]`` with the cube's goal from ``options["goal"]`` (both
        (41,)), else OGBench's random data-collection reset."""
        self._env.reset(seed=int(self.np_random.integers(2**31)))
        self._render_s = 0.0
        self._collecting = "goal" not in options
        if self._collecting:  # the goal frame: the cube at OGBench's random target
            state = self.physical_state()
            goal, adr = state.copy(), self._cube_adr
            goal[adr : adr + 3] = self._env._data.mocap_pos[self._target]
        else:
            state, goal = options.get("state", self.physical_state()), options["goal"]
        self.set_physical_state(goal)
        goal_frame = self.frame()
        cube = self._env._data.joint("object_joint_0").qpos[:3].copy()
        self.set_physical_state(state)
        self._env._data.mocap_pos[self._target] = cube  # OGBench's success and the oracle
        self._env.pre_step()
        self._env.post_step()
        self._info = self._env.compute_ob_info()
        self._oracle.reset(None, self._info)
        self._xi = float(self.np_random.uniform(0.0, ACTION_NOISE))
        return goal_frame

    def simulate(self, action: np.ndarray) -> tuple[np.ndarray, float, float]:
        """One OGBench control step (0.05 s)."""
        self._render_s = 0.0
        t0 = time.perf_counter()
        frame, _, _, _, self._info = self._env.step(action)
        wall = time.perf_counter() - t0
        return resize_frames(frame, self.image_size), wall - self._render_s, self._render_s

    def expert_policy(self) -> np.ndarray:
        """OGBench's cube Markov oracle plus the reference collection's Gaussian noise;
        after a random reset it moves on to a new random target once the cube is placed."""
        if self._collecting and self._oracle.done:
            _, self._info = self._env.set_new_target()
            self._oracle.reset(None, self._info)
        action = np.asarray(self._oracle.select_action(None, self._info), np.float64)
        action = action + self.np_random.normal(0.0, self._xi * NOISE_SCALE)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def close(self):
        """Frees MuJoCo's renderer while its OpenGL context is still alive (OGBench's env
        leaves it to the garbage collector, which runs after EGL is gone at exit)."""
        if self._env._renderer is not None:
            self._env._renderer.close()
            self._env._renderer = None
