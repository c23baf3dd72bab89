"""Environment speed: frames/s of step + render for B parallel envs, and dataset build time.

Each configuration compiles a ``vmap`` over B environments of a ``lax.scan`` over K steps
(random actions, ``env.step_env`` with rendering; every frame is XOR-ed into a
``(B, H, W, 3)`` carry so that no pixel can be optimised away) and times repeated calls
for at least ``--min_seconds``.
Registered environments whose module is missing are skipped.

With ``--reference_python`` (default: ``$LEWM_TORCH_PYTHON``), the same sizes are then timed
for stable-worldmodel's TwoRoom-v1 / PushT-v1 in that interpreter
(``experiments/bench/torch/envs.py``: single env and its vectorised modes at
``--reference_num_envs``), and one table compares frames/s per env, size and B, plus our best
B against their best vectorised mode (the target is >= 100x). ``--json`` writes it all.
Then it times ``collect_episodes`` for a Two-Room expert dataset (compilation included).

  python -m experiments.bench.env_speed
  python -m experiments.bench.env_speed --sizes=64 --num_envs=1,64 --dataset_episodes=100
  LEWM_TORCH_PYTHON=/work/ref-venv/bin/python python -m experiments.bench.env_speed \\
      --sizes=64,224 --json=/tmp/env_speed.json
"""

import json
import platform
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from experiments.bench import reference
from lewm_jax.data.collect import collect_episodes
from lewm_jax.envs import env_ids, make

FLAGS = flags.FLAGS
REFERENCE_NAMES = {k: v.removeprefix("swm/") for k, v in reference.ORIGINAL_ENVS.items()}
VECTOR_MODES = ("world", "sync", "async")
TARGET_RATIO = 100.0


def define_flags():
    """Defines the flags; called only when run as a script, so that tests can import this
    module beside other commands that define flags of the same names (``envs``, ``sizes``)."""
    flags.DEFINE_list("envs", list(env_ids()), "Registered environment ids to time.")
    flags.DEFINE_list("sizes", ["64", "224"], "Image sizes.")
    flags.DEFINE_list("num_envs", ["1", "64", "1024", "4096"], "Parallel environment counts B.")
    flags.DEFINE_float("min_seconds", 1.0, "Shortest timed span per configuration.")
    flags.DEFINE_integer("dataset_episodes", 1000, "Two-Room episodes to collect (0: skip).")
    flags.DEFINE_integer("dataset_size", 64, "Image size of the collected dataset.")
    flags.DEFINE_string(
        "reference_python",
        reference.default_python(),
        "Interpreter with torch + stable-worldmodel for the reference side ('': skip it).",
    )
    flags.DEFINE_list("reference_num_envs", ["1", "8", "32", "64"], "Reference env counts B.")
    flags.DEFINE_list(
        "reference_modes", ["single", "world", "sync", "async"], "Modes of torch/envs.py to time."
    )
    flags.DEFINE_string("json", "", "Also write the table to this JSON file.")


def stepping_program(env, params, num_envs: int, steps: int):
    """The timed program: ``key -> (B, H, W, 3)`` uint8 XOR of every frame of ``steps``
    random-action steps of ``num_envs`` environments (step + render), jit-compiled."""

    def run(key):
        k_reset, k_steps = jax.random.split(key)
        _, state = jax.vmap(env.reset_env, (0, None))(jax.random.split(k_reset, num_envs), params)

        def body(carry, k):
            state, frames = carry
            k_act, k_env = jax.random.split(k)
            actions = jax.random.uniform(k_act, (num_envs, 2), minval=-1.0, maxval=1.0)
            obs, state, *_ = jax.vmap(env.step_env, (0, 0, 0, None))(
                jax.random.split(k_env, num_envs), state, actions, params
            )
            # Every pixel of every frame must be computed: XLA fuses a render into its
            # consumer and would compute only what a partial checksum reads (a strided sum
            # let it skip 6/7 of the columns). An XOR into a (B, H, W, 3) carry reads all of
            # them for the cost of writing the frames once.
            return (state, frames ^ obs), None

        frames = jnp.zeros((num_envs, *env.obs_shape), jnp.uint8)
        carry, _ = jax.lax.scan(body, (state, frames), jax.random.split(k_steps, steps))
        return carry[1]

    return jax.jit(run)


def frames_per_second(env, params, num_envs: int, min_seconds: float) -> float:
    """Frames/s of step + render for ``num_envs`` environments stepping in parallel."""
    steps = 50 if num_envs <= 64 else 5
    run = stepping_program(env, params, num_envs, steps)
    jax.block_until_ready(run(jax.random.key(0)))  # compile
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < min_seconds:
        jax.block_until_ready(run(jax.random.key(calls + 1)))
        calls += 1
    return calls * steps * num_envs / (time.perf_counter() - start)


