"""Planning evaluation of a trained run: load a workdir, run closed-loop MPC, report.

Writes ``planning_<planner>.json`` (success rate with a 95 % Wilson interval, planning
time), ``planning_<planner>.gif`` (a few episodes: observation beside goal) and
``planning_<planner>.png`` (per-episode outcome and success over time) into the workdir.
Shape letters: E episodes, P physical state, H/W pixels.
"""

import json
import time

import jax
import numpy as np

from lewm_jax.data import datasets
from lewm_jax.planning import closed_loop
from lewm_jax.planning.cost import check_cost
from lewm_jax.planning.registry import check_planner
from lewm_jax.training import run_dir
from lewm_jax.training.reporting import saved_figure


def check_planning_config(plan_config, *, frameskip: int) -> None:
    """One-line errors for a ``config.planning`` section that cannot run.

    Checks the planner and cost names, the setting names of every planner listed under
    ``settings``, the protocol (budget, horizon, receding) and the episode counts.
    """
    for name, settings in plan_config.settings.items():
        check_planner(name, settings)
    check_planner(plan_config.planner)
    check_cost(plan_config.cost)
    closed_loop.check_protocol(
        budget=plan_config.budget,
        horizon=plan_config.horizon,
        receding=plan_config.receding,
        frameskip=frameskip,
    )
    for name, low in (("num_episodes", 1), ("dataset_episodes", 1), ("offset", 1)):
        if plan_config[name] < low:
            raise ValueError(f"planning.{name} must be >= {low}, got {plan_config[name]}")
    if plan_config.gif_episodes < 0:
        raise ValueError(f"planning.gif_episodes must be >= 0, got {plan_config.gif_episodes}")


def report_stem(plan_config) -> str:
    """The file stem of a planning report in a run directory (``planning_<planner>``)."""
    return f"planning_{plan_config.planner}"


def evaluate_planning(workdir, plan_config, *, config=None, progress: bool = True) -> dict:
    """Closed-loop planning evaluation of the run in ``workdir``.

    Args:
        workdir: a training run's directory (config.json + checkpoints).
        plan_config: ``config.planning`` (read-only): planner, settings, episodes, seed,
            offset, budget, horizon, receding, cost, gif_episodes.
        config: optional config that the stored one must match.
        progress: print progress lines.

    Returns:
        The report dict (also written as JSON).
    """
    trained = run_dir.load_run(workdir, config)
    config, model, variables = trained.config, trained.model, trained.variables
    check_planning_config(plan_config, frameskip=config.data.frameskip)
    mean, std = trained.action_stats
    env, env_params = datasets.make_env(config.data)
    # Held-out episodes from another seed: starts and goals the model never trained on.
    eval_eps = datasets.load_episodes(
        config.data, plan_config.seed, num_episodes=plan_config.dataset_episodes
    )
    if eval_eps.state is None:
        raise ValueError(f"dataset {config.data.name!r} stores no physical state to evaluate from")
    start, goal = closed_loop.sample_eval_episodes(
        eval_eps, plan_config.num_episodes, offset=plan_config.offset, seed=plan_config.seed
    )
    run = closed_loop.make_closed_loop(
        env,
        env_params,
        model,
        planner=plan_config.planner,
        planner_settings=dict(plan_config.settings[plan_config.planner]),
        cost=plan_config.cost,
        action_mean=mean,
        action_std=std,
        budget=plan_config.budget,
        horizon=plan_config.horizon,
        receding=plan_config.receding,
        frameskip=config.data.frameskip,
    )
    args = (eval_eps.state[start], eval_eps.state[goal], eval_eps.pixels[goal])
    key = jax.random.key(plan_config.seed)
    if progress:
        print(f"planning: compiling {plan_config.planner} for {len(start)} episodes", flush=True)
    t0 = time.perf_counter()
    compiled = run.lower(key, variables, *args).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.device_get(compiled(key, variables, *args))
    wall = time.perf_counter() - t0
    num_plans = -(-plan_config.budget // (plan_config.receding * config.data.frameskip))
    n, k = len(start), int(out["success"].sum())
    lo, hi = closed_loop.wilson_interval(k, n)
    report = {
        "env": config.data.name,
        "planner": plan_config.planner,
        "settings": dict(plan_config.settings[plan_config.planner]),
        "episodes": n,
        "successes": k,
        "success_rate": k / n,
        "ci95": [lo, hi],
        "mean_first_success_step": float(out["first_success"][out["success"]].mean())
        if k
        else None,
        "compile_s": compile_s,
        "eval_wall_s": wall,
        "plans": n * num_plans,
        "s_per_plan_batched": wall / (n * num_plans),
        "device": jax.devices()[0].device_kind,
    }
    stem = report_stem(plan_config)
    run_dir.report_path(workdir, stem, ".json").write_text(json.dumps(report, indent=2))
    write_gif(
        run_dir.report_path(workdir, stem, ".gif"),
        out["frames"],
        eval_eps.pixels[goal],
        out["success"],
        plan_config.gif_episodes,
    )
    plot_outcomes(run_dir.report_path(workdir, stem, ".png"), out, report, plan_config.budget)
    if progress:
        print(format_report([report]), flush=True)
    return report


def format_report(reports: list[dict]) -> str:
    """A Markdown table of planning reports."""
    lines = [
        "| planner | env | success | 95% CI | episodes | s/plan (batched) | eval wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lines.append(
            f"| {r['planner']} | {r['env']} | {100 * r['success_rate']:.0f} % | "
            f"{100 * r['ci95'][0]:.0f}-{100 * r['ci95'][1]:.0f} % | {r['episodes']} | "
            f"{r['s_per_plan_batched']:.3f} | {r['eval_wall_s']:.1f} |"
        )
    return "\n".join(lines)


def write_gif(path, frames, goals, success, num: int, fps: int = 10) -> None:
    """Animated GIF of the first ``num`` episodes, each as observation | goal side by side."""
    from PIL import Image

    num = min(num, len(frames))
    if num < 1:
        return
    tiles = []
    for t in range(frames.shape[1]):
        rows = []
        for e in range(num):
            bar = np.zeros((frames.shape[2], 2, 3), np.uint8)
            bar[..., 1 if success[e] else 0] = 255  # green edge: solved, red: not
            rows.append(np.concatenate([frames[e, t], bar, goals[e]], axis=1))
        tiles.append(np.concatenate(rows, axis=0))
    images = [Image.fromarray(x).resize((x.shape[1] * 2, x.shape[0] * 2)) for x in tiles]
    images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)


def plot_outcomes(path, out: dict, report: dict, budget: int) -> None:
    """PNG summary: cumulative success against env steps."""
    first = np.where(out["success"], out["first_success"], budget + 1)
    steps = np.arange(budget + 1)
    with saved_figure(path) as (_, ax):
        ax.plot(steps, [(first <= s).mean() for s in steps])
        ax.set_xlabel("env step")
        ax.set_ylabel("fraction solved")
        ax.set_ylim(0, 1)
        lo, hi = report["ci95"]
        ax.set_title(
            f"{report['planner']} on {report['env']}: {100 * report['success_rate']:.0f} % "
            f"[{100 * lo:.0f}, {100 * hi:.0f}]"
        )
