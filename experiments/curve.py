"""Learning curve of a run: planning success and probe r at every checkpoint it kept.

  python -m experiments.train --config experiments/configs/push_t.py \
      --workdir runs/pusht                      # keeps steps 500, 1000, 1500, 2000
  python -m experiments.curve --workdir runs/pusht --seeds=2
  python -m experiments.curve --workdir runs/pusht --steps=500,2000 --probe_episodes=0

The run must keep the checkpoints (``--config.keep_checkpoints_every=N`` when training).
Every point is planned on the same start/goal pairs (the run's planning section, ``--seeds``
seeds from ``--seed``) and probed on the same fresh expert episodes; each point's reports
stay in the run directory and a re-run reuses them; a host environment's probe episodes
(Cube: minutes to simulate) are kept in ``--probe_cache`` when given, e.g. the yardstick's
``<out>``, which keeps the ones it probed both sides on. The table goes to ``curve.md``, the
plot to ``curve.png`` (:mod:`lewm_jax.analysis.curve`).
"""

from absl import app, flags, logging

from experiments.cli import exit_with_error, with_overrides

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training run directory (config.json + checkpoints).")
flags.DEFINE_list("steps", [], "Checkpoint steps to evaluate (default: every kept one).")
flags.DEFINE_string("planner", None, "Planner (default: the run's).")
flags.DEFINE_integer("episodes", None, "Closed-loop episodes per seed (default: the run's).")
flags.DEFINE_integer("seed", None, "First evaluation seed (default: the run's).")
flags.DEFINE_integer("seeds", 2, "Evaluation seeds.")
flags.DEFINE_integer("probe_episodes", 200, "Fresh expert episodes for the probes (0: none).")
flags.DEFINE_integer("probe_seed", 0, "Seed of the probe episodes, their split and MLP probe.")
flags.DEFINE_string(
    "probe_cache", None, "Directory keeping a host environment's probe episodes for the next call."
)
flags.DEFINE_bool("traceback", False, "Show full tracebacks instead of one-line errors.")
flags.mark_flag_as_required("workdir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from lewm_jax.analysis.curve import format_markdown, learning_curve, run_config

    logging.set_verbosity(logging.WARNING)
    try:
        bad = [s for s in FLAGS.steps if not s.isdigit()]
        if bad:
            raise ValueError(f"--steps {bad}: expected step numbers, e.g. --steps=500,2000")
        plan = with_overrides(
            run_config(FLAGS.workdir).planning,
            planner=FLAGS.planner,
            num_episodes=FLAGS.episodes,
            seed=FLAGS.seed,
            num_seeds=FLAGS.seeds,
        )
        rows = learning_curve(
            FLAGS.workdir,
            plan,
            steps=[int(s) for s in FLAGS.steps] or None,
            probe_episodes=FLAGS.probe_episodes,
            probe_seed=FLAGS.probe_seed,
            probe_cache=FLAGS.probe_cache,
        )
    except (ValueError, TypeError, OSError) as e:
        if FLAGS.traceback:
            raise
        exit_with_error(e)
    print(format_markdown(rows))


if __name__ == "__main__":
    app.run(main)
