"""Input-pipeline speed: clips/s of the streaming loader beside the clips/s the train step eats.

For each layout (``paper``: 224 px clips from 224 px files; ``cpu``: 64 px clips, read from a
64 px file and from a 224 px file resized on the fly, as the official files are 224 px),
source (official-layout HDF5 uncompressed, HDF5 with Blosc LZ4 as the official files, the
TFDS array_record dataset of ``data.build``) and worker count (0 = grain threads in this
process, W > 0 = W grain worker processes), a :class:`ClipSource` of the layout's config
(4 frames, frameskip 5) is iterated: the first batches (worker start-up, then what grain's
buffers filled meanwhile) are excluded, then ``--repeats`` windows of ``--steps`` batches
(or more: 4 bursts of grain's readers) are timed; clips/s = B / s per batch, median and
min-max over the windows. Beside
it, the jitted train step of the same config on this machine (``train_speed.py``), so each
row says whether the loader would starve it, and why (``clip_costs``: one process's read
and resize time per clip).

The data are real Two-Room frames: ``--unique_episodes`` expert episodes are collected and
tiled up to ``--episodes`` for the HDF5 files (Blosc compresses each chunk alone, so
tiling does not change its ratio); the TFDS builder collects its ``--episodes`` itself.
The files are written just before they are read, so they sit in the page cache: this times
decoding, resizing and copying, not the disk.

  python -m experiments.bench.loader_speed --train_batch_size=paper:16 \\
      --train_dtype=float32                           # the full benchmark on a CPU host
  python -m experiments.bench.loader_speed --train_step_layouts=cpu    # no paper step
  python -m experiments.bench.loader_speed --episodes=4 --steps=3 --repeats=1 --layouts=cpu \\
      --workers=0,1 --train_step=False                           # smoke run, 2-5 min

On a CPU host the paper step at batch 128 does not fit in 24 GB (BENCHMARKS.md) and takes
about 11 s/step at batch 16 in float32: time it at ``--train_batch_size=paper:16`` (on CPU
clips/s barely depends on the batch), or on the accelerator. ``--out`` gets every raw timing.
"""

import json
import math
import os
import platform
import shutil
import statistics
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from absl import app, flags

SOURCES = ("hdf5", "hdf5_blosc", "tfds")
PACKAGES = ("jax", "grain", "h5py", "hdf5plugin", "tensorflow-datasets", "pillow", "numpy")
FLAGS = flags.FLAGS


# Layout -> (size of experiments/configs/lewm.py: image size, T, frameskip, batch, step;
# frame sides stored in the files read, resized on the fly to the config's image size).
LAYOUTS = {"paper": ("paper", (224,)), "cpu": ("cpu", (64, 224))}
# run()'s options and the integer flags of the same names: default, help.
OPTIONS = {
    "steps": (10, "Batches per timed window, at least 4 x workers x reader threads."),
    "repeats": (3, "Timed windows of --steps batches per setting (median, min-max)."),
    "batch_size": (0, "Global batch (0 = the layout config's: paper 128, cpu 64)."),
    "prefetch": (2, "Batches read ahead per worker (config.data.prefetch)."),
    "episodes": (100, "Episodes per file."),
    "unique_episodes": (8, "Distinct collected episodes, tiled in the HDF5 files."),
    "frames_per_chunk": (1, "Frames per HDF5 chunk of 'pixels'."),
    "train_steps": (3, "Timed train steps after the compiling one."),
}


def define_flags():
    """Defines the flags; called only when run as a script, so that tests can import this
    module beside other benchmarks that define flags of the same names (``steps``, ``out``)."""
    flags.DEFINE_string("out", "runs/bench/loader_speed.json", "JSON file of the results.")
    flags.DEFINE_string("workdir", "", "Where the files are written ('' = a temp dir).")
    flags.DEFINE_bool("keep", False, "Keep the temp dir of the generated files.")
    flags.DEFINE_list("layouts", list(LAYOUTS), f"Layouts: {', '.join(LAYOUTS)}.")
    flags.DEFINE_list("sources", list(SOURCES), f"Sources: {', '.join(SOURCES)}.")
    flags.DEFINE_list("workers", ["0", "1", "2", "4"], "grain workers (0 = threads in-process).")
    flags.DEFINE_bool("train_step", True, "Also time the train step of each layout.")
    for name, (default, text) in OPTIONS.items():  # a batch of 0 means the config's
        flags.DEFINE_integer(name, default, text, lower_bound=int(name != "batch_size"))
    flags.DEFINE_list("train_step_layouts", [], "Layouts whose step is timed ([] = --layouts).")
    flags.DEFINE_list(
        "train_batch_size", [], "Batch of the timed step: N, or layout:N pairs ([] = the loader's)."
    )
    flags.DEFINE_string("train_dtype", "", "Compute dtype of the timed step ('' = the config's).")


