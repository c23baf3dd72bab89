"""Planning evaluation of a trained run: load a workdir, run closed-loop MPC, report.

Writes ``planning_<planner>.json`` (the protocol, success rate with a 95 % Wilson
interval pooled over every seed's episodes, per-seed rates, episodes solved at the start,
per-episode outcomes, planning time), ``planning_<planner>.gif`` (a few episodes of the
first seed: observation beside goal) and ``planning_<planner>.png`` (success over time)
into the workdir, only once every seed has been evaluated.
Shape letters: E episodes, P physical state, H/W pixels.
"""

import re
import time

import jax
import numpy as np

from lewm_jax.data import datasets
from lewm_jax.envs.host import is_host_env
from lewm_jax.planning import baselines, closed_loop, report
from lewm_jax.planning.cost import check_cost
from lewm_jax.planning.registry import check_planner
from lewm_jax.planning.report import format_report
from lewm_jax.training import run_dir

# Where start/goal pairs come from: episodes generated with the evaluation seed (never
# trained on) or the run's training episodes.
PAIRS = ("heldout", "train")
# Planning fields newer than some stored runs: a config.json without them means these.
DEFAULTS = {"num_seeds": 1, "pairs": "heldout"}


def plan_field(plan_config, name: str):
    """``plan_config[name]``, or its default for runs stored before the field existed."""
    return plan_config.get(name, DEFAULTS[name])


def eval_seeds(plan_config) -> list[int]:
    """The evaluation seeds ``seed, seed + 1, ...`` (``num_seeds`` of them)."""
    return [plan_config.seed + i for i in range(plan_field(plan_config, "num_seeds"))]


def check_planning_config(
    plan_config, *, frameskip: int, dataset: str | None = None, train_seed: int | None = None
) -> None:
    """One-line errors for a ``config.planning`` section that cannot run.

    Checks the planner and cost names, the setting names of every planner listed under
    ``settings``, the protocol (budget, horizon, receding), the episode and seed counts and
    where start/goal pairs come from.

    Args:
        plan_config: ``config.planning`` (read-only).
        frameskip: ``config.data.frameskip``.
        dataset: ``config.data.name`` of a run that will plan: a file dataset has no
            held-out episodes, so it needs ``pairs="train"``. None skips this check.
        train_seed: ``config.seed``; held-out episodes of an evaluation seed equal to it
            would be training episodes. None skips this check.
    """
    for name, settings in plan_config.settings.items():
        check_planner(name, settings, policies=True)
    check_planner(plan_config.planner, policies=True)
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
    num_seeds = plan_field(plan_config, "num_seeds")
    if num_seeds < 1:
        raise ValueError(f"planning.num_seeds must be >= 1, got {num_seeds}")
    pairs = plan_field(plan_config, "pairs")
    if pairs not in PAIRS:
        raise ValueError(f"unknown planning.pairs {pairs!r}; expected one of {PAIRS}")
    if pairs == "heldout" and dataset in datasets.FILE_DATASETS:
        raise ValueError(
            f"dataset {dataset!r} has no held-out episodes (its train/val split is over clips, "
            "so every episode contributed training clips); set planning.pairs=train"
        )
    seeds = eval_seeds(plan_config)
    if pairs == "heldout" and train_seed in seeds:
        raise ValueError(
            f"planning seeds {seeds[0]}-{seeds[-1]} include the training seed {train_seed}, "
            "so the held-out episodes would be training episodes; choose another planning.seed"
        )


def report_stem(plan_config, tag: str = "") -> str:
    """The file stem of a planning report in a run directory: ``planning_<planner>``, or
    ``planning_<planner>_<tag>`` for a variant that must not replace the default report."""
    if tag and not re.fullmatch(r"[A-Za-z0-9_.-]+", tag):
        raise ValueError(f"report tag {tag!r} must be letters, digits, '_', '.' or '-'")
    return f"planning_{plan_config.planner}" + (f"_{tag}" if tag else "")


def pair_episodes(config, plan_config, seed: int):
    """The episodes evaluation seed ``seed`` draws its start/goal pairs from.

    ``pairs="heldout"``: ``dataset_episodes`` episodes generated with ``seed`` (never
    trained on). ``"train"``: a generated dataset's training episodes (``config.seed``,
    ``data.num_episodes``), or a file dataset's first ``dataset_episodes`` episodes.
    """
    if plan_field(plan_config, "pairs") == "heldout":
        return datasets.load_episodes(config.data, seed, num_episodes=plan_config.dataset_episodes)
    if config.data.name in datasets.FILE_DATASETS:
        return datasets.load_episodes(
            config.data, config.seed, num_episodes=plan_config.dataset_episodes
        )
    return datasets.load_episodes(config.data, config.seed)


