"""Frame sizes and the one resize filter: Pillow's antialiased bilinear, as the original uses.

stable-worldmodel draws every environment at 224 px (Push-T: a 512 px canvas shrunk to 224)
and its ``MegaWrapper`` resizes each frame and goal image to the requested size with
``PIL.Image.resize(..., BILINEAR)``; its datasets store those 224 px frames. So a frame at any
size is "the 224 px frame, Pillow-bilinear resized", and lewm_jax produces it the same way in
both places that resize:

- data files: :func:`resize_frames` calls Pillow itself (C, no JAX, so loader workers stay
  light);
- pure-JAX environments: :class:`lewm_jax.envs.render.Resize` runs Pillow's arithmetic in the
  graph, from the taps and fixed-point weights of :func:`bilinear_taps`, and is bit-identical
  to Pillow (tests/test_frames.py), so a file's frames and an env's frames agree exactly.

Pillow's filter (``Resample.c``): the triangle kernel widened by the downscale factor
(area-like antialiasing when shrinking), weights normalised per output pixel and rounded to
22-bit fixed point, a horizontal pass rounded to uint8, then a vertical pass. This module
imports NumPy only.
"""

import math

import numpy as np

PRECISION_BITS = 22  # Pillow's 32 - 8 - 2: uint8 x weights summed in int32 without overflow
NATIVE_SIZE = 224  # the side the original renders every environment at


def check_size(size, what: str = "frame size") -> int:
    """Returns ``size`` as an int, or raises one line naming it when it is not a positive int."""
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"{what} {size!r} is not a positive integer; expected e.g. 64 or 224")
    return int(size)


def bilinear_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow's bilinear taps for resizing an axis of ``src`` pixels to ``dst``.

    Output pixel i is ``sum_t in[first[i] + t] * weights[i, t]`` (t < count[i]), plus
    ``2 ** (PRECISION_BITS - 1)``, shifted right by ``PRECISION_BITS`` and clipped to
    [0, 255]; Pillow's ``precompute_coeffs`` and ``normalize_coeffs_8bpc`` in float64, in
    its order of operations.

    Returns:
        ``first (dst,)`` int32, ``count (dst,)`` int32 and ``weights (dst, K)`` int32, with
        K Pillow's ``ksize`` and zeros beyond each ``count``.
    """
    src, dst = check_size(src, "source size"), check_size(dst, "output size")
    scale = src / dst
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale  # the triangle's support, 1, widened when shrinking
    ksize = int(math.ceil(support)) * 2 + 1
    first = np.zeros(dst, np.int32)
    count = np.zeros(dst, np.int32)
    weights = np.zeros((dst, ksize), np.int32)
    for i in range(dst):
        centre = (i + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), src)
        x = np.arange(lo, hi, dtype=np.float64)
        w = np.maximum(1.0 - np.abs((x - centre + 0.5) * (1.0 / filterscale)), 0.0)
        total = 0.0
        for v in w:  # sequential sum, as Pillow's loop (np.sum pairs terms differently)
            total += v
        if total != 0.0:
            w = w / total
        # Pillow truncates 0.5 + w * 2^22 towards zero (its weights are never negative here).
        weights[i, : hi - lo] = np.trunc(0.5 + w * (1 << PRECISION_BITS)).astype(np.int32)
        first[i], count[i] = lo, hi - lo
    return first, count, weights


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """Resizes uint8 ``(..., H, W, 3)`` frames to ``(..., size, size, 3)`` as the original does.

    Pillow's bilinear ``Image.resize``, frame by frame (stable-worldmodel's ``MegaWrapper``);
    frames already at ``size`` come back unchanged.
    """
    size = check_size(size)
    if frames.shape[-3:-1] == (size, size):
        return frames
    from PIL import Image

    lead = frames.shape[:-3]
    flat = frames.reshape(-1, *frames.shape[-3:])
    out = np.empty((len(flat), size, size, 3), np.uint8)
    for i, f in enumerate(flat):
        out[i] = np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BILINEAR))
    return out.reshape(*lead, size, size, 3)
