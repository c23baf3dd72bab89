"""The planning report: seeds, where start/goal pairs come from, the protocol header and
per-episode outcomes, on one tiny trained Two-Room run."""

import json

import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax.data import datasets
from lewm_jax.data.episodes import goal_pairs
from lewm_jax.planning.checks import check_planning_config
from lewm_jax.planning.evaluate import evaluate_planning
from lewm_jax.planning.pairs import pair_episodes
from lewm_jax.planning.report import format_report

PROTOCOL_KEYS = {
    "env",
    "offset",
    "budget",
    "horizon",
    "receding",
    "frameskip",
    "cost",
    "planner",
    "settings",
    "num_episodes",
    "seeds",
    "pairs",
    "dataset_episodes",
}


@pytest.fixture(scope="module")
def trained(tiny_two_room_run, tmp_path_factory):
    config, workdir, _ = tiny_two_room_run(tmp_path_factory.mktemp("plan"))
    return config, workdir


def _plan(config, **overrides):
    plan = config.planning.copy_and_resolve_references()
    plan.gif_episodes = 1
    for k, v in overrides.items():
        plan[k] = v
    return plan


def _starts(report, seed):
    return [r["start"] for r in report["episodes_detail"] if r["seed"] == seed]


def test_two_heldout_seeds_pool_and_report_the_protocol(trained):
    config, workdir = trained
    plan = _plan(config, num_seeds=2)
    report = evaluate_planning(str(workdir), plan, config=config, progress=False)
    n = plan.num_episodes
    per_seed = report["per_seed"]
    assert [s["seed"] for s in per_seed] == [42, 43] and report["episodes"] == 2 * n
    assert report["successes"] == sum(s["successes"] for s in per_seed)
    assert report["success_rate"] == report["successes"] / (2 * n)
    rates = [s["success_rate"] for s in per_seed]
    assert report["over_seeds"]["mean"] == pytest.approx(np.mean(rates))
    assert report["over_seeds"]["sd"] == pytest.approx(np.std(rates, ddof=1))
    # Each seed draws its pairs from the episodes generated with that seed.
    for seed in (42, 43):
        eps = datasets.load_episodes(config.data, seed, num_episodes=plan.dataset_episodes)
        mine = pair_episodes(config, plan, seed)
        np.testing.assert_array_equal(mine.pixels, eps.pixels)
        start, _ = goal_pairs(eps, n, offset=plan.offset, seed=seed)
        assert _starts(report, seed) == start.tolist()
    assert _starts(report, 42) != _starts(report, 43)
    assert report["pairs"] == (
        "heldout: 8 episodes generated with each evaluation seed (42-43) by policy expert; "
        "training used seed 3072"
    )

    saved = json.loads((workdir / "planning_cem.json").read_text())
    assert set(saved["protocol"]) == PROTOCOL_KEYS and saved["protocol"]["seeds"] == [42, 43]
    assert saved["protocol"]["pairs"] == "heldout" and saved["protocol"]["offset"] == 10
    detail = saved["episodes_detail"]
    assert len(detail) == 2 * n
    assert set(detail[0]) == {
        "seed",
        "episode",
        "start",
        "goal",
        "success",
        "first_success",
        "solved_at_start",
        "final_cost",
    }
    assert all(r["goal"] - r["start"] == plan.offset for r in detail)
    assert all(r["first_success"] == 0 for r in detail if r["solved_at_start"])
    assert all((r["first_success"] is None) != r["success"] for r in detail)
    at_start = sum(r["solved_at_start"] for r in detail)
    assert saved["solved_at_start"] == {"episodes": at_start, "share": at_start / (2 * n)}
    rest = [r for r in detail if not r["solved_at_start"]]
    excluding = saved["excluding_solved_at_start"]
    assert excluding["episodes"] == len(rest)
    assert excluding["successes"] == sum(r["success"] for r in rest)

    text = format_report([report])
    header = text.splitlines()[0]
    assert header.startswith("protocol: cem (") and "num_samples=16" in header
    assert "goal 10 env steps ahead, budget 10 steps" in header and "seeds 42-43" in header
    for column in ("solved at start", "success w/o solved-at-start", "over seeds (mean ± sd)"):
        assert column in text


def test_train_pairs_come_from_the_training_episodes(trained):
    config, workdir = trained
    plan = _plan(config, pairs="train")
    report = evaluate_planning(str(workdir), plan, config=config, progress=False)
    train_eps = datasets.load_episodes(config.data, config.seed)
    np.testing.assert_array_equal(pair_episodes(config, plan, 42).pixels, train_eps.pixels)
    start, goal = goal_pairs(train_eps, plan.num_episodes, offset=plan.offset, seed=42)
    assert _starts(report, 42) == start.tolist()
    assert [r["goal"] for r in report["episodes_detail"]] == goal.tolist()
    assert report["pairs"] == "train: the 12 training episodes (generated with seed 3072)"
    assert report["protocol"]["dataset_episodes"] == config.data.num_episodes
    # One seed: the fields single-seed readers (sweep, ablation, records) use are unchanged.
    assert report["episodes"] == plan.num_episodes and len(report["ci95"]) == 2
    assert report["over_seeds"] == {"seeds": 1, "mean": report["success_rate"], "sd": None}