def time_lewm(names, sizes, num_envs, min_seconds) -> list[dict]:
    """Frames/s of every registered env in ``names`` at each size and B, as table rows."""
    rows = []
    for name in names:
        try:
            make(name, image_size=sizes[0])
        except ImportError as e:  # an env still being written elsewhere
            print(f"# {name} skipped: {e}")
            continue
        for size in sizes:
            env, params = make(name, image_size=size)
            for b in num_envs:
                try:
                    fps = round(frames_per_second(env, params, b, min_seconds), 1)
                except jax.errors.JaxRuntimeError as e:  # e.g. out of memory
                    fps = None
                    print(f"# {name} {size}px B={b} failed: {str(e).splitlines()[0][:120]}")
                rows.append(dict(env=name, image_size=size, num_envs=b, frames_per_s=fps))
    return rows


def _csv(values):
    return ",".join(map(str, values))


def run_reference(python, names, sizes, num_envs, modes, min_seconds) -> dict:
    """Runs ``torch/envs.py`` in ``python`` for the envs of ``names`` it has; its JSON doc.

    Raises:
        RuntimeError, FileNotFoundError: one line (``reference.run``).
    """
    theirs = [REFERENCE_NAMES[n] for n in names if n in REFERENCE_NAMES]
    if not theirs:
        return {"meta": None, "rows": []}
    args = [f"--envs={_csv(theirs)}", f"--sizes={_csv(sizes)}", f"--num_envs={_csv(num_envs)}"]
    args += [f"--modes={_csv(modes)}", f"--min_seconds={min_seconds}"]
    return reference.run(python, "experiments.bench.torch.envs", args)


def _best(rows):
    rows = [r for r in rows if r["frames_per_s"] is not None]
    return max(rows, key=lambda r: r["frames_per_s"]) if rows else None


def _ratio(ours, theirs):
    return round(ours / theirs, 1) if ours and theirs else None


def combine(ours, theirs) -> dict:
    """Joins our rows and the reference's per (env, size, B), with ratios and a summary.

    Args:
        ours: rows ``{env, image_size, num_envs, frames_per_s}`` with our env names.
        theirs: torch/envs.py rows ``{env, image_size, num_envs, mode, frames_per_s, ...}``.

    Returns:
        ``{"rows": [...], "summary": [...]}``. A row's ``ratio`` is our frames/s over the
        reference's best mode at the same B; a summary entry's ``ratio`` is our best B over
        the reference's best vectorised mode (world/sync/async) at any B.
    """
    to_ours = {v: k for k, v in REFERENCE_NAMES.items()}
    theirs = [{**r, "env": to_ours[r["env"]]} for r in theirs]
    cells = {}
    for r in ours + theirs:
        cell = cells.setdefault((r["env"], r["image_size"], r["num_envs"]), {"reference": {}})
        if "mode" in r:
            cell["reference"][r["mode"]] = r["frames_per_s"]
        else:
            cell["lewm_jax"] = r["frames_per_s"]
    order = list(dict.fromkeys(env for env, _, _ in cells))
    rows = []
    for env, size, b in sorted(cells, key=lambda k: (order.index(k[0]), k[1], k[2])):
        cell = cells[env, size, b]
        best_ref = max(filter(None, cell["reference"].values()), default=None)
        fps = cell.get("lewm_jax")
        rows.append(
            dict(
                env=env,
                reference_env=REFERENCE_NAMES.get(env),
                image_size=size,
                num_envs=b,
                lewm_jax=fps,
                reference=cell["reference"],
                ratio=_ratio(fps, best_ref),
            )
        )
    summary = []
    for env, size in dict.fromkeys((r["env"], r["image_size"]) for r in rows):
        mine = _best(r for r in ours if (r["env"], r["image_size"]) == (env, size))
        ref = _best(
            r
            for r in theirs
            if (r["env"], r["image_size"]) == (env, size) and r["mode"] in VECTOR_MODES
        )
        ratio = _ratio(mine and mine["frames_per_s"], ref and ref["frames_per_s"])
        summary.append(
            dict(
                env=env,
                reference_env=REFERENCE_NAMES.get(env),
                image_size=size,
                lewm_jax_best=mine and mine["frames_per_s"],
                lewm_jax_num_envs=mine and mine["num_envs"],
                reference_best=ref and ref["frames_per_s"],
                reference_mode=ref and ref["mode"],
                reference_num_envs=ref and ref["num_envs"],
                ratio=ratio,
                target=TARGET_RATIO,
                meets_target=None if ratio is None else ratio >= TARGET_RATIO,
            )
        )
    return {"rows": rows, "summary": summary}


