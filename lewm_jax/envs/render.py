"""Pure-JAX rasterisation helpers shared by the pixel environments.

Scenes are drawn in float, in any world units, at the original's 224 px (a
:class:`~lewm_jax.envs.canvas.Canvas` resizes them to the frame size): a renderer
precomputes the pixel-centre coordinates once (:func:`pixel_grid`) and evaluates shapes on
them. Shapes are described by signed distances (negative inside), turned into
anti-aliased coverage over one pixel (:func:`coverage`) and alpha-composited onto an
``(H, W, 3)`` float image with values in [0, 255] (:func:`composite`); :func:`to_uint8`
finishes a frame. Coordinates ``xs`` and ``ys`` are passed as arrays broadcastable to
``(H, W)``, normally ``(1, W)`` and ``(H, 1)``, so that distance fields cost one pass over
the pixels and nothing is stored per pixel between frames.

A small shape changes only a window of the background; :func:`paste` writes a window into
the uint8 background in place, by a loop over the batch under ``vmap`` (where
``dynamic_update_slice`` would become a per-element scatter, slower on CPU than drawing the
whole frame).

Shape letters: H/W pixels, N/M window rows/columns, B batch.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def pixel_centres(size: int, lo: float, hi: float) -> np.ndarray:
    """World coordinates ``(size,)`` of the pixel centres of an axis spanning [lo, hi]."""
    return (lo + (np.arange(size) + 0.5) * (hi - lo) / size).astype(np.float32)


def pixel_grid(size: int, lo: float, hi: float, *, y_up: bool = False):
    """Pixel-centre coordinates of a square view of the world box [lo, hi]^2.

    Args:
        size: H = W, pixels per side.
        lo: world coordinate of the left (and top, or bottom when ``y_up``) image edge.
        hi: world coordinate of the opposite edge.
        y_up: world y grows upwards (row 0 shows y = hi), as for a camera looking down.

    Returns:
        ``(xs (1, W), ys (H, 1), edge)``: NumPy coordinates and the pixel size in world units.
    """
    c = pixel_centres(size, lo, hi)
    ys = c[::-1] if y_up else c
    return c[None, :], ys[:, None].copy(), (hi - lo) / size


def coverage(sdf: jax.Array, edge: float) -> jax.Array:
    """Anti-aliased coverage in [0, 1] of the region ``sdf < 0``, ramped over one pixel."""
    return jnp.clip(0.5 - sdf / edge, 0.0, 1.0)


def disc_sdf(xs, ys, centre: jax.Array, radius) -> jax.Array:
    """Signed distance ``(H, W)`` to a disc with centre ``(2,)``."""
    return jnp.hypot(xs - centre[0], ys - centre[1]) - radius


def capsule_sdf(xs, ys, a: jax.Array, b: jax.Array, radius) -> jax.Array:
    """Signed distance ``(H, W)`` to the segment ``a (2,)``-``b (2,)`` thickened by ``radius``.

    A thick line with round caps; ``radius`` 0 gives the distance to the segment.
    """
    ax, ay = xs - a[0], ys - a[1]
    bx, by = b[0] - a[0], b[1] - a[1]
    t = jnp.clip((ax * bx + ay * by) / jnp.maximum(bx * bx + by * by, 1e-12), 0.0, 1.0)
    return jnp.hypot(ax - t * bx, ay - t * by) - radius


def box_sdf(xs, ys, centre: jax.Array, half: jax.Array, angle=0.0) -> jax.Array:
    """Signed distance ``(H, W)`` to a box of half extents ``half (2,)`` rotated by ``angle``.

    The rotation maps box coordinates to world coordinates by ``[[cos, -sin], [sin, cos]]``.
    """
    c, s = jnp.cos(angle), jnp.sin(angle)
    dx, dy = xs - centre[0], ys - centre[1]
    qx = jnp.abs(c * dx + s * dy) - half[0]
    qy = jnp.abs(-s * dx + c * dy) - half[1]
    outside = jnp.hypot(jnp.maximum(qx, 0.0), jnp.maximum(qy, 0.0))
    return outside + jnp.minimum(jnp.maximum(qx, qy), 0.0)


def composite(img: jax.Array, alpha: jax.Array, colour) -> jax.Array:
    """Alpha-blends a flat ``colour (3,)`` over ``img (H, W, 3)`` with ``alpha (H, W)``."""
    return img + alpha[..., None] * (jnp.asarray(colour, img.dtype) - img)


@jax.custom_batching.custom_vmap
def paste(image: jax.Array, patch: jax.Array, start: jax.Array) -> jax.Array:
    """``image (H, W, C)`` with ``patch (N, M, C)`` written at row/column ``start (2,)`` int32."""
    return lax.dynamic_update_slice(image, patch, (start[0], start[1], 0))


@paste.def_vmap
def _paste_batched(axis_size, in_batched, image, patch, start):
    image, patch, start = (
        x if batched else jnp.broadcast_to(x, (axis_size, *x.shape))
        for x, batched in zip((image, patch, start), in_batched, strict=True)
    )

    # One in-place window copy per batch element: the batched update would be a scatter.
    def write(i, out):
        return lax.dynamic_update_slice(out, patch[i][None], (i, start[i, 0], start[i, 1], 0))

    return lax.fori_loop(0, axis_size, write, image), True


def to_uint8(img: jax.Array, *, truncate: bool = False) -> jax.Array:
    """Float image in [0, 255] to uint8, rounded (or truncated, as torch's ``.to(uint8)``)."""
    img = jnp.clip(img, 0.0, 255.0)
    return (jnp.floor(img) if truncate else jnp.round(img)).astype(jnp.uint8)
