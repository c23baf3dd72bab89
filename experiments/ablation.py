"""Anti-collapse ablation: the same LeWM trained with each regulariser, then planned with.

Runs (lewm_jax.analysis.ablation.RUNS): pred_only, sigreg, vicreg, pldm, ema (BYOL-style target),
infonce, and the SIGReg lambda sweep lam0.01, lam0.5, lam2 (with pred_only = 0 and
sigreg = 0.09). Each run trains into ``<workdir>/<run>`` and is evaluated with CEM on 50
Two-Room episodes; ``<workdir>/ablation.md``, ``ablation.csv`` and ``ablation.png`` summarise
them. Re-running the same command reuses finished runs and resumes unfinished ones.

Full ablation (about 30 minutes on 2 idle CPU cores):
  python -m experiments.ablation --config experiments/configs/lewm.py:ablation \
      --workdir runs/ablation
Smoke run (tiny model, moving-dot data, no planning):
  python -m experiments.ablation --config experiments/configs/lewm.py:test \
      --workdir /tmp/ablation_smoke --runs=pred_only,sigreg
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from experiments.cli import exit_with_error
from experiments.configs.common import check_config_flags

DEFAULT_CONFIG = "experiments/configs/lewm.py:ablation"
FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", DEFAULT_CONFIG, "Base training config file[:arg].", lock_config=True
)
flags.DEFINE_string("workdir", "runs/ablation", "Directory for the runs and the summary.")
flags.DEFINE_list("runs", [], "Comma-separated run names (default: all).")
flags.DEFINE_bool("traceback", False, "Show full tracebacks instead of one-line errors.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from lewm_jax.analysis import ablation

    logging.set_verbosity(logging.WARNING)
    try:
        table = ablation.run_ablation(FLAGS.config, FLAGS.workdir, FLAGS.runs)
    except (ValueError, TypeError, OSError, FloatingPointError) as e:
        if FLAGS.traceback:
            raise
        exit_with_error(e)
    print(ablation.format_markdown(table))


if __name__ == "__main__":
    check_config_flags(sys.argv, DEFAULT_CONFIG)
    app.run(main)
