"""Seconds per plan of CEM and iCEM at equal and at lower sample counts.

One plan from pixels (``make_pixel_planner``: encode the frame and the goal, then plan) of
the ``cpu`` model, horizon 5 blocks, 30 iterations, elites 10 % of the samples; iCEM with its
defaults otherwise (colored noise beta 2, elite reuse 0.3, momentum 0.1). Rows per planner
and sample count: compile, median and minimum wall seconds and median process CPU seconds
of ``--repeats`` calls (on a shared machine the CPU seconds are the steadier figure). The
success rates these settings reach come from ``experiments.plan`` (BENCHMARKS.md).

  python -m experiments.bench.icem_speed --samples=300,100 --out=/tmp/icem_speed.json
"""

import json

from absl import app, flags

from experiments.bench import plan_speed

FLAGS = flags.FLAGS
flags.DEFINE_list("samples", ["300", "100"], "Sample counts (elites: 10 % of them).")
flags.DEFINE_list("planners", ["cem", "icem"], "Planners to time.")
flags.DEFINE_string("size", "cpu", "Model size of experiments/configs/lewm.py.")
flags.DEFINE_integer("repeats", 5, "Timed calls after the first.")
flags.DEFINE_string("out", "", "Write the rows as JSON here.")


def main(argv):
    del argv
    rows = []
    print(plan_speed.HEADER)
    for n in map(int, FLAGS.samples):
        settings = {
            p: dict(num_samples=n, num_iters=30, num_elites=n // 10) for p in FLAGS.planners
        }
        rows += plan_speed.run(
            [FLAGS.size], FLAGS.planners, ["cached"], "config", FLAGS.repeats, 5, settings
        )
    if FLAGS.out:
        with open(FLAGS.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    app.run(main)
