"""Trains LeWM: ``python -m experiments.train --config <file>:<arg> --workdir <dir>``.

The main job. Defaults to the ``cpu`` size on the built-in Two-Room environment, so that
``python -m experiments.train`` runs end to end on a laptop: collect a Two-Room dataset with
the pure-JAX collector, train LeWM with SIGReg, evaluate closed-loop CEM planning, print a
result table and write plots and a GIF into the workdir. Override any field with
``--config.<a>.<b>=<value>``. For multi-host runs (TPU pods, multi-node GPU) pass
``--distributed`` on every host.
"""

import json
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from experiments.cli import exit_with_error
from experiments.configs.common import check_config_flags

DEFAULT_CONFIG = "experiments/configs/lewm.py:cpu"
FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", DEFAULT_CONFIG, "Training config file[:arg].", lock_config=True
)
flags.DEFINE_string("workdir", "runs/lewm", "Directory for checkpoints, metrics and plots.")
flags.DEFINE_bool("traceback", False, "Show full tracebacks instead of one-line errors.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import jax

    if FLAGS.distributed:
        jax.distributed.initialize()
    from lewm_jax.planning.evaluate import evaluate_planning
    from lewm_jax.training.train import train_and_evaluate

    logging.set_verbosity(logging.WARNING)
    config, main_host = FLAGS.config, jax.process_index() == 0
    try:
        summary = train_and_evaluate(config, FLAGS.workdir)
        if main_host:
            print(json.dumps(summary, indent=2))
        if config.planning.enabled and main_host:
            evaluate_planning(FLAGS.workdir, config.planning, config=config)
    except (ValueError, TypeError, OSError, FloatingPointError, RuntimeError) as e:
        if FLAGS.traceback:
            raise
        exit_with_error(e)


if __name__ == "__main__":
    check_config_flags(sys.argv, DEFAULT_CONFIG)
    app.run(main)
