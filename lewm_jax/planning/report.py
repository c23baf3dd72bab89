"""The planning report: statistics over seeds and episodes, the Markdown table, GIF and plot.

Pure host-side NumPy on the per-seed outputs of
:func:`lewm_jax.planning.closed_loop.make_closed_loop`; nothing here runs the model.
"""

import json

import jax
import numpy as np

from lewm_jax.planning.closed_loop import wilson_interval
from lewm_jax.training.reporting import saved_figure


def _rate(successes: int, n: int) -> dict:
    """Count, rate and 95 % Wilson interval; rate and interval are None when ``n == 0``."""
    return {
        "episodes": n,
        "successes": successes,
        "success_rate": successes / n if n else None,
        "ci95": list(wilson_interval(successes, n)) if n else None,
    }


def _pooled(results: list[dict], name: str) -> np.ndarray:
    return np.concatenate([np.asarray(r["out"][name]) for r in results])


def episode_rows(results: list[dict]) -> list[dict]:
    """One row per episode of every seed: seed, dataset episode, start and goal index,
    success, first success step (None if never), solved at start, final plan cost."""
    rows = []
    for r in results:
        out = r["out"]
        for e in range(len(r["start"])):
            success = bool(out["success"][e])
            rows.append(
                {
                    "seed": r["seed"],
                    "episode": int(r["episode"][e]),
                    "start": int(r["start"][e]),
                    "goal": int(r["goal"][e]),
                    "success": success,
                    "first_success": int(out["first_success"][e]) if success else None,
                    "solved_at_start": bool(out["solved_at_start"][e]),
                    "final_cost": float(out["final_cost"][e]),
                }
            )
    return rows


def summarize(
    results: list[dict],
    *,
    env: str,
    protocol: dict,
    pairs: str,
    compile_s: float,
    wall_s: float,
    num_plans: int,
) -> dict:
    """The report dict of a planning evaluation.

    ``episodes``, ``successes``, ``success_rate`` and ``ci95`` pool every seed's episodes
    (with one seed: that seed's), so readers of single-seed reports read them unchanged.

    Args:
        results: per seed, ``seed``, ``start (E,)``, ``goal (E,)``, ``episode (E,)``
            (dataset episode of each start) and ``out`` (the closed loop's results).
        env: the dataset name.
        protocol: the protocol header (offset, budget, horizon, ..., seeds, pairs).
        pairs: one line saying where the start/goal pairs came from.
        compile_s: seconds to compile the closed loop (once).
        wall_s: seconds of evaluation summed over seeds.
        num_plans: plans per episode.
    """
    success = _pooled(results, "success").astype(bool)
    at_start = _pooled(results, "solved_at_start").astype(bool)
    first = _pooled(results, "first_success")
    n, k = success.size, int(success.sum())
    per_seed = [
        {
            "seed": r["seed"],
            **_rate(int(np.sum(r["out"]["success"])), len(r["start"])),
            "solved_at_start": int(np.sum(r["out"]["solved_at_start"])),
        }
        for r in results
    ]
    rates = [s["success_rate"] for s in per_seed]
    rest = ~at_start
    return {
        "env": env,
        "planner": protocol["planner"],
        "settings": protocol["settings"],
        "protocol": protocol,
        "pairs": pairs,
        **_rate(k, n),
        "mean_first_success_step": float(first[success].mean()) if k else None,
        "solved_at_start": {"episodes": int(at_start.sum()), "share": float(at_start.mean())},
        # The rate the planner earns: episodes that start inside the goal region count as
        # successes above (as in the reference) but need no plan.
        "excluding_solved_at_start": _rate(int(success[rest].sum()), int(rest.sum())),
        "per_seed": per_seed,
        "over_seeds": {
            "seeds": len(rates),
            "mean": float(np.mean(rates)),
            "sd": float(np.std(rates, ddof=1)) if len(rates) > 1 else None,
        },
        "compile_s": compile_s,
        "eval_wall_s": wall_s,
        "plans": n * num_plans,
        "s_per_plan_batched": wall_s / (n * num_plans),
        "device": jax.devices()[0].device_kind,
        "episodes_detail": episode_rows(results),
    }


