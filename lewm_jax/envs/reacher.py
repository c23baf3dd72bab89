"""Reacher (DMC ``reacher``, the paper's Reacher task) as a pure-JAX gymnax environment.

A two-link planar arm seen from above. The model follows dm_control's ``reacher.xml``:

- links: shoulder-to-wrist 0.12 m, wrist-to-fingertip 0.12 m (a 0.1 m hand capsule and a
  fingertip sphere); capsules of radius 0.01 m and MuJoCo's default density 1000 kg/m^3
  give the masses, centres of mass and inertias (computed below); no gravity in the plane;
- joints: the shoulder is unlimited (stored wrapped to [-pi, pi)), the wrist is limited to
  +-160 deg (clamped, with the velocity into the limit zeroed); damping 0.01 N m s/rad;
- actuators: torques ``0.05 * a`` for the action a in [-1, 1]^2 (clipped);
- integration: one 0.02 s step per action, semi-implicit Euler with the damping implicit
  (MuJoCo's default integrator): ``(M(q) + dt b) qdot' = M(q) qdot + dt (tau - c(q, qdot))``,
  then ``q' = q + dt qdot'``, with M and the Coriolis/centrifugal term c of the two-link arm.
  The damping caps joint speeds near ``0.05 / 0.01 = 5`` rad/s, i.e. 0.1 rad per step.

Physical state, P = 4 (float32): ``[shoulder, wrist, shoulder_vel, wrist_vel]`` (rad, rad/s).
The goal is a joint configuration with the same layout (zero velocity); only the angles
count. Success (the paper's ``qpos_match``): every joint within ``success_tol`` = 0.05 rad
of the goal, wrapped angle difference. Episodes never terminate (as DMC:
``terminate_on_success`` is False) and truncate at ``max_steps_in_episode`` (200, the
dataset's episode length).

Reset (DMC's ``randomize_limited_and_rotational_joints``): shoulder ~ U[-pi, pi], wrist ~
U[-160, 160] deg, zero velocity; the goal is an independent draw. Frames: the top camera of
the DMC scene (0.75 m above the floor, 45 deg field of view, so the view spans +-0.31 m):
dark blue floor, the arena's +-0.3 m walls as light-blue lines, the root as a light-blue
disc, the links as orange capsules with darker shoulder and wrist dots, and the fingertip.
No target is drawn: the goal is a configuration, and the goal image is the arm drawn at it.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment

from lewm_jax.envs import base, render

L1, L2, HAND, LINK_RADIUS = 0.12, 0.12, 0.10, 0.01
GEAR, DAMPING, DT = 0.05, 0.01, 0.02
WRIST_LIMIT = float(np.deg2rad(160.0))
VIEW = float(0.75 * np.tan(np.deg2rad(22.5)))
_FLOOR, _WALL = (38.0, 64.0, 89.0), (77.0, 128.0, 179.0)
_ARM, _JOINT, _TIP = (179.0, 128.0, 77.0), (140.0, 95.0, 60.0), (179.0, 102.0, 51.0)


def _capsule(length: float, r: float = LINK_RADIUS, rho: float = 1000.0):
    """Mass and inertia about its centre (perpendicular axis) of a MuJoCo capsule."""
    m_cyl, m_sph = rho * np.pi * r * r * length, rho * 4.0 / 3.0 * np.pi * r**3
    inertia = m_cyl * (3 * r * r + length * length) / 12
    inertia += m_sph * (83 / 320 * r * r + (length / 2 + 3 * r / 8) ** 2)
    return m_cyl + m_sph, inertia


M1, I1 = _capsule(L1)
LC1 = L1 / 2
_m_hand, _i_hand = _capsule(HAND)
_m_tip = 1000.0 * 4.0 / 3.0 * np.pi * LINK_RADIUS**3
M2 = _m_hand + _m_tip
LC2 = (_m_hand * HAND / 2 + _m_tip * L2) / M2
I2 = (
    _i_hand
    + _m_hand * (HAND / 2 - LC2) ** 2
    + 0.4 * _m_tip * LINK_RADIUS**2
    + _m_tip * (L2 - LC2) ** 2
)


def wrap_angle(theta: jax.Array) -> jax.Array:
    """Wraps angles to [-pi, pi)."""
    return jnp.mod(theta + jnp.pi, 2 * jnp.pi) - jnp.pi


def dynamics(q: jax.Array, qd: jax.Array, torque: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One DT step of the arm: ``(q (2,), qd (2,), torque (2,)) -> (q', qd')``."""
    c2, s2 = jnp.cos(q[1]), jnp.sin(q[1])
    m22 = I2 + M2 * LC2**2
    m12 = m22 + M2 * L1 * LC2 * c2
    m11 = I1 + M1 * LC1**2 + M2 * L1**2 + m12 + M2 * L1 * LC2 * c2
    h = M2 * L1 * LC2 * s2
    bias = jnp.stack([-h * (2 * qd[0] * qd[1] + qd[1] ** 2), h * qd[0] ** 2])
    a11, a12, a22 = m11 + DT * DAMPING, m12, m22 + DT * DAMPING
    r = jnp.stack([m11 * qd[0] + m12 * qd[1], m12 * qd[0] + m22 * qd[1]]) + DT * (torque - bias)
    det = a11 * a22 - a12 * a12
    qd = jnp.stack([a22 * r[0] - a12 * r[1], a11 * r[1] - a12 * r[0]]) / det
    q = q + DT * qd
    # The wrist limit: stop at the stop, keep only velocity pointing back inside.
    at_limit = jnp.abs(q[1]) >= WRIST_LIMIT
    outward = jnp.sign(q[1]) * qd[1] > 0
    qd = qd.at[1].set(jnp.where(at_limit & outward, 0.0, qd[1]))
    q = jnp.stack([wrap_angle(q[0]), jnp.clip(q[1], -WRIST_LIMIT, WRIST_LIMIT)])
    return q, qd


