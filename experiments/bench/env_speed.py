"""Environment speed: frames/s of step + render for B parallel envs, and dataset build time.

Each configuration compiles a ``vmap`` over B environments of a ``lax.scan`` over K steps
(random actions, ``env.step_env`` with rendering; a per-frame checksum keeps the frames
from being optimised away) and times repeated calls for at least ``--min_seconds``.
Registered environments whose module is missing are skipped. Then it times
``collect_episodes`` for a Two-Room expert dataset (compilation included).

  python -m experiments.bench.env_speed
  python -m experiments.bench.env_speed --sizes=64 --num_envs=1,64 --dataset_episodes=100
"""

import platform
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from lewm_jax.envs import ENV_NAMES, make
from lewm_jax.envs.collect import collect_episodes

FLAGS = flags.FLAGS
flags.DEFINE_list("envs", list(ENV_NAMES), "Registered environment names to time.")
flags.DEFINE_list("sizes", ["64", "224"], "Image sizes.")
flags.DEFINE_list("num_envs", ["1", "64", "1024", "4096"], "Parallel environment counts B.")
flags.DEFINE_float("min_seconds", 1.0, "Shortest timed span per configuration.")
flags.DEFINE_integer("dataset_episodes", 1000, "Two-Room episodes to collect (0: skip).")
flags.DEFINE_integer("dataset_size", 64, "Image size of the collected dataset.")


def frames_per_second(env, params, num_envs: int, min_seconds: float) -> float:
    """Frames/s of step + render for ``num_envs`` environments stepping in parallel."""
    steps = 50 if num_envs <= 64 else 5

    def run(key):
        k_reset, k_steps = jax.random.split(key)
        _, state = jax.vmap(env.reset_env, (0, None))(jax.random.split(k_reset, num_envs), params)

        def body(state, k):
            k_act, k_env = jax.random.split(k)
            actions = jax.random.uniform(k_act, (num_envs, 2), minval=-1.0, maxval=1.0)
            obs, state, *_ = jax.vmap(env.step_env, (0, 0, 0, None))(
                jax.random.split(k_env, num_envs), state, actions, params
            )
            return state, jnp.sum(obs[..., ::7, :], dtype=jnp.uint32)

        return jax.lax.scan(body, state, jax.random.split(k_steps, steps))[1]

    run = jax.jit(run)
    jax.block_until_ready(run(jax.random.key(0)))  # compile
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < min_seconds:
        jax.block_until_ready(run(jax.random.key(calls + 1)))
        calls += 1
    return calls * steps * num_envs / (time.perf_counter() - start)


def main(argv):
    del argv
    print(f"# {jax.devices()[0].device_kind} x{jax.device_count()} ({platform.node()})")
    print(f"{'env':<12} {'size':>5} " + " ".join(f"{'B=' + b:>12}" for b in FLAGS.num_envs))
    for name in FLAGS.envs:
        try:
            env, params = make(name, image_size=int(FLAGS.sizes[0]))
        except ImportError as e:  # an env still being written elsewhere
            print(f"{name:<12} skipped: {e}")
            continue
        for size in map(int, FLAGS.sizes):
            env, params = make(name, image_size=size)
            cells = []
            for b in map(int, FLAGS.num_envs):
                try:
                    cells.append(f"{frames_per_second(env, params, b, FLAGS.min_seconds):12,.0f}")
                except jax.errors.JaxRuntimeError as e:  # e.g. out of memory
                    cells.append(f"{'failed':>12}")
                    print(f"# {name} {size}px B={b}: {str(e).splitlines()[0][:120]}")
            print(f"{name:<12} {size:>5} " + " ".join(cells) + "  frames/s", flush=True)

    if FLAGS.dataset_episodes:
        env, params = make("TwoRoom-v0", image_size=FLAGS.dataset_size)
        start = time.perf_counter()
        eps = collect_episodes(
            env, params, env.expert_policy, jax.random.key(0), FLAGS.dataset_episodes, 100
        )
        seconds = time.perf_counter() - start
        print(
            f"Two-Room dataset: {FLAGS.dataset_episodes} expert episodes, {len(eps.pixels):,} "
            f"frames at {FLAGS.dataset_size} px (mean length {eps.ep_len.mean():.1f}) in "
            f"{seconds:.1f} s including compilation"
        )


if __name__ == "__main__":
    app.run(main)
