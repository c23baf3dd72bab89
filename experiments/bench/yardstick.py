"""Yardstick: lewm_jax's training against the original's, at equal compute on the same data.

For one config (default: the cpu-size Push-T), this
1. makes the training episodes the config describes (or reads its file dataset, e.g. a
   collected Cube file) and writes them once in the official HDF5 layout
   (``<out>/data.h5``, what the original reads; read back and checked equal to what
   lewm_jax trains on), with the batch plan: the clip of every row of every step, the
   validation clips, the action statistics and the optimizer settings (``<out>/plan.npz``);
2. trains lewm_jax on those episodes (``<out>/lewm_jax``, the same run ``experiments.train``
   makes, planning left for step 4);
3. trains the original's LeWM (stable-worldmodel 0.1.1's modules, the authors' training
   step, its own HDF5 reader) on the same plan in the reference interpreter
   (``experiments/bench/torch/fit.py``) and imports its weights with the converter
   (``<out>/original``);
4. evaluates both with lewm_jax's planner on the same start/goal pairs (the config's
   planning section, ``--seeds`` seeds) and probes both on the same held-out expert
   episodes, and prints one table (``<out>/yardstick.json``).

Every stage keeps what an earlier call wrote (a stage whose output exists is skipped, so a
killed run resumes at the stage it was in), and ``--stages`` runs some of them:

  LEWM_TORCH_PYTHON=/work/ref-venv/bin/python python -m experiments.bench.yardstick \\
      --config=experiments/configs/push_t.py --config.model.encoder=Mi/8 \\
      --config.total_steps=2000 --out=runs/yardstick_pusht
  ... --config=experiments/configs/cube.py --config.data.path=runs/cube/cube_single_64.h5 \\
      --out=runs/yardstick_cube

``--config.a.b=v`` overrides the config as in ``experiments.train``; both sides' run
directories get the resolved config (``<out>/config.json``).
"""

import json
import time
from pathlib import Path

import numpy as np
from absl import app, flags
from ml_collections import config_flags

from experiments.bench import reference

FLAGS = flags.FLAGS
STAGES = ("data", "lewm_jax", "original", "evaluate")
DEFAULT_CONFIG = "experiments/configs/push_t.py"


def define_flags():
    """Defines the flags (only when run as a script, so that tests can import this module)."""
    config_flags.DEFINE_config_file("config", DEFAULT_CONFIG, "Config[:arg].", lock_config=True)
    flags.DEFINE_string("out", None, "Directory of the comparison (data, both runs, report).")
    flags.DEFINE_list("stages", list(STAGES), f"Stages to run, of {STAGES}.")
    flags.DEFINE_integer("seeds", 3, "Evaluation seeds (config.planning.seed, +1, ...).")
    flags.DEFINE_integer("probe_episodes", 200, "Held-out expert episodes for the probes.")
    flags.DEFINE_string("reference_python", reference.default_python(), "Reference interpreter.")


def check_config(config) -> None:
    """One-line errors for a config the comparison cannot run as asked, before any stage
    writes (the whole run config, as ``experiments.train`` checks it)."""
    from lewm_jax.models.resnet import is_resnet
    from lewm_jax.run import validate_config

    validate_config(config)
    if is_resnet(config.model.encoder):
        raise ValueError(
            f"model.encoder {config.model.encoder!r} is a ResNet, which the original does not "
            "have; compare a ViT recipe (e.g. --config.model.encoder=Mi/8)"
        )
    if config.loss.regularizer != "sigreg" or config.loss.ema_target:
        raise ValueError(
            f"loss {config.loss.regularizer!r} (ema_target={config.loss.ema_target}): the "
            "original trains with SIGReg and no EMA target only"
        )


def run_config(config, out: Path):
    """The config both runs use: ``config`` resolved, a file dataset's path made absolute
    (the converter runs elsewhere). Written as ``<out>/config.json``, the converter's base
    for the original's run directory."""
    config = config.copy_and_resolve_references()
    if config.data.path:
        with config.unlocked():
            config.data.path = str(Path(config.data.path).expanduser().resolve())
    path = out / "config.json"
    if path.exists():  # a resumed comparison: every stage so far ran this config
        from lewm_jax.training.run_dir import SPEED_FIELDS, flatten, read_json

        a, b = flatten(read_json(path, "config")), flatten(json.loads(config.to_json()))
        keys = (a.keys() | b.keys()) - set(SPEED_FIELDS)  # how fast, not what: may change
        diff = sorted(k for k in keys if a.get(k) != b.get(k))
        if diff:
            raise ValueError(
                f"{path} holds another config ({', '.join(diff[:3])}); give a new --out"
            )
    else:
        path.write_text(config.to_json(indent=2))
    return config


