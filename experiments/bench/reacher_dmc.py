"""Our Reacher against dm_control's reacher, the simulator of ``swm/ReacherDMControl-v0``.

Replay: from the same random joint states, the same random actions (biased so that most
episodes push the wrist into its soft limit) are stepped in both, two MuJoCo steps per env
step as stable-worldmodel's wrapper does; prints the joint-angle error per step. Frames:
random configurations rendered by dm_control as stable-worldmodel renders them (camera 0,
224 px, the target hidden; resized bilinearly for smaller sizes) beside ours; prints the mean
absolute pixel difference (0-255) and writes a PNG strip (reference | ours | difference).
Rendering dm_control needs an OpenGL backend (``MUJOCO_GL=egl`` here, the default; osmesa
elsewhere); ``--frames=false`` skips it.

  python -m experiments.bench.reacher_dmc --json=/tmp/reacher_dmc.json --out=/tmp/reacher_dmc
"""

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from experiments.bench.reacher_replay import dmc_qpos, joint_error, ours_qpos, random_replay

FLAGS = flags.FLAGS
flags.DEFINE_integer("episodes", 20, "Replayed episodes.")
flags.DEFINE_integer("steps", 100, "Env steps per replayed episode.")
flags.DEFINE_bool("frames", True, "Also compare rendered frames (needs OpenGL).")
flags.DEFINE_list("sizes", ["224", "64"], "Frame sides compared.")
flags.DEFINE_integer("frames_n", 8, "Configurations rendered per size.")
flags.DEFINE_integer("seed", 0, "Seed of states and actions.")
flags.DEFINE_string("json", None, "Write the figures here.")
flags.DEFINE_string("out", None, "Folder for the frame strips (PNG).")


def replay(dmc, rng) -> dict:
    """Joint-angle error (rad) of our env against dm_control over replayed episodes."""
    from lewm_jax.envs.reacher import WRIST_LIMIT

    starts, actions = random_replay(rng, FLAGS.episodes, FLAGS.steps)
    ref = dmc_qpos(dmc, starts, actions)
    err = joint_error(ours_qpos(starts, actions), ref)
    return {
        "episodes": FLAGS.episodes,
        "steps": FLAGS.steps,
        "max_abs_err_rad": float(err.max()),
        "mean_abs_err_rad": float(err.mean()),
        "max_abs_err_at_step_10_rad": float(err[:, 9].max()),
        "max_wrist_overshoot_rad": float((np.abs(ref[..., 1]) - WRIST_LIMIT).max()),
        "mean_wrist_motion_per_step_rad": float(np.abs(np.diff(ref[..., 1], axis=1)).mean()),
    }


def frames(dmc, rng) -> dict:
    """Mean absolute pixel difference of our frames against dm_control's, per size."""
    from PIL import Image

    from lewm_jax.envs import make
    from lewm_jax.frames import resize_frames

    model = dmc.physics.model
    model.geom_rgba[model.name2id("target", "geom"), 3] = 0.0  # stable-worldmodel hides it
    qs = np.stack(
        [rng.uniform(-np.pi, np.pi, FLAGS.frames_n), rng.uniform(-2.7, 2.7, FLAGS.frames_n)], 1
    )
    refs = []
    for q in qs:
        with dmc.physics.reset_context():
            dmc.physics.data.qpos[:] = q
        refs.append(dmc.physics.render(224, 224, camera_id=0))
    out = {}
    for size in (int(s) for s in FLAGS.sizes):
        env, _ = make("Reacher-v0", image_size=size)
        render = jax.jit(env.render_physical)
        rows, diffs = [], []
        for q, ref in zip(qs, refs, strict=True):
            ref = resize_frames(ref, size)  # as stable-worldmodel's MegaWrapper
            mine = np.asarray(render(jnp.asarray(np.r_[q, 0.0, 0.0], jnp.float32)))
            diff = np.abs(ref.astype(np.int16) - mine.astype(np.int16))
            diffs.append(float(diff.mean()))
            rows.append(np.concatenate([ref, mine, diff.astype(np.uint8)], axis=1))
        out[str(size)] = {"mean_abs_diff": float(np.mean(diffs)), "per_frame": diffs}
        if FLAGS.out:
            Path(FLAGS.out).mkdir(parents=True, exist_ok=True)
            strip = np.concatenate(rows[:4], axis=0)
            Image.fromarray(strip).save(Path(FLAGS.out) / f"reacher_frames_{size}.png")
    return out


def main(argv):
    del argv
    os.environ.setdefault("MUJOCO_GL", "egl")
    from dm_control import suite

    rng = np.random.default_rng(FLAGS.seed)
    result = {"replay": replay(suite.load("reacher", "hard"), rng)}
    print("replay:", json.dumps(result["replay"]))
    if FLAGS.frames:
        result["frames"] = frames(suite.load("reacher", "hard"), rng)
        for size, r in result["frames"].items():
            print(f"frames {size} px: mean |ours - dm_control| = {r['mean_abs_diff']:.2f} / 255")
    if FLAGS.json:
        Path(FLAGS.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