def sample_configuration(key: jax.Array) -> jax.Array:
    """Joint angles ``(2,)`` from the reset distribution."""
    k1, k2 = jax.random.split(key)
    shoulder = jax.random.uniform(k1, minval=-jnp.pi, maxval=jnp.pi)
    wrist = jax.random.uniform(k2, minval=-WRIST_LIMIT, maxval=WRIST_LIMIT)
    return jnp.stack([shoulder, wrist])


def joint_error(q: jax.Array, goal: jax.Array) -> jax.Array:
    """Per-joint error ``goal - q`` (2,): wrapped for the shoulder, plain for the wrist,
    which cannot pass through its limits."""
    return jnp.stack([wrap_angle(goal[0] - q[0]), goal[1] - q[1]])


@struct.dataclass
class EnvState(environment.EnvState):
    qpos: jax.Array  # (2,) shoulder, wrist
    qvel: jax.Array  # (2,)
    goal: jax.Array  # (P,) goal configuration, zero velocity
    policy_key: jax.Array  # seeds the expert's waypoints for this episode
    time: int


@struct.dataclass
class EnvParams(base.EnvParams):
    max_steps_in_episode: int = 200
    terminate_on_success: bool = False  # as DMC: episodes only truncate
    success_tol: float = 0.05
    expert_kp: float = 3.0  # PD gains of the scripted expert (action per rad, per rad/s)
    expert_kd: float = 0.1
    expert_noise: float = 0.3  # std of its Gaussian action noise
    expert_segment: int = 40  # steps per waypoint
    expert_goal_prob: float = 0.5  # probability that a segment's waypoint is the goal