def write_data(config, out: Path) -> dict:
    """Stage 1: ``data.h5`` and ``plan.npz`` (kept when they exist); returns their summary."""
    from lewm_jax.data import datasets
    from lewm_jax.data.clips import ClipSource
    from lewm_jax.data.hdf5 import HDF5Store, write_hdf5

    h5, plan_path = out / "data.h5", out / "plan.npz"
    episodes = datasets.load_episodes(config.data, config.seed)
    if not h5.exists():
        write_hdf5(h5, episodes, env=datasets.env_name(config.data))
    check_written(HDF5Store(h5, image_size=config.data.image_size), episodes)
    d = config.data
    common = dict(
        batch_size=config.batch_size,
        num_frames=d.num_frames,
        frameskip=d.frameskip,
        seed=config.seed,
        train_fraction=d.train_fraction,
    )
    train = ClipSource(episodes, split="train", **common)
    val = ClipSource(episodes, split="val", stats=(train.action_mean, train.action_std), **common)
    steps = config.total_steps or config.num_epochs * train.steps_per_epoch
    if not plan_path.exists():
        rows = np.stack([train.clip_indices(s) for s in range(steps)])
        num_val = min(config.eval_batches, val.steps_per_epoch)  # as the loop validates
        val_rows = np.concatenate([val.clip_indices(i) for i in range(num_val)])
        ep_of = lambda r: np.searchsorted(episodes.ep_offset, r, side="right") - 1  # noqa: E731
        np.savez(
            plan_path,
            episodes=ep_of(rows),
            starts=rows - episodes.ep_offset[ep_of(rows)],
            val_episodes=ep_of(val_rows),
            val_starts=val_rows - episodes.ep_offset[ep_of(val_rows)],
            action_mean=train.action_mean,
            action_std=train.action_std,
            seed=config.seed,
            optim=json.dumps(config.optim.to_dict()),
        )
    return {"episodes": len(episodes.ep_len), "frames": len(episodes.pixels), "steps": steps}


def check_written(store, episodes) -> None:
    """Raises if the file behind ``store`` does not hold ``episodes``, read back a chunk at a
    time (a second copy of a cpu recipe's frames, 5.5 GB for Reacher, does not fit beside
    the first in 24 GB)."""
    back = {"ep_len": store.ep_len, "ep_offset": store.ep_offset}
    back["actions"] = np.concatenate(list(store.action_chunks()))
    for field, value in back.items():
        if not np.array_equal(value, getattr(episodes, field), equal_nan=True):
            raise ValueError(f"{store.path}: field {field!r} differs from the config's episodes")
    i = 0
    for chunk in store.pixel_chunks():
        if not np.array_equal(chunk, episodes.pixels[i : i + len(chunk)]):
            raise ValueError(f"{store.path}: field 'pixels' differs from the config's episodes")
        i += len(chunk)
    if i != len(episodes.pixels):
        n = len(episodes.pixels)
        raise ValueError(f"{store.path}: {i} frames, the config's episodes have {n}")


def train_lewm_jax(config, out: Path) -> dict:
    """Stage 2: lewm_jax trained in ``<out>/lewm_jax``; returns its summary (kept on disk)."""
    from lewm_jax.run import train_and_evaluate

    path = out / "lewm_jax_summary.json"
    if path.exists():
        return json.loads(path.read_text())
    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.planning.enabled = False  # both sides are evaluated in stage 4
    t0 = time.time()
    summary = train_and_evaluate(config, str(out / "lewm_jax"))
    summary["train_minutes"] = round((time.time() - t0) / 60, 1)
    path.write_text(json.dumps(summary, indent=2))
    return summary


def train_original(config, out: Path, python: str) -> dict:
    """Stage 3: the original trained along the plan, imported into ``<out>/original`` by
    ``experiments.convert`` with the run config ``<out>/config.json``."""
    import subprocess
    import sys

    path = out / "original_summary.json"
    if path.exists():
        return json.loads(path.read_text())
    official = reference.write_official_config(config, out / "original_config.json")
    weights = out / "original_weights.npz"
    d = config.data
    t0 = time.time()
    summary = reference.run(
        python,
        "experiments.bench.torch.fit",
        [
            "--config", official, "--data", out / "data.h5", "--plan", out / "plan.npz",
            "--weights", weights, "--num_frames", d.num_frames, "--frameskip", d.frameskip,
            "--history", config.model.history, "--lam", config.loss.sigreg_weight,
            "--eval_every", config.eval_every,
        ],
        timeout=6 * 3600,
    )  # fmt: skip
    summary["train_minutes"] = round((time.time() - t0) / 60, 1)
    cmd = [sys.executable, "-m", "experiments.convert", f"--weights={weights}"]
    cmd += [f"--official_config={official}", f"--workdir={out / 'original'}"]
    cmd += [f"--config={out.resolve() / 'config.json'}", f"--frameskip={d.frameskip}"]
    cmd += ["--dtype=float32"]
    done = subprocess.run(cmd, cwd=reference.ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip().splitlines()[-1:]}")
    plan = np.load(out / "plan.npz")
    from lewm_jax.training import run_dir

    run_dir.write_action_stats(out / "original", plan["action_mean"], plan["action_std"])
    path.write_text(json.dumps(summary, indent=2))
    return summary


