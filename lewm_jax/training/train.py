"""``train_and_evaluate``: the host loop around the pure train step.

Preemption-safe: a run resumes from the latest checkpoint in ``workdir``, else from
``config.init_from``, else starts from scratch. Everything random is a function of
``(config.seed, step)`` and the data order is a function of the step, so a resumed run
reproduces an uninterrupted one exactly. All input checks run before anything is
written to ``workdir``.
"""

import functools
import math
import time
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from lewm_jax.data import datasets
from lewm_jax.data.clips import ClipSource
from lewm_jax.data.episodes import action_stats
from lewm_jax.models import build_model
from lewm_jax.training import reporting, run_dir, sharding
from lewm_jax.training.optim import make_optimizer
from lewm_jax.training.state import init_train_state
from lewm_jax.training.step import make_eval_step, make_train_step
from lewm_jax.validate import validate_config


def _restore_or_init(config, workdir: Path, ckpt, init, sample, abstract):
    """The resume order: latest checkpoint in workdir, then init_from, then scratch."""
    if ckpt.latest_step() is not None:
        state, step, problems = ckpt.restore_latest_valid(abstract)
        for line in problems:
            print(f"lewm_jax: warning: {line}", flush=True)
        return state, f"resumed from step {step}"
    if config.init_from:
        src = run_dir.checkpointer(config.init_from, async_save=False)
        if src.latest_step() is None:
            raise FileNotFoundError(f"init_from {config.init_from!r} holds no checkpoint")
        # Only params and BatchNorm statistics are taken, whatever the source's loss was.
        loaded = src.restore(abstract.replace(target_params=None))
        fresh = init(jax.random.key(config.seed), sample)
        state = fresh.replace(params=loaded.params, batch_stats=loaded.batch_stats)
        if fresh.target_params is not None:
            state = state.replace(target_params=jax.tree.map(jax.numpy.copy, loaded.params))
        return state, f"initialised from {config.init_from} step {src.latest_step()}"
    return init(jax.random.key(config.seed), sample), "started from scratch"


def _to_rows(pending: list) -> list[dict]:
    """Fetches per-step device metrics and turns them into JSON rows."""
    fetched = jax.device_get([m for _, m in pending])
    return [
        {"step": s, **{k: float(v) for k, v in m.items()}}
        for (s, _), m in zip(pending, fetched, strict=True)
    ]


def _stop_if_non_finite(rows: list[dict], ckpt, workdir: Path) -> None:
    """Raises FloatingPointError naming the first non-finite loss and the last good checkpoint."""
    bad = [r["step"] for r in rows if not math.isfinite(r["loss"])]
    if not bad:
        return
    ckpt.wait()  # pending saves are of earlier, finite steps: let them reach the disk
    last = ckpt.latest_step()
    ckpt.close()
    kept = f"step {last} in {workdir / 'checkpoints'}" if last is not None else "none saved"
    raise FloatingPointError(
        f"non-finite loss at step {bad[0]} (checked steps {rows[0]['step']}-{rows[-1]['step']}); "
        f"training stopped without saving; last good checkpoint: {kept}"
    )


def evaluate(eval_step, state, source: ClipSource, mesh, key, num_batches: int) -> dict:
    """Mean validation metrics over the first ``num_batches`` batches of ``source``."""
    n = max(1, min(num_batches, source.steps_per_epoch))
    outs = [
        eval_step(state, sharding.to_global(source.batch(i), mesh), jax.random.fold_in(key, i))
        for i in range(n)
    ]
    return {f"val_{k}": float(np.mean([o[k] for o in jax.device_get(outs)])) for k in outs[0]}


