"""Evaluates closed-loop planning with a trained run's checkpoint.

  python -m experiments.plan --workdir runs/lewm --planner=cem
  python -m experiments.plan --workdir runs/lewm --planner=gradient --episodes=50 \
      --settings='{"num_samples": 100, "num_steps": 30, "lr": 0.1}'
  python -m experiments.plan --workdir runs/lewm --planners=cem,icem,gradient,mppi
  python -m experiments.plan --workdir runs/lewm --planners=cem,random,expert --seeds=5
  python -m experiments.plan --workdir runs/lewm --seeds=3 --pairs=train
  python -m experiments.plan --workdir runs/lewm --planner=cem --tag=s100 \
      --settings='{"num_samples": 100, "num_elites": 10}'
  python -m experiments.plan --workdir runs/reacher --env=lewm/ReacherDMC-v0 --planners=cem,expert

``--seeds=N`` evaluates the seeds ``seed .. seed + N - 1`` (``--episodes`` each, own
start/goal pairs and planner noise) and reports per-seed rates, their mean and sd and the
pooled rate; ``--pairs`` says where start/goal pairs come from: ``heldout`` (episodes
generated with the evaluation seed, never trained on) or ``train`` (the training episodes;
the only choice for hdf5/tfds datasets). The report (JSON and printed table) states the
protocol, episodes solved at the start, the rate without them and every episode's outcome.

Starts from the run's ``planning`` config; flags override it. With ``--config`` the run
must have been made by that config (model and data), else a one-line error.
"""

import json

from absl import app, flags, logging

from experiments.cli import exit_with_error, with_overrides
from experiments.configs.common import load_config

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training run directory (config.json + checkpoints).")
flags.DEFINE_list(
    "planners",
    [],
    "Planners (cem, gradient, icem, mppi) and baseline policies (random, expert) to "
    "evaluate side by side on the same start/goal pairs.",
)
flags.DEFINE_string("planner", None, "One planner (same as --planners=<name>).")
flags.DEFINE_integer("episodes", None, "Closed-loop episodes.")
flags.DEFINE_integer("horizon", None, "Planned action blocks.")
flags.DEFINE_integer("receding", None, "Blocks executed before replanning.")
flags.DEFINE_integer("budget", None, "Env steps per episode.")
flags.DEFINE_integer("seed", None, "Evaluation seed (the first one with --seeds).")
flags.DEFINE_integer("seeds", None, "Evaluation seeds seed, seed + 1, ... (episodes each).")
flags.DEFINE_string("pairs", None, "Start/goal pairs from heldout or train episodes.")
flags.DEFINE_string(
    "pair_policy", None, "Policy of the held-out pair episodes (e.g. random; default data's)."
)
flags.DEFINE_string("cost", None, "terminal or all_steps.")
flags.DEFINE_string("settings", None, "JSON dict of planner keyword settings.")
flags.DEFINE_string("config", None, "Config spec the run must match, e.g. file.py:cpu.")
flags.DEFINE_string(
    "tag", "", "Write planning_<planner>_<tag>.* instead of replacing planning_<planner>.*"
)
flags.DEFINE_string(
    "env", "", "Plan in this host environment (e.g. lewm/ReacherDMC-v0) from the same pairs."
)
flags.DEFINE_bool("traceback", False, "Show full tracebacks instead of one-line errors.")
flags.mark_flag_as_required("workdir")


def plan_config_from_flags(stored):
    """The run's planning config with the command-line overrides applied (a copy)."""
    plan = with_overrides(
        stored.planning,
        num_episodes=FLAGS.episodes,
        horizon=FLAGS.horizon,
        receding=FLAGS.receding,
        budget=FLAGS.budget,
        seed=FLAGS.seed,
        num_seeds=FLAGS.seeds,
        pairs=FLAGS.pairs,
        pair_policy=FLAGS.pair_policy,
        cost=FLAGS.cost,
    )
    if FLAGS.horizon is not None and FLAGS.receding is None:
        plan.receding = min(plan.receding, FLAGS.horizon)
    return plan


def parse_settings(text: str) -> dict:
    """``--settings`` as a dict; one-line error naming the flag when it is not a JSON object."""
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--settings={text!r} is not JSON ({e})") from None
    if not isinstance(settings, dict):
        raise ValueError(
            f"--settings={text!r} must be a JSON object, e.g. '{{\"num_samples\": 100}}'"
        )
    return settings


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from lewm_jax.planning.evaluate import evaluate_planning
    from lewm_jax.planning.registry import check_planner
    from lewm_jax.planning.report import format_report
    from lewm_jax.training.run_dir import load_run

    logging.set_verbosity(logging.WARNING)

    try:
        expected = load_config(FLAGS.config) if FLAGS.config else None
        stored = load_run(FLAGS.workdir, expected).config
        plan = plan_config_from_flags(stored)
        names = FLAGS.planners or [FLAGS.planner or plan.planner]
        reports = []
        for name in names:
            one = plan.copy_and_resolve_references()
            one.planner = name
            settings = parse_settings(FLAGS.settings) if FLAGS.settings else None
            check_planner(name, settings, policies=True)
            if settings:  # a run stored before this planner existed has no entry for it
                one.settings[name] = {**one.settings.get(name, {}), **settings}
            reports.append(
                evaluate_planning(FLAGS.workdir, one, progress=True, tag=FLAGS.tag, env=FLAGS.env)
            )
    except (ValueError, TypeError, OSError, json.JSONDecodeError) as e:
        if FLAGS.traceback:
            raise
        exit_with_error(e)
    print(format_report(reports))


if __name__ == "__main__":
    app.run(main)
