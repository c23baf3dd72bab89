"""The ``config.planning`` section: its fields' defaults, its check and its report names.

Everything here is a function of the section alone (and of the run's frameskip, dataset
and seed), so that a run config is checked before any training or planning starts.
"""

import re

from lewm_jax.data import datasets
from lewm_jax.data.policies import parse_mix
from lewm_jax.planning.closed_loop import check_protocol
from lewm_jax.planning.cost import check_cost
from lewm_jax.planning.registry import check_planner

# Where start/goal pairs come from: episodes generated with the evaluation seed (never
# trained on) or the run's training episodes.
PAIRS = ("heldout", "train")
# Planning fields newer than some stored runs: a config.json without them means these.
DEFAULTS = {"num_seeds": 1, "pairs": "heldout", "pair_policy": ""}


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
    where start/goal pairs come from (and with which policy).

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
    check_protocol(
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
    pair_policy = plan_field(plan_config, "pair_policy")
    if pair_policy:
        if pairs != "heldout":
            raise ValueError(
                f"planning.pair_policy {pair_policy!r} needs planning.pairs=heldout (training "
                f"pairs are the training data's), got pairs={pairs!r}"
            )
        parse_mix(pair_policy, "planning.pair_policy")
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
