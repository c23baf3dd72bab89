"""Surprise (violation of expectation): the world model's prediction error per step.

The surprise of frame t + 1 is the squared error, averaged over the D latent dimensions (the
training loss's scale), between the predictor's teacher-forced prediction from frames
``<= t`` and the encoding of frame t + 1. Perturbed episodes replay an episode's raw actions
from its start state; from frame ``step`` on the agent is teleported (the physics continues
from the new state) or drawn in another colour. :func:`run_surprise` compares the surprise of
frame ``step`` (index ``step - 1`` of a curve) with the unperturbed control by a paired t-test.

Shape letters: E episodes, T frames (one per ``frameskip`` env steps), L env steps, A action
(block) width, P physical state, D latent, N = ``model.history``, K teleport candidates.
"""

import functools
import math

from lewm_jax._deps import require

require("lewm_jax.analysis.surprise", "train", "einops")

import einops  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from lewm_jax.data import episodes as episodes_lib  # noqa: E402
from lewm_jax.data.episodes import Episodes  # noqa: E402

KINDS = ("control", "teleport", "colour")


def _windows(num_frames: int, history: int) -> tuple[np.ndarray, np.ndarray]:
    """Context frame indices ``(T-1, N)`` and the slot ``(T-1,)`` predicting frame t + 1."""
    t = np.arange(num_frames - 1)
    start = np.maximum(t - history + 1, 0)
    idx = np.minimum(start[:, None] + np.arange(history), num_frames - 1)
    return idx, t - start


@functools.cache
def _surprise_fn(model):
    @jax.jit
    def fn(variables, pixels, blocks):
        e, t = pixels.shape[:2]
        n = model.history
        idx, slot = _windows(t, n)
        z = model.apply(variables, pixels, method="encode")
        emb = model.apply(variables, blocks, method="embed_actions").astype(jnp.float32)
        # Slots after the one read are zeroed: causal masking ignores them, but a non-finite
        # value there would still leak through 0 * NaN in the attention sum.
        keep = (np.arange(n)[None] <= slot[:, None])[None, :, :, None]
        zw = einops.rearrange(jnp.where(keep, z[:, idx], 0.0), "e t n d -> (e t) n d")
        ew = einops.rearrange(jnp.where(keep, emb[:, idx], 0.0), "e t n d -> (e t) n d")
        pred = model.apply(variables, zw, ew, method="predict").astype(jnp.float32)
        pred = einops.rearrange(pred, "(e t) n d -> e t n d", e=e)
        pred = jnp.take_along_axis(pred, slot[None, :, None, None], axis=2)[:, :, 0]
        return jnp.mean(jnp.square(pred - z[:, 1:]), axis=-1)

    return fn


def surprise_curve(model, variables, pixels, action_blocks) -> jax.Array:
    """Per-step surprise of a batch of episodes (evaluation mode, jitted).

    Prediction of frame t + 1 sees frames ``max(0, t - N + 1) .. t`` and their action
    blocks, the sliding history window of the training clips.

    Args:
        model: the JEPA.
        variables: ``{"params": ..., "batch_stats": ...}``.
        pixels: uint8 frames ``(E, T, H, W, 3)``, T >= 2.
        action_blocks: z-scored action blocks ``(E, T, A)``; block t leads from frame t to
            t + 1 (the last is unused).

    Returns:
        Float32 ``(E, T - 1)``: ``[:, t]`` = mean over D of the squared error of frame t + 1.
    """
    pixels, blocks = jnp.asarray(pixels), jnp.asarray(action_blocks, jnp.float32)
    if pixels.ndim != 5 or pixels.shape[-1] != 3 or pixels.shape[1] < 2:
        raise ValueError(f"pixels must have shape (E, T >= 2, H, W, 3), got {pixels.shape}")
    if pixels.dtype != jnp.uint8:
        raise ValueError(f"pixels must be uint8, got dtype {pixels.dtype}")
    if blocks.ndim != 3 or blocks.shape[:2] != pixels.shape[:2]:
        raise ValueError(
            f"action_blocks must have shape (E, T, A) = {pixels.shape[:2]} + (A,), "
            f"got {blocks.shape}"
        )
    return _surprise_fn(model)(variables, pixels, blocks)


