"""Learning curves: planning success and probe r at the checkpoints a run kept.

A run with ``keep_checkpoints_every = N`` keeps every checkpoint at a multiple of N
(:class:`lewm_jax.training.checkpoint.Checkpointer`). :func:`learning_curve` evaluates each
kept checkpoint on the same start/goal pairs (the run's planning section) and the same
held-out expert episodes (the probes), so the points differ in training only. Every point's
reports are written beside the run (``planning_<planner>_step<S>.json``,
``probe_step<S>.json``) and reused by a re-run with the same protocol; the curve goes to
``curve.json``, ``curve.md`` and ``curve.png``.

The points are checkpoints of one schedule: at 25 % of a cosine schedule the learning rate
is still high, so the early points understate what a run of that length would reach; the
last points tell whether more steps would still pay.
"""

import json
from pathlib import Path

import numpy as np

from lewm_jax.training import run_dir
from lewm_jax.training.reporting import saved_figure


def curve_steps(workdir, steps: list[int] | None = None) -> list[int]:
    """The checkpoint steps to evaluate: ``steps`` (each must be kept), else every kept one."""
    run_config(workdir)  # a missing run fails here, before a checkpointer creates its folder
    kept = run_dir.checkpointer(workdir, async_save=False).all_steps()
    if not kept:
        raise FileNotFoundError(f"workdir {str(workdir)!r} holds no checkpoint")
    missing = sorted(set(steps or ()) - set(kept))
    if missing:
        raise ValueError(
            f"workdir {str(workdir)!r} holds no checkpoint of steps {missing}; has {kept}"
        )
    return sorted(steps) if steps else kept


def run_config(workdir):
    """The stored config of the run in ``workdir`` (no checkpoint is read)."""
    import ml_collections

    stored = run_dir.read_config(workdir) if Path(workdir).is_dir() else None
    if stored is None:
        raise FileNotFoundError(f"workdir {str(workdir)!r} holds no training run")
    return ml_collections.ConfigDict(stored)


def _val_loss_at(workdir, step: int) -> tuple[float, int | None]:
    """The validation prediction loss of the last validation at or before ``step``, and
    the step it was logged at (NaN and None before the first): checkpoints and validation
    passes need not fall on the same steps."""
    rows = run_dir.read_metrics(workdir)
    vals = [(r["step"], r["val_pred_loss"]) for r in rows if "val_pred_loss" in r]
    vals = [v for v in vals if v[0] <= step]
    if not vals:
        return float("nan"), None
    # A resumed run logs a step again: max() keeps the first of equals, so the last logged.
    at, loss = max(reversed(vals), key=lambda v: v[0])
    return float(loss), int(at)


def _planning(workdir, plan_config, step: int, progress: bool) -> dict:
    from lewm_jax.planning.checks import eval_seeds, report_stem
    from lewm_jax.planning.evaluate import evaluate_planning

    tag = f"step{step}"
    path = run_dir.report_path(workdir, report_stem(plan_config, tag), ".json")
    if path.exists():  # reused when it answers the same protocol
        old = run_dir.read_json(path, "planning report")
        p = old.get("protocol", {})
        if (
            old.get("step") == step
            and p.get("seeds") == eval_seeds(plan_config)
            and p.get("num_episodes") == plan_config.num_episodes
            and p.get("planner") == plan_config.planner
        ):
            return old
    return evaluate_planning(workdir, plan_config, progress=progress, tag=tag, step=step)


def _probes(workdir, step: int, episodes, env_id: str, key, seed: int) -> dict:
    from lewm_jax.analysis.probe import run_probes

    path = run_dir.report_path(workdir, f"probe_step{step}", ".json")
    if path.exists():
        old = run_dir.read_json(path, "probe report")
        if old.get("seed") == seed and old.get("episodes") == len(episodes.ep_len):
            return old
    run = run_dir.load_run(workdir, step=step)
    report = run_probes(run.model, run.variables, episodes, env_id, key=key)
    report.update(step=step, seed=seed, episodes=len(episodes.ep_len))
    path.write_text(json.dumps(report, indent=2))
    return report


