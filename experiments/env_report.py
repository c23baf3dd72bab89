"""Environment report: frame strips and scripted/random success rates of each environment.

For every environment it collects expert episodes, writes a PNG strip of frames of a few of
them (``<out>/<env>_strip.png``, one expert episode per row, first to last frame) and prints the
success rate of the scripted expert and of the random policy under two protocols: from the
env's own reset (start and goal drawn by ``reset_env``, ``max_steps_in_episode`` steps), and
the paper's offset protocol (start = a random dataset frame, goal = the frame ``--offset``
steps later, ``--budget`` steps, 50 episodes, seed 42).

A host environment id (``--envs=lewm/CubeOGB-v0``, :mod:`lewm_jax.envs.host`) is collected
with its noisy oracle in ``--num_envs`` simulators and measured the same way (its reset
protocol: the env's own random start and goal, ``--budget`` steps).

  python -m experiments.env_report --out=runs/env_report
  python -m experiments.env_report --envs=lewm/CubeOGB-v0 --dataset_episodes=20 \
      --episodes=20 --env_kwargs='{"fast_render": true}' --out=runs/env_report_cube
"""

import json
from pathlib import Path

import jax
import numpy as np
from absl import app, flags

from lewm_jax.data.collect import collect_episodes, offset_goal_success_rate, success_rate
from lewm_jax.envs import env_ids, is_host_env, make

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
flags.DEFINE_integer("max_steps", 100, "Host environments: frames per collected episode.")
flags.DEFINE_integer("num_envs", 10, "Host environments: simulators stepped together.")
flags.DEFINE_string("env_kwargs", "{}", "Host environments: JSON constructor arguments.")


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
        fn = env.policy(policy)
        row[f"{policy}_reset"] = success_rate(
            env, params, fn, k_expert if policy == "expert" else k_random, FLAGS.episodes
        )
        row[f"{policy}_offset"] = offset_goal_success_rate(
            env, params, eps, fn, k_off, offset=FLAGS.offset, budget=FLAGS.budget
        )
    return row


def _host_reset_rate(batch, policy: str, num_episodes: int, seed: int) -> float:
    """Success rate of ``policy`` from the host env's own random start and goal."""
    rng, hits = np.random.default_rng(seed), []
    for r in range(-(-num_episodes // batch.num_envs)):
        _, info = batch.reset(seed=seed + r * batch.num_envs)
        success = info["success"].copy()
        for _ in range(FLAGS.budget):
            success |= batch.step(batch.policy_actions(policy, rng))[1]
        hits.extend(success.tolist())
    return float(np.mean(hits[:num_episodes]))


def report_host_env(name: str, seed: int) -> dict:
    """:func:`report_env` for a host environment (:mod:`lewm_jax.envs.host`)."""
    import matplotlib.pyplot as plt

    from lewm_jax.data.episodes import goal_pairs
    from lewm_jax.data.host_collect import collect_host_episodes
    from lewm_jax.envs.host import HostBatch
    from lewm_jax.planning.batch_loop import BatchLoop

    kwargs = json.loads(FLAGS.env_kwargs)
    with HostBatch(name, FLAGS.num_envs, image_size=FLAGS.image_size, **kwargs) as batch:
        eps, timing = collect_host_episodes(
            batch, FLAGS.dataset_episodes, FLAGS.max_steps, seed=seed
        )
        path = Path(FLAGS.out) / f"{name.replace('/', '_')}_strip.png"
        plt.imsave(path, frame_strip(eps, FLAGS.strip_episodes, FLAGS.strip_frames))
        row = {"env": name, "image_size": FLAGS.image_size, "strip": str(path)}
        row["collect_frames_per_s"] = timing["frames_per_s"]
        n = FLAGS.num_envs  # the offset protocol: 50 pairs, n at a time (the last padded)
        start, goal = goal_pairs(eps, 50, offset=FLAGS.offset, seed=42)
        pad = (-len(start)) % n
        start, goal = np.r_[start, start[:pad]], np.r_[goal, goal[:pad]]
        zeros = np.zeros(batch.action_dim)
        for policy in ("expert", "random"):
            row[f"{policy}_reset"] = _host_reset_rate(batch, policy, FLAGS.episodes, seed + 1)
            loop = BatchLoop(
                batch,
                None,
                planner=policy,
                action_mean=zeros,
                action_std=zeros + 1,
                budget=FLAGS.budget,
                keep_frames=False,
            )
            hits = []
            for i in range(0, len(start), n):
                s_, g_ = eps.state[start[i : i + n]], eps.state[goal[i : i + n]]
                hits.extend(loop(jax.random.key(seed + i), None, s_, g_)["success"].tolist())
            row[f"{policy}_offset"] = float(np.mean(hits[:50]))
    return row


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    Path(FLAGS.out).mkdir(parents=True, exist_ok=True)
    key = jax.random.key(FLAGS.seed)
    names = FLAGS.envs or env_ids()  # the registry as it is now, not at import
    rows = [
        report_host_env(n, FLAGS.seed + i)
        if is_host_env(n)
        else report_env(n, jax.random.fold_in(key, i))
        for i, n in enumerate(names)
    ]
    print(f"success rate ({FLAGS.episodes} episodes from reset; offset {FLAGS.offset} / budget")
    print(
        f"{FLAGS.budget}, 50 episodes (host envs: --num_envs) from {FLAGS.dataset_episodes} expert"
    )
    print("episodes)")
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