def paired_t_test(a, b) -> tuple[float, float]:
    """Two-sided paired Student t-test of ``mean(a - b) = 0``.

    The p-value is ``I_x(df / 2, 1 / 2)`` with ``x = df / (df + t^2)``, the regularised
    incomplete beta form of the t distribution's two tails. Differences that are all equal
    give ``(0, 1)`` when zero and ``(+-inf, 0)`` otherwise.

    Args:
        a: paired samples ``(E,)``, E >= 2.
        b: ``(E,)``.

    Returns:
        ``(t, p)`` as floats, df = E - 1.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.shape[0] < 2:
        raise ValueError(f"a and b must both have shape (E,) with E >= 2, got {a.shape}, {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a and b must be finite, got NaN or inf")
    d = a - b
    n, mean, sd = d.shape[0], d.mean(), d.std(ddof=1)
    if sd == 0.0:
        return (0.0, 1.0) if mean == 0.0 else (math.copysign(math.inf, mean), 0.0)
    t = mean / (sd / math.sqrt(n))
    df = n - 1
    p = jax.scipy.special.betainc(df / 2.0, 0.5, df / (df + t * t))
    return float(t), float(p)


def action_blocks(actions, mean, std, frameskip: int, num_frames: int) -> np.ndarray:
    """Raw actions ``(E, L, A_raw)`` -> z-scored blocks ``(E, T, frameskip * A_raw)``.

    As the training clips (:func:`lewm_jax.data.episodes.action_blocks`), with steps past L
    padded as NaN, i.e. 0.
    """
    actions = np.asarray(actions, np.float32)
    length = actions.shape[1]
    pad = max(num_frames * frameskip - length, 0)
    actions = np.pad(actions, ((0, 0), (0, pad), (0, 0)), constant_values=np.nan)
    return episodes_lib.action_blocks(actions[:, : num_frames * frameskip], mean, std, frameskip)


def replay_states(env, env_params, key, start, goal, actions, *, teleport_at=None, num_cand=8):
    """Replays raw actions from a start state, optionally teleporting at env step ``teleport_at``.

    The teleport target is, of K states drawn with ``env.reset_env``, the one whose physical
    state is farthest from the current one, so every teleport is a large jump to a valid state.

    Args:
        env: an environment of :mod:`lewm_jax.envs`.
        env_params: its parameters.
        key: PRNG key (teleport candidates, env steps).
        start: ``(P,)`` physical start state.
        goal: ``(P,)`` goal state (it only shapes reward and success).
        actions: finite raw actions ``(L, A_raw)``; state t is recorded before action t.
        teleport_at: env step whose state is replaced (None: no teleport).
        num_cand: K.

    Returns:
        The env-state pytree with leading axis L.
    """
    k_reset, k_cand, k_steps = jax.random.split(key, 3)
    _, state = env.reset_to_state(k_reset, start, goal, env_params)
    cand_states = jax.vmap(lambda k: env.reset_env(k, env_params)[1])(
        jax.random.split(k_cand, num_cand)
    )
    cands = jax.vmap(env.physical_state)(cand_states)

    def body(state, xs):
        t, action = xs
        if teleport_at is not None:
            here = env.physical_state(state)
            dest = cands[jnp.argmax(jnp.linalg.norm(cands - here, axis=-1))]
            _, moved = env.reset_to_state(k_reset, dest, goal, env_params)
            state = jax.tree.map(lambda m, s: jnp.where(t == teleport_at, m, s), moved, state)
        _, nxt, *_ = env.step_env(jax.random.fold_in(k_steps, t), state, action, env_params)
        return nxt, state

    return jax.lax.scan(body, state, (jnp.arange(actions.shape[0]), actions))[1]


def _check_colour(env) -> None:
    if not getattr(env, "recolourable", False):
        raise ValueError(f"{env.name} has no render colour parameter; expected e.g. TwoRoom-v0")


def render_frames(env, env_params, states, *, colour_at=None, colour=None) -> jax.Array:
    """Renders states ``(T, ...)`` to uint8 ``(T, H, W, 3)``, recoloured from ``colour_at`` on."""
    frames = jax.vmap(lambda s: env.render(s, env_params))(states)
    if colour_at is None:
        return frames
    _check_colour(env)
    recoloured = jax.vmap(lambda s: env.render(s, env_params, colour=colour))(states)
    after = jnp.arange(frames.shape[0]) >= colour_at
    return jnp.where(after[:, None, None, None], recoloured, frames)


def perturbed_frames(env, env_params, kind: str, *, step: int, frameskip: int, colour, num_cand=8):
    """Returns ``frames(key, start (P,), goal (P,), actions (L, A_raw)) -> (T, H, W, 3)``.

    Frame j shows env step ``j * frameskip``; T = (L - 1) // frameskip + 1. ``kind`` is
    ``"control"``, ``"teleport"`` (at env step ``step * frameskip``) or ``"colour"`` (frames
    ``>= step`` drawn in ``colour``, an RGB triple in [0, 255]).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "colour":
        _check_colour(env)

    def frames(key, start, goal, actions):
        teleport_at = step * frameskip if kind == "teleport" else None
        states = replay_states(
            env, env_params, key, start, goal, actions, teleport_at=teleport_at, num_cand=num_cand
        )
        states = jax.tree.map(lambda x: x[::frameskip], states)
        colour_at = step if kind == "colour" else None
        return render_frames(env, env_params, states, colour_at=colour_at, colour=colour)

    return frames