def evaluate(config, out: Path, seeds: int, probe_episodes: int) -> dict:
    """Stage 4: planning (same pairs) and probes (same episodes) of both runs."""
    import jax

    from lewm_jax.analysis.probe import run_probes
    from lewm_jax.data import datasets
    from lewm_jax.planning.evaluate import evaluate_planning
    from lewm_jax.training.run_dir import load_run

    plan_config = config.planning.copy_and_resolve_references()
    with plan_config.unlocked():
        plan_config.num_seeds = seeds
    k_data, k_probe = jax.random.split(jax.random.key(0))
    # Kept in <out>: `experiments.curve --probe_cache=<out>` on either side reuses them.
    _, episodes = datasets.probe_episodes(config.data, k_data, probe_episodes, cache_dir=out)
    rows = {}
    for side in ("lewm_jax", "original"):
        workdir = out / side
        report = evaluate_planning(workdir, plan_config, progress=False, tag="yardstick")
        run = load_run(workdir)
        env = report["protocol"]["env"]
        probe = run_probes(run.model, run.variables, episodes, env, key=k_probe)
        rows[side] = {"planning": report, "probe": probe}
    return rows


def table(result: dict) -> str:
    """One Markdown table, both sides."""
    head = "| | success [95 % CI] | successes per seed | solved at start | "
    names = result["lewm_jax"]["probe"]["names"]
    head += " | ".join(f"probe r {n}" for n in names)
    head += " | train pred loss (last 100 steps) | val pred loss | s/step | minutes |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for side in ("lewm_jax", "original"):
        r = result[side]
        p, t = r["planning"], r["training"]
        lo, hi = p["ci95"]
        cells = [
            side,
            f"{100 * p['success_rate']:.1f} % [{100 * lo:.0f}-{100 * hi:.0f}]",
            " / ".join(f"{s['successes']}" for s in p["per_seed"]),
            f"{100 * p['solved_at_start']['share']:.1f} %",
            *(f"{r['probe']['linear'][n]['pearson_r']:.3f}" for n in names),
            f"{t['pred_loss_last100']:.4f}",
            f"{t['val_pred_loss']:.4f}",
            f"{t['s_per_step']:.3f}",
            f"{t['train_minutes']}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from experiments.cli import exit_with_error

    unknown = sorted(set(FLAGS.stages) - set(STAGES))
    try:
        if unknown or not FLAGS.out:
            raise ValueError(f"--stages {unknown} / --out {FLAGS.out!r}: need stages of {STAGES}")
        check_config(FLAGS.config)
        out = Path(FLAGS.out)
        out.mkdir(parents=True, exist_ok=True)
        if "data" in FLAGS.stages:
            print("data:", write_data(FLAGS.config, out), flush=True)
        config = run_config(FLAGS.config, out)
        if "lewm_jax" in FLAGS.stages:
            train_lewm_jax(config, out)
        if "original" in FLAGS.stages:
            if not FLAGS.reference_python:
                raise ValueError("stage 'original' needs --reference_python or LEWM_TORCH_PYTHON")
            train_original(config, out, FLAGS.reference_python)
        if "evaluate" in FLAGS.stages:
            result = evaluate(config, out, FLAGS.seeds, FLAGS.probe_episodes)
            result["lewm_jax"]["training"] = training_row(out, "lewm_jax")
            result["original"]["training"] = training_row(out, "original")
            (out / "yardstick.json").write_text(json.dumps(result, indent=2))
            print(table(result))
    except (ValueError, OSError, RuntimeError) as e:
        exit_with_error(e)


def training_row(out: Path, side: str, last: int = 100) -> dict:
    """One side's training: the mean training prediction loss over the ``last`` steps, the
    final validation prediction loss, the validation curve, s/step and minutes."""
    from lewm_jax.training import run_dir

    s = json.loads((out / f"{side}_summary.json").read_text())
    if side == "lewm_jax":
        lines = (out / side / run_dir.METRICS_FILE).read_text().splitlines()
        rows = [json.loads(x) for x in lines]
        s_per_step = s["steady_seconds_per_step"]
    else:
        rows, s_per_step = s["curve"], s["s_per_step"]
    train = [r for r in rows if "pred_loss" in r]
    val = [(r["step"], r["val_pred_loss"]) for r in rows if "val_pred_loss" in r]
    return {
        f"pred_loss_last{last}": float(np.mean([r["pred_loss"] for r in train[-last:]])),
        "val_pred_loss": val[-1][1],
        "val_curve": val,
        "s_per_step": s_per_step,
        "train_minutes": s["train_minutes"],
    }


if __name__ == "__main__":
    import sys

    from experiments.configs.common import check_config_flags

    define_flags()
    check_config_flags(sys.argv, DEFAULT_CONFIG)
    app.run(main)
