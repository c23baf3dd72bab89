"""Reacher (DMC ``reacher``, the paper's Reacher task) as a pure-JAX gymnax environment.

A two-link planar arm seen from above. The model follows dm_control's ``reacher.xml``:

- links: shoulder-to-wrist 0.12 m, wrist-to-fingertip 0.12 m (a 0.1 m hand capsule and a
  fingertip sphere); capsules of radius 0.01 m and MuJoCo's default density 1000 kg/m^3
  give the masses, centres of mass and inertias (computed below); no gravity in the plane;
- joints: the shoulder is unlimited (stored wrapped to [-pi, pi)), the wrist is limited to
  +-160 deg by MuJoCo's soft limit constraint (default solref/solimp: the wrist overshoots a
  little and springs back); damping 0.01 N m s/rad;
- actuators: torques ``0.05 * a`` for the action a in [-1, 1]^2 (clipped);
- integration: MuJoCo's default Euler integrator with implicit damping at 0.02 s, and one
  env step is two of them (``ACTION_REPEAT``, stable-worldmodel's ``DMControlWrapper``, so
  the reference ``swm/ReacherDMControl-v0`` moves as far per step). Replayed from the same
  state with the same actions, qpos stays within a few 1e-6 rad of dm_control's over 100
  steps, limit hits included (tests/test_reacher_dmc.py). The damping caps joint speeds
  near ``0.05 / 0.01 = 5`` rad/s, i.e. 0.2 rad per env step.

Physical state, P = 4 (float32): ``[shoulder, wrist, shoulder_vel, wrist_vel]`` (rad, rad/s).
The goal is a joint configuration with the same layout (zero velocity); only the angles
count. Success (the paper's ``qpos_match``): every joint within ``success_tol`` = 0.05 rad
of the goal, wrapped angle difference. Episodes never terminate (as DMC:
``terminate_on_success`` is False) and truncate at ``max_steps_in_episode`` (200, the
dataset's episode length).

Reset (DMC's ``randomize_limited_and_rotational_joints``): shoulder ~ U[-pi, pi], wrist ~
U[-160, 160] deg, zero velocity; the goal is an independent draw. Frames: the top camera of
the DMC scene (0.75 m above the floor, 45 deg field of view, so the view spans +-0.31 m):
the colours of DMC's lit scene as stable-worldmodel renders it (``physics.render``, camera
0, the target hidden), fitted by least squares to dm_control's frames: a floor brightening
towards the centre, the walls' reflection as a lighter band inside the +-0.3 m arena, the
cyan root, and the arm and fingertip shaded across their width (brightest on the axis).
The arm lies 0.01 m above the floor, so it is drawn 0.75 / 0.74 larger (perspective).
Drawn at 224 px, as the reference renders, and resized to ``image_size`` with Pillow's
bilinear filter, as its wrapper does (:mod:`lewm_jax.envs.canvas`).
``python -m experiments.bench.reacher_dmc`` measures the remaining frame difference.
No target is drawn: the goal is a configuration, and the goal image is the arm drawn at it.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment

from lewm_jax import frames
from lewm_jax.envs import base, canvas, render

L1, L2, HAND, LINK_RADIUS = 0.12, 0.12, 0.10, 0.01
GEAR, DAMPING, DT = 0.05, 0.01, 0.02
ACTION_REPEAT = 2  # MuJoCo steps per env step (stable-worldmodel's DMControlWrapper)
WRIST_LIMIT = float(np.deg2rad(160.0))
SOLREF = (0.02, 1.0)  # MuJoCo's default joint-limit solref (timeconst, dampratio)
SOLIMP = (0.9, 0.95, 0.001, 0.5, 2.0)  # and solimp (dmin, dmax, width, midpoint, power)
VIEW = float(0.75 * np.tan(np.deg2rad(22.5)))
# Colours fitted to dm_control's 224 px frames (RGB 0-255; rho = distance from the centre
# in m, s = sqrt(1 - (d / r)^2) across a link of radius r at distance d from its axis).
_FLOOR = ((43.5, 90.0, 134.6), (-22.1, -53.2, -82.7))  # a + b rho inside the arena
_REFLECTION = ((47.6, 88.8, 128.8), (65.4, 105.6, 146.0))  # band 0.285-0.3 m, inner to outer
_OUTSIDE, _ROOT = (40.1, 66.2, 92.1), (197.0, 255.0, 255.0)
_ARM = ((253.8, -31.5, -108.2), (1.2, 289.6, 280.1), (-0.7, -77.6, -88.6))  # a + b s + c rho
_TIP = ((252.0, -51.0, -76.2), (3.1, 250.2, 183.4))  # a + b s
ARM_SCALE = 0.75 / 0.74  # the arm plane (z = 0.01 m) seen from the camera at 0.75 m


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
# MuJoCo's dof_invweight0 of the wrist: (M^-1)_22 at qpos0 (the straight arm); it scales
# the softness of the limit constraint.
_M0 = np.array(
    [
        [
            I1 + M1 * LC1**2 + M2 * L1**2 + 2 * M2 * L1 * LC2 + I2 + M2 * LC2**2,
            I2 + M2 * LC2**2 + M2 * L1 * LC2,
        ],
        [0.0, I2 + M2 * LC2**2],
    ]
)
_M0[1, 0] = _M0[0, 1]
INVWEIGHT0 = float(np.linalg.inv(_M0)[1, 1])


def wrap_angle(theta: jax.Array) -> jax.Array:
    """Wraps angles to [-pi, pi)."""
    return jnp.mod(theta + jnp.pi, 2 * jnp.pi) - jnp.pi


def mass_matrix(q: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Joint-space inertia ``M(q) (2, 2)`` and Coriolis/centrifugal force ``c(q, qd) (2,)``
    coefficients: returns ``(M, h)`` with ``c = (-h (2 qd0 qd1 + qd1^2), h qd0^2)``."""
    c2, s2 = jnp.cos(q[1]), jnp.sin(q[1])
    m22 = I2 + M2 * LC2**2
    m12 = m22 + M2 * L1 * LC2 * c2
    m11 = I1 + M1 * LC1**2 + M2 * L1**2 + m12 + M2 * L1 * LC2 * c2
    return jnp.stack([jnp.stack([m11, m12]), jnp.stack([m12, m22])]), M2 * L1 * LC2 * s2