def train_and_evaluate(config, workdir: str) -> dict:
    """Trains LeWM as described by ``config`` (never mutated) in ``workdir``.

    Args:
        config: an ml_collections config from ``experiments/configs/lewm.py``.
        workdir: run directory for checkpoints, ``config.json``, metrics and plots.

    Returns:
        Summary: last training metrics, last validation metrics, steps and timing.
    """
    validate_config(config)
    mesh = sharding.make_mesh()
    sharding.check_batch_size(config.batch_size, mesh)
    stored = run_dir.read_config(workdir) if Path(workdir).is_dir() else None
    if stored is not None:
        diffs = run_dir.config_mismatch(stored, config.to_dict())
        if diffs:
            raise ValueError(
                f"workdir {workdir!r} holds a run with a different config ({', '.join(diffs)}); "
                "use a new workdir"
            )
    store = datasets.open_store(config.data, config.seed)
    datasets.check_store(store, config.data)
    # A run directory keeps the statistics of its first start, so a resumed run (or another
    # host) normalises exactly as the first did, without a second pass over the actions.
    stats = run_dir.read_action_stats(workdir) if stored is not None else None
    stats = stats or action_stats(store.action_chunks())
    src_args = dict(
        batch_size=config.batch_size,
        num_frames=config.data.num_frames,
        frameskip=config.data.frameskip,
        seed=config.seed,
        train_fraction=config.data.train_fraction,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        stats=stats,
    )
    train_src = ClipSource(store, split="train", **src_args)
    val_src = ClipSource(store, split="val", **src_args)
    total = config.total_steps or config.num_epochs * train_src.steps_per_epoch
    model = build_model(config.model, image_size=config.data.image_size)
    tx = make_optimizer(config.optim, total)
    repl, data = sharding.replicated(mesh), sharding.data_sharded(mesh)

    sample = train_src.gather(train_src.starts[:1])
    init = jax.jit(
        functools.partial(init_train_state, model, tx, ema_target=config.loss.ema_target),
        out_shardings=repl,
    )
    abstract = jax.eval_shape(init, jax.random.key(config.seed), sample)
    abstract = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=repl), abstract
    )

    workdir = run_dir.check_workdir(workdir)
    ckpt = run_dir.checkpointer(
        workdir, keep=config.keep_checkpoints, async_save=config.async_checkpoints
    )
    state, origin = _restore_or_init(config, workdir, ckpt, init, sample, abstract)
    is_main = jax.process_index() == 0
    # One run directory for all hosts: only the first writes its files (orbax checkpoints
    # are written collectively by all of them).
    if is_main and stored is None:
        run_dir.write_config(workdir, config.to_json(indent=2))
    # Planning and analysis de-normalise actions with exactly these statistics.
    if is_main and run_dir.read_action_stats(workdir) is None:
        run_dir.write_action_stats(workdir, *stats)

    train_step = jax.jit(
        make_train_step(model, tx, config.loss),
        in_shardings=(repl, data, repl),
        out_shardings=(repl, repl),
        donate_argnums=0,
    )
    eval_step = jax.jit(make_eval_step(model, config.loss), in_shardings=(repl, data, repl))
    # Made inside jit: device_put cannot place an array on other hosts' devices.
    base_key = jax.jit(functools.partial(jax.random.key, config.seed), out_shardings=repl)()
    train_key, eval_key = jax.random.fold_in(base_key, 1), jax.random.fold_in(base_key, 2)

    start = int(jax.device_get(state.step))
    log = run_dir.MetricsLog(workdir, resume_step=start) if is_main else None
    if is_main:
        print(
            f"lewm_jax: {origin}; {total} steps, {train_src.steps_per_epoch} per epoch, "
            f"{len(jax.devices())} devices, workdir {workdir}",
            flush=True,
        )
    pending, last, val = [], {}, {}
    t0 = t_first = time.time()
    bar = tqdm(total=total, initial=start, disable=not is_main, desc="train", dynamic_ncols=True)
    batches = train_src.iterate(
        start, total, num_workers=config.data.num_workers, prefetch=config.data.prefetch
    )
    clips_read = 0
    for step, local in batches:
        clips_read += len(local["actions"])
        batch = sharding.to_global(local, mesh)
        with jax.transfer_guard("disallow"):
            state, m = train_step(state, batch, train_key)
        done = step + 1
        if step == start:  # steady-state timing starts once the step is compiled and run
            jax.block_until_ready(m)
            t_first = time.time()
        pending.append((done, m))
        bar.update(1)
        save = done % config.checkpoint_every == 0 or done == total
        # Losses are also checked before every save, so no checkpoint follows a non-finite step.
        if save or done % config.log_every == 0:
            rows, pending = _to_rows(pending), []
            _stop_if_non_finite(rows, ckpt, workdir)
            if log:
                log.write(rows)
            last = rows[-1]
            bar.set_postfix(
                loss=f"{last['loss']:.4f}",
                pred=f"{last['pred_loss']:.4f}",
                rank=f"{last['z_rank']:.1f}",
            )
        if done % config.eval_every == 0 or done == total:
            val = evaluate(eval_step, state, val_src, mesh, eval_key, config.eval_batches)
            if log:
                log.write([{"step": done, **val}])
        if save:
            ckpt.save(done, state)
    batches.close()
    bar.close()
    if log:
        log.close()
    ckpt.wait()
    ckpt.close()
    steps_run = int(jax.device_get(state.step)) - start
    rows = train_src.local_rows
    print(
        f"lewm_jax: process {jax.process_index()} of {jax.process_count()} read {clips_read} "
        f"training clips (rows {rows.start}-{rows.stop - 1} of each batch of {config.batch_size})",
        flush=True,
    )
    if is_main:
        reporting.plot_curves(log.read(), workdir / run_dir.CURVES_FILE, title=str(workdir))
    return {
        **last,
        **val,
        "total_steps": total,
        "steps_run": steps_run,
        "seconds_per_step": (time.time() - t0) / max(steps_run, 1),
        # Without the first step (compilation): the figure to compare data sources by.
        "steady_seconds_per_step": (time.time() - t_first) / max(steps_run - 1, 1)
        if steps_run > 1
        else None,
        "origin": origin,
    }
