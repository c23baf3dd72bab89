"""The host loop around the pure train step (:func:`lewm_jax.run.train_and_evaluate` starts it).

Preemption-safe: a run resumes from the latest checkpoint in ``workdir``, else from
``config.init_from``, else starts from scratch. Everything random is a function of
``(config.seed, step)`` and the data order is a function of the step, so a resumed run
reproduces an uninterrupted one exactly. All input checks run before anything is
written to ``workdir``.

The loop (:func:`run_loop`) trains a list of members, each a run with its own config and
run directory: one for a plain run, several for a population trained in one compiled
program (:mod:`lewm_jax.training.population`). A :class:`Program` says how the members'
states are stepped together (and, for a population, which step they resume from); each
member's run directory is a :class:`~lewm_jax.training.outputs.RunOutputs` (config, metrics
log, checkpoints), the same either way.
"""

import collections
import contextlib
import dataclasses
import functools
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

from lewm_jax.data import datasets
from lewm_jax.data.clips import ClipSource
from lewm_jax.data.episodes import action_stats
from lewm_jax.models import build_model
from lewm_jax.training import run_dir, sharding
from lewm_jax.training.checks import check_training_config
from lewm_jax.training.optim import make_optimizer
from lewm_jax.training.outputs import RunOutputs
from lewm_jax.training.state import init_train_state
from lewm_jax.training.step import make_eval_step, make_train_step


@dataclasses.dataclass
class Member:
    """One run of a training loop: its config, run directory and data (nothing written).

    Attributes:
        config: the run's config.
        workdir: its run directory.
        stored: the config already in ``workdir`` (a resumed run), else None.
        stats: ``(mean, std)`` of the raw actions that clips are z-scored with.
        train_src, val_src: its clip sources.
        total: its number of optimizer steps.
    """

    config: Any
    workdir: Path
    stored: dict | None
    stats: tuple
    train_src: ClipSource
    val_src: ClipSource
    total: int


def open_member(config, workdir, mesh, stores: dict | None = None) -> Member:
    """Checks ``config`` and what ``workdir`` holds, and opens the run's data.

    Args:
        config: the run's config (read-only).
        workdir: its run directory (not created here).
        mesh: the data mesh (the batch must split over it).
        stores: a cache ``(data section, seed) -> store`` shared by the members of a loop.
    """
    check_training_config(config)
    sharding.check_batch_size(config.batch_size, mesh)
    stored = run_dir.read_config(workdir) if Path(workdir).is_dir() else None
    if stored is not None:
        diffs = run_dir.config_mismatch(stored, config.to_dict())
        if diffs:
            raise ValueError(
                f"workdir {workdir!r} holds a run with a different config ({', '.join(diffs)}); "
                "use a new workdir"
            )
    stores = {} if stores is None else stores
    key = (config.data.to_json(), config.seed)
    if key not in stores:
        store = datasets.open_store(config.data, config.seed)
        datasets.check_store(store, config.data)
        stores[key] = store
    store = stores[key]
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
    return Member(config, Path(workdir), stored, stats, train_src, val_src, total)


def _restore_or_init(config, ckpt, init, sample, abstract, at_step=None):
    """The resume order: latest checkpoint in workdir (or ``at_step``), then init_from,
    then scratch."""
    if at_step:
        return ckpt.restore(abstract, at_step), f"resumed from step {at_step}"
    if ckpt.latest_step() is not None and at_step is None:
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


def evaluate(eval_step, state, source: ClipSource, mesh, key, num_batches: int) -> dict:
    """Mean validation metrics over the first ``num_batches`` batches of ``source``."""
    n = max(1, min(num_batches, source.steps_per_epoch))
    outs = [
        eval_step(state, sharding.to_global(source.batch(i), mesh), jax.random.fold_in(key, i))
        for i in range(n)
    ]
    return {f"val_{k}": float(np.mean([o[k] for o in jax.device_get(outs)])) for k in outs[0]}


