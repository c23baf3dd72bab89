"""Pillow's bilinear resize in the graph, bit-identical to :func:`lewm_jax.frames.resize_frames`.

The pure-JAX environments draw at the original's 224 px and resize here, so that their frames
at any size equal the original's (which resizes with Pillow) and the data loader's resize of
files. See :class:`Resize`.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from lewm_jax import frames


class Resize:
    """Pillow's bilinear resize of square uint8 frames, ``src`` to ``dst`` px, in the graph.

    Bit-identical to :func:`lewm_jax.frames.resize_frames` (the original's resize): integer
    taps and weights of :func:`lewm_jax.frames.bilinear_taps`, a horizontal pass rounded to
    uint8, then a vertical one. Besides whole frames (``__call__``), it resizes a *window*:
    when a scene differs from a static background only near a point, :meth:`window` gives
    the output pixels that can differ and the source patch they read, so a renderer draws
    that patch at ``src`` px, resizes it with :meth:`patch` and pastes the result into the
    resized background, without resizing the rest of the frame.

    Why no gather: with ``src / dst = p / q`` in lowest terms, output pixel ``i + q`` reads
    the taps of output i shifted by p source pixels. So each pass is, per phase ``i mod q``
    and tap, one strided slice times a weight vector (XLA fuses them; a gather of the taps
    ran ~50x slower on CPU). Taps are aligned to ``u_i = floor(centre_i - support + 0.5)``
    (Pillow clips its first tap at 0 instead); taps outside the frame have weight 0.
    """

    def __init__(self, src: int, dst: int):
        self.src, self.dst = frames.check_size(src, "source size"), frames.check_size(dst)
        self.identity = self.src == self.dst
        g = math.gcd(self.src, self.dst)
        self._p, self._q = self.src // g, self.dst // g
        first, _, weights = frames.bilinear_taps(self.src, self.dst)
        scale = self.src / self.dst
        support = max(scale, 1.0)
        phase = np.floor((np.arange(self._q) + 0.5) * scale - support + 0.5).astype(np.int64)
        i = np.arange(self.dst)
        self._u = phase[i % self._q] + self._p * (i // self._q)  # first aligned tap of i
        # Re-align Pillow's taps to u (trailing zero weights dropped: Pillow's taps for an
        # unscaled axis are (1, 0)).
        used = [int(np.flatnonzero(weights[j]).max()) + 1 if weights[j].any() else 0 for j in i]
        taps = max(int(first[j] - self._u[j]) + used[j] for j in i)
        aligned = np.zeros((self.dst, taps), np.int32)
        for j in i:
            offset = int(first[j] - self._u[j])
            aligned[j, offset : offset + used[j]] = weights[j, : used[j]]
        assert (aligned.sum(1) == weights.sum(1)).all()
        self._weights = aligned
        self._end = first + np.asarray(used)  # each output pixel reads source [first, end)
        self._first = first
        self._tables = {}  # half -> window tables

    def __call__(self, image: jax.Array, *, columns_first: bool = False) -> jax.Array:
        """``image (src, src, C)`` uint8 to ``(dst, dst, C)`` uint8.

        ``columns_first``: ``image`` is given transposed, ``(column, row, C)`` (a renderer
        draws it so for free by swapping its coordinate grids), which saves a transpose.
        """
        if self.identity:
            return jnp.transpose(image, (1, 0, 2)) if columns_first else image
        lo = max(0, -int(self._u[0]))
        hi = max(0, int(self._u[-1]) + self._weights.shape[1] - self.src)
        image = jnp.pad(image, ((lo, hi), (lo, hi), (0, 0)))
        zero = jnp.zeros((), jnp.int32)
        start, shape = (zero, zero), (self.dst, self.dst)
        return self._resize(image, start, shape, int(self._u[0]) + lo, columns_first)

    def window(self, centre: jax.Array, half: int) -> tuple[jax.Array, jax.Array, int, int]:
        """The output pixels that source pixels ``round(centre) +- half`` reach, along one axis.

        Args:
            centre: () float source pixel coordinate (pixel i has centre i).
            half: static int, source pixels on each side of the rounded centre that may
                differ from the background.

        Returns:
            ``(i0, r0, N, L)``: the N output pixels from ``i0`` hold every output pixel
            whose taps touch those source pixels, and they read only the L source pixels
            from ``r0`` (i0, r0 () int32; N, L static). The patch may reach past the frame
            (r0 < 0 or r0 + L > src): what is drawn there is read with weight 0.
        """
        n, length, out_first = self._window_tables(half)
        p = jnp.clip(jnp.round(centre).astype(jnp.int32), 0, self.src - 1)
        i0 = jnp.asarray(out_first)[p]
        return i0, jnp.asarray(self._u.astype(np.int32))[i0], n, length

    def patch(self, patch: jax.Array, out_start, out_shape, *, columns_first=False):
        """Output pixels ``out_start + (N, M)`` of the resized frame, from a source patch.

        Args:
            patch: ``(L, L', C)`` uint8 (``(L', L, C)`` when ``columns_first``), the
                frame's source pixels from the ``r0`` of :meth:`window` along each axis.
            out_start: (row, column) () int32 of the first output pixel (``i0``).
            out_shape: static ``(N, M)``.
            columns_first: ``patch`` is given transposed, as in ``__call__``.

        Returns:
            ``(N, M, C)`` uint8, equal to those pixels of the whole frame's resize.
        """
        if self.identity:
            patch = jnp.transpose(patch, (1, 0, 2)) if columns_first else patch
            return patch[: out_shape[0], : out_shape[1]]
        return self._resize(patch, out_start, out_shape, 0, columns_first)

    def _resize(self, x, out_start, out_shape, base, columns_first):
        """Both passes over uint8 ``x (L, L', C)``, as Pillow: columns, then rows.

        Each pass runs along the leading axis of a 2-D view with the other axes merged,
        so that XLA's loops vectorise over a long contiguous row (a trailing axis of 3
        channels ran ~2x slower, and a uint8 transpose of a whole frame costs as much as
        the pass); the intermediate is uint8, as Pillow's.
        """
        (n, m), c = out_shape, x.shape[2]
        if not columns_first:
            x = jnp.transpose(x, (1, 0, 2))
        x = x.reshape(x.shape[0], -1)  # (L', L C)
        x = materialise(self._pass(x, out_start[1], m, base)).reshape(m, -1, c)  # (M, L, C)
        x = jnp.transpose(x, (1, 0, 2)).reshape(x.shape[1], -1)  # (L, M C)
        return self._pass(x, out_start[0], n, base).reshape(n, m, c)

    def _pass(self, x, i0, n, base):
        """One rounded 1-D pass over the rows of uint8 ``x (L, K)``: ``(n, K)`` uint8.

        Row 0 of ``x`` is source pixel ``u[i0] - base``; i0 and n are multiples of q, so
        output ``i0 + phase + q k`` reads rows ``base + u[phase] - u[0] + p k + t``.
        """
        p, q = self._p, self._q
        taps = self._weights.shape[1]
        weights = lax.dynamic_slice(jnp.asarray(self._weights), (i0, 0), (n, taps))
        weights = weights.reshape(n // q, q, taps)
        phases = []
        for phase in range(q):
            start = base + int(self._u[phase] - self._u[0])
            acc = jnp.full((), 1 << (frames.PRECISION_BITS - 1), jnp.int32)
            for t in range(taps):
                lo = start + t
                tap = lax.slice_in_dim(x, lo, lo + p * (n // q - 1) + 1, p).astype(jnp.int32)
                acc = acc + tap * weights[:, phase, t, None]
            phases.append(jnp.clip(acc >> frames.PRECISION_BITS, 0, 255).astype(jnp.uint8))
        return jnp.stack(phases, axis=1).reshape(n, x.shape[1])  # row k q + phase

    def _window_tables(self, half: int):
        """Static N, L and the lookup table of :meth:`window` (host side, once per half)."""
        if half in self._tables:
            return self._tables[half]
        q, taps = self._q, self._weights.shape[1]
        lo, hi = self._first, self._end  # source pixels [lo, hi) of each output pixel
        pix = np.arange(self.src)
        # Output pixels reached from source pixels [p - half, p + half], from a multiple of q.
        first_out = np.searchsorted(hi, pix - half, side="right") // q * q
        last_out = np.searchsorted(lo, pix + half, side="right") - 1
        n = min(-(-int((last_out - first_out).max() + 1) // q) * q, self.dst)
        out_first = np.clip(first_out, 0, self.dst - n).astype(np.int32)
        length = int(self._u[q - 1] - self._u[0]) + self._p * (n // q - 1) + taps
        self._tables[half] = n, length, out_first
        return self._tables[half]


def materialise(patch):
    """``patch`` computed once, for consumers that read each element several times.

    XLA would otherwise fuse its producer (a drawing, a resize pass) into each strided tap
    slice of a pass and compute every element once per tap (a frame ~10x slower). An
    optimisation barrier does not stop that on CPU, but a loop does: its operand is
    materialised. The loop copies the patch in two halves (one trip would be inlined).
    """
    rows = patch.shape[0]
    half = -(-rows // 2)

    def copy(i, out):
        start = jnp.minimum(i * half, rows - half)
        part = lax.dynamic_slice_in_dim(patch, start, half)
        return lax.dynamic_update_slice_in_dim(out, part, start, 0)

    return lax.fori_loop(0, 2, copy, jnp.zeros_like(patch))