def describe_pairs(config, plan_config, num_source: int) -> str:
    """One line saying where the start/goal pairs came from (``num_source`` episodes)."""
    seeds = eval_seeds(plan_config)
    if plan_field(plan_config, "pairs") == "heldout":
        which = (
            f"seed {seeds[0]}"
            if len(seeds) == 1
            else f"each evaluation seed ({seeds[0]}-{seeds[-1]})"
        )
        return (
            f"heldout: {num_source} episodes generated with {which}; "
            f"training used seed {config.seed}"
        )
    if config.data.name in datasets.FILE_DATASETS:
        return (
            f"train: the first {num_source} episodes of {config.data.name} dataset "
            f"{config.data.path} (every episode contributed training clips)"
        )
    return f"train: the {num_source} training episodes (generated with seed {config.seed})"


def run_seeds(run, variables, config, plan_config, *, progress: bool = False):
    """Calls the closed loop ``run`` for every evaluation seed, compiled once.

    Returns:
        ``(results, info)``: per seed a dict of ``seed``, ``start (E,)``, ``goal (E,)``,
        ``episode (E,)`` (dataset episode of each start) and ``out`` (the loop's results;
        frames, and ``goal_frames``, for the first seed only: they make the GIF); ``info``
        holds ``compile_s``, ``wall_s`` (summed over seeds) and ``dataset_episodes``.
    """
    heldout = plan_field(plan_config, "pairs") == "heldout"
    results, compiled, eps, compile_s, wall = [], None, None, 0.0, 0.0
    for seed in eval_seeds(plan_config):
        if eps is None or heldout:  # the training episodes are the same for every seed
            eps = pair_episodes(config, plan_config, seed)
        if eps.state is None:
            raise ValueError(
                f"dataset {config.data.name!r} stores no physical state to evaluate from"
            )
        start, goal = closed_loop.sample_eval_episodes(
            eps, plan_config.num_episodes, offset=plan_config.offset, seed=seed
        )
        args = (eps.state[start], eps.state[goal], eps.pixels[goal])
        key = jax.random.key(seed)
        if compiled is None and not hasattr(run, "lower"):
            compiled = run  # a host loop: its planner compiles on the first call
        elif compiled is None:
            if progress:
                print(
                    f"planning: compiling {plan_config.planner} for {len(start)} episodes",
                    flush=True,
                )
            t0 = time.perf_counter()
            compiled = run.lower(key, variables, *args).compile()
            compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = dict(compiled(key, variables, *args))
        goal_frames = out.pop("goal_frames", eps.pixels[goal])  # a host renders its own
        out = jax.device_get({k: v for k, v in out.items() if k != "frames" or not results})
        wall += time.perf_counter() - t0
        episode = np.searchsorted(eps.ep_offset, start, side="right") - 1
        result = dict(seed=seed, start=start, goal=goal, episode=episode, out=out)
        if not results:
            result["goal_frames"] = goal_frames
        results.append(result)
        if progress:
            solved = int(out["success"].sum())
            print(f"planning: seed {seed}: {solved}/{len(start)} solved", flush=True)
    info = {"compile_s": compile_s, "wall_s": wall, "dataset_episodes": len(eps.ep_len)}
    return results, info


def loop_settings(plan_config, settings, mean, std, frameskip: int) -> dict:
    """The keyword arguments of a closed loop (pure-JAX or host) under ``plan_config``."""
    return dict(
        planner=plan_config.planner,
        planner_settings=settings,
        cost=plan_config.cost,
        action_mean=mean,
        action_std=std,
        budget=plan_config.budget,
        horizon=plan_config.horizon,
        receding=plan_config.receding,
        frameskip=frameskip,
    )


def host_loop(
    host_id: str, model, num_episodes: int, image_size: int, env_kwargs=None, **loop_kwargs
):
    """The :class:`~lewm_jax.planning.host_loop.HostLoop` of ``num_episodes`` simulators of
    the host environment ``host_id`` at the run's frame size (``env_kwargs``: keyword
    arguments of its constructor)."""
    from lewm_jax.envs.host import HostBatch
    from lewm_jax.planning.host_loop import HostLoop

    batch = HostBatch(host_id, num_episodes, image_size=image_size, **(env_kwargs or {}))
    try:
        return HostLoop(batch, model, **loop_kwargs)
    except Exception:
        batch.close()
        raise


