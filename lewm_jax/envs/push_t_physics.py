"""Quasi-static rigid-body physics of Push-T in pure JAX.

The reference (stable-worldmodel ``swm/PushT-v1``) runs pymunk; this module reproduces its
physical model without a general engine. Coordinates are the 512 x 512 plane, y down; an
angle theta rotates body coordinates by the usual matrix ``[[cos, -sin], [sin, cos]]``
(clockwise on screen, as in pymunk with pygame's y-down screen).

- Agent: kinematic disc of radius ``AGENT_RADIUS`` = 15. Each env step runs ``SUBSTEPS`` = 10
  substeps of ``DT`` = 0.01 s of the PD law ``acc = k_p (target - pos) - k_v vel`` with
  ``target`` = agent position at step start + ``action_scale`` * action, integrated
  semi-implicitly (velocity, then position) as pymunk does.
- Block: the T of two boxes in body coordinates, bar (-60, 0)..(60, 30) and stem
  (-15, 30)..(15, 120); mass 1, moment of inertia 3000, centre of gravity (0, 45). Its pose is
  the body origin (top centre of the bar) and the angle.
- Walls: pymunk segments of radius 2 on the lines 5 and 506, so the free interior is
  [``ARENA_LO``, ``ARENA_HI``] = [7, 504] on both axes.
- Contacts are frictionless and inelastic, and the block's velocity is fully damped each
  substep (pymunk ``space.damping = 0``), so the block only moves by the contact impulses of
  the current substep: pushing is quasi-static. We resolve contacts on positions instead of
  velocities (which is the same thing when velocities are zeroed every substep): each
  substep moves the agent, then ``SOLVER_ITERS`` Gauss-Seidel sweeps over the constraints
  agent-bar, agent-stem and block-walls. A constraint with penetration ``d`` along normal
  ``n`` at contact point ``c`` (lever ``r = c - cog``) applies the impulse
  ``lambda = d / (1/m + (r x n)^2 / I)`` to the block: ``cog += lambda n / m``,
  ``theta += lambda (r x n) / I``, so off-centre pushes rotate the block about its CoG.
  Disc-box contacts use the closest point on the oriented box; wall contacts use the
  deepest hull vertex per wall.

Deviations from pymunk, all deliberate: pymunk's kinematic agent passes through walls and
can squeeze the block through them; here the agent is clamped to the arena, the block is
finally translated back inside the walls, and an agent jammed against a walled-in block
yields (is pushed out of the block). The agent's velocity is its actual displacement over
the substep, which equals the PD velocity unless it was clamped or jammed.
"""

import jax
import jax.numpy as jnp
import numpy as np

ARENA_LO, ARENA_HI = 7.0, 504.0
AGENT_RADIUS = 15.0
# pymunk ``add_tee(scale=30)``: bar (-2s, 0)..(2s, s), stem (-s/2, s)..(s/2, 4s). (The
# stable-worldmodel variation space defaults the block scale to 40; we follow scale 30.)
T_SCALE = 30.0
BLOCK_MASS = 1.0
# pymunk's add_tee sums the bar's moment about the body origin twice: 2 m (17 s^2 / 12 + s^2 / 4).
BLOCK_INERTIA = BLOCK_MASS * T_SCALE**2 * 10.0 / 3.0
BLOCK_COG = np.array([0.0, 1.5 * T_SCALE], np.float32)  # mean of the two box centroids
# (centre, half extents) of the bar and the stem in body coordinates.
BOX_CENTRES = np.array([[0.0, 0.5], [0.0, 2.5]], np.float32) * T_SCALE
BOX_HALVES = np.array([[2.0, 0.5], [0.5, 1.5]], np.float32) * T_SCALE
# Convex hull of the T, the only vertices that can touch a wall.
HULL = np.array([[-2, 0], [2, 0], [2, 1], [0.5, 4], [-0.5, 4], [-2, 1]], np.float32) * T_SCALE
# Largest distance from the CoG to the T's outline (bar corners and stem tip alike).
BLOCK_RADIUS = 2.5 * T_SCALE
SUBSTEPS, DT, SOLVER_ITERS = 10, 0.01, 4
# Inward normals of the walls x = lo, y = lo, x = hi, y = hi.
_WALL_NORMALS = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], np.float32)


def rotation(theta: jax.Array) -> jax.Array:
    """(2, 2) rotation matrix of angle ``theta`` (body -> world)."""
    c, s = jnp.cos(theta), jnp.sin(theta)
    return jnp.array([[c, -s], [s, c]])


def cross(a: jax.Array, b: jax.Array) -> jax.Array:
    """z-component of the 2-D cross product, batched over leading axes."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def wrap_angle(theta: jax.Array) -> jax.Array:
    """Wraps angles to [-pi, pi)."""
    return jnp.mod(theta + jnp.pi, 2 * jnp.pi) - jnp.pi


def block_cog(block_pos: jax.Array, block_angle: jax.Array) -> jax.Array:
    """World position (2,) of the block's centre of gravity given its body-origin pose."""
    return block_pos + rotation(block_angle) @ BLOCK_COG


def hull_vertices(block_pos: jax.Array, block_angle: jax.Array) -> jax.Array:
    """World positions (6, 2) of the T's convex-hull vertices."""
    return block_pos + HULL @ rotation(block_angle).T


