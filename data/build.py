"""Builds a TFDS (array_record) episode dataset and prints its size and build time.

python -m data.build --env=two_room --image_size=64 --episodes=1000 --data_dir=/tmp/tfds
"""

import sys
import time
from pathlib import Path

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("env", "two_room", "Dataset name of a registered environment (lewm_jax.envs).")
flags.DEFINE_integer("image_size", 64, "Frame side in pixels.")
flags.DEFINE_integer("episodes", 1000, "Number of episodes.")
flags.DEFINE_integer("max_steps", 100, "Steps per episode (at most).")
flags.DEFINE_integer("seed", 0, "Collection seed.")
flags.DEFINE_string(
    "policy", "expert", "Collecting policy or mix, e.g. random, expert:0.5,random:0.5."
)
flags.DEFINE_float("noisy_prob", 0.3, "How often the noisy policy acts at random.")
flags.DEFINE_string("data_dir", "~/tensorflow_datasets", "TFDS data directory.")


def main(argv):
    del argv
    from lewm_jax.data.tfds import TFDSStore, builder, make_config

    try:
        config = make_config(
            FLAGS.env,
            FLAGS.image_size,
            FLAGS.episodes,
            FLAGS.max_steps,
            FLAGS.seed,
            policy=FLAGS.policy,
            noisy_prob=FLAGS.noisy_prob,
        )
    except ValueError as e:
        sys.exit(f"error: {e}")
    data_dir = str(Path(FLAGS.data_dir).expanduser())
    b = builder(config, data_dir)
    if b.is_prepared():
        print(f"{config.name} already built in {b.data_dir}; nothing overwritten")
        return
    t0 = time.perf_counter()
    b.download_and_prepare()
    seconds = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in Path(b.data_dir).rglob("*") if p.is_file())
    # The episode table only: decoding every record's frames would take as long as the build.
    steps = int(TFDSStore(config, data_dir).ep_len.sum())
    print(
        f"{config.name}: {config.num_episodes} episodes, {steps} steps, "
        f"{size / 2**20:.1f} MiB on disk, built in {seconds:.1f} s -> {b.data_dir}"
    )


if __name__ == "__main__":
    app.run(main)
