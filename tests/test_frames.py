"""Frames at every size are the 224 px frame resized as the original resizes it (Pillow's
bilinear): the in-graph resize equals Pillow bit for bit, whole frames and windows, and each
pure-JAX environment's frame at 64 and 96 px is Pillow's resize of its 224 px frame."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from PIL import Image

from lewm_jax import frames
from lewm_jax.envs import make
from lewm_jax.envs.resize import Resize


def _pillow(images: np.ndarray, size: int) -> np.ndarray:
    return np.stack(
        [np.asarray(Image.fromarray(x).resize((size, size), Image.BILINEAR)) for x in images]
    )


@pytest.mark.parametrize("src,dst", [(224, 64), (224, 96), (224, 224), (224, 33), (100, 256)])
def test_resize_equals_pillow(src, dst):
    rng = np.random.default_rng(dst)
    noise = rng.integers(0, 256, (3, src, src, 3), dtype=np.uint8)
    ramp = np.broadcast_to(
        (np.sin(np.arange(src) / 5.0)[:, None, None] * 127 + 128).astype(np.uint8),
        (src, src, 3),
    )
    images = np.concatenate([noise, ramp[None]])
    want = _pillow(images, dst)
    np.testing.assert_array_equal(jax.jit(jax.vmap(Resize(src, dst)))(images), want)
    transposed = np.ascontiguousarray(images.transpose(0, 2, 1, 3))
    got = jax.jit(jax.vmap(lambda x: Resize(src, dst)(x, columns_first=True)))(transposed)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(frames.resize_frames(images, dst), want)


@pytest.mark.parametrize("dst", [64, 96, 224])
def test_resized_window_equals_resizing_the_whole_frame(dst):
    # A frame that differs from a background only near a point: the window's output pixels,
    # pasted into the resized background, are the whole frame's resize.
    src, half, pad = 224, 17, 224
    rng = np.random.default_rng(dst)
    background = rng.integers(0, 256, (src, src, 3), dtype=np.uint8)
    resize = Resize(src, dst)

    @jax.jit
    def windowed(frame, centre):
        i0, r0, n, rows = resize.window(centre[1], half)
        j0, c0, m, cols = resize.window(centre[0], half)
        padded = jnp.pad(frame, ((pad, pad), (pad, pad), (0, 0)))
        patch = lax.dynamic_slice(padded, (r0 + pad, c0 + pad, 0), (rows, cols, 3))
        out = resize.patch(patch, (i0, j0), (n, m))
        return lax.dynamic_update_slice(
            jnp.asarray(_pillow(background[None], dst)[0]), out, (i0, j0, 0)
        )

    corners = [(0.0, 0.0), (src - 1.0, src - 1.0), (-9.0, src + 4.0)]
    centres = corners + [tuple(c) for c in rng.uniform(-5, src + 5, (12, 2))]
    for cx, cy in centres:
        frame = background.copy()
        x, y = round(cx), round(cy)
        rows = slice(max(y - half, 0), max(min(y + half + 1, src), 0))
        cols = slice(max(x - half, 0), max(min(x + half + 1, src), 0))
        frame[rows, cols] = rng.integers(0, 256, frame[rows, cols].shape, dtype=np.uint8)
        got = windowed(frame, jnp.array([cx, cy], jnp.float32))
        np.testing.assert_array_equal(got, _pillow(frame[None], dst)[0], err_msg=f"{cx, cy}")


@pytest.mark.parametrize("env_id", ["TwoRoom-v0", "PushT-v0", "Reacher-v0"])
def test_env_frames_are_the_224_frame_resized_as_the_original(env_id):
    native, _ = make(env_id, image_size=224)
    env, params = make(env_id, image_size=64)
    keys = jax.random.split(jax.random.key(3), 24)
    _, states = jax.vmap(lambda k: env.reset_env(k, params))(keys)
    physical = jax.vmap(env.physical_state)(states)
    big = np.asarray(jax.jit(jax.vmap(native.render_physical))(physical))
    for size in (64, 96):
        env, _ = make(env_id, image_size=size)
        got = np.asarray(jax.jit(jax.vmap(env.render_physical))(physical))
        np.testing.assert_array_equal(got, frames.resize_frames(big, size))


@pytest.mark.parametrize("bad", [0, -64, 63.5, "64", True, None])
def test_bad_frame_sizes_fail_in_one_line(bad):
    with pytest.raises(ValueError, match=f"frame size {bad!r} is not a positive integer"):
        frames.check_size(bad)
    with pytest.raises(ValueError, match="is not a positive integer"):
        make("TwoRoom-v0", image_size=bad)
    with pytest.raises(ValueError, match="is not a positive integer"):
        frames.resize_frames(np.zeros((1, 8, 8, 3), np.uint8), bad)
