"""Measures the wall time of one plan from pixels on the current JAX backend.

One plan = encode the current and goal frames, then run the planner on the latent cost
(``lewm_jax.planning.make_pixel_planner``): CEM 300 samples x 30 iterations (30 elites) and the
gradient planner 100 samples x 30 AdamW steps, horizon 5 action blocks of width
frameskip x action_dim = 10. Models are randomly initialised (timing does not depend on the
weights). The first call's time (trace + compile + one run) is reported apart from the median
of ``--repeats`` later calls; ``compile_s`` is the first call minus that median. ``cpu_s`` is
the median process CPU time of a call (all threads): on a shared machine it is steadier than
wall time, and about twice the wall time when both of 2 cores are free.

With a reference interpreter (``--reference_python`` or ``LEWM_TORCH_PYTHON``), the CEM plan
of each size is also timed with stable-worldmodel's own ``CEMSolver`` and PyTorch LeWM built
from the same config.json (same parameter count, same budget, horizon and dtype; one warm-up
plan, then the median of ``--repeats``; experiments/bench/torch/plan.py), and a table of
lewm_jax vs reference seconds per plan and the speed-up is printed and written to ``--out``.

Run:
  python -m experiments.bench.plan_speed --sizes=paper,cpu --out=/tmp/plan_speed.json
  python -m experiments.bench.plan_speed --sizes=cpu --planners=cem --repeats=1 \
      --reference_python=/work/ref-venv/bin/python --out=/tmp/plan_vs_reference.json
"""

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from absl import app, flags

from experiments.bench import reference

FLAGS = flags.FLAGS

SETTINGS = {
    "cem": dict(num_samples=300, num_iters=30, num_elites=30),
    "gradient": dict(num_samples=100, num_steps=30, lr=0.1, optimizer="adamw"),
    "mppi": dict(num_samples=300, num_iters=30, num_elites=30, temperature=0.5),
}


def define_flags():
    """Defines the flags; called only when run as a script, so that tests can import this
    module beside other benchmarks that define flags of the same names (``sizes``, ``out``)."""
    flags.DEFINE_list("sizes", ["paper", "cpu"], "Model sizes of experiments/configs/lewm.py.")
    flags.DEFINE_list("planners", ["cem", "gradient"], "Planners to time.")
    flags.DEFINE_list("rollouts", ["cached"], "Rollouts: 'cached' (KV cache) and/or 'scan'.")
    flags.DEFINE_enum(
        "dtype", "float32", ["float32", "bfloat16", "config"], "Compute dtype ('config' = as set)."
    )
    flags.DEFINE_integer("repeats", 3, "Timed calls after the first (median reported).")
    flags.DEFINE_integer("horizon", 5, "Plan horizon H in action blocks.")
    flags.DEFINE_string("out", "", "Write the table as JSON to this path.")
    flags.DEFINE_list("cem", ["300", "30", "30"], "CEM samples, iterations, elites (both sides).")
    flags.DEFINE_string(
        "reference_python",
        reference.default_python(),
        "Interpreter with torch + stable-worldmodel for the reference CEM plan ('' = skip).",
    )
    flags.DEFINE_integer("reference_threads", 0, "torch threads for the reference (0 = all cores).")


def _model(size: str, dtype: str):
    import jax
    import jax.numpy as jnp

    from experiments.configs.lewm import get_config
    from lewm_jax.models import build_model

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


