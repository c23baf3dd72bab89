"""Scenes drawn at the original's 224 px and delivered at any frame size, as the original does.

stable-worldmodel renders every environment at 224 px and resizes to the requested size with
Pillow (:mod:`lewm_jax.frames`). A :class:`Canvas` does the same for a pure-JAX renderer: the
renderer supplies a static float background and *draw functions*, ``draw(xs, ys, img) ->
img``, that paint shapes over ``img`` at pixel-centre world coordinates ``xs``, ``ys``
(broadcastable arrays) using only broadcasting, so that swapping the shapes of ``xs`` and
``ys`` draws the transposed image, which the resize reads fastest.

Two ways to draw:

- :meth:`Canvas.window`: the scene differs from the background only within ``half`` source
  pixels of a point; the canvas draws the source patch that the affected output pixels read,
  resizes it (:meth:`lewm_jax.envs.resize.Resize.patch`) and pastes it into the resized
  background. Windows pasted later win, so a window drawn with everything goes last.
- :meth:`Canvas.full`: the whole frame is drawn and resized.

At 224 px the resize is the identity and both come down to drawing at 224 px, as before.
"""

import jax.numpy as jnp
import numpy as np
from jax import lax

from lewm_jax import frames
from lewm_jax.envs import render
from lewm_jax.envs.resize import Resize, materialise


class Canvas:
    """Frames of ``size`` px of scenes drawn at ``frames.NATIVE_SIZE`` px.

    Args:
        size: output side (any positive int).
        background: static float ``(S, S, 3)`` image in [0, 255] at the native side S.
        x: ``(x0, dx)``: world x of the centre of pixel column j is ``x0 + j dx``.
        y: ``(y0, dy)``: world y of the centre of pixel row i is ``y0 + i dy``.
        truncate: finish pixels by truncation (torch's ``.to(uint8)``) instead of rounding.
    """

    def __init__(self, size: int, background: np.ndarray, x, y, *, truncate: bool = False):
        self.size = frames.check_size(size)
        self.native = background.shape[0]
        self.resize = Resize(self.native, self.size)
        self._x, self._y, self._truncate = x, y, truncate
        background = np.asarray(background, np.float32)
        native_uint8 = np.asarray(self.to_uint8(jnp.asarray(background)))
        self.background = frames.resize_frames(native_uint8, self.size)  # (size, size, 3)
        # Drawn transposed, (column, row, 3), when resized: the layout the resize reads.
        self._columns_first = not self.resize.identity
        # Patches may reach past the frame (read with weight 0): pad by the widest one.
        self._pad = p = self.native
        source = background.transpose(1, 0, 2) if self._columns_first else background
        self._source = np.pad(source, ((p, p), (p, p), (0, 0)), mode="edge")
        # Pixel-centre coordinates of the padded pixels, computed in float64 once.
        j = np.arange(-p, self.native + p, dtype=np.float64)
        self._xs = (x[0] + j * x[1]).astype(np.float32)
        self._ys = (y[0] + j * y[1]).astype(np.float32)

    def to_uint8(self, img):
        """The renderer's float-to-uint8 conversion."""
        return render.to_uint8(img, truncate=self._truncate)

    def pixel(self, world_xy) -> tuple:
        """Source (column, row) pixel coordinates of a world point (pixel i has centre i)."""
        return (
            (world_xy[0] - self._x[0]) / self._x[1],
            (world_xy[1] - self._y[0]) / self._y[1],
        )

    def _draw(self, draw, c0, r0, cols: int, rows: int):
        """``draw`` over the uint8 source patch of columns c0.. and rows r0.., in the layout
        the resize reads: ``(rows, cols, 3)``, or ``(cols, rows, 3)`` when resizing."""
        p = self._pad
        xs = lax.dynamic_slice(jnp.asarray(self._xs), (c0 + p,), (cols,))
        ys = lax.dynamic_slice(jnp.asarray(self._ys), (r0 + p,), (rows,))
        source = jnp.asarray(self._source)
        if self._columns_first:
            img = lax.dynamic_slice(source, (c0 + p, r0 + p, 0), (cols, rows, 3))
            return materialise(self.to_uint8(draw(xs[:, None], ys[None, :], img)))
        img = lax.dynamic_slice(source, (r0 + p, c0 + p, 0), (rows, cols, 3))
        return self.to_uint8(draw(xs[None, :], ys[:, None], img))

    def window(self, frame, world_xy, half: int, draw):
        """``frame (size, size, 3)`` uint8 with the scene near ``world_xy`` drawn into it.

        Args:
            frame: the frame so far (start from ``jnp.asarray(canvas.background)``).
            world_xy: (2,) world point the changes are centred on.
            half: static int: the scene differs from the background only within ``half``
                native pixels (per axis) of the point's pixel.
            draw: ``draw(xs, ys, img) -> img`` (float, broadcasting only).
        """
        col, row = self.pixel(world_xy)
        i0, r0, n, rows = self.resize.window(row, half)
        j0, c0, m, cols = self.resize.window(col, half)
        patch = self._draw(draw, c0, r0, cols, rows)
        patch = self.resize.patch(patch, (i0, j0), (n, m), columns_first=self._columns_first)
        return render.paste(frame, patch, jnp.stack([i0, j0]))

    def full(self, draw):
        """The whole scene ``draw(xs, ys, background)``, as a ``(size, size, 3)`` uint8 frame."""
        zero = jnp.zeros((), jnp.int32)
        patch = self._draw(draw, zero, zero, self.native, self.native)
        return self.resize(patch, columns_first=self._columns_first)