def check_choices(name: str, values, known, what: str = "") -> list:
    """``values`` if a non-empty subset of ``known``, else a one-line ValueError."""
    bad = [v for v in values if v not in known]
    if bad or not values:
        raise ValueError(
            f"--{name}={','.join(values)}: {bad or 'empty list'} not allowed; expected a "
            f"comma-separated subset of {', '.join(known)}{what}"
        )
    return list(values)


def check_workers(values) -> list[int]:
    """Worker counts as ints >= 0, else a one-line ValueError naming the bad value."""
    for v in values or [""]:
        if not v.strip().isdigit():  # "-1", "two", an empty list
            raise ValueError(
                f"--workers: {v!r} is not a worker count; expected integers >= 0 "
                "(0 = grain threads in this process)"
            )
    return [int(v) for v in values]


def check_train_batch(values, layouts) -> dict[str, int]:
    """``--train_batch_size`` as ``{layout: batch}`` (0 = the loader's), or a one-line
    ValueError: a bare ``N`` applies to every timed layout, ``layout:N`` to one (if timed)."""
    out = dict.fromkeys(layouts, 0)
    for v in values:
        name, _, n = v.rpartition(":")
        if (name and name not in LAYOUTS) or not n.isdigit():
            raise ValueError(
                f"--train_batch_size: {v!r}; expected N or layout:N with N >= 0 and a layout "
                f"of {', '.join(LAYOUTS)}"
            )
        out.update({k: int(n) for k in ([name] if name else layouts) if k in out})
    return out


def two_room_episodes(size: int, num_episodes: int, unique: int, max_steps: int, seed: int = 0):
    """Expert Two-Room :class:`Episodes` at ``size`` px: ``unique`` collected, tiled to E."""
    import jax

    from lewm_jax import envs
    from lewm_jax.data.collect import collect_episodes
    from lewm_jax.data.episodes import Episodes, episode_offsets

    env, params = envs.make("two_room", image_size=size)
    n = min(unique, num_episodes)
    eps = collect_episodes(
        env, params, env.expert_policy, jax.random.key(seed), num_episodes=n, max_steps=max_steps
    )
    reps = math.ceil(num_episodes / n)
    ep_len = np.tile(eps.ep_len, reps)[:num_episodes].astype(np.int64)
    rows = int(ep_len.sum())  # collected episodes are compact, so a tiled prefix is whole ones
    tile = lambda x: None if x is None else np.concatenate([x] * reps)[:rows]
    offset = episode_offsets(ep_len)
    return Episodes(tile(eps.pixels), tile(eps.actions), offset, ep_len, tile(eps.state))


def prepare(workdir: Path, sources, sizes, max_steps: int, o: dict) -> dict:
    """Writes (or reuses) each (source, stored size); ``{(source, size): info}``: the path
    (the .h5 file, or the TFDS data_dir and config), build seconds, bytes on disk."""
    import h5py

    from lewm_jax.data.hdf5 import write_hdf5

    episodes, unique, chunk = o["episodes"], o["unique_episodes"], o["frames_per_chunk"]
    files = {}
    for size in sizes:
        name = f"two_room_{size}px_{episodes}x{max_steps}_u{unique}_c{chunk}"
        eps = None
        for source in [s for s in sources if s != "tfds"]:
            path = workdir / f"{name}_{source}.h5"
            t0 = time.perf_counter()
            if not path.exists():
                if eps is None:
                    eps = two_room_episodes(size, episodes, unique, max_steps)
                compression = "blosc" if source == "hdf5_blosc" else None
                write_hdf5(path, eps, compression=compression, frames_per_chunk=chunk)
            with h5py.File(path, "r") as f:  # Blosc's ratio on these frames
                ratio = round(f["pixels"].nbytes / max(f["pixels"].id.get_storage_size(), 1), 2)
            info = dict(path=str(path), build_s=time.perf_counter() - t0, pixel_ratio=ratio)
            files[source, size] = dict(info, bytes=path.stat().st_size)
        del eps  # up to E * 100 frames of 150 KB at 224 px
        if "tfds" in sources:
            from lewm_jax.data.tfds import builder, make_config

            config = make_config("two_room", size, episodes, max_steps=max_steps)
            t0 = time.perf_counter()
            b = builder(config, str(workdir / "tfds"))
            b.download_and_prepare()
            disk = sum(f.stat().st_size for f in Path(b.data_dir).iterdir() if f.is_file())
            info = dict(path=str(workdir / "tfds"), build_s=time.perf_counter() - t0, bytes=disk)
            files["tfds", size] = dict(info, config=config)
    return files