def write_json(path, report: dict) -> None:
    """Writes ``report`` as indented JSON."""
    path.write_text(json.dumps(report, indent=2))


def _settings_text(report: dict) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in report["settings"].items())
    return f"{report['planner']} ({settings})" if settings else report["planner"]


def _shared_protocol(report: dict) -> str:
    p = report["protocol"]
    seeds = p["seeds"]
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
    return (
        f"goal {p['offset']} env steps ahead, budget {p['budget']} steps, horizon "
        f"{p['horizon']} blocks x frameskip {p['frameskip']}, replan every {p['receding']} "
        f"blocks, {p['cost']} cost; {p['num_episodes']} episodes x {seed_text}; "
        f"pairs {report['pairs']}"
    )


def protocol_lines(reports: list[dict]) -> list[str]:
    """One ``protocol: ...`` line per distinct protocol (normally one for all planners)."""
    groups: dict[str, list[str]] = {}
    for r in reports:
        groups.setdefault(_shared_protocol(r), []).append(_settings_text(r))
    return [f"protocol: {', '.join(planners)}; {shared}" for shared, planners in groups.items()]


def _percent(rate) -> str:
    return "-" if rate is None else f"{100 * rate:.0f} %"


def _interval(ci) -> str:
    return "-" if ci is None else f"{100 * ci[0]:.0f}-{100 * ci[1]:.0f} %"


def format_report(reports: list[dict]) -> str:
    """The protocol line(s), then a Markdown table of planning reports."""
    lines = [
        *protocol_lines(reports),
        "",
        "| planner | env | success | 95% CI | solved at start | success w/o solved-at-start "
        "| over seeds (mean ± sd) | episodes | s/plan (batched) | eval wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        at_start, rest, seeds = (
            r["solved_at_start"],
            r["excluding_solved_at_start"],
            r["over_seeds"],
        )
        rest_text = _percent(rest["success_rate"])
        if rest["ci95"] is not None:
            rest_text += f" ({_interval(rest['ci95'])})"
        spread = "" if seeds["sd"] is None else f" ± {100 * seeds['sd']:.0f}"
        plural = "s" if seeds["seeds"] > 1 else ""
        lines.append(
            f"| {r['planner']} | {r['env']} | {_percent(r['success_rate'])} | "
            f"{_interval(r['ci95'])} | {at_start['episodes']} ({_percent(at_start['share'])}) | "
            f"{rest_text} | {100 * seeds['mean']:.0f}{spread} % ({seeds['seeds']} seed{plural}) | "
            f"{r['episodes']} | {r['s_per_plan_batched']:.3f} | {r['eval_wall_s']:.1f} |"
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


def _solved_by(out: dict, steps: np.ndarray) -> list[float]:
    first = np.where(out["success"], out["first_success"], steps[-1] + 1)
    return [float((first <= s).mean()) for s in steps]


def plot_outcomes(path, results: list[dict], report: dict) -> None:
    """PNG summary: cumulative success against env steps, pooled (and per seed)."""
    steps = np.arange(report["protocol"]["budget"] + 1)
    pooled = {k: _pooled(results, k) for k in ("success", "first_success")}
    with saved_figure(path) as (_, ax):
        if len(results) > 1:
            for r in results:
                ax.plot(steps, _solved_by(r["out"], steps), lw=0.8, alpha=0.4)
        ax.plot(steps, _solved_by(pooled, steps), color="k")
        ax.set_xlabel("env step")
        ax.set_ylabel("fraction solved")
        ax.set_ylim(0, 1)
        lo, hi = report["ci95"]
        ax.set_title(
            f"{report['planner']} on {report['env']}: {100 * report['success_rate']:.0f} % "
            f"[{100 * lo:.0f}, {100 * hi:.0f}], {len(results)} seed(s)"
        )
