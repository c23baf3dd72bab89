"""Probes a trained run's frozen latents for the environment's physical state.

  python -m experiments.probe --workdir runs/lewm
  python -m experiments.probe --workdir runs/lewm --episodes=50 --seed=1 --out=/tmp/probe.json
  python -m experiments.probe --workdir runs/lewm --step=1000 --out=/tmp/probe_1000.json

Collects ``--episodes`` fresh expert episodes of the run's environment (seed ``--seed``,
unlike the training data's ``config.seed``), fits linear (ridge) and MLP probes on 80 % of
them and prints held-out MSE (in training-std units) and Pearson r per quantity; the report
goes to ``<workdir>/probe.json`` (``probe_step<N>.json`` for ``--step=N``) unless ``--out``
says otherwise.
"""

import json
from pathlib import Path

from absl import app, flags, logging

from experiments.cli import exit_with_error

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training run directory (config.json + checkpoints).")
flags.DEFINE_integer("episodes", 200, "Expert episodes to collect and split 80/20.")
flags.DEFINE_integer("seed", 0, "Seed of the collected episodes, the split and the MLP probe.")
flags.DEFINE_integer("step", None, "Checkpoint step to probe (default: the latest).")
flags.DEFINE_string("out", None, "Report path (default: <workdir>/probe.json).")
flags.DEFINE_string(
    "probe_cache", None, "Directory keeping a host environment's probe episodes for the next call."
)
flags.DEFINE_bool("traceback", False, "Show full tracebacks instead of one-line errors.")
flags.mark_flag_as_required("workdir")


def format_table(report: dict) -> str:
    """A Markdown table of a ``run_probes`` report (MSE in training-std units)."""
    lines = [
        "| quantity | linear MSE | linear r | MLP MSE | MLP r |",
        "|---|---|---|---|---|",
    ]
    for name in report["names"]:
        lin, mlp = report["linear"][name], report["mlp"][name]
        lines.append(
            f"| {name} | {lin['mse']:.3f} | {lin['pearson_r']:.3f} | "
            f"{mlp['mse']:.3f} | {mlp['pearson_r']:.3f} |"
        )
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import jax

    from lewm_jax.analysis.probe import run_probes
    from lewm_jax.data import datasets
    from lewm_jax.training import run_dir
    from lewm_jax.training.run_dir import load_run

    logging.set_verbosity(logging.WARNING)
    try:
        run = load_run(FLAGS.workdir, step=FLAGS.step)
        config, model, variables = run.config, run.model, run.variables
        k_data, k_probe = jax.random.split(jax.random.key(FLAGS.seed))
        env_name, episodes = datasets.probe_episodes(
            config.data, k_data, FLAGS.episodes, cache_dir=FLAGS.probe_cache
        )
        report = run_probes(model, variables, episodes, env_name, key=k_probe)
        report.update(workdir=str(FLAGS.workdir), seed=FLAGS.seed, step=run.step)
        # probe.json is the latest checkpoint's (the sweep reads it); another step has its own.
        stem = "probe" if FLAGS.step is None else f"probe_step{FLAGS.step}"
        out = Path(FLAGS.out) if FLAGS.out else run_dir.report_path(FLAGS.workdir, stem, ".json")
        out.write_text(json.dumps(report, indent=2))
    except (ValueError, TypeError, OSError) as e:
        if FLAGS.traceback:
            raise
        exit_with_error(e)
    print(
        f"{report['env']}, step {report['step']}: {report['train_episodes']} train / "
        f"{report['test_episodes']} held-out episodes ({report['test_frames']} held-out frames)"
    )
    print(format_table(report))


if __name__ == "__main__":
    app.run(main)
