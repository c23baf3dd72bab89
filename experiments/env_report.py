"""Environment report: frame strips and scripted/random success rates of each environment.

For every environment it collects expert episodes, writes a PNG strip of frames of a few of
them (``<out>/<env>_strip.png``, one expert episode per row, first to last frame) and prints the
success rate of the scripted expert and of the random policy under two protocols: from the
env's own reset (start and goal drawn by ``reset_env``, ``max_steps_in_episode`` steps), and
the paper's offset protocol (start = a random dataset frame, goal = the frame ``--offset``
steps later, ``--budget`` steps, 50 episodes, seed 42).

  python -m experiments.env_report --out=runs/env_report
"""

import json
from pathlib import Path

import jax
import numpy as np
from absl import app, flags

from lewm_jax.data.collect import collect_episodes, offset_goal_success_rate, success_rate
from lewm_jax.envs import env_ids, make

FLAGS = flags.FLAGS
flags.DEFINE_list("envs", None, "Registered environment ids (default: all of them).")
flags.DEFINE_integer("image_size", 64, "Frame side in pixels.")
flags.DEFINE_integer("episodes", 200, "Episodes per success-rate estimate (reset protocol).")
flags.DEFINE_integer("dataset_episodes", 100, "Expert episodes the offset protocol draws from.")
flags.DEFINE_integer("offset", 25, "Offset protocol: goal = the frame this many steps later.")
flags.DEFINE_integer("budget", 50, "Offset protocol: env steps per episode.")
flags.DEFINE_integer("strip_episodes", 3, "Episodes (rows) in each PNG strip.")
flags.DEFINE_integer("strip_frames", 8, "Frames per row of each PNG strip.")
flags.DEFINE_integer("seed", 0, "PRNG seed of the collection and the rollouts.")
flags.DEFINE_string("out", "runs/env_report", "Folder for the strips and report.json.")


def frame_strip(episodes, num_rows: int, num_frames: int) -> np.ndarray:
    """Rows of ``num_frames`` evenly spaced frames of the first ``num_rows`` episodes."""
    rows = []
    for e in range(min(num_rows, len(episodes.ep_len))):
        start, length = int(episodes.ep_offset[e]), int(episodes.ep_len[e])
        idx = start + np.linspace(0, length - 1, num_frames).round().astype(int)
        frames = episodes.pixels[idx]
        sep = np.full((frames.shape[1], 2, 3), 128, np.uint8)
        rows.append(np.concatenate([np.concatenate([f, sep], axis=1) for f in frames], axis=1))
    return np.concatenate(rows, axis=0)


def report_env(name: str, key: jax.Array) -> dict:
    """Collects, draws the strip and measures the success rates of one environment."""
    import matplotlib.pyplot as plt

    env, params = make(name, image_size=FLAGS.image_size)
    k_data, k_expert, k_random, k_off = jax.random.split(key, 4)
    eps = collect_episodes(
        env, params, env.expert_policy, k_data, FLAGS.dataset_episodes, params.max_steps_in_episode
    )
    strip = frame_strip(eps, FLAGS.strip_episodes, FLAGS.strip_frames)
    path = Path(FLAGS.out) / f"{name}_strip.png"
    plt.imsave(path, strip)
    row = {"env": name, "image_size": FLAGS.image_size, "strip": str(path)}
    for policy in ("expert", "random"):
        fn = getattr(env, f"{policy}_policy")
        row[f"{policy}_reset"] = success_rate(
            env, params, fn, k_expert if policy == "expert" else k_random, FLAGS.episodes
        )
        row[f"{policy}_offset"] = offset_goal_success_rate(
            env, params, eps, fn, k_off, offset=FLAGS.offset, budget=FLAGS.budget
        )
    return row


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    Path(FLAGS.out).mkdir(parents=True, exist_ok=True)
    key = jax.random.key(FLAGS.seed)
    names = FLAGS.envs or env_ids()  # the registry as it is now, not at import
    rows = [report_env(n, jax.random.fold_in(key, i)) for i, n in enumerate(names)]
    print(f"success rate ({FLAGS.episodes} episodes from reset; offset {FLAGS.offset} / budget")
    print(f"{FLAGS.budget}, 50 episodes from {FLAGS.dataset_episodes} expert episodes)")
    print(
        f"{'env':<12} {'expert/reset':>13} {'random/reset':>13} {'expert/offset':>14} "
        f"{'random/offset':>14}"
    )
    for r in rows:
        print(
            f"{r['env']:<12} {r['expert_reset']:13.2f} {r['random_reset']:13.2f} "
            f"{r['expert_offset']:14.2f} {r['random_offset']:14.2f}"
        )
    with open(Path(FLAGS.out) / "report.json", "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    app.run(main)
