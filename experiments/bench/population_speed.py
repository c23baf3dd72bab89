"""Population training speed: M members in one compiled program vs one after another.

Times the real steps of a training loop (:class:`lewm_jax.training.train.Program` for a run
alone, :class:`lewm_jax.training.population.PopulationProgram` for M members that differ in
the SIGReg weight, as in the lambda sweep), host batches and their transfer included.
Members trained one after another take M alone-steps per step of all of them; the
population takes one population step. Prints clips/s per member and the speed-up, and
writes the table as JSON.

  python -m experiments.bench.population_speed --size=cpu --members=2,4 --steps=3 --repeats=3
"""

import json
import platform
import statistics
import tempfile
import time

import jax
import numpy as np
from absl import app, flags

from experiments.configs.lewm import get_config
from lewm_jax.analysis.runs import derive_config
from lewm_jax.models import build_model
from lewm_jax.training import sharding
from lewm_jax.training.optim import make_optimizer
from lewm_jax.training.population import PopulationProgram
from lewm_jax.training.state import init_train_state
from lewm_jax.training.train import Program, open_member

FLAGS = flags.FLAGS


def define_flags():
    """Defines the flags (only when run as a script; see train_speed.define_flags)."""
    flags.DEFINE_string("size", "cpu", "Config size (experiments/configs/lewm.py).")
    flags.DEFINE_list("members", ["2", "4"], "Population sizes M to time.")
    flags.DEFINE_integer("steps", 3, "Timed steps per repeat, after a warm-up step.")
    flags.DEFINE_integer("repeats", 3, "Repeats (the spread of the figures).")
    flags.DEFINE_string("dataset", "moving_dot", "data.name (speed does not depend on pixels).")
    flags.DEFINE_string("json", "", "Also write the table to this JSON file.")


def _members(size: str, dataset: str, count: int, workdir: str):
    base = derive_config(get_config(size), {"data.name": dataset, "planning.enabled": False})
    weights = np.linspace(0.01, 2.0, count).round(4).tolist()
    configs = [derive_config(base, {"loss.sigreg_weight": w}) for w in weights]
    mesh, stores = sharding.make_mesh(), {}
    members = [open_member(c, f"{workdir}/m{i}", mesh, stores) for i, c in enumerate(configs)]
    return members, mesh


def _time_steps(program, batch, state, steps: int, repeats: int) -> tuple[list[float], object]:
    """Seconds per step of each repeat (warm-up step first, not timed); ``batch(step)``
    gives the program's host batch of a step."""
    state, m = program.step(state, batch(0))
    jax.block_until_ready(m)
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        for s in range(steps):
            state, m = program.step(state, batch(1 + r * steps + s))
        jax.block_until_ready((state, m))
        times.append((time.perf_counter() - t0) / steps)
    return times, state


def time_population(size: str, dataset: str, count: int, steps: int, repeats: int) -> dict:
    """Alone-step and population-step times of ``count`` members, and clips/s per member."""
    with tempfile.TemporaryDirectory() as tmp:
        members, mesh = _members(size, dataset, count, tmp)
        config = members[0].config
        model = build_model(config.model, image_size=config.data.image_size)
        tx = make_optimizer(config.optim, members[0].total)
        sample = members[0].train_src.batch(0)
        init = jax.jit(
            lambda k: init_train_state(model, tx, k, sample),
            out_shardings=sharding.replicated(mesh),
        )
        alone = Program(members[:1], model, mesh)
        first = init(jax.random.key(0))
        t_alone, _ = _time_steps(alone, members[0].train_src.batch, first, steps, repeats)
        population = PopulationProgram(members, model, mesh)
        states = population.stack([init(jax.random.key(i)) for i in range(count)])
        t_pop, _ = _time_steps(population, population.batch, states, steps, repeats)
    b = config.batch_size
    sequential = [t * count for t in t_alone]  # M members one after another
    return {
        "size": size,
        "members": count,
        "batch_size": b,
        "devices": len(jax.devices()),
        "alone_step_s": statistics.median(t_alone),
        "alone_step_s_range": [min(t_alone), max(t_alone)],
        "population_step_s": statistics.median(t_pop),
        "population_step_s_range": [min(t_pop), max(t_pop)],
        "sequential_clips_per_s_per_member": b / statistics.median(sequential),
        "population_clips_per_s_per_member": b / statistics.median(t_pop),
        "speedup": statistics.median(sequential) / statistics.median(t_pop),
        "speedup_range": [min(sequential) / max(t_pop), max(sequential) / min(t_pop)],
    }


def main(argv):
    del argv
    rows = [
        time_population(FLAGS.size, FLAGS.dataset, int(m), FLAGS.steps, FLAGS.repeats)
        for m in FLAGS.members
    ]
    print(
        f"{'size':6} {'M':>3} {'alone s/step':>13} {'pop s/step':>11} "
        f"{'seq clips/s/member':>19} {'pop clips/s/member':>19} {'speed-up (range)':>18}"
    )
    for r in rows:
        lo, hi = r["speedup_range"]
        print(
            f"{r['size']:6} {r['members']:>3} {r['alone_step_s']:>13.3f} "
            f"{r['population_step_s']:>11.3f} {r['sequential_clips_per_s_per_member']:>19.1f} "
            f"{r['population_clips_per_s_per_member']:>19.1f} "
            f"{r['speedup']:>7.2f} ({lo:.2f}-{hi:.2f})"
        )
    if FLAGS.json:
        meta = {"machine": platform.processor() or platform.machine(), "jax": jax.__version__}
        meta["device"] = jax.devices()[0].device_kind
        with open(FLAGS.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    define_flags()
    app.run(main)
