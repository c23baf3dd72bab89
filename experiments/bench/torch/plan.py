"""One CEM plan of the stable-worldmodel PyTorch LeWM (reference interpreter only).

The PyTorch side of ``experiments/bench/plan_speed.py --reference_python=...``; it imports
torch and stable-worldmodel, never jax. One plan is one replanning call of stable-worldmodel's
``WorldModelPolicy.get_action``, wired as the authors' ``eval.py`` wires it: ImageNet-normalise
the uint8 current and goal frames (torchvision transforms in ``_prepare_info``), then
``CEMSolver.solve``, whose first ``LeWM.get_cost`` call encodes the goal and the current frame
(cached in the info dict for later iterations) and every iteration rolls all candidates out
with ``LeWM.rollout`` and scores them with ``LeWM.criterion``. The model is randomly
initialised, in eval mode with gradients off; the solver runs under ``torch.inference_mode``.
Reported: the warm-up plan's wall time, then the median wall and process CPU time (all
threads) of ``--repeats`` plans.

  python -m experiments.bench.torch.plan --config config.json --image_size 64 \\
      --action_dim 2 --frameskip 5 --repeats 3 --out row.json
"""

import argparse
import contextlib
import importlib.util
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from experiments.bench.torch.lewm import MEAN, STD, build


def swm_planning():
    """``(CEMSolver, WorldModelPolicy, PlanConfig)`` from stable-worldmodel.

    The package ``__init__`` imports every environment (and needs OpenCV), so an empty parent
    package is registered first and only the solver and policy submodules are imported.
    """
    if "stable_worldmodel" not in sys.modules:
        init = Path(importlib.util.find_spec("stable_worldmodel").origin)
        spec = importlib.util.spec_from_file_location(
            "stable_worldmodel", init, submodule_search_locations=[str(init.parent)]
        )
        sys.modules["stable_worldmodel"] = importlib.util.module_from_spec(spec)  # not executed
    from stable_worldmodel.policy import PlanConfig, WorldModelPolicy
    from stable_worldmodel.solver.cem import CEMSolver

    return CEMSolver, WorldModelPolicy, PlanConfig


def image_transform(side: int):
    """The authors' ``eval.py`` frame transform: uint8 -> [0, 1] -> ImageNet stats -> side."""
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=MEAN.tolist(), std=STD.tolist()),
            v2.Resize(size=side),
        ]
    )


def cem_solver(solver_class, model, args, device: str):
    """stable-worldmodel's ``CEMSolver`` as the authors' eval builds it: one env per solver
    batch (``LeWM.criterion`` broadcasts the goal embedding (B, T, D) against the candidates'
    predictions (B, S, T, D), which holds for B = 1 only), initial variance 1, and
    ``args.samples`` / ``args.iterations`` / ``args.topk`` / ``args.seed``."""
    return solver_class(
        model,
        batch_size=1,
        num_samples=args.samples,
        var_scale=1.0,
        n_steps=args.iterations,
        topk=args.topk,
        device=device,
        seed=args.seed,
    )


class _OneEnv:
    """The attributes of a 1-env vector environment that ``WorldModelPolicy`` reads."""

    def __init__(self, action_dim: int):
        from gymnasium.spaces import Box

        self.num_envs = 1
        self.single_action_space = Box(-1.0, 1.0, (action_dim,), np.float32)
        self.action_space = Box(-1.0, 1.0, (1, action_dim), np.float32)


def time_reference_plan(args) -> dict:
    """Warm-up plan, then the median wall time of ``args.repeats`` timed plans."""
    CEMSolver, WorldModelPolicy, PlanConfig = swm_planning()
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    model = build(json.loads(Path(args.config).read_text()))
    model = model.to(args.device, dtype).eval().requires_grad_(False)
    n_params = sum(p.numel() for p in model.parameters())
    solver = cem_solver(CEMSolver, model, args, args.device)
    plan_config = PlanConfig(
        horizon=args.horizon,
        receding_horizon=args.horizon,
        history_len=args.history,
        action_block=args.frameskip,
    )
    transform = {"pixels": image_transform(args.image_size)}
    transform["goal"] = image_transform(args.image_size)
    env = _OneEnv(args.action_dim)
    rng = np.random.default_rng(args.seed)
    frames = (1, args.history, args.image_size, args.image_size, 3)
    info = {
        "pixels": rng.integers(0, 256, frames, dtype=np.uint8),
        "goal": rng.integers(0, 256, frames, dtype=np.uint8),
        "action": np.zeros((1, args.history, args.action_dim), np.float32),
    }

    def plan():
        # A fresh policy has an empty action buffer, so get_action replans.
        policy = WorldModelPolicy(solver=solver, config=plan_config, transform=transform)
        policy.set_env(env)
        start, cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):  # the solver prints its solve time
            action = policy.get_action(dict(info))
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        if action.shape != (1, args.action_dim) or not np.isfinite(action).all():
            raise RuntimeError(f"reference plan returned action {action!r}, expected finite")
        return seconds, cpu_seconds

    first, _ = plan()
    times, cpu_times = zip(*(plan() for _ in range(args.repeats)), strict=True)
    return {
        "impl": "stable-worldmodel (PyTorch)",
        "size": args.size,
        "params": int(n_params),
        "samples": args.samples,
        "iterations": args.iterations,
        "topk": args.topk,
        "horizon": args.horizon,
        "history": args.history,
        "action_block": args.frameskip,
        "dtype": args.dtype,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "first_s": round(first, 3),
        "seconds": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "median_cpu_s": round(statistics.median(cpu_times), 3),
        "repeats": args.repeats,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="reference-format config.json")
    p.add_argument("--size", default="", help="label of the model size for the table")
    p.add_argument("--image_size", type=int, required=True)
    p.add_argument("--action_dim", type=int, required=True, help="raw env action dimension A")
    p.add_argument(
        "--frameskip", type=int, default=5, help="action block (env steps per plan step)"
    )
    p.add_argument("--history", type=int, default=1, help="context frames at planning time")
    p.add_argument("--horizon", type=int, default=5, help="plan horizon in action blocks")
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--topk", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3, help="timed plans after the warm-up")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", default="", help="write the row as JSON here (else stdout)")
    args = p.parse_args()
    if args.repeats < 1 or not 2 <= args.topk <= args.samples:
        raise SystemExit(
            f"error: repeats {args.repeats} / topk {args.topk}: need >= 1 / in [2, samples]"
        )
    if not 1 <= args.history <= args.horizon:
        raise SystemExit(f"error: history {args.history}: need 1 <= history <= horizon")
    torch.set_num_threads(args.threads)
    text = json.dumps(time_reference_plan(args))
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
