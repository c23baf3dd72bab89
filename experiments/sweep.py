"""Runs a config's hyperparameter sweep: every point of its ``sweep(add, arg)`` grid.

  python -m experiments.sweep --config experiments/configs/lewm.py:cpu --workdir runs/lam
  python -m experiments.sweep --config experiments/configs/lewm.py:cpu --workdir runs/lam --list
  python -m experiments.sweep --config experiments/configs/lewm.py:cpu --workdir runs/lam \
      --shard=$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT     # one share per array task
  python -m experiments.sweep --config experiments/configs/lewm.py:cpu --workdir runs/lam \
      --report_only                                    # the table from the run dirs alone
  python -m experiments.sweep --config experiments/configs/lewm.py:cpu --workdir runs/lam \
      --population=5                       # 5 points at a time in one compiled program

Each point trains into ``<workdir>/<overrides>`` and is planned where the dataset is
plannable; re-running reuses finished points and resumes unfinished ones. ``--config.*``
flags change the base config of every point. The results go to ``<workdir>/sweep.md``,
``sweep.csv`` and ``sweep.png``.
"""

import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from experiments.cli import exit_with_error
from experiments.configs.common import check_config_flags, config_spec, load_module

DEFAULT_CONFIG = "experiments/configs/lewm.py:cpu"
FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", DEFAULT_CONFIG, "Base config file[:arg] with a sweep().", lock_config=True
)
flags.DEFINE_string("workdir", "runs/sweep", "Directory of the sweep's run directories.")
flags.DEFINE_bool("list", False, "Print one experiments.train command per point and stop.")
flags.DEFINE_string("shard", "0/1", "Run only share i of n of the grid (i/n).")
flags.DEFINE_integer(
    "population", 1, "Train this many consecutive points together (population training)."
)
flags.DEFINE_bool("report_only", False, "Only rebuild the results table from the run dirs.")
flags.DEFINE_bool("traceback", False, "Show full tracebacks instead of one-line errors.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from lewm_jax.analysis import sweep

    logging.set_verbosity(logging.WARNING)
    spec = config_spec(sys.argv, DEFAULT_CONFIG)
    path, _, arg = spec.partition(":")
    try:
        module = load_module(path)
        if not hasattr(module, "sweep"):
            raise ValueError(f"config file {path!r} defines no sweep(add, arg)")
        points = sweep.grid(module.sweep, arg or None)
        index, count = sweep.parse_shard(FLAGS.shard)
        mine = sweep.shard(points, index, count)
        sweep.configs(FLAGS.config, points)  # every point checked before anything runs
        sweep.populations(sweep.configs(FLAGS.config, mine), mine, FLAGS.population)
        if FLAGS.list:
            base_flags = [a for a in sys.argv[1:] if a.startswith("--config.")]
            print("\n".join(sweep.commands(spec, FLAGS.workdir, mine, base_flags)))
            return
        if not FLAGS.report_only:
            sweep.run(FLAGS.config, FLAGS.workdir, mine, population=FLAGS.population)
        sweep.report(FLAGS.config, FLAGS.workdir, points)
    except (ValueError, TypeError, OSError, FloatingPointError) as e:
        if FLAGS.traceback:
            raise
        exit_with_error(e)
    print((Path(FLAGS.workdir) / "sweep.md").read_text())


if __name__ == "__main__":
    check_config_flags(sys.argv, DEFAULT_CONFIG)
    app.run(main)
