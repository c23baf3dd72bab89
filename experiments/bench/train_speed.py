"""Train-step speed: seconds per step and clips/s of the jitted, data-parallel train step.

Prints a table and writes it as JSON. Random uint8 clips (speed does not depend on the
pixels), the real model, optimizer, loss and sharding of ``experiments/configs/lewm.py``.

  python -m experiments.bench.train_speed --sizes=cpu,paper --steps=5
  XLA_FLAGS=--xla_force_host_platform_device_count=8 \
      python -m experiments.bench.train_speed --sizes=cpu --devices=1,2,4,8
  python -m experiments.bench.train_speed --sizes=cpu,paper --batch_size=16 \
      --reference_python=/work/ref-venv/bin/python     # side by side with stable-worldmodel
  python -m experiments.bench.train_speed --sizes=cpu --encoder=R18w32 --reference_python=

With a reference interpreter (``--reference_python`` or ``LEWM_TORCH_PYTHON``), each size is
also timed with the stable-worldmodel PyTorch LeWM of the same config.json on the same
device, batch and dtype (experiments/bench/torch/train.py), and the speed-up is printed.
"""

import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
from absl import app, flags

from experiments.bench import reference
from experiments.configs.lewm import get_config
from lewm_jax.models import build_model
from lewm_jax.models.jepa import check_model_config
from lewm_jax.training import sharding
from lewm_jax.training.optim import make_optimizer
from lewm_jax.training.state import init_train_state
from lewm_jax.training.step import make_train_step

FLAGS = flags.FLAGS


def define_flags():
    """Defines the flags; called only when run as a script, so that tests can import this
    module beside other benchmarks that define flags of the same names (``sizes``)."""
    flags.DEFINE_list("sizes", ["cpu", "paper"], "Config sizes to time.")
    flags.DEFINE_list("devices", [], "Device counts to time (default: all devices).")
    flags.DEFINE_integer("batch_size", 0, "Global batch (0 = the config's).")
    flags.DEFINE_string("dtype", "", "Compute dtype override: float32 or bfloat16.")
    flags.DEFINE_string("encoder", "", "model.encoder override, e.g. R18w32 (lewm_jax only).")
    flags.DEFINE_integer("steps", 5, "Timed steps after the warm-up step.")
    flags.DEFINE_string("json", "", "Also write the table to this JSON file.")
    flags.DEFINE_string(
        "reference_python",
        reference.default_python(),
        "Interpreter with torch + stable-worldmodel for the side-by-side rows ('' = skip).",
    )
    flags.DEFINE_integer("reference_threads", 0, "torch threads for the reference (0 = all cores).")
    flags.DEFINE_float(
        "peak_tflops",
        0.0,
        "Device peak TFLOP/s for MFU (e.g. 989 for H100 SXM bf16 dense); 0 = skip.",
    )


def _step_flops(jitted, *args) -> float:
    """FLOPs of one call of ``jitted`` on ``args`` (the whole global batch).

    Counted on the lowered, unoptimised program: the compiled program's count missed most of
    the work on an H100 (1.1 of the 5.4 TFLOP of the paper-size step).
    """
    cost = jitted.lower(*args).cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    return float(cost.get("flops", 0.0)) if cost else 0.0