def _cell(value, width=11):
    return f"{value:>{width},.0f}" if value is not None else f"{'-':>{width}}"


def format_table(result) -> str:
    """The combined rows and summary of ``combine`` as aligned text."""
    modes = [
        m for m in ("single", *VECTOR_MODES) if any(m in r["reference"] for r in result["rows"])
    ]
    head = f"{'env':<12} {'size':>5} {'B':>5} {'lewm_jax':>11}"
    head += "".join(f" {'ref ' + m:>11}" for m in modes) + (f" {'ratio':>8}" if modes else "")
    lines = [head + "  (frames/s)"]
    for r in result["rows"]:
        line = f"{r['env']:<12} {r['image_size']:>5} {r['num_envs']:>5} {_cell(r['lewm_jax'])}"
        line += "".join(f" {_cell(r['reference'].get(m))}" for m in modes)
        if modes:
            line += f" {r['ratio']:>7.1f}x" if r["ratio"] else f" {'-':>8}"
        lines.append(line)
    for s in result["summary"]:
        if s["ratio"] is None:
            continue
        verdict = "meets" if s["meets_target"] else "misses"
        lines.append(
            f"best vectorised {s['env']} {s['image_size']}px: lewm_jax {s['lewm_jax_best']:,.0f} "
            f"(B={s['lewm_jax_num_envs']}) vs {s['reference_env']} {s['reference_best']:,.0f} "
            f"({s['reference_mode']}, B={s['reference_num_envs']}): {s['ratio']:.1f}x "
            f"({verdict} the >= {TARGET_RATIO:.0f}x target)"
        )
    return "\n".join(lines)


def run(
    names,
    sizes,
    num_envs,
    min_seconds,
    reference_python="",
    reference_num_envs=(1, 8, 32, 64),
    reference_modes=("single", "world", "sync", "async"),
) -> dict:
    """Times lewm_jax (and the reference when ``reference_python`` is set); the JSON doc."""
    ours = time_lewm(names, sizes, num_envs, min_seconds)
    reference = {"meta": None, "rows": []}
    if reference_python:
        reference = run_reference(
            reference_python, names, sizes, reference_num_envs, reference_modes, min_seconds
        )
    meta = dict(
        backend=jax.default_backend(),
        device=jax.devices()[0].device_kind,
        device_count=jax.device_count(),
        jax=jax.__version__,
        host=platform.node(),
        date=time.strftime("%Y-%m-%d"),
        min_seconds=min_seconds,
        reference=reference["meta"],
    )
    return {"meta": meta, **combine(ours, reference["rows"])}


def time_dataset(episodes: int, image_size: int) -> dict:
    """Seconds to collect a Two-Room expert dataset, compilation included."""
    env, params = make("TwoRoom-v0", image_size=image_size)
    start = time.perf_counter()
    eps = collect_episodes(env, params, env.expert_policy, jax.random.key(0), episodes, 100)
    return dict(
        episodes=episodes,
        frames=len(eps.pixels),
        image_size=image_size,
        mean_length=round(float(eps.ep_len.mean()), 1),
        seconds=round(time.perf_counter() - start, 1),
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    print(f"# {jax.devices()[0].device_kind} x{jax.device_count()} ({platform.node()})")
    if not FLAGS.reference_python:
        print("# reference side skipped: set --reference_python or LEWM_TORCH_PYTHON")
    try:
        result = run(
            FLAGS.envs,
            [int(s) for s in FLAGS.sizes],
            [int(b) for b in FLAGS.num_envs],
            FLAGS.min_seconds,
            FLAGS.reference_python,
            [int(b) for b in FLAGS.reference_num_envs],
            FLAGS.reference_modes,
        )
    except (RuntimeError, FileNotFoundError) as e:
        raise SystemExit(str(e)) from None
    print(format_table(result), flush=True)

    if FLAGS.dataset_episodes:
        d = result["dataset"] = time_dataset(FLAGS.dataset_episodes, FLAGS.dataset_size)
        print(
            f"Two-Room dataset: {d['episodes']} expert episodes, {d['frames']:,} frames at "
            f"{d['image_size']} px (mean length {d['mean_length']}) in {d['seconds']} s "
            "including compilation"
        )
    if FLAGS.json:
        with open(FLAGS.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {FLAGS.json}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
