"""Episodes held as flat columns (the stable-worldmodel layout), and their action statistics.

Every column is a flat array over all steps of all episodes, plus ``ep_offset``/``ep_len``.
Shape letters: N steps, E episodes, C clips, A action dim.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Episodes:
    """Episodes stored as flat columns.

    Attributes:
        pixels: uint8 frames ``(N, H, W, 3)``.
        actions: float actions ``(N, A)``; NaN allowed (episode ends).
        ep_offset: first step of each episode ``(E,)``.
        ep_len: number of steps of each episode ``(E,)``.
        state: optional physical state ``(N, S)`` for probes and evaluation.
    """

    pixels: np.ndarray
    actions: np.ndarray
    ep_offset: np.ndarray
    ep_len: np.ndarray
    state: np.ndarray | None = None

    def __post_init__(self):
        p, a = self.pixels, self.actions
        if p.ndim != 4 or p.shape[-1] != 3:
            raise ValueError(f"pixels must have shape (N, H, W, 3), got {p.shape}")
        if p.dtype != np.uint8:
            raise TypeError(f"pixels must be uint8, got dtype {p.dtype}")
        if a.ndim != 2 or a.shape[0] != p.shape[0]:
            raise ValueError(f"actions must have shape (N={p.shape[0]}, A), got {a.shape}")
        if self.ep_offset.shape != self.ep_len.shape or self.ep_len.ndim != 1:
            raise ValueError(
                f"ep_offset {self.ep_offset.shape} and ep_len {self.ep_len.shape} must be (E,)"
            )
        if np.any(self.ep_offset + self.ep_len > p.shape[0]) or np.any(self.ep_len < 0):
            raise ValueError(f"episodes (ep_offset + ep_len) exceed the {p.shape[0]} stored steps")

    @property
    def action_dim(self) -> int:
        """A, the raw action dimension."""
        return self.actions.shape[1]


def action_stats(actions) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std of raw actions, ignoring NaN; std floored at 1e-6.

    Args:
        actions: ``(N, A)`` array, or an iterable of ``(n, A)`` chunks (one streaming pass
            over a column too large for memory; chunks are merged with Chan et al.'s
            pairwise update in float64, so the result does not depend on the chunking).

    Returns:
        ``(mean, std)``, each ``(A,)`` float32.
    """
    chunks = [actions] if isinstance(actions, np.ndarray) else actions
    count = mean = m2 = None
    for chunk in chunks:
        x = np.asarray(chunk, np.float64)
        if x.ndim != 2:
            raise ValueError(f"actions must be (N, A) chunks, got shape {x.shape}")
        valid = ~np.isnan(x)
        n = valid.sum(0)
        s = np.where(valid, x, 0.0).sum(0)
        mu = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
        c2 = np.where(valid, (x - mu) ** 2, 0.0).sum(0)
        if count is None:
            count, mean, m2 = n, mu, c2
            continue
        total = count + n
        delta = mu - mean
        w = np.divide(n, total, out=np.zeros_like(mu), where=total > 0)
        mean = mean + delta * w
        m2 = m2 + c2 + delta**2 * count * w
        count = total
    if count is None or not np.all(count > 0):
        raise ValueError("action statistics need at least one non-NaN value per dimension")
    std = np.sqrt(m2 / count)
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)


def action_blocks(actions, mean, std, frameskip: int) -> np.ndarray:
    """Raw actions ``(..., T * k, A)`` -> model-ready action blocks ``(..., T, k * A)`` float32.

    The one normalisation of actions, shared by training clips and analysis: per-dimension
    z-score with the training data's ``mean``/``std`` ``(A,)``, NaN (no action after an
    episode's last frame) set to 0, then each block of k = ``frameskip`` consecutive actions
    flattened.
    """
    actions = np.asarray(actions)
    *lead, steps, a = actions.shape
    if frameskip < 1 or steps % frameskip:
        raise ValueError(f"{steps} actions do not split into blocks of frameskip {frameskip}")
    z = np.nan_to_num(((actions - mean) / std).astype(np.float32), nan=0.0)
    return z.reshape(*lead, steps // frameskip, frameskip * a)


def episode_offsets(ep_len) -> np.ndarray:
    """First steps ``(E,)`` int64 of episodes of lengths ``ep_len (E,)`` stored back to back."""
    ep_len = np.asarray(ep_len, np.int64)
    return np.concatenate([[0], np.cumsum(ep_len)[:-1]]).astype(np.int64)


def concat_episodes(parts: list[Episodes]) -> Episodes:
    """One :class:`Episodes` holding ``parts`` in order (no copy of a single part)."""
    if len(parts) == 1:
        return parts[0]
    ep_len = np.concatenate([p.ep_len for p in parts])
    states = [p.state for p in parts]
    return Episodes(
        pixels=np.concatenate([p.pixels for p in parts]),
        actions=np.concatenate([p.actions for p in parts]),
        ep_offset=episode_offsets(ep_len),
        ep_len=ep_len,
        state=None if any(s is None for s in states) else np.concatenate(states),
    )


def clip_starts(ep_offset, ep_len, span: int) -> np.ndarray:
    """Global start steps of every clip that fits ``span`` steps inside its episode ``(C,)``."""
    starts = [
        off + np.arange(n - span + 1) for off, n in zip(ep_offset, ep_len, strict=True) if n >= span
    ]
    return np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, np.int64)


def goal_pairs(episodes: Episodes, num: int, *, offset: int, seed: int) -> tuple:
    """The evaluation protocol's start/goal pairs: dataset steps ``(start (E,), goal (E,))``
    with ``goal = start + offset`` in the same episode, the ``num`` starts drawn without
    replacement with ``seed``."""
    valid = clip_starts(episodes.ep_offset, episodes.ep_len, offset + 1)
    if len(valid) < num:
        raise ValueError(
            f"only {len(valid)} frames have a goal {offset} steps later; {num} start/goal "
            "pairs requested"
        )
    start = np.random.default_rng(seed).choice(valid, num, replace=False)
    return start, start + offset