def test_bad_inputs_fail_in_one_line_without_touching_the_report(trained):
    config, workdir = trained
    path = workdir / "planning_cem.json"
    if not path.exists():  # this test alone: no report yet
        path.write_text("{}")
    before = path.read_bytes()
    cases = {
        "num_seeds": (0, "planning.num_seeds must be >= 1, got 0"),
        "pairs": ("val", "unknown planning.pairs 'val'; expected one of ('heldout', 'train')"),
        "seed": (3071, "planning seeds 3071-3072 include the training seed 3072"),
        "pair_policy": ("walk", "planning.pair_policy 'walk': bad part 'walk'"),
    }
    for field, (value, message) in cases.items():
        plan = _plan(config, **({"num_seeds": 2} | {field: value}))
        with pytest.raises(ValueError) as err:
            evaluate_planning(str(workdir), plan, config=config, progress=False)
        assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert path.read_bytes() == before


def test_pair_policy_collects_the_heldout_episodes_whatever_the_training_data(trained):
    config, workdir = trained
    plan = _plan(config, pair_policy="random")
    data = config.data.copy_and_resolve_references()
    data.policy = "random"
    random_eps = datasets.load_episodes(data, 42, num_episodes=plan.dataset_episodes)
    np.testing.assert_array_equal(pair_episodes(config, plan, 42).actions, random_eps.actions)
    default = pair_episodes(config, _plan(config), 42)
    assert not np.array_equal(default.actions, random_eps.actions)
    report = evaluate_planning(str(workdir), plan, config=config, progress=False, tag="rnd")
    start, _ = goal_pairs(random_eps, plan.num_episodes, offset=plan.offset, seed=42)
    assert _starts(report, 42) == start.tolist()
    assert "by policy random;" in report["pairs"]
    with pytest.raises(ValueError, match="^planning.pair_policy 'random' needs planning.pairs"):
        check_planning_config(_plan(config, pairs="train", pair_policy="random"), frameskip=5)


@pytest.mark.parametrize("name", ["hdf5", "tfds"])
def test_file_datasets_have_no_heldout_pairs(name):
    plan = get_config("test").planning
    with pytest.raises(ValueError, match="set planning.pairs=train$") as err:
        check_planning_config(plan, frameskip=5, dataset=name)
    assert str(err.value).startswith(f"dataset {name!r} has no held-out episodes")
    check_planning_config(_plan(get_config("test"), pairs="train"), frameskip=5, dataset=name)


def test_random_and_expert_policies_run_on_the_planners_pairs(trained):
    config, workdir = trained
    cem = evaluate_planning(str(workdir), _plan(config, planner="cem"), progress=False)
    # A long budget: the scripted expert walks to any Two-Room goal, a random walk seldom.
    reports = {}
    for name in ("random", "expert"):
        plan = _plan(config, planner=name, budget=60)
        reports[name] = evaluate_planning(str(workdir), plan, progress=False)
        assert reports[name]["settings"] == {} and reports[name]["protocol"]["planner"] == name
        assert _starts(reports[name], 42) == _starts(cem, 42)  # the same start/goal pairs
        detail = reports[name]["episodes_detail"]
        assert [r["solved_at_start"] for r in detail] == [
            r["solved_at_start"] for r in cem["episodes_detail"]
        ]
        assert all(r["final_cost"] is None or np.isnan(r["final_cost"]) for r in detail)
    assert reports["expert"]["successes"] > reports["random"]["successes"]
    with pytest.raises(ValueError, match="policy 'random' takes no settings"):
        check_planning_config(
            _plan(config, planner="random", settings={"random": {"num_samples": 3}}),
            frameskip=config.data.frameskip,
        )


def test_a_tagged_report_leaves_the_default_one_alone(trained):
    config, workdir = trained
    plan = _plan(config, planner="random")
    default = workdir / "planning_random.json"
    default.write_text('{"kept": true}')
    evaluate_planning(str(workdir), plan, progress=False, tag="b60")
    assert json.loads(default.read_text()) == {"kept": True}
    tagged = json.loads((workdir / "planning_random_b60.json").read_text())
    assert tagged["protocol"]["planner"] == "random"
    assert (workdir / "planning_random_b60.gif").exists()
    with pytest.raises(ValueError, match=r"^report tag 'a/b' must be letters, digits"):
        evaluate_planning(str(workdir), plan, progress=False, tag="a/b")
