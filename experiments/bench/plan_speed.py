"""Measures the wall time of one plan from pixels on the current JAX backend.

One plan = encode the current and goal frames, then run the planner on the latent cost
(``lewm_jax.planning.make_pixel_planner``): CEM 300 samples x 30 iterations (30 elites) and the
gradient planner 100 samples x 30 AdamW steps, horizon 5 action blocks of width
frameskip x action_dim = 10. Models are randomly initialised (timing does not depend on the
weights). The first call's time (trace + compile + one run) is reported apart from the median
of ``--repeats`` later calls; ``compile_s`` is the first call minus that median. ``cpu_s`` is
the median process CPU time of a call (all threads): on a shared machine it is steadier than
wall time, and about twice the wall time when both of 2 cores are free.

Run:
  python -m experiments.bench.plan_speed --sizes=paper,cpu --out=/tmp/plan_speed.json
"""

import json
import os
import platform
import statistics
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["paper", "cpu"], "Model sizes of experiments/configs/lewm.py.")
flags.DEFINE_list("planners", ["cem", "gradient"], "Planners to time.")
flags.DEFINE_list("rollouts", ["cached"], "Rollouts: 'cached' (KV cache) and/or 'scan'.")
flags.DEFINE_enum(
    "dtype", "float32", ["float32", "bfloat16", "config"], "Compute dtype ('config' = as set)."
)
flags.DEFINE_integer("repeats", 3, "Timed calls after the first (median reported).")
flags.DEFINE_integer("horizon", 5, "Plan horizon H in action blocks.")
flags.DEFINE_string("out", "", "Write the table as JSON to this path.")

SETTINGS = {
    "cem": dict(num_samples=300, num_iters=30, num_elites=30),
    "gradient": dict(num_samples=100, num_steps=30, lr=0.1, optimizer="adamw"),
    "mppi": dict(num_samples=300, num_iters=30, num_elites=30, temperature=0.5),
}


def _model(size: str, dtype: str):
    import jax
    import jax.numpy as jnp

    from experiments.configs.lewm import get_config
    from lewm_jax.steps import build_model

    config = get_config(size)
    model_config = config.model.to_dict()
    if dtype != "config":
        model_config["dtype"] = dtype
    model = build_model(_Attrs(model_config), image_size=config.data.image_size)
    side, width = config.data.image_size, config.data.frameskip * config.data.action_dim
    pixels = jnp.zeros((1, 4, side, side, 3), jnp.uint8)
    variables = jax.jit(model.init)(jax.random.key(0), pixels, jnp.zeros((1, 4, width)))
    return model, variables, width, model_config["dtype"]


class _Attrs:
    def __init__(self, d):
        self.__dict__.update(d)


def _time_plan(plan_fn, variables, frames, init_mean, repeats):
    import jax

    def call(seed):
        start, cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(plan_fn(jax.random.key(seed), variables, *frames, init_mean))
        return time.perf_counter() - start, time.process_time() - cpu

    first, _ = call(0)
    times, cpu_times = zip(*(call(seed) for seed in range(1, repeats + 1)), strict=True)
    return first, times, cpu_times


def run(sizes, planners, rollouts, dtype, repeats, horizon):
    """Times every (size, planner, rollout); returns the table as a list of dicts."""
    import jax
    import jax.numpy as jnp

    from lewm_jax.planning import make_pixel_planner
    from lewm_jax.rollout import rollout, rollout_cached

    rollout_fns = {"cached": rollout_cached, "scan": rollout}
    rows = []
    for size in sizes:
        model, variables, width, used_dtype = _model(size, dtype)
        key = jax.random.key(1)
        frames = jax.random.randint(key, (2, model.image_size, model.image_size, 3), 0, 256)
        frames = tuple(frames.astype(jnp.uint8))
        init_mean = jnp.zeros((horizon, width))
        for planner in planners:
            for name in rollouts:
                plan_fn = make_pixel_planner(
                    model, planner=planner, rollout=rollout_fns[name], **SETTINGS[planner]
                )
                first, times, cpu_times = _time_plan(plan_fn, variables, frames, init_mean, repeats)
                median = statistics.median(times)
                row = dict(
                    size=size,
                    dtype=used_dtype,
                    planner=planner,
                    rollout=name,
                    horizon=horizon,
                    action_width=width,
                    **SETTINGS[planner],
                    first_call_s=round(first, 3),
                    compile_s=round(first - median, 3),
                    median_s=round(median, 3),
                    min_s=round(min(times), 3),
                    median_cpu_s=round(statistics.median(cpu_times), 3),
                    repeats=repeats,
                )
                rows.append(row)
                print(_format_row(row), flush=True)
    return rows


HEADER = f"{'size':6} {'dtype':9} {'planner':9} {'rollout':7} {'budget':9} "
HEADER += f"{'compile_s':>9} {'median_s':>9} {'min_s':>8} {'cpu_s':>8}"


def _format_row(r):
    iters = r.get("num_iters", r.get("num_steps"))
    budget = f"{r['num_samples']}x{iters}"
    return (
        f"{r['size']:6} {r['dtype']:9} {r['planner']:9} {r['rollout']:7} {budget:9} "
        f"{r['compile_s']:9.2f} {r['median_s']:9.3f} {r['min_s']:8.3f} {r['median_cpu_s']:8.2f}"
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import jax

    device = jax.devices()[0]
    meta = dict(
        backend=jax.default_backend(),
        device=getattr(device, "device_kind", str(device)),
        cpu_count=os.cpu_count(),
        jax=jax.__version__,
        python=platform.python_version(),
    )
    print(" ".join(f"{k}={v}" for k, v in meta.items()))
    print(HEADER, flush=True)
    rows = run(
        FLAGS.sizes, FLAGS.planners, FLAGS.rollouts, FLAGS.dtype, FLAGS.repeats, FLAGS.horizon
    )
    if FLAGS.out:
        with open(FLAGS.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
        print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    app.run(main)