def disc_box_contact(p, cog, rot, box):
    """Contact of the agent disc at ``p`` with box ``box`` (0 bar, 1 stem) of the block.

    Returns:
        ``(penetration, normal, contact)``: penetration depth (> 0 when overlapping), unit
        normal (2,) pointing from the block towards the agent, and the closest point (2,) of
        the box surface in world coordinates.
    """
    centre = cog + rot @ (BOX_CENTRES[box] - BLOCK_COG)
    half = jnp.asarray(BOX_HALVES[box])
    local = rot.T @ (p - centre)
    q = jnp.abs(local) - half
    sign = jnp.where(local >= 0, 1.0, -1.0)
    inside = jnp.all(q < 0)
    # Inside (or exactly on) the box the nearest face decides; outside, the clamped point.
    face_x = q[0] > q[1]
    face_point = jnp.where(
        face_x, jnp.stack([sign[0] * half[0], local[1]]), jnp.stack([local[0], sign[1] * half[1]])
    )
    face_normal = jnp.where(face_x, jnp.stack([sign[0], 0.0]), jnp.stack([0.0, sign[1]]))
    clamped = jnp.clip(local, -half, half)
    diff = local - clamped
    dist = jnp.sqrt(jnp.sum(diff**2) + 1e-12)
    degenerate = inside | (dist < 1e-4)
    normal = jnp.where(degenerate, face_normal, diff / dist)
    closest = jnp.where(inside, face_point, clamped)
    penetration = jnp.where(inside, AGENT_RADIUS - jnp.max(q), AGENT_RADIUS - dist)
    return penetration, rot @ normal, centre + rot @ closest


def _apply_impulse(cog, theta, depth, normal, lever):
    """Moves the block (mass-weighted) to remove ``depth`` along ``normal`` at ``lever``."""
    rn = cross(lever, normal)
    lam = jnp.maximum(depth, 0.0) / (1.0 / BLOCK_MASS + rn**2 / BLOCK_INERTIA)
    d_cog = jnp.sum(lam[..., None] * normal, axis=tuple(range(normal.ndim - 1)))
    return cog + d_cog / BLOCK_MASS, theta + jnp.sum(lam * rn) / BLOCK_INERTIA


def _solve_block(agent, cog, theta):
    """One Gauss-Seidel sweep: the agent pushes each box, then the walls push back."""
    for box in range(2):
        depth, normal, contact = disc_box_contact(agent, cog, rotation(theta), box)
        cog, theta = _apply_impulse(cog, theta, depth, -normal, contact - cog)
    verts = cog + (HULL - BLOCK_COG) @ rotation(theta).T
    depths = jnp.concatenate([ARENA_LO - verts, verts - ARENA_HI], axis=1)  # (6, 4)
    deepest = jnp.argmax(depths, axis=0)
    levers = verts[deepest] - cog  # (4, 2)
    # The walls act together (Jacobi); opposite walls can never both touch the T.
    return _apply_impulse(cog, theta, jnp.max(depths, axis=0), _WALL_NORMALS, levers)


def _substep(carry, target, k_p, k_v):
    agent, vel, cog, theta = carry
    free_vel = vel + DT * (k_p * (target - agent) - k_v * vel)
    lo, hi = ARENA_LO + AGENT_RADIUS, ARENA_HI - AGENT_RADIUS
    moved = jnp.clip(agent + DT * free_vel, lo, hi)
    cog, theta = jax.lax.fori_loop(
        0, SOLVER_ITERS, lambda _, b: _solve_block(moved, *b), (cog, theta)
    )
    # Hard guarantee that the block stays inside: translate out any residual wall overlap.
    verts = cog + (HULL - BLOCK_COG) @ rotation(theta).T
    cog = (
        cog + jnp.maximum(ARENA_LO - verts.min(0), 0.0) - jnp.maximum(verts.max(0) - ARENA_HI, 0.0)
    )
    # A jammed agent yields rather than squeezing the block through a wall.
    for box in range(2):
        depth, normal, _ = disc_box_contact(moved, cog, rotation(theta), box)
        moved = moved + jnp.maximum(depth, 0.0) * normal
    moved = jnp.clip(moved, lo, hi)
    return moved, (moved - agent) / DT, cog, theta


def physics_step(agent_pos, agent_vel, block_pos, block_angle, action, k_p, k_v, action_scale):
    """Advances the scene by one env step (``SUBSTEPS`` substeps).

    Args:
        agent_pos: (2,) agent centre.
        agent_vel: (2,) agent velocity in px/s.
        block_pos: (2,) block body origin.
        block_angle: () block angle in radians.
        action: (A,) = (2,) relative action in [-1, 1].
        k_p: PD stiffness.
        k_v: PD damping.
        action_scale: px of target offset per unit action.

    Returns:
        ``(agent_pos, agent_vel, block_pos, block_angle)`` after the step.
    """
    target = agent_pos + action_scale * action
    cog = block_cog(block_pos, block_angle)
    carry = (agent_pos, agent_vel, cog, block_angle)
    agent_pos, agent_vel, cog, block_angle = jax.lax.fori_loop(
        0, SUBSTEPS, lambda _, c: _substep(c, target, k_p, k_v), carry
    )
    block_pos = cog - rotation(block_angle) @ BLOCK_COG
    return agent_pos, agent_vel, block_pos, block_angle


def agent_block_penetration(agent_pos, block_pos, block_angle):
    """Largest penetration depth () of the agent disc into either box (<= 0 if apart)."""
    cog, rot = block_cog(block_pos, block_angle), rotation(block_angle)
    return jnp.maximum(*(disc_box_contact(agent_pos, cog, rot, b)[0] for b in range(2)))
