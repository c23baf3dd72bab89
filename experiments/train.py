"""Trains LeWM: ``python -m experiments.train --config <file>:<arg> --workdir <dir>``.

The main job. Defaults to the ``cpu`` size on the built-in Two-Room environment, so that
``python -m experiments.train`` runs end to end on a laptop: collect a Two-Room dataset with
the pure-JAX collector, train LeWM with SIGReg, evaluate closed-loop CEM planning, print a
result table and write plots and a GIF into the workdir. Override any field with
``--config.<a>.<b>=<value>``.

Multi-host runs (TPU pods, multi-node GPU; ``experiments/launch.sh`` starts them) run the
same command in every process, all with the same ``--workdir`` (one run directory, on a
filesystem they share). Pass ``--distributed`` where JAX detects the cluster (TPU pods,
SLURM), else ``--coordinator_address=host:port --num_processes=N --process_id=i``.
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
flags.DEFINE_bool(
    "distributed", False, "Multi-host: call jax.distributed.initialize() (cluster detected)."
)
flags.DEFINE_string(
    "coordinator_address", None, "Multi-host: host:port of process 0's coordinator."
)
flags.DEFINE_integer("num_processes", None, "Multi-host: number of processes.")
flags.DEFINE_integer("process_id", None, "Multi-host: index of this process.")
flags.DEFINE_integer(
    "initialization_timeout", 120, "Multi-host: seconds to wait for the coordinator and peers."
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import jax

    from lewm_jax.training import distributed

    config = FLAGS.config
    try:
        explicit = FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id
        distributed.check_args(*explicit)
        if FLAGS.num_processes and config.batch_size % FLAGS.num_processes:
            raise ValueError(
                f"batch_size {config.batch_size} is not divisible by --num_processes "
                f"{FLAGS.num_processes}"
            )
        if FLAGS.distributed or FLAGS.coordinator_address:
            distributed.initialize(*explicit, timeout_s=FLAGS.initialization_timeout)
    except (ValueError, ConnectionError) as e:
        if FLAGS.traceback:
            raise
        exit_with_error(e)
    from lewm_jax.planning.evaluate import evaluate_planning
    from lewm_jax.run import train_and_evaluate

    logging.set_verbosity(logging.WARNING)
    main_host = jax.process_index() == 0
    try:
        summary = train_and_evaluate(config, FLAGS.workdir)
        if main_host:
            print(json.dumps(summary, indent=2))
        first, stop = summary["batch_rows"]
        print(
            f"lewm_jax: process {jax.process_index()} of {jax.process_count()} read "
            f"{summary['clips_read']} training clips (rows {first}-{stop - 1} of each batch of "
            f"{config.batch_size})",
            flush=True,
        )
        if config.planning.enabled and jax.process_count() > 1:
            # Planning is single-host work; process 0 alone would hold the others in JAX's
            # shutdown barrier past its deadline. It reads the shared run directory later.
            if main_host:
                print(
                    "lewm_jax: planning is evaluated by one process: python -m experiments.plan "
                    f"--workdir {FLAGS.workdir}",
                    flush=True,
                )
        elif config.planning.enabled:
            evaluate_planning(FLAGS.workdir, config.planning, config=config)
    except (ValueError, TypeError, OSError, FloatingPointError, RuntimeError) as e:
        if FLAGS.traceback:
            raise
        exit_with_error(e)


if __name__ == "__main__":
    check_config_flags(sys.argv, DEFAULT_CONFIG)
    app.run(main)