def learning_curve(
    workdir,
    plan_config,
    *,
    steps: list[int] | None = None,
    probe_episodes: int = 200,
    probe_seed: int = 0,
    probe_cache=None,
    progress: bool = True,
) -> list[dict]:
    """Planning success and probe r of every kept checkpoint of the run in ``workdir``.

    Args:
        workdir: a training run's directory.
        plan_config: ``config.planning`` to evaluate with (read-only; its seeds and episodes).
        steps: checkpoint steps to evaluate (default: every kept one).
        probe_episodes: fresh expert episodes for the probes (0: no probes, e.g. for a run
            whose dataset no JAX environment makes).
        probe_seed: seed of those episodes, their split and the MLP probe.
        probe_cache: directory keeping a host environment's probe episodes
            (:func:`~lewm_jax.data.datasets.probe_episodes`).
        progress: print one line per point.

    Returns:
        One row per step: ``{"step", "success_rate", "ci95", "successes_per_seed",
        "solved_at_start", "val_pred_loss", "val_step", "probe_r"}`` (``probe_r``: linear r
        per quantity; ``val_step``: the validation the loss is from, see ``_val_loss_at``).
        Also written as ``curve.json``, ``curve.md`` and ``curve.png`` in ``workdir``.
    """
    import jax

    from lewm_jax.analysis.probe import linear_r
    from lewm_jax.data import datasets

    workdir = Path(workdir)
    todo = curve_steps(workdir, steps)
    config = run_config(workdir)
    episodes = env_id = None
    k_data, k_probe = jax.random.split(jax.random.key(probe_seed))
    if probe_episodes:
        env_id, episodes = datasets.probe_episodes(
            config.data, k_data, probe_episodes, cache_dir=probe_cache
        )
    rows = []
    for step in todo:
        plan = _planning(workdir, plan_config, step, progress=False)
        val_loss, val_step = _val_loss_at(workdir, step)
        row = {
            "step": step,
            "success_rate": plan["success_rate"],
            "ci95": plan["ci95"],
            "successes_per_seed": [s["successes"] for s in plan["per_seed"]],
            "solved_at_start": plan["solved_at_start"]["share"],
            "val_pred_loss": val_loss,
            "val_step": val_step,
            "probe_r": {},
        }
        if episodes is not None:
            probe = _probes(workdir, step, episodes, env_id, k_probe, probe_seed)
            row["probe_r"] = linear_r(probe)
        rows.append(row)
        if progress:
            print(format_markdown([row]).splitlines()[-1], flush=True)
    (workdir / "curve.json").write_text(json.dumps(rows, indent=2))
    (workdir / "curve.md").write_text(format_markdown(rows) + "\n")
    plot(rows, workdir / "curve.png")
    return rows


def format_markdown(rows: list[dict]) -> str:
    """The curve as a Markdown table."""
    names = list(rows[0]["probe_r"])
    head = "| step | success [95 % CI] | per seed | solved at start | val pred loss | "
    head += "".join(f"probe r {n} | " for n in names)
    lines = [head.rstrip(), "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lo, hi = r["ci95"]
        cells = [
            str(r["step"]),
            f"{100 * r['success_rate']:.1f} % [{100 * lo:.0f}-{100 * hi:.0f}]",
            " / ".join(map(str, r["successes_per_seed"])),
            f"{100 * r['solved_at_start']:.1f} %",
            _val_cell(r),
            *(f"{r['probe_r'][n]:.3f}" for n in names),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _val_cell(row: dict) -> str:
    """The validation loss, with the step it was logged at when that is not the row's."""
    at = row.get("val_step", row["step"])  # rows of curve.json files written before val_step
    cell = f"{row['val_pred_loss']:.4f}"
    return cell if at in (row["step"], None) else f"{cell} (step {at})"


def plot(rows: list[dict], path) -> None:
    """Success with its interval, and every probe's r, against the step."""
    steps = [r["step"] for r in rows]
    with saved_figure(path, nrows=1, ncols=2, figsize=(11, 3.6)) as (_, axes):
        rate = np.array([r["success_rate"] for r in rows])
        ci = np.array([r["ci95"] for r in rows]).T
        axes[0].errorbar(steps, 100 * rate, yerr=100 * np.abs(ci - rate), fmt="o-", capsize=3)
        axes[0].set(xlabel="step", ylabel="success (%)", title="planning success [95 % CI]")
        for name in rows[0]["probe_r"]:
            axes[1].plot(steps, [r["probe_r"][name] for r in rows], "o-", label=name)
        axes[1].set(xlabel="step", ylabel="linear probe r", title="probes (held-out episodes)")
        if rows[0]["probe_r"]:
            axes[1].legend(fontsize=7)