class Reacher(base.PixelEnv):
    """Two-link reacher with uint8 ``(image_size, image_size, 3)`` pixel observations."""

    env_id = "Reacher-v0"
    probe_targets = ("shoulder", "wrist")
    angle_targets = ("shoulder", "wrist")

    def __init__(self, image_size: int = 64):
        super().__init__(image_size)
        xs, ys, self._edge = render.pixel_grid(image_size, -VIEW, VIEW, y_up=True)
        self._xs, self._ys = xs, ys
        walls = jnp.maximum(jnp.abs(xs), jnp.abs(ys)) - 0.3
        img = jnp.broadcast_to(jnp.asarray(_FLOOR, jnp.float32), self.obs_shape)
        img = render.composite(img, render.coverage(jnp.abs(walls) - 0.003, self._edge), _WALL)
        img = render.composite(img, render.coverage(jnp.hypot(xs, ys) - 0.011, self._edge), _WALL)
        self._background = np.asarray(jax.device_get(img))

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def render_physical(self, physical_state: jax.Array) -> jax.Array:
        """Renders a (P,) physical state to a uint8 (H, W, 3) frame."""
        xs, ys, edge = self._xs, self._ys, self._edge
        q = physical_state[:2]
        u1 = jnp.stack([jnp.cos(q[0]), jnp.sin(q[0])])
        u2 = jnp.stack([jnp.cos(q[0] + q[1]), jnp.sin(q[0] + q[1])])
        wrist, tip = L1 * u1, L1 * u1 + L2 * u2
        img = jnp.asarray(self._background)
        shapes = [
            (render.capsule_sdf(xs, ys, jnp.zeros(2), wrist, LINK_RADIUS), _ARM),
            (render.capsule_sdf(xs, ys, wrist, wrist + HAND * u2, LINK_RADIUS), _ARM),
            (render.disc_sdf(xs, ys, jnp.zeros(2), 0.6 * LINK_RADIUS), _JOINT),
            (render.disc_sdf(xs, ys, wrist, 0.6 * LINK_RADIUS), _JOINT),
            (render.disc_sdf(xs, ys, tip, LINK_RADIUS), _TIP),
        ]
        for sdf, colour in shapes:
            img = render.composite(img, render.coverage(sdf, edge), colour)
        return render.to_uint8(img)

    def physical_state(self, state: EnvState) -> jax.Array:
        """(P,) = (4,) float32 joint angles and velocities."""
        return jnp.concatenate([state.qpos, state.qvel]).astype(jnp.float32)

    def is_success(self, physical_state, goal_state, params: EnvParams) -> jax.Array:
        """Bool (): every joint within ``success_tol`` rad (wrapped) of the goal."""
        err = wrap_angle(physical_state[:2] - goal_state[:2])
        return jnp.all(jnp.abs(err) < params.success_tol)

    def reset_to_state(self, key, physical_state, goal_state, params: EnvParams):
        """Starts an episode at a (P,) state with a (P,) goal; returns (obs, state).

        ``key`` seeds the expert's waypoints; a (2,) angle-only state means zero velocity.
        """
        ps = jnp.zeros(4).at[: jnp.shape(physical_state)[0]].set(physical_state)
        goal = jnp.zeros(4).at[:2].set(jnp.asarray(goal_state, jnp.float32)[:2])
        state = EnvState(
            qpos=jnp.stack([wrap_angle(ps[0]), jnp.clip(ps[1], -WRIST_LIMIT, WRIST_LIMIT)]),
            qvel=ps[2:4],
            goal=goal,
            policy_key=key,
            time=0,
        )
        return self.get_obs(state), state

    def reset_env(self, key: jax.Array, params: EnvParams):
        """Samples start and goal configurations independently, at rest."""
        k_start, k_goal, k_policy = jax.random.split(key, 3)
        start = sample_configuration(k_start)
        return self.reset_to_state(k_policy, start, sample_configuration(k_goal), params)

    def step_env(self, key, state: EnvState, action, params: EnvParams):
        """One 0.02 s step; returns (obs, state, reward, terminated, info)."""
        del key
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        qpos, qvel = dynamics(state.qpos, state.qvel, GEAR * action)
        state = state.replace(qpos=qpos, qvel=qvel, time=state.time + 1)
        reward = -jnp.linalg.norm(joint_error(qpos, state.goal))
        return self.transition(state, reward, params)

    def expert_policy(self, key: jax.Array, state: EnvState, params: EnvParams) -> jax.Array:
        """Noisy PD controller (A,) towards waypoints that change every ``expert_segment`` steps.

        Each segment's waypoint is the episode goal with probability ``expert_goal_prob``,
        else a fresh random configuration, both drawn from the episode's ``policy_key``: the
        arm sweeps the joint space yet regularly reaches (and holds) the goal.
        """
        k_seg = jax.random.fold_in(state.policy_key, state.time // params.expert_segment)
        k_coin, k_way = jax.random.split(k_seg)
        to_goal = jax.random.uniform(k_coin) < params.expert_goal_prob
        waypoint = jnp.where(to_goal, state.goal[:2], sample_configuration(k_way))
        pd = params.expert_kp * joint_error(state.qpos, waypoint) - params.expert_kd * state.qvel
        noise = params.expert_noise * jax.random.normal(key, (2,))
        return jnp.clip(pd + noise, -1.0, 1.0)