def open_store(source: str, info: dict, image_size: int):
    """The clip store of a prepared file, resizing frames to ``image_size``."""
    if source == "tfds":
        from lewm_jax.data.tfds import TFDSStore

        return TFDSStore(info["config"], info["path"], image_size=image_size)
    from lewm_jax.data.hdf5 import HDF5Store

    return HDF5Store(info["path"], image_size=image_size)


def time_loader(src, workers: int, steps: int, repeats: int, prefetch: int) -> dict:
    """Start-up seconds (first batch), then ``repeats`` back-to-back windows of at least
    ``steps`` batches from one iterator: their arrival times and clips/s = B / s per batch."""
    # Batches grain can hold per reader (ClipSource.iterate: prefetch read ahead by
    # min(prefetch, 4) threads, plus each worker's output buffer): while the first batch waits
    # for start-up the others fill up, so that many are drained before the clock starts, and
    # as many are left unread after it stops, so the readers are busy through the windows.
    held = max(workers, 1) * (prefetch + min(prefetch, 4) + (prefetch if workers else 0))
    # Reader threads finish together and the workers take turns, so batches come in bursts
    # of up to threads x workers (more when one worker lags): a window spans 4 bursts or more,
    # and its rate is the slope through every arrival, steadier than the first and last alone.
    steps = max(steps, 4 * max(workers, 1) * min(prefetch, 4))
    it = src.iterate(0, 1 + held + repeats * steps + held, num_workers=workers, prefetch=prefetch)
    windows = []
    try:
        t0 = time.perf_counter()
        next(it)  # spawns and imports the workers: not the steady state
        start_s = time.perf_counter() - t0
        for _ in range(held):
            next(it)
        for _ in range(repeats):
            t0, arrivals = time.perf_counter(), [0.0]
            for _ in range(steps):
                next(it)
                arrivals.append(time.perf_counter() - t0)
            per_batch = max(float(np.polyfit(np.arange(steps + 1), arrivals, 1)[0]), 1e-9)
            windows.append(
                dict(
                    arrivals_s=[round(a, 4) for a in arrivals],
                    clips_per_s=round(src.batch_size / per_batch, 2),
                )
            )
    finally:
        it.close()  # stops the grain workers (and the unread batches) before the next setting
    return dict(start_s=round(start_s, 3), warm_batches=1 + held, steps=steps, windows=windows)


def time_step(config_size: str, batch_size: int, dtype: str, steps: int) -> dict | None:
    """train_speed's row (``clips_per_s`` = B / s per step) for ``config_size``; None when
    the step does not run here (e.g. out of memory)."""
    import jax

    from experiments.bench.train_speed import time_train_step

    try:
        return time_train_step(config_size, len(jax.devices()), batch_size, dtype, steps)
    except jax.errors.JaxRuntimeError as e:
        print(f"# {config_size} train step failed: {str(e).splitlines()[0][:160]}")
        return None


def clip_costs(source: str, info: dict, src, n: int = 32) -> dict:
    """Milliseconds per clip, in this process, to read (and decode) a clip's frames at the
    stored size, and to resize them to the clip size: where a slow loader's time goes."""
    from lewm_jax.frames import resize_frames

    store = open_store(source, info, None)  # the stored size: no resize inside
    store.read_clips(src.clip_indices(1)[:n], src.num_frames, src.frameskip)  # warm, other clips
    starts = src.clip_indices(0)[:n]
    n = len(starts)  # a batch may hold fewer
    t0 = time.perf_counter()
    pixels, _ = store.read_clips(starts, src.num_frames, src.frameskip)
    t1 = time.perf_counter()
    resize_frames(pixels, src.frame_shape[0])
    t2 = time.perf_counter()
    return dict(
        read_ms=round((t1 - t0) * 1e3 / n, 3),
        resize_ms=round((t2 - t1) * 1e3 / n, 3),
        read_mb_per_s=round(pixels.nbytes / 1e6 / (t1 - t0), 1),
    )


