"""Peak memory and step time of a cpu-size training run, by dataset source and file size.

Writes official-layout HDF5 files of Two-Room frames (real rendered frames, tiled to the
wanted size, uncompressed so that the file's size on disk is the stated one), then runs
``python -m experiments.train`` on each as a subprocess and samples the resident memory of
its whole process tree (the trainer and any loader workers) every 0.1 s. Also runs the same
config on the in-memory Two-Room dataset and on an HDF5 copy of exactly that dataset, so
that streaming and in-memory step times compare on identical clips.

  python -m experiments.bench.train_memory --sizes_gb=1,8 --steps=30 \
      --data_dir=/tmp/lewm_h5 --json=runs/bench/train_memory.json

Files already in ``--data_dir`` with the right size are reused; they are never overwritten.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
FRAME_224 = 224 * 224 * 3


def define_flags():
    """Defines the flags (only when run as a script)."""
    flags.DEFINE_list("sizes_gb", ["1", "8"], "HDF5 file sizes (GB of 224 px pixels) to train on.")
    flags.DEFINE_integer("steps", 30, "Training steps per run (the first is compilation).")
    flags.DEFINE_integer("num_workers", 0, "data.num_workers of every run.")
    flags.DEFINE_string("data_dir", "", "Where the HDF5 files go (default: a temporary dir).")
    flags.DEFINE_bool("in_memory", True, "Also run in memory and on an HDF5 copy of it.")
    flags.DEFINE_string("json", "", "Also write the results to this JSON file.")


def _rss_tree(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def _summary(stdout: str) -> dict:
    """The JSON summary that experiments.train prints (the block from '{' to '}')."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line == "{")
    end = next(i for i in range(start, len(lines)) if lines[i] == "}")
    return json.loads("\n".join(lines[start : end + 1]))


def run_training(flags_: list[str], workdir: Path) -> dict:
    """Trains the cpu size with ``flags_``; peak tree RSS and the run's summary."""
    cmd = [
        sys.executable,
        "-m",
        "experiments.train",
        "--config=experiments/configs/lewm.py:cpu",
        f"--workdir={workdir}",
        f"--config.total_steps={FLAGS.steps}",
        f"--config.data.num_workers={FLAGS.num_workers}",
        "--config.planning.enabled=False",
        "--config.eval_batches=1",
        "--config.data.in_memory_gb=0",  # files streamed, as this benchmark is about
        *flags_,
    ]
    out_path = workdir.parent / f"{workdir.name}.log"
    t0 = time.time()
    with out_path.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _rss_tree(proc.pid))
            time.sleep(0.1)
    log = out_path.read_text()
    if proc.returncode:
        raise RuntimeError(f"training failed ({' '.join(cmd)}): {log[-2000:]}")
    s = _summary(log)
    return {
        "command": " ".join(cmd),
        "peak_rss_mb": peak / 2**20,
        "wall_s": time.time() - t0,
        "seconds_per_step": s["seconds_per_step"],
        "steady_seconds_per_step": s["steady_seconds_per_step"],
        "loss": s["loss"],
    }


def _frames_224(n_episodes: int = 20):
    """Rendered 224 px Two-Room episodes (frames, actions, ep_len), the tile of the files."""
    import jax

    from lewm_jax import envs
    from lewm_jax.data.collect import collect_episodes

    env, params = envs.make("two_room", image_size=224)
    eps = collect_episodes(
        env, params, env.expert_policy, jax.random.key(0), num_episodes=n_episodes, max_steps=100
    )
    return np.asarray(eps.pixels), np.asarray(eps.actions, np.float32)


def write_big_file(path: Path, size_gb: float, tile) -> None:
    """An official-layout file of ``size_gb`` GB of 224 px frames, written block by block."""
    import h5py

    pixels, actions = tile
    n = int(size_gb * 1e9 // FRAME_224) // 100 * 100  # whole episodes of 100 steps
    tmp = Path(str(path) + ".tmp")
    with h5py.File(tmp, "w") as f:
        px = f.create_dataset("pixels", (n, 224, 224, 3), np.uint8, chunks=(1, 224, 224, 3))
        act = f.create_dataset("action", (n, actions.shape[1]), np.float32)
        for i in range(0, n, 1000):
            m = min(1000, n - i)
            rows = (i + np.arange(m)) % len(pixels)
            px[i : i + m] = pixels[rows]
            act[i : i + m] = np.nan_to_num(actions[rows])
        f["ep_len"] = np.full(n // 100, 100, np.int64)
        f["ep_offset"] = np.arange(0, n, 100, dtype=np.int64)
        f["ep_idx"] = np.repeat(np.arange(n // 100), 100)
        f["step_idx"] = np.tile(np.arange(100), n // 100)
    os.replace(tmp, path)


def main(argv):
    del argv
    sizes = [float(s) for s in FLAGS.sizes_gb]
    if any(s <= 0 for s in sizes):
        raise app.UsageError(f"--sizes_gb must be positive, got {FLAGS.sizes_gb}")
    data_dir = Path(FLAGS.data_dir or tempfile.mkdtemp(prefix="lewm_h5_"))
    data_dir.mkdir(parents=True, exist_ok=True)
    runs = Path(tempfile.mkdtemp(prefix="lewm_mem_runs_"))
    rows, tile = [], None
    if FLAGS.in_memory:
        from experiments.configs.lewm import get_config
        from lewm_jax.data import datasets
        from lewm_jax.data.hdf5 import write_hdf5

        rows.append({"data": "two_room in memory", **run_training([], runs / "memory")})
        copy = data_dir / "two_room_cpu.h5"
        if not copy.exists():
            c = get_config("cpu")
            write_hdf5(copy, datasets.load_episodes(c.data, c.seed))
        flags_ = ["--config.data.name=hdf5", f"--config.data.path={copy}"]
        rows.append({"data": "the same, streamed from HDF5", **run_training(flags_, runs / "copy")})
    for size in sizes:
        path = data_dir / f"two_room_224px_{size:g}GB.h5"
        if not path.exists():
            tile = tile or _frames_224()
            write_big_file(path, size, tile)
        flags_ = ["--config.data.name=hdf5", f"--config.data.path={path}"]
        row = run_training(flags_, runs / f"h5_{size:g}")
        rows.append(
            {
                "data": f"HDF5 224 px {size:g} GB -> 64 px",
                "file_gb": path.stat().st_size / 1e9,
                **row,
            }
        )
    print("| data | file GB | peak RSS MB | s/step (steady) | s/step (all) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['data']} | {r.get('file_gb', 0):.2f} | {r['peak_rss_mb']:.0f} | "
            f"{r['steady_seconds_per_step']:.3f} | {r['seconds_per_step']:.3f} |"
        )
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d"),
        "steps": FLAGS.steps,
        "num_workers": FLAGS.num_workers,
        "rows": rows,
    }
    if FLAGS.json:
        Path(FLAGS.json).parent.mkdir(parents=True, exist_ok=True)
        Path(FLAGS.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    define_flags()
    app.run(main)
