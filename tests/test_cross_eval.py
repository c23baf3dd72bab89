"""Cross-evaluation: a model trained here, exported, loaded into stable-worldmodel's LeWM and
planned by the original's own loop (World + WorldModelPolicy + CEMSolver) in the original's
Two-Room, on our evaluation's start/goal pairs. Needs the reference interpreter
(``LEWM_TORCH_PYTHON``, BENCHMARKS.md), like the parity tests; skipped without it."""

import math
import os

import pytest

from experiments.bench import cross_eval
from experiments.configs.lewm import get_config
from lewm_jax.planning.evaluate import evaluate_planning
from lewm_jax.run import train_and_evaluate

TORCH_PYTHON = os.environ.get("LEWM_TORCH_PYTHON")


@pytest.mark.skipif(
    not TORCH_PYTHON,
    reason="set LEWM_TORCH_PYTHON to a python with torch and stable-worldmodel "
    "(BENCHMARKS.md, 'Reference interpreter')",
)
def test_the_original_loop_plans_our_model_as_we_do(tmp_path):
    config = get_config("test,env=two_room")
    config.total_steps = 2
    workdir = tmp_path / "run"
    train_and_evaluate(config, str(workdir))
    plan = config.planning.copy_and_resolve_references()
    plan.num_episodes, plan.dataset_episodes = 24, 24
    evaluate_planning(str(workdir), plan, config=config, progress=False)
    result = cross_eval.compare(workdir, "planning_cem.json", TORCH_PYTHON)
    (seed,) = result["seeds"]
    n, ours, theirs = seed["episodes"], seed["ours"], seed["original_loop"]
    assert n == 24 and 0 <= seed["same_outcome"] <= n
    # Same model, frames, pairs and protocol: the two success rates differ by no more than
    # two binomial samples of the same rate would (99 %).
    p = (ours + theirs) / (2 * n)
    bound = 2.58 * math.sqrt(max(2 * p * (1 - p) / n, 1e-12)) + 1 / n
    assert abs(ours - theirs) / n <= bound, seed
