"""Two-Room (stable-worldmodel ``swm/TwoRoom-v1``) as a pure-JAX gymnax environment.

A red dot moves in a square arena split by a vertical wall with one door; the task is to
reach a target in the other room. All geometry is defined on the reference's 224 x 224
canvas (x right, y down, integer pixel centres); frames are drawn there and resized to
``image_size`` with Pillow's bilinear filter, as the reference's wrapper does
(:mod:`lewm_jax.envs.canvas`):

- border: black 4 px lines inside a 14 px margin (pixels 10..13 and 210..213); the agent
  centre is clamped to [14 + r, 210 - r] with r = 7 its radius;
- wall: black, thickness 10 centred at x = 112 (pixels 107..117); one door, centre
  y = 49, half-extent 14 (y 35..63), drawn white;
- agent: red Gaussian dot, std = radius = 7, peak-normalised and alpha-blended.

Physical state, P = 2 (float32): the agent centre ``[x, y]`` in 224-canvas pixels. The goal
(the target) has the same layout; the goal image is the scene with the agent at the target.

Dynamics: the action a in [-1, 1]^2 (clipped) moves the agent by ``speed * a`` (5 px per
step), then collisions as in the reference: clamp to the borders, and if the move ends in
the wall band widened by the radius (x in (100, 124)) while the centre's y is outside the
door span (+- 1.75 px tolerance), put the agent back 0.5 px outside the band on the side
it started from. Success: agent centre within 16 px of the target (the reference's
4.5 * 224/64 = 15.75 px, rounded as in the paper). Episodes terminate on success when
``params.terminate_on_success`` (the reference does) and truncate at
``params.max_steps_in_episode`` (100, the dataset's ``max_episode_steps``).

Reset: the agent is uniform over [27, 196]^2 outside the widened wall band, the target is
uniform in the other room with a shortest path via the door of at least
``min_goal_steps * speed`` px (the reference's ``task.min_steps`` = 25).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment

from lewm_jax.envs import base, canvas, render

CANVAS = 224
MARGIN, BORDER_LINE = 14, 4
WALL_X, WALL_HALF = 112.0, 5.0  # thickness 10 // 2, as the reference's integer stripe
DOOR_Y, DOOR_HALF, DOOR_TOL = 49.0, 14.0, 1.75  # tolerance = 0.5 * 224 / 64
RADIUS = 7.0
BAND_STDS = 6.5  # reach of the drawn dot, in Gaussian standard deviations
SPAWN_LO, SPAWN_HI = 27.0, 196.0  # margin - 1 + 2 * radius from each edge
BAND_LO, BAND_HI = WALL_X - WALL_HALF - RADIUS, WALL_X + WALL_HALF + RADIUS
DOOR = (WALL_X, DOOR_Y)
_RED = (255.0, 0.0, 0.0)
_NUM_CANDIDATES = 32  # rejection-sampling draws per target
_WINDOW_HALF = math.ceil(BAND_STDS * RADIUS)  # canvas pixels the dot can change, per side


@struct.dataclass
class EnvState(environment.EnvState):
    agent_pos: jax.Array  # (2,) canvas pixels
    goal: jax.Array  # (2,) target position
    time: int


@struct.dataclass
class EnvParams(base.EnvParams):
    max_steps_in_episode: int = 100
    speed: float = 5.0
    success_radius: float = 16.0
    terminate_on_success: bool = True
    min_goal_steps: int = 25
    expert_noise: float = 2.0  # std of the Gaussian action noise of the weak expert
    door_reach_tol: float = 10.5  # the expert heads for the target within this of the door


def background() -> np.ndarray:
    """Static float image ``(CANVAS, CANVAS, 3)``: walls, border and door."""
    c = np.arange(CANVAS)
    wall = (np.abs(c - WALL_X) <= WALL_HALF)[None, :] & ~(np.abs(c - DOOR_Y) <= DOOR_HALF)[:, None]
    line = ((c >= MARGIN - BORDER_LINE) & (c < MARGIN)) | (
        (c >= CANVAS - MARGIN) & (c < CANVAS - MARGIN + BORDER_LINE)
    )
    black = wall | line[None, :] | line[:, None]
    img = np.where(black[..., None], 0.0, 255.0) * np.ones(3)
    return img


def collide(pos: jax.Array, new: jax.Array) -> jax.Array:
    """Applies the border and wall collisions to a move ``pos (2,) -> new (2,)``."""
    new = jnp.clip(new, MARGIN + RADIUS, CANVAS - MARGIN - RADIUS)
    in_door = jnp.abs(new[1] - DOOR_Y) <= DOOR_HALF + DOOR_TOL
    left = pos[0] < WALL_X
    x = jnp.where(left & (new[0] > BAND_LO) & ~in_door, BAND_LO - 0.5, new[0])
    x = jnp.where(~left & (new[0] < BAND_HI) & ~in_door, BAND_HI + 0.5, x)
    return jnp.stack([x, new[1]])


def path_length(start: jax.Array, target: jax.Array) -> jax.Array:
    """Length of the path ``start -> door centre -> target`` (the reference's min-steps test)."""
    door = jnp.asarray(DOOR)
    return jnp.linalg.norm(start - door) + jnp.linalg.norm(target - door)


def _room_x(key: jax.Array, left: jax.Array, shape=()) -> jax.Array:
    """Uniform x in the left or right room, outside the radius-widened wall band."""
    lo = jnp.where(left, SPAWN_LO, BAND_HI)
    hi = jnp.where(left, BAND_LO, SPAWN_HI)
    return jax.random.uniform(key, shape, minval=lo, maxval=hi)


def sample_task(key: jax.Array, params: EnvParams) -> tuple[jax.Array, jax.Array]:
    """Draws ``(agent (2,), target (2,))`` from the reset distribution."""
    k_side, k_x, k_y, k_tx, k_ty = jax.random.split(key, 5)
    # Rejection from the [27, 196] box keeps each room with probability proportional to width.
    width_left, width_right = BAND_LO - SPAWN_LO, SPAWN_HI - BAND_HI
    left = jax.random.uniform(k_side) * (width_left + width_right) < width_left
    agent = jnp.stack(
        [_room_x(k_x, left), jax.random.uniform(k_y, minval=SPAWN_LO, maxval=SPAWN_HI)]
    )
    tx = _room_x(k_tx, ~left, (_NUM_CANDIDATES,))
    ty = jax.random.uniform(k_ty, (_NUM_CANDIDATES,), minval=SPAWN_LO, maxval=SPAWN_HI)
    targets = jnp.stack([tx, ty], axis=1)
    lengths = jax.vmap(path_length, (None, 0))(agent, targets)
    ok = lengths >= params.min_goal_steps * params.speed
    # The first candidate that is far enough, else (rare) the farthest one.
    pick = jnp.where(ok.any(), jnp.argmax(ok), jnp.argmax(lengths))
    return agent, targets[pick]


class TwoRoom(base.PixelEnv):
    """Two-Room with uint8 ``(image_size, image_size, 3)`` pixel observations."""

    env_id = "TwoRoom-v0"
    probe_targets = ("agent_x", "agent_y")
    recolourable = True

    def __init__(self, image_size: int = 64):
        super().__init__(image_size)
        # Drawn on the reference's 224 canvas (pixel i has centre i), then resized as it does.
        self._canvas = canvas.Canvas(
            image_size, background(), (0.0, 1.0), (0.0, 1.0), truncate=True
        )
        self._std = np.float32(RADIUS)

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def render_physical(self, physical_state: jax.Array, colour=None) -> jax.Array:
        """Renders a (P,) physical state to a uint8 (H, W, 3) frame.

        Args:
            physical_state: (P,) agent position.
            colour: optional (3,) RGB agent colour in [0, 255] (default red, as in the data).
        """
        centre = physical_state[:2]
        colour = _RED if colour is None else colour

        def draw(xs, ys, img):
            # The reference's Gaussian dot, separable (xs and ys broadcast), normalised by
            # its largest value on the canvas (a window may reach past the canvas).
            def peak_normalised(c, mu):
                g = jnp.exp(-0.5 * jnp.square((c - mu) / self._std))
                on_canvas = (c > -0.5) & (c < CANVAS - 0.5)
                return g / jnp.maximum(jnp.where(on_canvas, g, 0.0).max(), 1e-30)

            alpha = peak_normalised(ys, centre[1]) * peak_normalised(xs, centre[0])
            return render.composite(img, alpha, colour)

        # Beyond BAND_STDS standard deviations the dot is < 1e-9 and cannot move a truncated
        # uint8 value, so only that window is drawn (tests compare with a whole drawing).
        frame = jnp.asarray(self._canvas.background)
        return self._canvas.window(frame, centre, _WINDOW_HALF, draw)

    def physical_state(self, state: EnvState) -> jax.Array:
        """(P,) = (2,) float32 agent position in canvas pixels."""
        return state.agent_pos.astype(jnp.float32)

    def is_success(self, physical_state, goal_state, params: EnvParams) -> jax.Array:
        """Bool (): agent centre within ``params.success_radius`` px of the target."""
        dist = jnp.linalg.norm(physical_state[:2] - goal_state[:2])
        return dist < params.success_radius

    def reset_to_state(self, key, physical_state, goal_state, params: EnvParams):
        """Starts an episode at a (P,) agent position with a (P,) target; returns (obs, state)."""
        del key
        state = EnvState(
            agent_pos=jnp.asarray(physical_state, jnp.float32)[:2],
            goal=jnp.asarray(goal_state, jnp.float32)[:2],
            time=0,
        )
        return self.get_obs(state), state

    def reset_env(self, key: jax.Array, params: EnvParams):
        """Samples agent and target in opposite rooms."""
        agent, target = sample_task(key, params)
        return self.reset_to_state(key, agent, target, params)

    def step_env(self, key, state: EnvState, action, params: EnvParams):
        """One 0.1 s step; returns (obs, state, reward, terminated, info)."""
        del key
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        pos = collide(state.agent_pos, state.agent_pos + params.speed * action)
        state = state.replace(agent_pos=pos, time=state.time + 1)
        return self.transition(state, -jnp.linalg.norm(pos - state.goal), params)

    def expert_policy(self, key: jax.Array, state: EnvState, params: EnvParams) -> jax.Array:
        """Weak expert: (A,) unit direction to the door, then to the target, plus noise.

        As the reference's ``ExpertPolicy``: when the target is in the other room, head for
        the door centre until within ``door_reach_tol`` px of it, else straight for the
        target; add N(0, ``expert_noise``^2) per component (2.0 in the reference's data
        collection, which makes progress slow and covers the rooms) and clip.
        """
        pos, target = state.agent_pos, state.goal
        other_room = (pos[0] > WALL_X) != (target[0] > WALL_X)
        door = jnp.asarray(DOOR)
        far_from_door = jnp.linalg.norm(door - pos) > params.door_reach_tol
        to = jnp.where(other_room & far_from_door, door, target) - pos
        norm = jnp.linalg.norm(to)
        direction = jnp.where(norm > 1e-8, to / jnp.maximum(norm, 1e-8), 0.0)
        noise = params.expert_noise * jax.random.normal(key, (2,))
        return jnp.clip(direction + noise, -1.0, 1.0)