def why_slower(row: dict, cpus: int) -> str:
    """The measured costs and the structural reasons behind a loader slower than the step."""
    c = row["clip_costs"]
    per_core = 1000 / (c["read_ms"] + c["resize_ms"])
    need = math.ceil(row["step_clips_per_s"] / per_core)
    reasons = [
        f"one process spends {c['read_ms']:.1f} ms reading a clip ({c['read_mb_per_s']:.0f} "
        f"MB/s of its frames) and {c['resize_ms']:.1f} ms resizing it, <= {per_core:.0f} "
        f"clips/s per core, so the step needs ~{need} busy cores (this host has {cpus})"
    ]
    reach = row["clips_per_s"] / (per_core * max(1, min(row["workers"], cpus)))
    if reach < 0.7:  # the reads alone would allow more: the rest is the pipeline or the host
        reasons.append(
            f"the pipeline gets {reach:.0%} of what its cores could read: batching, moving "
            "batches between processes, grain, or a busy host (see loadavg)"
        )
    if row["workers"] == 0:
        lock = " and HDF5's global lock" if row["source"].startswith("hdf5") else ""
        reasons.append(f"threads in one process: the GIL{lock} serialise the reads")
    elif row["workers"] > cpus:
        reasons.append(f"{row['workers']} workers share {cpus} cores")
    if row["source"] == "tfds":
        reasons.append(
            f"each clip zlib-decodes its whole episode record (~{row['mean_episode_len']:.0f} "
            f"frames) to use {row['num_frames']}"
        )
    return "; ".join(reasons)


def run(layouts, sources, workers, *, workdir: Path, layout_table=None, **opts) -> dict:
    """Times every (layout, stored size, source, workers) and the chosen train steps.

    Args:
        layouts: names of ``layout_table`` (checked).
        sources: names of ``SOURCES`` (checked).
        workers: grain worker counts >= 0.
        workdir: where the files are written (and reused from).
        layout_table: like ``LAYOUTS`` (its default; tests pass a tiny one).
        **opts: ``OPTIONS`` (the integer flags), default where not given; ``train_step``,
            ``{layout: batch}`` of the train steps to time (batch 0: the loader's); and
            ``train_dtype``, their compute dtype (``""``: the config's).

    Returns:
        The JSON document: ``meta``, ``files``, ``train_steps`` (layout -> train_speed row
        or None) and ``rows`` (one per setting and worker count, with every arrival time).
    """
    from experiments.configs.lewm import get_config
    from lewm_jax.data.clips import ClipSource

    o = {k: v for k, (v, _) in OPTIONS.items()} | dict(train_step={}, train_dtype="") | opts
    table = layout_table or LAYOUTS
    meta = machine_info(**{k: v for k, v in o.items() if k != "train_step"})
    cpus = meta["cpus_available"]
    configs = {name: get_config(table[name][0]) for name in layouts}
    # The steps first: one that runs out of memory then costs minutes, not the loader's hour.
    steps_by_layout = {}
    for name, b in o["train_step"].items():
        b = b or o["batch_size"] or configs[name].batch_size
        step = time_step(table[name][0], b, o["train_dtype"], o["train_steps"])
        print(f"# {name} train step, batch {b}: {step and step['clips_per_s']} clips/s")
        steps_by_layout[name] = step
    sizes = sorted({s for name in layouts for s in table[name][1]})
    files = prepare(workdir, sources, sizes, max(c.data.episode_len for c in configs.values()), o)
    rows = []
    for name, c in configs.items():
        d, batch = c.data, o["batch_size"] or c.batch_size
        for stored, source in [(s, src) for s in table[name][1] for src in sources]:
            info = files[source, stored]
            store = open_store(source, info, d.image_size)
            src = ClipSource(
                store, batch_size=batch, num_frames=d.num_frames, frameskip=d.frameskip
            )
            setting = dict(
                layout=name,
                source=source,
                stored_px=stored,
                image_size=d.image_size,
                num_frames=d.num_frames,
                frameskip=d.frameskip,
                batch=batch,
                mean_episode_len=round(float(store.ep_len.mean()), 1),
                clip_costs=clip_costs(source, info, src),
            )
            for w in workers:
                timed = time_loader(src, w, o["steps"], o["repeats"], o["prefetch"])
                cps = [r["clips_per_s"] for r in timed["windows"]]
                med = statistics.median(cps)
                spread = dict(clips_per_s_min=min(cps), clips_per_s_max=max(cps))
                rows.append(dict(setting, workers=w, clips_per_s=med, **spread, **timed))
                print(f"# {name} {source} {stored} -> {d.image_size} px, {w} workers: {med:.1f}/s")

    for r in rows:
        step = (steps_by_layout.get(r["layout"]) or {}).get("clips_per_s")
        r["step_clips_per_s"] = step
        r["loader_over_step"] = round(r["clips_per_s"] / step, 2) if step else None
        r["loader_slower"] = r["clips_per_s"] < step if step else None
        r["why"] = why_slower(r, cpus) if r["loader_slower"] else ""
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    files = [
        dict(source=s, stored_px=size, **{k: v for k, v in info.items() if k != "config"})
        for (s, size), info in files.items()
    ]
    return dict(meta=meta, files=files, train_steps=steps_by_layout, rows=rows)


