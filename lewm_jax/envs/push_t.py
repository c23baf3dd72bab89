"""Push-T (stable-worldmodel ``swm/PushT-v1``) as a pure-JAX gymnax environment.

A royal-blue disc (the agent) pushes a grey T-shaped block on a 512 x 512 table; the physics
is documented in :mod:`lewm_jax.envs.push_t_physics`. Action a in [-1, 1]^2 is relative: the
agent's PD target is its position at step start + 100 a.

Physical state, P = 7 (float32, the reference's ``state`` layout):
``[agent_x, agent_y, block_x, block_y, block_angle, agent_vx, agent_vy]`` where block xy is
the body origin (top centre of the bar), the angle lies in [0, 2 pi) and velocities are in
px/s. The goal has the same layout (zero velocity).

Reset: agent ~ U[50, 450]^2, block ~ U[100, 400]^2, angle ~ U[-2 pi, 2 pi] (stored wrapped);
the goal is an independent draw of the same kind. As in the reference, the agent may start
overlapping the block; the first step separates them.

Success (the reference's ``eval_state``): the Euclidean norm of the 4-vector
``(agent_x, agent_y, block_x, block_y) - goal[:4]`` is < 20 px AND the wrapped block angle
error is < pi / 9. ``terminated`` = success (``params.terminate_on_success``, True as in the
reference); reward = -||state - goal|| over the 7-vector with the angle difference wrapped.

Frames, drawn at 224 px from analytic signed distances anti-aliased over one pixel (the
reference draws a 512 canvas and shrinks it to 224), then resized to ``image_size`` with
Pillow's bilinear filter as the reference's wrapper does (:mod:`lewm_jax.envs.canvas`): white
background, a fixed light-green T at pose (256, 256, pi/4) (decoration, not the goal), light
grey 4 px walls, the agent as a royal-blue disc with a lighter core (pymunk debug-draw style),
the block as each box filled light slate grey with a 4 px darker outline, drawn in the
reference's order (goal T, walls, agent, block).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment

from lewm_jax import frames
from lewm_jax.envs import base, canvas
from lewm_jax.envs import push_t_physics as phys

WORLD = 512.0
_WHITE = (255.0, 255.0, 255.0)
_GOAL_GREEN = (144.0, 238.0, 144.0)  # pygame LightGreen
_WALL_GREY = (211.0, 211.0, 211.0)  # pygame LightGray
_AGENT_BLUE = (65.0, 105.0, 225.0)  # pygame RoyalBlue
_AGENT_CORE = (78.0, 126.0, 255.0)  # 1.2 x RoyalBlue, as pymunk's debug draw
_BLOCK_FILL = (143.0, 163.0, 184.0)  # 1.2 x LightSlateGray
_BLOCK_EDGE = (119.0, 136.0, 153.0)  # LightSlateGray
# Expert policy constants (px unless stated).
# CoG-to-agent distance that keeps the agent clear of the T.
_CLEARANCE = phys.BLOCK_RADIUS + phys.AGENT_RADIUS + 5.0
_NOISE_STD, _RANDOM_PROB = 0.1, 0.05


@struct.dataclass
class EnvState(environment.EnvState):
    agent_pos: jax.Array  # (2,)
    agent_vel: jax.Array  # (2,)
    block_pos: jax.Array  # (2,) body origin
    block_angle: jax.Array  # () in [0, 2 pi)
    goal: jax.Array  # (P,)
    time: int


@struct.dataclass
class EnvParams(base.EnvParams):
    max_steps_in_episode: int = 200
    terminate_on_success: bool = True  # the reference ends episodes on success
    action_scale: float = 100.0
    k_p: float = 100.0
    k_v: float = 20.0
    success_pos: float = 20.0
    success_angle: float = float(np.pi / 9)


def _box_sdf(xs, ys, centre, rot, half):
    """Signed distance (H, W) to an oriented box."""
    dx, dy = xs - centre[0], ys - centre[1]
    lx = rot[0, 0] * dx + rot[1, 0] * dy
    ly = rot[0, 1] * dx + rot[1, 1] * dy
    qx, qy = jnp.abs(lx) - half[0], jnp.abs(ly) - half[1]
    outside = jnp.sqrt(jnp.maximum(qx, 0.0) ** 2 + jnp.maximum(qy, 0.0) ** 2)
    return outside + jnp.minimum(jnp.maximum(qx, qy), 0.0)


def _t_boxes(xs, ys, pos, angle):
    """Signed distances [bar, stem], each (H, W), of a T at a body-origin pose."""
    rot = phys.rotation(angle)
    return [
        _box_sdf(xs, ys, pos + rot @ c, rot, h)
        for c, h in zip(phys.BOX_CENTRES, phys.BOX_HALVES, strict=True)
    ]


def _paint(img, sdf, colour, edge):
    """Alpha-blends ``colour`` over ``img`` (H, W, 3) where ``sdf`` < 0."""
    cover = jnp.clip(0.5 - sdf / edge, 0.0, 1.0)[..., None]
    return img + cover * (jnp.asarray(colour) - img)


def sample_state(key: jax.Array) -> jax.Array:
    """Draws a (P,) physical state from the reset distribution (zero velocity)."""
    k_agent, k_block, k_angle = jax.random.split(key, 3)
    agent = jax.random.uniform(k_agent, (2,), minval=50.0, maxval=450.0)
    block = jax.random.uniform(k_block, (2,), minval=100.0, maxval=400.0)
    angle = jax.random.uniform(k_angle, (1,), minval=-2 * jnp.pi, maxval=2 * jnp.pi)
    return jnp.concatenate([agent, block, jnp.mod(angle, 2 * jnp.pi), jnp.zeros(2)])


class PushT(base.PixelEnv):
    """Push-T with uint8 ``(image_size, image_size, 3)`` pixel observations."""

    env_id = "PushT-v0"
    probe_targets = ("agent_x", "agent_y", "block_x", "block_y", "block_angle")
    angle_targets = ("block_angle",)

    def __init__(self, image_size: int = 64):
        super().__init__(image_size)
        # Drawn at 224 px, then resized to image_size as the reference does. Pixel centres
        # in world units as the reference samples its 512 canvas: cv2's linear resize reads
        # canvas pixel (i + 0.5) * 512 / 224 - 0.5, and pygame's pixel j is centred on world j.
        native = frames.NATIVE_SIZE
        self._edge = WORLD / native
        grid = ((np.arange(native) + 0.5) * self._edge - 0.5).astype(np.float32)
        background = np.asarray(jax.device_get(self._draw_background(grid)))
        axis = (0.5 * self._edge - 0.5, self._edge)
        self._canvas = canvas.Canvas(image_size, background, axis, axis)
        # Window half-widths (native pixels) that hold every pixel an outline's
        # anti-aliasing reaches: agent radius, and the T's farthest outline point from its
        # centre of mass (a stem corner) plus its 2-unit outline, each plus half a pixel.
        reach = float(np.max(np.linalg.norm(phys.HULL - phys.BLOCK_COG, axis=1))) + 2.0
        self._agent_half = math.ceil(phys.AGENT_RADIUS / self._edge + 0.5) + 1
        self._block_half = math.ceil(reach / self._edge + 0.5) + 1

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def _draw_background(self, grid):
        xs, ys, edge = grid[None, :], grid[:, None], self._edge
        img = jnp.full(grid.shape * 2 + (3,), 255.0, jnp.float32)
        for sdf in _t_boxes(xs, ys, jnp.array([256.0, 256.0]), jnp.pi / 4):
            img = _paint(img, sdf, _GOAL_GREEN, edge)
        # Walls: radius-2 capsules along the lines 5 and 506, the reference's segments.
        lo, hi = 5.0, 506.0
        d_x = jnp.minimum(jnp.abs(xs - lo), jnp.abs(xs - hi))
        d_y = jnp.minimum(jnp.abs(ys - lo), jnp.abs(ys - hi))
        out_x = jnp.maximum(jnp.maximum(lo - xs, xs - hi), 0.0)
        out_y = jnp.maximum(jnp.maximum(lo - ys, ys - hi), 0.0)
        walls = jnp.minimum(jnp.hypot(d_x, out_y), jnp.hypot(d_y, out_x)) - 2.0
        return _paint(img, walls, _WALL_GREY, edge)

    def render_physical(self, physical_state: jax.Array) -> jax.Array:
        """Renders a (P,) physical state to a uint8 (H, W, 3) frame.

        Only two windows are drawn; every pixel outside them has zero coverage of both
        shapes and keeps the background's value. The block's window is drawn without the
        agent; the agent's window, drawn whole (agent, then block over it), is pasted last,
        so that it supplies every pixel the agent reaches.
        """
        frame = jnp.asarray(self._canvas.background)
        cog = physical_state[2:4] + phys.rotation(physical_state[4]) @ phys.BLOCK_COG
        windows = ((cog, self._block_half, False), (physical_state[:2], self._agent_half, True))
        for centre, half, with_agent in windows:

            def draw(xs, ys, img, with_agent=with_agent):
                return self._draw(physical_state, xs, ys, img, with_agent=with_agent)

            frame = self._canvas.window(frame, centre, half, draw)
        return frame

    def _draw(self, physical_state, xs, ys, img, *, with_agent=True):
        """Agent (if ``with_agent``) and block drawn over float ``img`` at pixel centres
        ``xs``, ``ys`` (broadcasting to its first two axes)."""
        edge = self._edge
        if with_agent:
            agent_dist = jnp.hypot(xs - physical_state[0], ys - physical_state[1])
            img = _paint(img, agent_dist - phys.AGENT_RADIUS, _AGENT_BLUE, edge)
            img = _paint(img, agent_dist - (phys.AGENT_RADIUS - 4.0), _AGENT_CORE, edge)
        # Box by box, fill then outline, so the bar/stem junction keeps its line.
        for sdf in _t_boxes(xs, ys, physical_state[2:4], physical_state[4]):
            img = _paint(img, sdf, _BLOCK_FILL, edge)
            img = _paint(img, jnp.abs(sdf) - 2.0, _BLOCK_EDGE, edge)
        return img

    def physical_state(self, state: EnvState) -> jax.Array:
        """(P,) float32 physical state, layout in the module docstring."""
        return jnp.concatenate(
            [state.agent_pos, state.block_pos, state.block_angle[None], state.agent_vel]
        ).astype(jnp.float32)

    def is_success(self, physical_state, goal_state, params: EnvParams) -> jax.Array:
        """Bool (): position 4-vector error < 20 px and wrapped angle error < pi/9."""
        pos_err = jnp.linalg.norm(physical_state[:4] - goal_state[:4])
        angle_err = jnp.abs(phys.wrap_angle(physical_state[4] - goal_state[4]))
        return (pos_err < params.success_pos) & (angle_err < params.success_angle)

    def reset_to_state(self, key, physical_state, goal_state, params: EnvParams):
        """Starts an episode at a (P,) physical state with a (P,) goal; returns (obs, state)."""
        del key
        ps = jnp.asarray(physical_state, jnp.float32)
        state = EnvState(
            agent_pos=ps[0:2],
            agent_vel=ps[5:7],
            block_pos=ps[2:4],
            block_angle=jnp.mod(ps[4], 2 * jnp.pi),
            goal=jnp.asarray(goal_state, jnp.float32),
            time=0,
        )
        return self.get_obs(state), state

    def reset_env(self, key: jax.Array, params: EnvParams):
        """Samples start and goal independently from the reset distribution."""
        k_start, k_goal = jax.random.split(key)
        return self.reset_to_state(key, sample_state(k_start), sample_state(k_goal), params)

    def step_env(self, key, state: EnvState, action, params: EnvParams):
        """One 0.1 s control step; returns (obs, state, reward, terminated, info)."""
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        agent_pos, agent_vel, block_pos, block_angle = phys.physics_step(
            state.agent_pos,
            state.agent_vel,
            state.block_pos,
            state.block_angle,
            action,
            params.k_p,
            params.k_v,
            params.action_scale,
        )
        state = state.replace(
            agent_pos=agent_pos,
            agent_vel=agent_vel,
            block_pos=block_pos,
            block_angle=jnp.mod(block_angle, 2 * jnp.pi),
            time=state.time + 1,
        )
        physical = self.physical_state(state)
        diff = (physical - state.goal).at[4].set(phys.wrap_angle(physical[4] - state.goal[4]))
        return self.transition(state, -jnp.linalg.norm(diff), params, physical)

    def expert_policy(self, key: jax.Array, state: EnvState, params: EnvParams) -> jax.Array:
        """Noisy scripted pusher: (A,) action driving the block towards the goal pose.

        The block's CoG is pushed along the line to the goal CoG from a contact point offset
        sideways in proportion to the angle error (so the push also turns the block); once
        the CoG is near its goal the agent instead pushes a bar end along the stem axis to
        turn the block, and once the pose matches the agent heads to its own goal. The agent
        orbits around the block to reach the pushing side. Gaussian noise (std 0.1) is added
        and 5 % of actions are uniform.
        """
        goal_cog = phys.block_cog(state.goal[2:4], state.goal[4])
        return _noisy(key, _push(state, goal_cog, state.goal[4], state.goal[:2]))

    def turning_policy(self, key: jax.Array, state: EnvState, params: EnvParams) -> jax.Array:
        """The expert chasing a goal pose a quarter turn ahead of the block at its own CoG.

        The goal moves with the block, so the agent never finishes: it keeps pushing a bar
        end and the block keeps turning (towards larger angles in the table's left half,
        smaller in the right) while its centre wanders near where it started. Data whose
        frames change the block angle far more often than the expert's (which spends most
        steps reaching the block or done); same noise as the expert.
        """
        cog = phys.block_cog(state.block_pos, state.block_angle)
        turn = jnp.where(cog[0] < WORLD / 2, 0.5, -0.5) * jnp.pi
        return _noisy(key, _push(state, cog, state.block_angle + turn, state.agent_pos))


def _push(state: EnvState, goal_cog, goal_angle, agent_goal) -> jax.Array:
    """(2,) noise-free action of the scripted pusher towards the block pose (``goal_cog``,
    ``goal_angle``), then the agent towards ``agent_goal`` (see ``expert_policy``)."""
    agent, angle = state.agent_pos, state.block_angle
    cog = phys.block_cog(state.block_pos, angle)
    to_goal = goal_cog - cog
    dist = jnp.linalg.norm(to_goal)
    err = phys.wrap_angle(goal_angle - angle)
    rel = agent - cog
    # Near the goal, turn the block by pushing a bar end along the stem axis.
    stem_axis = phys.rotation(angle)[:, 1]
    turn_dir = -jnp.sign(rel @ stem_axis + 1e-6) * stem_axis
    turning = dist < 15.0
    u = jnp.where(turning, turn_dir, to_goal / jnp.maximum(dist, 1e-6))
    v = jnp.stack([-u[1], u[0]])
    # A push at lateral offset l along v exerts torque -l, hence the sign.
    lever = jnp.where(
        turning, jnp.clip(-100.0 * err, -50.0, 50.0), jnp.clip(-40.0 * err, -25.0, 25.0)
    )
    along, lateral = rel @ u, rel @ v
    behind = (along < -10.0) & (jnp.abs(lateral - lever) < 20.0)
    speed = jnp.where(turning, 0.3, jnp.clip(dist / 60.0, 0.2, 0.6))
    push = speed * u + jnp.clip((lever - lateral) / 50.0, -0.3, 0.3) * v
    approach = _go_around(agent, cog + lever * v - 100.0 * u, cog)
    placed = (dist < 15.0) & (jnp.abs(err) < 0.2)
    return jnp.where(placed, _go_around(agent, agent_goal, cog), jnp.where(behind, push, approach))


def _noisy(key: jax.Array, action: jax.Array) -> jax.Array:
    """The scripted policies' noise: Gaussian (std 0.1), and 5 % of actions uniform."""
    k_noise, k_coin, k_rand = jax.random.split(key, 3)
    action = action + _NOISE_STD * jax.random.normal(k_noise, (2,))
    uniform = jax.random.uniform(k_rand, (2,), minval=-1.0, maxval=1.0)
    action = jnp.where(jax.random.uniform(k_coin) < _RANDOM_PROB, uniform, action)
    return jnp.clip(action, -1.0, 1.0)


def _go_around(agent, target, cog):
    """(2,) action towards ``target`` that orbits the block when it is in the way."""
    rel, to = agent - cog, target - agent
    t = jnp.clip(-(rel @ to) / (to @ to + 1e-6), 0.0, 1.0)
    blocked = jnp.linalg.norm(rel + t * to) < _CLEARANCE
    r = jnp.maximum(jnp.linalg.norm(rel), 1e-6)
    radial = rel / r
    side = jnp.sign(phys.cross(rel, target - cog) + 1e-6)
    orbit = side * jnp.stack([-radial[1], radial[0]])
    orbit = orbit + radial * jnp.clip((_CLEARANCE + 10.0 - r) / 30.0, -1.0, 1.0)
    action = jnp.where(blocked, orbit, to / 100.0)
    return action / jnp.maximum(jnp.linalg.norm(action), 1.0)
