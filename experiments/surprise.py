"""Surprise (violation of expectation) of a trained run on teleport and colour perturbations.

  python -m experiments.surprise --workdir runs/lewm
  python -m experiments.surprise --workdir runs/lewm --episodes=50 --step=10 --seed=0
  python -m experiments.surprise --workdir runs/lewm --colour=200,40,40   # a subtle recolour

Collects ``--episodes`` fresh expert episodes of the run's environment (seed ``--seed``, full
length: no termination on success), replays each unperturbed, with the agent teleported and
with the agent recoloured (``--colour``, RGB) from frame ``--step`` on, and compares the
surprise of that frame with the control by a paired t-test. Writes ``surprise.json`` and
``surprise.png`` (mean curves +- sd) into the workdir.
"""

import json
from pathlib import Path

import numpy as np
from absl import app, flags, logging

from experiments.cli import exit_with_error, parse_rgb

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training run directory (config.json + checkpoints).")
flags.DEFINE_integer("episodes", 50, "Held-out expert episodes.")
flags.DEFINE_integer("step", None, "Frame where the perturbation first shows (default T // 2).")
flags.DEFINE_integer("seed", 0, "Seed of the episodes and the teleport targets.")
flags.DEFINE_list("colour", ["0", "0", "255"], "Agent RGB colour (0-255) of the colour condition.")
flags.DEFINE_bool("traceback", False, "Show full tracebacks instead of one-line errors.")
flags.mark_flag_as_required("workdir")

ALPHA = 0.01  # significance level of the paper's test


def format_table(report: dict) -> str:
    """A Markdown table of a ``run_surprise`` report."""
    k, ctrl = report["step"], report["at_step"]["control"]
    lines = [
        f"| condition | surprise at frame {k} | control | t | p | significant at {ALPHA} |",
        "|---|---|---|---|---|---|",
    ]
    for kind, test in report["tests"].items():
        m = report["at_step"][kind]
        lines.append(
            f"| {kind} | {m['mean']:.4f} ± {m['sd']:.4f} | {ctrl['mean']:.4f} ± {ctrl['sd']:.4f}"
            f" | {test['t']:.2f} | {test['p']:.2g} | {'yes' if test['p'] < ALPHA else 'no'} |"
        )
    return "\n".join(lines)


def plot_curves(path, report: dict) -> None:
    """PNG of the mean surprise curve +- sd of each condition, perturbation frame marked."""
    from lewm_jax.training.reporting import saved_figure

    with saved_figure(path, figsize=(6, 3.5)) as (_, ax):
        for kind, curve in report["curves"].items():
            frames = np.arange(1, curve.shape[1] + 1)  # index t predicts frame t + 1
            mean, sd = curve.mean(axis=0), curve.std(axis=0, ddof=1)
            ax.plot(frames, mean, label=kind)
            ax.fill_between(frames, mean - sd, mean + sd, alpha=0.2)
        ax.axvline(report["step"], color="k", linestyle="--", linewidth=1, label="perturbation")
        ax.set_xlabel(f"predicted frame (x{report['frameskip']} env steps)")
        ax.set_ylabel("surprise (latent MSE)")
        ax.set_title(f"{report['env']}: surprise over {report['episodes']} episodes")
        ax.legend()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import jax

    from lewm_jax.analysis.surprise import run_surprise
    from lewm_jax.data import datasets
    from lewm_jax.training import run_dir
    from lewm_jax.training.run_dir import load_run

    logging.set_verbosity(logging.WARNING)
    try:
        colour = parse_rgb(FLAGS.colour, flag="--colour")
        run = load_run(FLAGS.workdir)
        config, model, variables = run.config, run.model, run.variables
        # Actions are z-scored with the training data's statistics, as in planning.
        mean, std = run.action_stats
        k_data, k_teleport = jax.random.split(jax.random.key(FLAGS.seed))
        env, env_params, episodes = datasets.fresh_expert_episodes(
            config.data, k_data, FLAGS.episodes, full_length=True
        )
        report = run_surprise(
            model,
            variables,
            env,
            env_params,
            episodes,
            key=k_teleport,
            action_mean=mean,
            action_std=std,
            frameskip=config.data.frameskip,
            step=FLAGS.step,
            colour=colour,
        )
        report.update(env=env.name, workdir=str(FLAGS.workdir), seed=FLAGS.seed, colour=colour)
        workdir = Path(FLAGS.workdir)
        curves = {kind: c.tolist() for kind, c in report["curves"].items()}
        report_json = run_dir.report_path(workdir, "surprise", ".json")
        report_json.write_text(json.dumps({**report, "curves": curves}, indent=2))
        plot_curves(run_dir.report_path(workdir, "surprise", ".png"), report)
    except (ValueError, TypeError, OSError) as e:
        if FLAGS.traceback:
            raise
        exit_with_error(e)
    print(
        f"{report['env']}: {report['episodes']} episodes, {report['num_frames']} frames, "
        f"perturbation at frame {report['step']} "
        f"(env step {report['step'] * report['frameskip']}), colour condition RGB {colour}"
    )
    print(format_table(report))


if __name__ == "__main__":
    app.run(main)