def machine_info(**settings) -> dict:
    """Date, host, cores, load average, package versions, then ``settings``."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return dict(
        date=time.strftime("%Y-%m-%d %H:%M"),
        host=platform.node(),
        cpu_count=os.cpu_count(),
        cpus_available=len(os.sched_getaffinity(0)),
        # The host may be shared: a load above its cores at either end means noisy rows.
        loadavg_start=[round(x, 2) for x in os.getloadavg()],
        python=platform.python_version(),
        **versions,
        **settings,
    )


def format_table(doc: dict) -> str:
    """The rows as a Markdown table, then one line per row whose loader starves the step."""
    m = doc["meta"]
    lines = [
        f"# loader, {m['host']}, {m['cpus_available']} cores, {m['date']}, "
        f"load {m['loadavg_start']} -> {m['loadavg_end']}",
        "| layout | source | file px -> clip px | workers | clips/s median [min, max] "
        "| step clips/s | loader / step | loader slower than step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        w = f"{r['workers']} (threads)" if r["workers"] == 0 else str(r["workers"])
        step = "not measured" if r["step_clips_per_s"] is None else f"{r['step_clips_per_s']:.1f}"
        ratio = "-" if r["loader_over_step"] is None else f"{r['loader_over_step']:.2f}x"
        slower = {None: "-", True: "**yes**", False: "no"}[r["loader_slower"]]
        lines.append(
            f"| {r['layout']} | {r['source']} | {r['stored_px']} -> {r['image_size']} | {w} | "
            f"{r['clips_per_s']:.1f} [{r['clips_per_s_min']:.1f}, {r['clips_per_s_max']:.1f}] "
            f"| {step} | {ratio} | {slower} |"
        )
    for name, s in [(n, s) for n, s in doc["train_steps"].items() if s]:
        step = f"batch {s['batch']}, {s['dtype']}, {s['s_per_step']} s/step"
        lines.append(f"\ntrain step {name}: {step} = {s['clips_per_s']} clips/s")
    slow = [r for r in doc["rows"] if r["loader_slower"]]
    if slow:
        lines.append("\nWhere the loader is slower than the step (measured alone: on a CPU host")
        lines.append("the step and the workers share the cores, so training gets even less):")
    for r in slow:
        what = f"{r['layout']} {r['source']} {r['stored_px']} -> {r['image_size']} px"
        lines.append(f"- {what}, {r['workers']} workers: {r['why']}")
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        layouts = check_choices("layouts", FLAGS.layouts, LAYOUTS)
        sources = check_choices("sources", FLAGS.sources, SOURCES)
        workers = check_workers(FLAGS.workers)
        step_layouts = []
        if FLAGS.train_step:
            step_layouts = check_choices(
                "train_step_layouts", FLAGS.train_step_layouts or layouts, layouts, " (--layouts)"
            )
        train_step = check_train_batch(FLAGS.train_batch_size, step_layouts)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None

    workdir = Path(FLAGS.workdir or tempfile.mkdtemp(prefix="loader_speed_"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        opts = {k: FLAGS[k].value for k in OPTIONS}
        opts.update(train_step=train_step, train_dtype=FLAGS.train_dtype)
        doc = run(layouts, sources, workers, workdir=workdir, **opts)
    except ValueError as e:  # e.g. fewer clips than one batch
        raise SystemExit(f"error: {e}") from None
    finally:
        if not FLAGS.workdir and not FLAGS.keep:
            shutil.rmtree(workdir, ignore_errors=True)  # GBs of frames at 224 px
    print(format_table(doc))
    out = Path(FLAGS.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {out}" + (f"; files kept in {workdir}" if FLAGS.workdir or FLAGS.keep else ""))


if __name__ == "__main__":
    define_flags()
    app.run(main)
