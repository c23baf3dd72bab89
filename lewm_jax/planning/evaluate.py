"""Planning evaluation of a trained run: load a workdir, run closed-loop MPC, report.

Writes ``planning_<planner>.json`` (the protocol, success rate with a 95 % Wilson
interval pooled over every seed's episodes, per-seed rates, episodes solved at the start,
per-episode outcomes, planning time), ``planning_<planner>.gif`` (a few episodes of the
first seed: observation beside goal) and ``planning_<planner>.png`` (success over time)
into the workdir, only once every seed has been evaluated.
The planning section's checks are :mod:`lewm_jax.planning.checks`, the pairs'
source :mod:`lewm_jax.planning.pairs`. Shape letters: E episodes, P physical state, H/W pixels.
"""

import time

import jax
import numpy as np

from lewm_jax.data import datasets
from lewm_jax.data.episodes import goal_pairs
from lewm_jax.envs import is_host_env
from lewm_jax.envs.episodes import POLICIES
from lewm_jax.planning import baselines, closed_loop, report
from lewm_jax.planning.checks import check_planning_config, eval_seeds, plan_field, report_stem
from lewm_jax.planning.pairs import describe_pairs, pair_episodes
from lewm_jax.planning.report import format_report
from lewm_jax.training import run_dir


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
        start, goal = goal_pairs(
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


def batch_loop(env_id: str, model, num_episodes: int, image_size: int, env_kwargs=None, **loop):
    """The :class:`~lewm_jax.planning.batch_loop.BatchLoop` over ``num_episodes`` episodes of
    the environment ``env_id`` at the run's frame size (``env_kwargs``: keyword arguments of
    its constructor)."""
    from lewm_jax.envs.batch import make_batch
    from lewm_jax.planning.batch_loop import BatchLoop

    batch = make_batch(env_id, num_episodes, image_size=image_size, **(env_kwargs or {}))
    try:
        return BatchLoop(batch, model, **loop)
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
        run = batch_loop(host_id, model, n, size, dict(own or {}), **loop_kwargs)
    elif plan_config.planner in POLICIES:  # same pairs, seeds and budget, no model
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