def _moments(x) -> dict:
    return {"mean": float(np.mean(x)), "sd": float(np.std(x, ddof=1))}


def run_surprise(
    model,
    variables,
    env,
    env_params,
    episodes: Episodes,
    *,
    key: jax.Array,
    action_mean,
    action_std,
    frameskip: int,
    step: int | None = None,
    colour=(0.0, 0.0, 255.0),
    num_cand: int = 8,
) -> dict:
    """Surprise of control, teleport and colour versions of held-out episodes.

    Every episode is cut to the shortest one's L steps, T = (L - 1) // frameskip + 1 frames.

    Args:
        model: the JEPA.
        variables: its variables.
        env: the environment the episodes come from.
        env_params: its parameters.
        episodes: E >= 2 held-out episodes with a ``state`` column.
        key: PRNG key of the teleport targets.
        action_mean: ``(A_raw,)`` training-data action mean.
        action_std: ``(A_raw,)`` training-data action std.
        frameskip: env steps per frame and raw actions per block.
        step: frame index 1..T-1 where the perturbation first shows (default T // 2).
        colour: RGB agent colour of the colour condition.
        num_cand: teleport candidates K.

    Returns:
        Dict: ``step``, ``num_frames``, ``episodes``, ``curves`` ``{kind: (E, T - 1)}``,
        ``at_step`` ``{kind: {"mean", "sd"}}`` of surprise index ``step - 1`` (the prediction
        of frame ``step``), and ``tests`` ``{kind: {"t", "p"}}`` against the control.
    """
    if episodes.state is None:
        raise ValueError("episodes need a physical `state` column to replay them")
    if len(episodes.ep_len) < 2:
        raise ValueError(f"need at least 2 episodes for a paired test, got {len(episodes.ep_len)}")
    length = int(episodes.ep_len.min())
    num_frames = (length - 1) // frameskip + 1 if frameskip >= 1 else 0
    if num_frames < 2:
        raise ValueError(
            f"frameskip {frameskip} with episodes of {length} steps gives {num_frames} frames; "
            "expected frameskip >= 1 and at least 2 frames"
        )
    step = num_frames // 2 if step is None else step
    if not 1 <= step <= num_frames - 1:
        raise ValueError(f"step must be in [1, {num_frames - 1}] (frames), got {step}")
    idx = episodes.ep_offset[:, None] + np.arange(length)
    raw = episodes.actions[idx]
    blocks = action_blocks(raw, action_mean, action_std, frameskip, num_frames)
    args = (
        jax.random.split(key, len(idx)),
        episodes.state[idx[:, 0]],
        episodes.state[idx[:, -1]],
        np.nan_to_num(raw, nan=0.0),
    )
    curves = {}
    for kind in KINDS:
        make = perturbed_frames(
            env, env_params, kind, step=step, frameskip=frameskip, colour=colour, num_cand=num_cand
        )
        frames = jax.jit(jax.vmap(make))(*args)
        curves[kind] = np.asarray(surprise_curve(model, variables, frames, blocks))
    at = {kind: c[:, step - 1] for kind, c in curves.items()}
    tests = {}
    for kind in KINDS[1:]:
        t, p = paired_t_test(at[kind], at["control"])
        tests[kind] = {"t": t, "p": p}
    return {
        "step": step,
        "frameskip": frameskip,
        "num_frames": num_frames,
        "episodes": len(idx),
        "curves": curves,
        "at_step": {kind: _moments(x) for kind, x in at.items()},
        "tests": tests,
    }