def _solve2(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a^-1 b`` for a symmetric (2, 2) ``a`` (closed form: no LU on tiny matrices)."""
    det = a[0, 0] * a[1, 1] - a[0, 1] * a[0, 1]
    return jnp.stack([a[1, 1] * b[0] - a[0, 1] * b[1], a[0, 0] * b[1] - a[0, 1] * b[0]]) / det


def _impedance(violation: jax.Array) -> jax.Array:
    """MuJoCo's constraint impedance d(r) for solimp (0.9, 0.95, 0.001, 0.5, 2)."""
    dmin, dmax, width, mid, power = SOLIMP
    x = jnp.clip(violation / width, 0.0, 1.0)
    y = jnp.where(
        x <= mid,
        x**power / mid ** (power - 1),
        1 - (1 - x) ** power / (1 - mid) ** (power - 1),
    )
    return dmin + y * (dmax - dmin)


def _limit_force(q, qd, acc0, inv_m) -> jax.Array:
    """Force (scalar, along the wrist) of MuJoCo's soft wrist-limit constraint.

    The constraint is present only beyond the limit (distance r < 0). With one constraint,
    MuJoCo's convex solver has the closed form ``f = max(0, -(J a0 - aref) / (A + R))``:
    J = +-1 selects the wrist, a0 the unconstrained acceleration, ``A = J M^-1 J^T``,
    ``R = (1 - d) / d * invweight0`` and the reference acceleration ``aref = -b J qd - k d r``
    of solref (timeconst, dampratio), the time constant raised to 2 dt (MuJoCo's refsafe).
    The limit is soft: the wrist overshoots slightly, then springs back.
    """
    upper = q[1] > 0
    jac = jnp.where(upper, -1.0, 1.0)
    dist = jnp.where(upper, WRIST_LIMIT - q[1], q[1] + WRIST_LIMIT)
    imp = _impedance(-dist)
    timeconst, dampratio = max(SOLREF[0], 2 * DT), SOLREF[1]
    dmax = SOLIMP[1]
    b = 2.0 / (dmax * timeconst)
    k = 1.0 / (dmax * dmax * timeconst * timeconst * dampratio * dampratio)
    aref = -b * jac * qd[1] - k * imp * dist
    a_diag = inv_m[1, 1]
    r = (1.0 - imp) / imp * INVWEIGHT0
    force = jnp.maximum(0.0, -(jac * acc0[1] - aref) / (a_diag + r))
    return jnp.where(dist < 0, jac * force, 0.0)


def mujoco_step(q: jax.Array, qd: jax.Array, torque: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One DT MuJoCo step of the arm: ``(q (2,), qd (2,), torque (2,)) -> (q', qd')``.

    Euler with implicit damping (MuJoCo's default integrator): the smooth force
    ``tau - c(q, qd) - b qd`` plus the wrist-limit force f, then
    ``(M + dt b) qdd = force``, ``qd' = qd + dt qdd``, ``q' = q + dt qd'``.
    """
    m, h = mass_matrix(q)
    bias = jnp.stack([-h * (2 * qd[0] * qd[1] + qd[1] ** 2), h * qd[0] ** 2])
    smooth = torque - bias - DAMPING * qd
    det = m[0, 0] * m[1, 1] - m[0, 1] * m[0, 1]
    inv_m = jnp.stack([jnp.stack([m[1, 1], -m[0, 1]]), jnp.stack([-m[0, 1], m[0, 0]])]) / det
    limit = _limit_force(q, qd, inv_m @ smooth, inv_m)
    force = smooth + jnp.stack([jnp.zeros_like(limit), limit])
    qdd = _solve2(m + DT * DAMPING * jnp.eye(2), force)
    qd = qd + DT * qdd
    return q + DT * qd, qd


def dynamics(
    q: jax.Array, qd: jax.Array, torque: jax.Array, stop=None
) -> tuple[jax.Array, jax.Array]:
    """One env step (``ACTION_REPEAT`` MuJoCo steps, as stable-worldmodel's DMC wrapper):
    ``(q (2,), qd (2,), torque (2,)) -> (q', qd')``, the shoulder wrapped to [-pi, pi).

    ``stop(q) -> bool`` ends the env step after the first MuJoCo step where it holds, as
    the wrapper's loop breaks when its task terminates (qpos_match: on success), so that an
    arm passing through the goal within one env step is caught there.
    """
    stopped = jnp.zeros((), bool)
    for _ in range(ACTION_REPEAT):
        q1, qd1 = mujoco_step(q, qd, torque)
        q, qd = jnp.where(stopped, q, q1), jnp.where(stopped, qd, qd1)
        if stop is not None:
            stopped = stopped | stop(q)
    return jnp.stack([wrap_angle(q[0]), q[1]]), qd


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
        # Drawn at 224 px, as dm_control renders for the reference, then resized as it does.
        native = frames.NATIVE_SIZE
        xs, ys, self._edge = render.pixel_grid(native, -VIEW, VIEW, y_up=True)
        rho, box = jnp.hypot(xs, ys), jnp.maximum(jnp.abs(xs), jnp.abs(ys))
        floor = jnp.asarray(_FLOOR[0]) + rho[..., None] * jnp.asarray(_FLOOR[1])
        ramp = jnp.clip((box - 0.285) / 0.015, 0.0, 1.0)[..., None]
        band = jnp.asarray(_REFLECTION[0]) + ramp * (np.subtract(*_REFLECTION[::-1]))
        img = render.composite(floor, render.coverage(0.285 - box, self._edge), band)
        img = render.composite(img, render.coverage(0.3 - box, self._edge), _OUTSIDE)
        background = np.asarray(jax.device_get(img))
        # The same pixel centres as pixel_grid's, in float64: column j at -VIEW + (j + 0.5)
        # edge, row i (y up) at VIEW - (i + 0.5) edge.
        x = (-VIEW + 0.5 * self._edge, self._edge)
        y = (VIEW - 0.5 * self._edge, -self._edge)
        self._canvas = canvas.Canvas(image_size, background, x, y)

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def render_physical(self, physical_state: jax.Array) -> jax.Array:
        """Renders a (P,) physical state to a uint8 (H, W, 3) frame."""
        return self._canvas.full(lambda xs, ys, img: self._draw(physical_state, xs, ys, img))

    def _draw(self, physical_state, xs, ys, img):
        """Arm, root and fingertip over float ``img`` at pixel centres ``xs``, ``ys``."""
        edge = self._edge
        q = physical_state[:2]
        u1 = jnp.stack([jnp.cos(q[0]), jnp.sin(q[0])]) * ARM_SCALE
        u2 = jnp.stack([jnp.cos(q[0] + q[1]), jnp.sin(q[0] + q[1])]) * ARM_SCALE
        wrist, tip, radius = L1 * u1, L1 * u1 + L2 * u2, LINK_RADIUS * ARM_SCALE
        axis = jnp.minimum(
            render.capsule_sdf(xs, ys, jnp.zeros(2), wrist, 0.0),
            render.capsule_sdf(xs, ys, wrist, wrist + HAND * u2, 0.0),
        )
        shade = jnp.sqrt(jnp.clip(1.0 - jnp.square(axis / radius), 0.0, 1.0))[..., None]
        rho = jnp.hypot(xs, ys)
        arm = (
            jnp.asarray(_ARM[0])
            + shade * jnp.asarray(_ARM[1])
            + rho[..., None] * jnp.asarray(_ARM[2])
        )
        img = render.composite(img, render.coverage(axis - radius, edge), arm)
        # The root cylinder's top (z = 0.02) is above the arm: drawn over it.
        img = render.composite(img, render.coverage(rho - 0.011 * 0.75 / 0.73, edge), _ROOT)
        to_tip = jnp.hypot(xs - tip[0], ys - tip[1])
        shade = jnp.sqrt(jnp.clip(1.0 - jnp.square(to_tip / radius), 0.0, 1.0))[..., None]
        tip_colour = jnp.asarray(_TIP[0]) + shade * jnp.asarray(_TIP[1])
        return render.composite(img, render.coverage(to_tip - radius, edge), tip_colour)

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
            qpos=jnp.stack([wrap_angle(ps[0]), ps[1]]),  # as given: the soft limit may be passed
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
        """One env step (two 0.02 s MuJoCo steps, or one when the first reaches the goal, as
        the original's wrapper stops); returns (obs, state, reward, terminated, info)."""
        del key
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)

        def reached(q):
            return self.is_success(q, state.goal, params)

        qpos, qvel = dynamics(state.qpos, state.qvel, GEAR * action, stop=reached)
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