class Program:
    """How a loop's members are stepped: one run alone (this class) or a population.

    Args:
        members: the loop's members (here exactly one).
        model: their JEPA.
        mesh: the data mesh.
    """

    def __init__(self, members: list[Member], model, mesh):
        (self.member,) = members
        config = self.member.config
        self.mesh = mesh
        repl, data = sharding.replicated(mesh), sharding.data_sharded(mesh)
        # The one optimizer of the run; run_loop also takes the state's layout from it.
        self.tx = tx = make_optimizer(config.optim, self.member.total)
        self.train_step = jax.jit(
            make_train_step(model, tx, config.loss),
            in_shardings=(repl, data, repl),
            out_shardings=(repl, repl),
            donate_argnums=0,
        )
        self.eval_step = jax.jit(
            make_eval_step(model, config.loss), in_shardings=(repl, data, repl)
        )
        # Made inside jit: device_put cannot place an array on other hosts' devices.
        key = jax.jit(functools.partial(jax.random.key, config.seed), out_shardings=repl)()
        self.train_key, self.eval_key = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)

    def iterate(self, start: int, stop: int, **kwargs):
        """``(step, host batch)`` for ``start <= step < stop`` (see ClipSource.iterate)."""
        return self.member.train_src.iterate(start, stop, **kwargs)

    def resume_step(self, ckpts) -> int | None:
        """The step every member resumes from, or None: each its own latest (one run)."""
        return None

    def stack(self, states: list):
        """The loop's state from the members' states."""
        return states[0]

    def unstack(self, state) -> list:
        """The members' states (to save) from the loop's state."""
        return [state]

    def step(self, state, batch: dict):
        """One optimizer step of every member: ``(state, metrics)``."""
        batch = sharding.to_global(batch, self.mesh)
        with jax.transfer_guard("disallow"):
            return self.train_step(state, batch, self.train_key)

    def member_metrics(self, fetched: dict) -> list[dict]:
        """Host metrics of one step, one dict per member."""
        return [fetched]

    def evaluate(self, state) -> list[dict]:
        """Validation metrics of every member."""
        m = self.member
        return [
            evaluate(
                self.eval_step, state, m.val_src, self.mesh, self.eval_key, m.config.eval_batches
            )
        ]


