"""Contrastive losses with in-batch negatives: InfoNCE and SimCLR's NT-Xent.

Similarities are cosine similarities divided by a temperature. The negatives of every query
are all the other samples of the **global** batch: under ``jit`` with sharded inputs that
holds automatically; inside ``shard_map``/``pmap`` pass ``axis_name`` and the keys are
``all_gather``-ed, so each device's queries score against every device's keys and the loss
equals the single-device value on the global batch (gradients flow back through the gather).

Shape letters: B batch (local under ``axis_name``), N global batch, D embedding.
"""

import jax
import jax.numpy as jnp

from lewm_jax.losses._collective import global_mean

__all__ = ["info_nce", "nt_xent"]


def _check_pair(a: jax.Array, b: jax.Array, temperature: float) -> tuple[jax.Array, jax.Array]:
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"expected two (B, D) arrays of equal shape, got {a.shape} and {b.shape}")
    for x in (a, b):
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"embeddings must be floating, got dtype {x.dtype}")
    if isinstance(temperature, int | float) and temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return a.astype(jnp.float32), b.astype(jnp.float32)


def _unit(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.maximum(jnp.square(x).sum(-1, keepdims=True), eps * eps))


def _gather(x: jax.Array, axis_name) -> tuple[jax.Array, jax.Array]:
    """Global ``(N, D)`` copy of ``x (B, D)`` and the global index of local row 0."""
    if axis_name is None:
        return x, jnp.zeros((), jnp.int32)
    offset = jax.lax.axis_index(axis_name) * x.shape[0]
    return jax.lax.all_gather(x, axis_name, tiled=True), offset


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-row softmax cross-entropy of ``logits (B, K)`` against integer ``labels (B,)``."""
    picked = jnp.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
    return jax.nn.logsumexp(logits, axis=1) - picked


def _one_way(q: jax.Array, k: jax.Array, temperature, axis_name) -> jax.Array:
    keys, offset = _gather(_unit(k), axis_name)  # (N, D)
    logits = _unit(q) @ keys.T / temperature  # (B, N)
    labels = offset + jnp.arange(q.shape[0])
    return _cross_entropy(logits, labels)


def info_nce(
    queries: jax.Array,
    keys: jax.Array,
    *,
    temperature: float = 0.1,
    symmetric: bool = False,
    axis_name: str | None = None,
) -> jax.Array:
    """InfoNCE (CPC/MoCo form) with the other keys of the global batch as negatives.

    ``queries[i]`` and ``keys[i]`` are a positive pair; each query is classified among the N
    keys. For unrelated queries and keys the loss is about ``log N``.

    Args:
        queries: ``(B, D)``.
        keys: ``(B, D)``; no stop-gradient is applied (wrap them for a MoCo/BYOL target).
        temperature: softmax temperature on cosine similarities (SimCLR's default 0.1).
        symmetric: also classify each key among the N queries and average the two losses.
        axis_name: mapped axis over which the batch is split, if any.

    Returns:
        Scalar float32 mean cross-entropy over the N global queries.
    """
    q, k = _check_pair(queries, keys, temperature)
    loss = global_mean(_one_way(q, k, temperature, axis_name), axis_name)
    if symmetric:
        back = global_mean(_one_way(k, q, temperature, axis_name), axis_name)
        loss = 0.5 * (loss + back)
    return loss


def nt_xent(
    z_a: jax.Array,
    z_b: jax.Array,
    *,
    temperature: float = 0.1,
    axis_name: str | None = None,
) -> jax.Array:
    """SimCLR's normalised temperature-scaled cross-entropy (NT-Xent).

    The 2N embeddings of both views are pooled; each is classified among the other 2N - 1,
    its positive being the other view of the same sample. About ``log(2N - 1)`` for
    unrelated views.

    Args:
        z_a: first view ``(B, D)``.
        z_b: second view ``(B, D)``.
        temperature: softmax temperature on cosine similarities (0.1, SimCLR's default).
        axis_name: mapped axis over which the batch is split, if any.

    Returns:
        Scalar float32 mean cross-entropy over the 2N global anchors.
    """
    a, b = _check_pair(z_a, z_b, temperature)
    a, b = _unit(a), _unit(b)
    all_a, offset = _gather(a, axis_name)
    all_b, _ = _gather(b, axis_name)
    n = all_a.shape[0]
    candidates = jnp.concatenate([all_a, all_b]).T  # (D, 2N)
    rows = offset + jnp.arange(a.shape[0])
    anchors = jnp.concatenate([a, b])  # (2B, D)
    self_idx = jnp.concatenate([rows, rows + n])
    pos_idx = jnp.concatenate([rows + n, rows])
    logits = anchors @ candidates / temperature  # (2B, 2N)
    # An anchor must not count itself as a candidate.
    is_self = jnp.arange(2 * n)[None, :] == self_idx[:, None]
    logits = jnp.where(is_self, -jnp.inf, logits)
    return global_mean(_cross_entropy(logits, pos_idx), axis_name)
