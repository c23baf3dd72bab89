"""Collects a host environment's episodes into an official-layout HDF5 file.

Steps N simulators together (``lewm_jax.envs.host.HostBatch``) with the environment's
noisy scripted oracle (or random actions), prints the frames/s and the time split, and
writes ``--out`` (refusing to replace an existing file) plus ``<out>.json`` with the
figures. Train on it with ``--config.data.name=hdf5 --config.data.path=<out>``.

  python -m data.collect_host --env=lewm/CubeOGB-v0 --episodes=200 --max_steps=100 \
      --image_size=64 --out=data/cube_single_64.h5
"""

import json
import sys
from pathlib import Path

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("env", "lewm/CubeOGB-v0", "Host environment id (lewm_jax.envs.host).")
flags.DEFINE_integer("episodes", 200, "Episodes to collect.")
flags.DEFINE_integer("max_steps", 100, "Frames per episode.")
flags.DEFINE_integer("image_size", 64, "Stored frame side in pixels.")
flags.DEFINE_integer("num_envs", 1, "Simulators stepped together.")
flags.DEFINE_bool("asynchronous", False, "Step the simulators in worker processes.")
flags.DEFINE_string("policy", "expert", "expert (noisy oracle) or random.")
flags.DEFINE_integer("seed", 0, "Seed of the resets and the random policy.")
flags.DEFINE_string("env_kwargs", "{}", "JSON keyword arguments of the environment.")
flags.DEFINE_string("out", None, "The .h5 file to write (must not exist).")
flags.DEFINE_enum("compression", "gzip", ["none", "gzip", "blosc"], "Pixel compression.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import time

    from lewm_jax.data.hdf5 import HDF5Writer
    from lewm_jax.data.host_collect import host_timing, iter_host_episodes
    from lewm_jax.envs.host import HostBatch

    out = Path(FLAGS.out or "")
    if not FLAGS.out or out.suffix != ".h5":
        sys.exit(f"error: --out must name a .h5 file, got {FLAGS.out!r}")
    if out.exists():
        sys.exit(f"error: {out} exists; nothing overwritten (choose another --out)")
    compression = None if FLAGS.compression == "none" else FLAGS.compression
    frames = 0
    try:
        kwargs = json.loads(FLAGS.env_kwargs)
        batch = HostBatch(
            FLAGS.env,
            FLAGS.num_envs,
            image_size=FLAGS.image_size,
            asynchronous=FLAGS.asynchronous,
            **kwargs,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written round by round: a paper-size collection does not fit in memory.
        t0 = time.perf_counter()
        with batch, HDF5Writer(out, env=FLAGS.env, compression=compression) as writer:
            rounds = iter_host_episodes(
                batch,
                FLAGS.episodes,
                FLAGS.max_steps,
                seed=FLAGS.seed,
                policy=FLAGS.policy,
                progress=True,
            )
            for episodes in rounds:
                writer.append(episodes)
                frames += len(episodes.pixels)
            timing = host_timing(batch, t0, frames)
    except (ValueError, ImportError, json.JSONDecodeError) as e:
        sys.exit(f"error: {e}")
    report = {
        "env": FLAGS.env,
        "env_kwargs": kwargs,
        "episodes": FLAGS.episodes,
        "max_steps": FLAGS.max_steps,
        "image_size": FLAGS.image_size,
        "num_envs": FLAGS.num_envs,
        "policy": FLAGS.policy,
        "frames": frames,
        **timing,
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print(
        f"{out}: {frames} frames, {timing['frames_per_s']:.1f} frames/s "
        f"(sim {timing['sim_s']:.1f} s, render {timing['render_s']:.1f} s, wall "
        f"{timing['wall_s']:.1f} s)"
    )


if __name__ == "__main__":
    app.run(main)