class PhaseClock:
    """Wall seconds the host loop spends in each phase, to find what it adds to the step.

    ``step`` is dispatching steps and waiting for their results (the step itself),
    ``data`` waiting for the next batch (steps are dispatched asynchronously, so the last
    one may still be running: a wait the step covers moves to ``step`` when the batch comes
    sooner, and costs the run nothing), ``metrics`` fetching and writing logged metrics,
    ``validation`` and ``checkpoint`` those passes (a checkpoint's background write shows
    only as time taken from the step).
    """

    def __init__(self):
        self.seconds = collections.Counter()

    @contextlib.contextmanager
    def __call__(self, phase: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - t0

    def reset(self):
        self.seconds.clear()


def run_loop(members: list[Member], program_cls=Program) -> list[dict]:
    """Trains ``members`` together with ``program_cls``; each resumes, logs and checkpoints
    in its own run directory. Returns one summary per member (see train_and_evaluate)."""
    config, mesh = members[0].config, sharding.make_mesh()
    total = members[0].total
    model = build_model(config.model, image_size=config.data.image_size)
    program = program_cls(members, model, mesh)
    repl = sharding.replicated(mesh)
    sample = members[0].train_src.gather(members[0].train_src.starts[:1])
    init = jax.jit(
        functools.partial(init_train_state, model, program.tx, ema_target=config.loss.ema_target),
        out_shardings=repl,
    )
    abstract = jax.eval_shape(init, jax.random.key(config.seed), sample)
    abstract = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=repl), abstract
    )

    outs = [RunOutputs(m) for m in members]
    at_step = program.resume_step([o.ckpt for o in outs])
    restored = [
        _restore_or_init(m.config, o.ckpt, init, sample, abstract, at_step)
        for m, o in zip(members, outs, strict=True)
    ]
    state = program.stack([s for s, _ in restored])
    start = int(jax.device_get(restored[0][0].step))
    for o in outs:
        o.open(start)
    is_main = jax.process_index() == 0
    if is_main:
        origin = restored[0][1] + (f" ({len(members)} members)" if len(members) > 1 else "")
        print(
            f"lewm_jax: {origin}; {total} steps, {members[0].train_src.steps_per_epoch} per "
            f"epoch, {len(jax.devices())} devices, workdir "
            + ", ".join(str(o.workdir) for o in outs),
            flush=True,
        )
    pending = []
    t0 = t_first = time.time()
    bar = tqdm(total=total, initial=start, disable=not is_main, desc="train", dynamic_ncols=True)
    batches = program.iterate(
        start, total, num_workers=config.data.num_workers, prefetch=config.data.prefetch
    )
    clips_read = 0
    clock = PhaseClock()
    try:
        while True:
            with clock("data"):
                item = next(batches, None)
            if item is None:
                break
            step, local = item
            clips_read += local["actions"].shape[-3]  # (..., B, T, A): a member's rows
            with clock("step"):
                state, m = program.step(state, local)
            done = step + 1
            if step == start:  # steady-state timing starts once the step is compiled and run
                jax.block_until_ready(m)
                t_first = time.time()
                clock.reset()
            pending.append((done, m))
            bar.update(1)
            save = done % config.checkpoint_every == 0 or done == total
            # Losses are also checked before every save, so no checkpoint follows a
            # non-finite step.
            if save or done % config.log_every == 0:
                with clock("step"):
                    jax.block_until_ready(m)
                with clock("metrics"):
                    steps = [s for s, _ in pending]
                    fetched = jax.device_get([x for _, x in pending])
                    per_step = [program.member_metrics(f) for f in fetched]
                    pending = []
                    for i, o in enumerate(outs):
                        o.write_metrics(steps, [p[i] for p in per_step])
                    first = outs[0].last
                    bar.set_postfix(
                        loss=f"{first['loss']:.4f}",
                        pred=f"{first['pred_loss']:.4f}",
                        rank=f"{first['z_rank']:.1f}",
                    )
            if done % config.eval_every == 0 or done == total:
                with clock("step"):
                    jax.block_until_ready(state)
                with clock("validation"):
                    for o, d in zip(outs, program.evaluate(state), strict=True):
                        o.write_validation(done, d)
            if save:
                with clock("checkpoint"):
                    for o, s in zip(outs, program.unstack(state), strict=True):
                        o.save(done, s)
    finally:
        batches.close()
        bar.close()
        for o in outs:
            o.close_log()
        with clock("checkpoint"):
            for o in outs:
                o.close_checkpoints()
    steps_run = int(jax.device_get(program.unstack(state)[0].step)) - start
    rows = members[0].train_src.local_rows
    elapsed, steady = time.time() - t0, time.time() - t_first
    timing = {
        "total_steps": total,
        "steps_run": steps_run,
        "seconds_per_step": elapsed / max(steps_run, 1),
        # Without the first step (compilation): the figure to compare data sources by.
        "steady_seconds_per_step": steady / max(steps_run - 1, 1) if steps_run > 1 else None,
        # Where the steady part's wall time went (PhaseClock); the rest is the loop's own
        # bookkeeping.
        "loop_seconds": {k: round(v, 3) for k, v in sorted(clock.seconds.items())},
        # What this process read: its rows of every global batch (multi-host).
        "clips_read": clips_read,
        "batch_rows": [rows.start, rows.stop],
    }
    for o in outs:
        o.plot()
    return [
        {**o.last, **o.val, **timing, "origin": origin}
        for o, (_, origin) in zip(outs, restored, strict=True)
    ]
