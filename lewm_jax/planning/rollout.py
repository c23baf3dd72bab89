"""Autoregressive latent rollout of the LeWM predictor over a fixed history window.

Shape letters: S plan samples, T0 context frames, H horizon (predicted steps), A action-block
width, D latent, N = ``model.history`` (predictor context, 3 in LeWM).

Both rollouts predict ``z_1 .. z_H`` from context latents ``z_{1-T0} .. z_0`` and one action block
per step, keeping at most the last N latents/action blocks as predictor context, exactly like
the released PyTorch ``JEPA.rollout`` (which truncates a growing context to the last N).

``rollout`` scans H full predictor passes over a left-aligned buffer of N slots (the module's
causal mask keeps unfilled slots from affecting the slot read). ``rollout_cached`` computes one
token per step with the predictor's key/value cache (``JEPA.predict(..., decode=True)``) while
the window fills, then the same full-window passes: once the window slides every token's
learned position embedding changes, so earlier keys and values are stale; caching is exact,
and saves work, only until the first slide.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def _prepare(model, variables, z0, actions, context_actions):
    """Validates inputs; returns context latents ``(S, k, D)`` (k <= N) and the action
    embeddings ``(S, k - 1 + H, D)`` of the k - 1 context actions followed by the plan."""
    if actions.ndim != 3:
        raise ValueError(f"actions must have shape (S, H, A), got {tuple(actions.shape)}")
    if actions.shape[1] < 1:
        raise ValueError(f"horizon must be >= 1, got actions of shape {tuple(actions.shape)}")
    if z0.ndim == 2:
        z0 = z0[:, None]
    if z0.ndim != 3 or z0.shape[0] != actions.shape[0]:
        raise ValueError(
            f"z0 must have shape (S, D) or (S, T0, D) with S = {actions.shape[0]}, "
            f"got {tuple(z0.shape)}"
        )
    s, t0, _ = z0.shape
    want = (s, t0 - 1, actions.shape[2])
    if context_actions is None:
        if t0 > 1:
            raise ValueError(f"context_actions of shape {want} are needed when T0 = {t0} > 1")
        context_actions = jnp.zeros(want, actions.dtype)
    if tuple(context_actions.shape) != want:
        raise ValueError(
            f"context_actions must have shape {want}, got {tuple(context_actions.shape)}"
        )
    k = min(t0, model.history)
    acts = jnp.concatenate([context_actions[:, t0 - k :], actions], axis=1)
    emb = model.apply(variables, acts, method="embed_actions")
    return z0[:, t0 - k :].astype(jnp.float32), emb.astype(jnp.float32)


def _predict_slot(module, z, e, slot):
    # Runs the predictor over the whole buffer but the head only on the slot that is read:
    # the predictor is causal, so slots after ``slot`` (junk or not) cannot change it.
    h = module.predictor(z, e, train=False)
    h = lax.dynamic_index_in_dim(h, slot, axis=1, keepdims=False)
    return module.pred_proj(h, train=False)


def _left_aligned(x, n):
    """Pads ``(S, k, D)`` with zeros to ``(S, n, D)`` (finite junk: masked, never NaN)."""
    return jnp.pad(x, ((0, 0), (0, n - x.shape[1]), (0, 0)))


def _window_scan(model, variables, z_buf, e_buf, length, plan_emb):
    """Scans full-window predictor passes (the module itself) over a left-aligned buffer.

    Args:
        model: the JEPA.
        variables: its variables.
        z_buf: latents ``(S, N, D)``, slots ``< length`` filled.
        e_buf: action embeddings ``(S, N, D)``, slots ``< length - 1`` filled.
        length: number of filled latent slots (1..N).
        plan_emb: ``(S, H', D)`` embeddings of the plan blocks still to apply.

    Returns:
        Float32 predicted latents ``(S, H', D)``.
    """
    n = model.history

    def step(carry, e_t):
        z_buf, e_buf, length = carry
        last = length - 1
        e_buf = lax.dynamic_update_index_in_dim(e_buf, e_t, last, axis=1)
        z_next = model.apply(variables, z_buf, e_buf, last, method=_predict_slot)
        z_next = z_next.astype(z_buf.dtype)
        # Once the window is full, drop the oldest slot; the wrapped-around junk in the last
        # action slot is overwritten before the next prediction reads it.
        full = length == n
        z_buf = jnp.where(full, jnp.roll(z_buf, -1, axis=1), z_buf)
        e_buf = jnp.where(full, jnp.roll(e_buf, -1, axis=1), e_buf)
        z_buf = lax.dynamic_update_index_in_dim(z_buf, z_next, jnp.minimum(length, n - 1), 1)
        return (z_buf, e_buf, jnp.minimum(length + 1, n)), z_next

    carry = (z_buf, e_buf, jnp.asarray(length, jnp.int32))
    _, preds = lax.scan(step, carry, jnp.swapaxes(plan_emb, 0, 1))
    return jnp.swapaxes(preds, 0, 1)


def rollout(model, variables, z0, actions, *, context_actions=None):
    """Predicts latents for a batch of action plans, autoregressively (``train=False``).

    Args:
        model: the JEPA (``lewm_jax.models.JEPA``).
        variables: ``{"params": ..., "batch_stats": ...}``.
        z0: context latents ``(S, D)`` (one frame, as at evaluation) or ``(S, T0, D)``, oldest
            first; only the last N are used.
        actions: z-scored plan action blocks ``(S, H, A)``; ``actions[:, 0]`` follows the last
            context frame.
        context_actions: ``(S, T0 - 1, A)`` blocks that followed the earlier context frames;
            required when T0 > 1.

    Returns:
        Float32 predicted latents ``(S, H, D)``: ``[:, t]`` is the latent after ``t + 1`` plan
        blocks; ``[:, -1]`` (z_H) is what the planning cost uses.
    """
    z_ctx, emb = _prepare(model, variables, z0, actions, context_actions)
    k, n = z_ctx.shape[1], model.history
    z_buf, e_buf = _left_aligned(z_ctx, n), _left_aligned(emb[:, : k - 1], n)
    return _window_scan(model, variables, z_buf, e_buf, k, emb[:, k - 1 :])


def predict_token(model, variables, cache, z, e):
    """One decode step of the predictor: the next token's output and the updated cache.

    Args:
        model: the JEPA.
        variables: its variables (evaluation mode).
        cache: the predictor's ``"cache"`` collection (from a decode ``init``).
        z: the token's latent ``(S, 1, D)``.
        e: its action embedding ``(S, 1, D)``.

    Returns:
        ``(pred (S, 1, D), cache)``.
    """
    pred, mutated = model.apply(
        {**variables, "cache": cache}, z, e, decode=True, method="predict", mutable=["cache"]
    )
    return pred, mutated["cache"]


def _empty_cache(model, s):
    """The predictor's zero decode cache for ``s`` sequences of N tokens.

    Sized as in flax's decode pattern, by a decode ``init`` on a full window; under
    ``eval_shape``, so no parameters are initialised or computed.
    """
    z = jax.ShapeDtypeStruct((s, model.history, model.latent_dim), jnp.float32)
    init = functools.partial(model.init, method="predict", decode=True)
    shapes = jax.eval_shape(init, jax.random.key(0), z, z)["cache"]
    return jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)


def rollout_cached(model, variables, z0, actions, *, context_actions=None):
    """Same as :func:`rollout`, with a key/value cache while the window fills.

    Phase 1 scans single-token passes over window slots ``0 .. k + F - 2`` (the k context
    tokens, then each new prediction), reusing cached keys/values, for the F = min(H, N - k + 1)
    predictions made before the window first slides. Phase 2 runs full-window passes (token
    positions changed, so nothing cached is valid). For one context frame, N = 3, H = 5 that is
    1+1+1+3+3 = 9 token passes instead of 15 (left-aligned buffer) or 12 (the reference).

    Args and Returns: as :func:`rollout`.
    """
    z_ctx, emb = _prepare(model, variables, z0, actions, context_actions)
    s, k, d = z_ctx.shape
    n, horizon = model.history, actions.shape[1]
    num_fill = min(horizon, n - k + 1)
    # Before the window slides, window slot j holds sequence latent j: context, predictions,
    # then a spare index for the outputs of context slots other than the last.
    seq = jnp.concatenate([z_ctx, jnp.zeros((s, num_fill + 1, d), z_ctx.dtype)], axis=1)
    slots = np.arange(k + num_fill - 1)
    outs = np.where(slots >= k - 1, slots + 1, k + num_fill)

    def token_pass(carry, row):
        # The cache's index advances with ``slot``: token ``slot`` takes position ``slot``.
        seq, cache = carry
        slot, out = row
        z_in = lax.dynamic_slice_in_dim(seq, slot, 1, axis=1)
        e_in = lax.dynamic_slice_in_dim(emb, slot, 1, axis=1)
        z_next, cache = predict_token(model, variables, cache, z_in, e_in)
        seq = lax.dynamic_update_slice_in_dim(seq, z_next.astype(seq.dtype), out, axis=1)
        return (seq, cache), None

    carry = (seq, _empty_cache(model, s))
    (seq, _), _ = lax.scan(token_pass, carry, (slots, outs))
    preds = seq[:, k : k + num_fill]
    if num_fill == horizon:
        return preds
    # The window is now full: the k context latents plus num_fill predictions are N + 1.
    z_buf = jnp.concatenate([z_ctx, preds], axis=1)[:, -n:]
    e_buf = _left_aligned(emb[:, k + num_fill - n : k + num_fill - 1], n)
    rest = _window_scan(model, variables, z_buf, e_buf, n, emb[:, k + num_fill - 1 :])
    return jnp.concatenate([preds, rest], axis=1)
