"""A lewm_jax model planned by the original's own evaluation loop, on our evaluation's pairs.

For a trained run and one of its planning reports (``planning_cem.json``, written by the
end-of-training evaluation or ``experiments.plan``), this rebuilds every seed's start/goal
pairs from the report's protocol (checked against the report's episode list), exports the
model with the converter, and has the reference interpreter plan it in stable-worldmodel's
own environment with ``World`` + ``WorldModelPolicy`` + ``CEMSolver``
(``experiments/bench/torch/cross_eval.py``), same planner settings, budget, horizon,
receding horizon and action statistics. Prints, per seed, both success rates with their
95 % intervals and how many episodes have the same outcome, and writes them as JSON:

  LEWM_TORCH_PYTHON=/work/ref-venv/bin/python python -m experiments.bench.cross_eval \\
      --workdir runs/lewm --json /tmp/cross_eval.json

The two planners draw different random samples (torch's generator, not JAX's), so episodes
whose outcome hangs on the draw may differ even with identical models and frames.
"""

import json
import tempfile
from pathlib import Path

import numpy as np
from absl import app, flags

from experiments.bench import reference
from lewm_jax.convert import HF_LAYOUTS

FLAGS = flags.FLAGS


def define_flags():
    """Defines the flags (only when run as a script, so that tests can import this module)."""
    flags.DEFINE_string("workdir", "runs/lewm", "A trained lewm_jax run.")
    flags.DEFINE_string("report", "planning_cem.json", "Its planning report (JSON).")
    flags.DEFINE_string("reference_python", reference.default_python(), "Reference interpreter.")
    flags.DEFINE_string("json", "", "Write the comparison here.")


def eval_pairs(config, report: dict) -> list[dict]:
    """Per seed of ``report``, the start/goal physical states and our per-episode outcomes."""
    from lewm_jax.data.episodes import goal_pairs
    from lewm_jax.planning.pairs import pair_episodes

    protocol = report["protocol"]
    plan_config = config.planning.copy_and_resolve_references()
    with plan_config.unlocked():
        plan_config.pairs = protocol["pairs"]
        plan_config.dataset_episodes = protocol["dataset_episodes"]
    rows = report["episodes_detail"]
    out = []
    for seed in protocol["seeds"]:
        eps = pair_episodes(config, plan_config, seed)
        start, goal = goal_pairs(
            eps, protocol["num_episodes"], offset=protocol["offset"], seed=seed
        )
        ours = [r for r in rows if r["seed"] == seed]
        if [r["start"] for r in ours] != start.tolist():
            raise ValueError(f"seed {seed}: the report's pairs are not the protocol's; rerun it")
        out.append(
            {
                "seed": seed,
                "start": eps.state[start],
                "goal": eps.state[goal],
                "success": np.array([r["success"] for r in ours]),
            }
        )
    return out


def export(workdir, out_dir: Path):
    """Writes ``weights_<layout>.npz`` (each transformers layout) and ``config.json`` of
    ``workdir``'s latest checkpoint."""
    from lewm_jax import convert
    from lewm_jax.training.run_dir import load_run

    run = load_run(workdir)
    config = run.config
    for layout in convert.HF_LAYOUTS:  # the reference side loads the one it has
        sd = convert.variables_to_torch_state_dict(run.variables, config.model, hf_layout=layout)
        convert.save_state_dict(sd, out_dir / f"weights_{layout}.npz")
    reference.write_official_config(config, out_dir / "config.json")
    return run


def compare(workdir, report_name: str, python: str) -> dict:
    """Our per-episode outcomes against the original loop's, per seed of the report."""
    from lewm_jax.planning.closed_loop import wilson_interval

    report = json.loads((Path(workdir) / report_name).read_text())
    protocol = report["protocol"]
    if protocol["planner"] != "cem":
        raise ValueError(f"report planner {protocol['planner']!r}: the original's loop has CEM")
    original = reference.ORIGINAL_ENVS.get(protocol["env"])
    if original is None:
        raise ValueError(
            f"env {protocol['env']!r} has no stable-worldmodel counterpart; expected one of "
            f"{sorted(reference.ORIGINAL_ENVS)}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = export(workdir, tmp)
        config = run.config
        mean, std = run.action_stats
        settings = protocol["settings"]
        seeds = []
        for pairs in eval_pairs(config, report):
            np.savez(tmp / "pairs.npz", start=pairs["start"], goal=pairs["goal"])
            weights = [tmp / f"weights_{layout}.npz" for layout in HF_LAYOUTS]
            args = ["--config", tmp / "config.json", "--weights", *weights]
            args += ["--pairs", tmp / "pairs.npz", "--env", original]
            args += ["--image_size", config.data.image_size, "--seed", pairs["seed"]]
            args += ["--action_mean", *mean.tolist(), "--action_std", *std.tolist()]
            args += ["--budget", protocol["budget"], "--horizon", protocol["horizon"]]
            args += ["--receding", protocol["receding"], "--frameskip", protocol["frameskip"]]
            args += ["--samples", settings.get("num_samples", 300)]
            args += ["--iterations", settings.get("num_iters", 30)]
            args += ["--topk", settings.get("num_elites", 30)]
            theirs = reference.run(python, "experiments.bench.torch.cross_eval", args)
            ours, other = pairs["success"], np.array(theirs["success"])
            n = len(ours)
            seeds.append(
                {
                    "seed": pairs["seed"],
                    "episodes": n,
                    "ours": int(ours.sum()),
                    "ours_ci95": wilson_interval(int(ours.sum()), n),
                    "original_loop": int(other.sum()),
                    "original_loop_ci95": wilson_interval(int(other.sum()), n),
                    "same_outcome": int((ours == other).sum()),
                    "original_wall_s": theirs["wall_s"],
                }
            )
    return {"workdir": str(workdir), "report": report_name, "protocol": protocol, "seeds": seeds}


def main(argv):
    del argv
    if not FLAGS.reference_python:
        raise SystemExit("error: set --reference_python or LEWM_TORCH_PYTHON (BENCHMARKS.md)")
    result = compare(FLAGS.workdir, FLAGS.report, FLAGS.reference_python)
    for s in result["seeds"]:
        n = s["episodes"]
        lo, hi = s["ours_ci95"]
        lo2, hi2 = s["original_loop_ci95"]
        print(
            f"seed {s['seed']}: lewm_jax {s['ours']}/{n} [{100 * lo:.0f}-{100 * hi:.0f} %], "
            f"original loop {s['original_loop']}/{n} [{100 * lo2:.0f}-{100 * hi2:.0f} %], "
            f"same outcome in {s['same_outcome']}/{n} episodes"
        )
    if FLAGS.json:
        Path(FLAGS.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    define_flags()
    app.run(main)