def time_train_step(
    size: str,
    num_devices: int,
    batch_size: int,
    dtype: str,
    steps: int,
    peak_tflops: float = 0.0,
    encoder: str = "",
) -> dict:
    """Compile time, median step time (with the fastest and slowest step) and (given the
    device peak) MFU of one configuration (``encoder``: another ``model.encoder``)."""
    config = get_config(size)
    if dtype:
        config.model.dtype = dtype
    if encoder:
        config.model.encoder = encoder
    check_model_config(config.model, image_size=config.data.image_size)
    model_config = config.model
    batch_size = batch_size or config.batch_size
    mesh = sharding.make_mesh(jax.devices()[:num_devices])
    sharding.check_batch_size(batch_size, mesh)
    repl, data = sharding.replicated(mesh), sharding.data_sharded(mesh)
    d = config.data
    rng = np.random.default_rng(0)
    local = {
        "pixels": rng.integers(
            0, 256, (batch_size, d.num_frames, d.image_size, d.image_size, 3)
        ).astype(np.uint8),
        "actions": rng.standard_normal(
            (batch_size, d.num_frames, d.frameskip * d.action_dim)
        ).astype(np.float32),
    }
    batch = sharding.to_global(local, mesh)
    model = build_model(model_config, image_size=d.image_size)
    tx = make_optimizer(config.optim, 1000)
    state = jax.jit(lambda k: init_train_state(model, tx, k, batch), out_shardings=repl)(
        jax.random.key(0)
    )
    n_params = sum(x.size for x in jax.tree.leaves(state.params))
    step = jax.jit(
        make_train_step(model, tx, config.loss),
        in_shardings=(repl, data, repl),
        out_shardings=(repl, repl),
        donate_argnums=0,
    )
    key = jax.device_put(jax.random.key(1), repl)
    flops = _step_flops(step, state, batch, key)
    t0 = time.perf_counter()
    state, m = step(state, batch, key)
    jax.block_until_ready((state, m))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        state, m = step(state, batch, key)
        jax.block_until_ready((state, m))  # the update too, not only the loss
        times.append(time.perf_counter() - t0)
    sec = statistics.median(times)
    tflops = flops / sec / 1e12
    mfu = {"mfu": round(tflops / (peak_tflops * num_devices), 3)} if peak_tflops else {}
    return {
        "impl": "lewm_jax",
        "size": size,
        "encoder": model_config.encoder,
        "params": int(n_params),
        "batch": batch_size,
        "devices": num_devices,
        "dtype": model_config.dtype,
        "first_step_s": round(compile_s, 3),
        "s_per_step": round(sec, 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "clips_per_s": round(batch_size / sec, 2),
        "gflop_per_step": round(flops / 1e9, 1),
        "tflops": round(tflops, 2),
        **mfu,
    }


def time_reference(size: str, batch_size: int, dtype: str, steps: int) -> dict:
    """The stable-worldmodel LeWM of ``size``'s config.json, timed in the reference python."""
    config = get_config(size)
    d = config.data
    with tempfile.TemporaryDirectory() as tmp:
        path = reference.write_official_config(config, Path(tmp) / "config.json")
        args = ["--config", path, "--image_size", d.image_size]
        args += ["--action_dim", d.frameskip * d.action_dim, "--num_frames", d.num_frames]
        args += [
            "--history",
            config.model.history,
            "--steps",
            steps,
            "--lam",
            config.loss.sigreg_weight,
        ]
        args += ["--batch_size", batch_size or config.batch_size]
        args += ["--dtype", dtype or config.model.dtype]
        if FLAGS.reference_threads:
            args += ["--threads", FLAGS.reference_threads]
        row = reference.run(FLAGS.reference_python, "experiments.bench.torch.train", args)
    return {"size": size, "devices": 1, **row}


def _speedups(rows: list[dict]) -> list[str]:
    lines = []
    for ref in (r for r in rows if r["impl"] != "lewm_jax"):
        ours = [r for r in rows if r["impl"] == "lewm_jax" and r["size"] == ref["size"]]
        for r in ours:
            if r["params"] != ref["params"]:
                raise RuntimeError(f"{r['size']}: {r['params']} != {ref['params']} parameters")
            lines.append(
                f"# {r['size']}, batch {r['batch']}, {r['dtype']}, {r['devices']} device(s): "
                f"lewm_jax {r['clips_per_s']} clips/s vs reference {ref['clips_per_s']} "
                f"= {r['clips_per_s'] / ref['clips_per_s']:.2f}x"
            )
    return lines


def main(argv):
    del argv
    counts = [int(n) for n in FLAGS.devices] or [len(jax.devices())]
    if FLAGS.encoder and FLAGS.reference_python:
        raise SystemExit(
            f"error: --encoder={FLAGS.encoder} has no counterpart in the reference, which "
            f"builds the config's own encoder; pass --reference_python= to time lewm_jax alone"
        )
    rows = []
    for size in FLAGS.sizes:
        for n in counts:
            try:
                rows.append(
                    time_train_step(
                        size,
                        n,
                        FLAGS.batch_size,
                        FLAGS.dtype,
                        FLAGS.steps,
                        FLAGS.peak_tflops,
                        FLAGS.encoder,
                    )
                )
            except jax.errors.JaxRuntimeError as e:  # e.g. the paper batch on a small host
                print(f"# {size} on {n} device(s) failed: {str(e).splitlines()[0][:160]}")
                continue
        if FLAGS.reference_python:
            try:
                rows.append(time_reference(size, FLAGS.batch_size, FLAGS.dtype, FLAGS.steps))
            except (RuntimeError, FileNotFoundError) as e:
                raise SystemExit(f"error: {e}") from None
    if not rows:
        raise SystemExit("no configuration ran")
    if not FLAGS.reference_python:
        print("# no reference python (--reference_python / LEWM_TORCH_PYTHON): lewm_jax only")
    cols = list(dict.fromkeys(c for r in rows for c in r))
    print(
        f"# train step, {jax.devices()[0].device_kind} ({jax.default_backend()}), "
        f"{platform.node()}, {time.strftime('%Y-%m-%d')}"
    )
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r.get(c, "")) for c in cols))
    speedups = _speedups(rows)
    print("\n".join(speedups))
    if FLAGS.json:
        meta = {
            "backend": jax.default_backend(),
            "device": jax.devices()[0].device_kind,
            "date": time.strftime("%Y-%m-%d"),
            "host": platform.node(),
            "jax": jax.__version__,
        }
        with open(FLAGS.json, "w") as f:
            json.dump({"meta": meta, "rows": rows, "speedups": speedups}, f, indent=2)


if __name__ == "__main__":
    define_flags()
    app.run(main)