def evaluate_planning(
    workdir,
    plan_config,
    *,
    config=None,
    progress: bool = True,
    tag: str = "",
    env: str = "",
    step: int | None = None,
) -> dict:
    """Closed-loop planning evaluation of the run in ``workdir``, over every evaluation seed.

    The closed loop is compiled once and called per seed; each seed has its own start/goal
    pairs and planner noise. Nothing is written unless every seed's evaluation succeeded.

    Args:
        workdir: a training run's directory (config.json + checkpoints).
        plan_config: ``config.planning`` (read-only): planner, settings, episodes, seed,
            num_seeds, pairs, offset, budget, horizon, receding, cost, gif_episodes.
        config: optional config that the stored one must match.
        progress: print progress lines.
        tag: written as ``planning_<planner>_<tag>.*`` (see :func:`report_stem`).
        env: plan in this host environment (a gymnasium id of :mod:`lewm_jax.envs.host`,
            e.g. ``"lewm/ReacherDMC-v0"``) instead of the run's own environment, from the
            same start/goal states; without a tag the report is tagged with its name.
        step: evaluate the checkpoint of this step (default: the latest).

    Returns:
        The report dict (also written as JSON; see :func:`report.summarize`).
    """
    if env and not is_host_env(env):
        raise ValueError(f"env {env!r} is not a host environment id; expected e.g. 'lewm/Name-v0'")
    stem = report_stem(plan_config, tag or env.split("/")[-1].lower())  # fails before work
    trained = run_dir.load_run(workdir, config, step)
    config, model, variables = trained.config, trained.model, trained.variables
    check_planning_config(
        plan_config,
        frameskip=config.data.frameskip,
        dataset=config.data.name,
        train_seed=config.seed,
    )
    mean, std = trained.action_stats
    settings = dict(plan_config.settings.get(plan_config.planner, {}))
    host_id = env or datasets.host_env_name(config.data)
    loop_kwargs = loop_settings(plan_config, settings, mean, std, config.data.frameskip)
    if host_id:
        n, size = plan_config.num_episodes, config.data.image_size
        # The run's own host environment as it collected the data (e.g. its renderer).
        own = host_id == config.data.get("env") and config.data.get("env_kwargs")
        run = host_loop(host_id, model, n, size, dict(own or {}), **loop_kwargs)
    elif plan_config.planner in baselines.POLICIES:  # same pairs, seeds and budget, no model
        env_, env_params = datasets.make_env(config.data)
        run = baselines.make_policy_loop(
            env_, env_params, plan_config.planner, budget=plan_config.budget
        )
    else:
        env_, env_params = datasets.make_env(config.data)
        run = closed_loop.make_closed_loop(env_, env_params, model, **loop_kwargs)
    try:
        results, info = run_seeds(run, variables, config, plan_config, progress=progress)
    finally:
        if host_id:
            run.batch.close()
    num_plans = -(-plan_config.budget // (plan_config.receding * config.data.frameskip))
    protocol = {
        "env": host_id or datasets.env_name(config.data),
        "offset": plan_config.offset,
        "budget": plan_config.budget,
        "horizon": plan_config.horizon,
        "receding": plan_config.receding,
        "frameskip": config.data.frameskip,
        "cost": plan_config.cost,
        "planner": plan_config.planner,
        "settings": settings,
        "num_episodes": plan_config.num_episodes,
        "seeds": eval_seeds(plan_config),
        "pairs": plan_field(plan_config, "pairs"),
        "dataset_episodes": info["dataset_episodes"],
    }
    summary = report.summarize(
        results,
        env=config.data.name,
        protocol=protocol,
        pairs=describe_pairs(config, plan_config, info["dataset_episodes"]),
        compile_s=info["compile_s"],
        wall_s=info["wall_s"],
        num_plans=num_plans,
    )
    summary["step"] = trained.step
    if host_id:  # where the wall time went: the host loop's split
        summary["host_timing"] = {**run.timings(), "wall_s": info["wall_s"]}
    report.write_json(run_dir.report_path(workdir, stem, ".json"), summary)
    first = results[0]["out"]
    report.write_gif(
        run_dir.report_path(workdir, stem, ".gif"),
        first["frames"],
        results[0]["goal_frames"],
        first["success"],
        plan_config.gif_episodes,
    )
    report.plot_outcomes(run_dir.report_path(workdir, stem, ".png"), results, summary)
    if progress:
        print(format_report([summary]), flush=True)
    return summary