def run(sizes, planners, rollouts, dtype, repeats, horizon, settings=None):
    """Times every (size, planner, rollout); returns the table as a list of dicts.

    ``settings`` overrides entries of ``SETTINGS`` (planner name -> keyword settings).
    """
    import jax
    import jax.numpy as jnp

    from lewm_jax.planning import make_pixel_planner
    from lewm_jax.planning.rollout import rollout, rollout_cached

    rollout_fns = {"cached": rollout_cached, "scan": rollout}
    settings = {**SETTINGS, **(settings or {})}
    rows = []
    for size in sizes:
        model, variables, width, used_dtype = _model(size, dtype)
        n_params = int(sum(x.size for x in jax.tree.leaves(variables["params"])))
        key = jax.random.key(1)
        frames = jax.random.randint(key, (2, model.image_size, model.image_size, 3), 0, 256)
        frames = tuple(frames.astype(jnp.uint8))
        init_mean = jnp.zeros((horizon, width))
        for planner in planners:
            for name in rollouts:
                plan_fn = make_pixel_planner(
                    model, planner=planner, rollout=rollout_fns[name], **settings[planner]
                )
                first, times, cpu_times = _time_plan(plan_fn, variables, frames, init_mean, repeats)
                median = statistics.median(times)
                row = dict(
                    size=size,
                    params=n_params,
                    dtype=used_dtype,
                    planner=planner,
                    rollout=name,
                    horizon=horizon,
                    action_width=width,
                    **settings[planner],
                    first_call_s=round(first, 3),
                    compile_s=round(first - median, 3),
                    median_s=round(median, 4),
                    min_s=round(min(times), 4),
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


def time_reference(size, dtype, repeats, horizon, cem, python, threads=0):
    """One stable-worldmodel CEM plan of ``size``'s config.json, timed in ``python``.

    Args:
        size: model size of experiments/configs/lewm.py.
        dtype: ``"float32"`` or ``"bfloat16"`` (the reference casts the whole model).
        repeats: timed plans after one warm-up plan.
        horizon: plan horizon H in action blocks.
        cem: ``dict(num_samples, num_iters, num_elites)``.
        python: the reference interpreter.
        threads: torch threads (0 = torch/plan.py default, all cores).

    Returns:
        The row of experiments/bench/torch/plan.py (``seconds`` = median s/plan, ``params``).
    """
    from experiments.configs.lewm import get_config

    config = get_config(size)
    d = config.data
    with tempfile.TemporaryDirectory() as tmp:
        path = reference.write_official_config(config, Path(tmp) / "config.json")
        args = ["--config", path, "--size", size, "--image_size", d.image_size]
        args += ["--action_dim", d.action_dim, "--frameskip", d.frameskip, "--history", 1]
        args += ["--horizon", horizon, "--samples", cem["num_samples"]]
        args += ["--iterations", cem["num_iters"], "--topk", cem["num_elites"]]
        args += ["--repeats", repeats, "--dtype", dtype]
        args += ["--threads", threads] if threads else []
        return reference.run(python, "experiments.bench.torch.plan", args)


def compare(rows, references):
    """Pairs each lewm_jax CEM row with the reference row of its size.

    Raises:
        ValueError: the two models of a size differ in parameter count, budget or dtype.
    """
    table = []
    for ref in references:
        for r in (r for r in rows if r["planner"] == "cem" and r["size"] == ref["size"]):
            ours = (r["params"], r["num_samples"], r["num_iters"], r["num_elites"], r["horizon"])
            theirs = (ref["params"], ref["samples"], ref["iterations"], ref["topk"])
            theirs += (ref["horizon"],)
            if ours != theirs or r["dtype"] != ref["dtype"]:
                raise ValueError(
                    f"size {r['size']!r}: lewm_jax (params, samples, iterations, elites, "
                    f"horizon) {ours} {r['dtype']} differs from the reference's {theirs} "
                    f"{ref['dtype']}"
                )
            table.append(
                dict(
                    size=r["size"],
                    params=r["params"],
                    ref_params=ref["params"],
                    dtype=r["dtype"],
                    budget=f"{r['num_samples']}x{r['num_iters']}",
                    horizon=r["horizon"],
                    rollout=r["rollout"],
                    lewm_jax_s=r["median_s"],
                    reference_s=ref["seconds"],
                    speedup=round(ref["seconds"] / r["median_s"], 2),
                    lewm_jax_cpu_s=r["median_cpu_s"],
                    reference_cpu_s=ref["median_cpu_s"],
                    reference_device=ref["device"],
                    reference_threads=ref["threads"],
                )
            )
    return table


def _print_comparison(table):
    print("\none CEM plan from pixels: lewm_jax vs stable-worldmodel (same config.json)")
    head = f"{'size':6} {'params':>10} {'ref_params':>10} {'dtype':9} {'budget':8} {'H':>2} "
    head += f"{'rollout':7} {'lewm_jax_s':>10} {'reference_s':>11} {'speedup':>8} "
    print(head + f"{'jax_cpu_s':>9} {'ref_cpu_s':>9} {'ref_threads':>11}")
    for c in table:
        print(
            f"{c['size']:6} {c['params']:10,} {c['ref_params']:10,} {c['dtype']:9} "
            f"{c['budget']:8} {c['horizon']:2} {c['rollout']:7} {c['lewm_jax_s']:10.3f} "
            f"{c['reference_s']:11.3f} {c['speedup']:7.1f}x {c['lewm_jax_cpu_s']:9.2f} "
            f"{c['reference_cpu_s']:9.2f} {c['reference_threads']:11}"
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
    if len(FLAGS.cem) != 3:
        raise app.UsageError(f"--cem must be samples,iterations,elites; got {FLAGS.cem}")
    cem = dict(zip(("num_samples", "num_iters", "num_elites"), map(int, FLAGS.cem), strict=True))
    print(HEADER, flush=True)
    rows = run(
        FLAGS.sizes,
        FLAGS.planners,
        FLAGS.rollouts,
        FLAGS.dtype,
        FLAGS.repeats,
        FLAGS.horizon,
        settings={"cem": cem},
    )
    references, table = [], []
    if not FLAGS.reference_python:
        print("no reference python (--reference_python / LEWM_TORCH_PYTHON): lewm_jax only")
    elif "cem" not in FLAGS.planners:
        print("the reference comparison times CEM only: add cem to --planners")
    else:
        try:
            for size in FLAGS.sizes:
                dtype = next(r["dtype"] for r in rows if r["size"] == size)
                args = (FLAGS.repeats, FLAGS.horizon, cem, FLAGS.reference_python)
                references.append(time_reference(size, dtype, *args, FLAGS.reference_threads))
            table = compare(rows, references)
        except (RuntimeError, FileNotFoundError, ValueError) as e:
            raise SystemExit(f"error: {e}") from None
        _print_comparison(table)
    if FLAGS.out:
        out = {"meta": meta, "rows": rows, "reference": references, "comparison": table}
        with open(FLAGS.out, "w") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
