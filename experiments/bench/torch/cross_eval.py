"""A lewm_jax model planned by the original's own evaluation loop (reference side).

Run with the reference interpreter only (torch, stable-worldmodel; never jax); the lewm_jax
side is ``experiments/bench/cross_eval.py``. The exported weights (``--weights``: state
dicts in .npz, one per transformers layout) load strictly into stable-worldmodel's LeWM
built from ``--config``. N envs of ``--env`` are built as ``swm.World`` builds them
(``gym.make`` + ``MegaWrapper``, frames Pillow-resized to ``--image_size``) and reset to
the N start states of ``--pairs`` with the env's own reset options; each goal image is the
original's frame of the goal state, rendered by the same pipeline. Then ``World``'s rollout
loop (``mode="wait"``: an env stops when it terminates on success) drives
``WorldModelPolicy`` + ``CEMSolver`` for ``--budget`` steps, wired as the authors'
``eval.py``: ImageNet-normalised frames, actions z-scored with the training run's
statistics (``process``), plans of ``--horizon`` blocks of ``--frameskip`` actions,
``--receding`` blocks executed between plans. Writes per-episode success as JSON.

  python -m experiments.bench.torch.cross_eval --config config.json --weights w.npz \\
      --pairs pairs.npz --env swm/TwoRoom-v1 --image_size 64 --action_dim 2 --out r.json
"""

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import numpy as np
import torch

from experiments.bench.torch.envs import reset_options
from experiments.bench.torch.frames import render_states
from experiments.bench.torch.lewm import build
from experiments.bench.torch.plan import cem_solver, image_transform, swm_planning


class ActionScaler:
    """The ``process["action"]`` of the authors' eval: z-scores actions with fixed statistics."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)

    def transform(self, x):
        return (np.asarray(x, np.float32) - self.mean) / self.std

    def inverse_transform(self, x):
        return np.asarray(x, np.float32) * self.std + self.mean


def cross_evaluate(args) -> dict:
    """Per-episode successes of the exported model in the original's loop."""
    with contextlib.redirect_stdout(io.StringIO()):
        import stable_worldmodel as swm  # the whole package: it registers the swm/ envs
    CEMSolver, WorldModelPolicy, PlanConfig = swm_planning()

    torch.manual_seed(args.seed)
    model = build(json.loads(Path(args.config).read_text()))
    # One export per transformers layout; load the one this interpreter's ViT has, strictly.
    keys = set(model.state_dict())
    for path in args.weights:
        with np.load(path) as f:
            if set(f.files) == keys:
                model.load_state_dict({k: torch.from_numpy(f[k]) for k in f.files}, strict=True)
                break
    else:
        raise SystemExit(f"error: none of {args.weights} has this model's state dict keys")
    model = model.eval().requires_grad_(False)
    pairs = np.load(args.pairs)
    starts, goals = pairs["start"], pairs["goal"]
    n, size = len(starts), args.image_size
    goal = render_states(args.env, goals, [size])[f"pixels_{size}"][:, None]  # history 1

    world = swm.World(args.env, num_envs=n, image_shape=(size, size))
    options = [reset_options(args.env, s, g) for s, g in zip(starts, goals, strict=True)]
    world.reset(seed=args.seed, options=options)
    solver = cem_solver(CEMSolver, model, args, "cpu")
    config = PlanConfig(
        horizon=args.horizon,
        receding_horizon=args.receding,
        history_len=1,
        action_block=args.frameskip,
    )
    transform = {"pixels": image_transform(size), "goal": image_transform(size)}
    scaler = ActionScaler(args.action_mean, args.action_std)
    policy = WorldModelPolicy(
        solver=solver, config=config, process={"action": scaler}, transform=transform
    )
    world.set_policy(policy)
    world.infos["goal"] = goal.copy()
    success = np.zeros(n, bool)
    first = np.full(n, -1)
    steps = [0]

    def on_step(w):
        w.infos["goal"] = goal.copy()  # the step's infos come from the envs, without it
        steps[0] += 1
        done = np.asarray(w.terminateds, bool)
        first[done & ~success] = steps[0]
        success[:] |= done

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the solver prints every solve time
        world._run(max_steps=args.budget, mode="wait", on_step=on_step)
    world.close()
    return {
        "impl": "stable-worldmodel 0.1.1 World + WorldModelPolicy + CEMSolver",
        "env": args.env,
        "episodes": n,
        "success": success.tolist(),
        "successes": int(success.sum()),
        "first_success_step": first.tolist(),
        "wall_s": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="reference-format config.json")
    p.add_argument(
        "--weights", required=True, nargs="+", help="exported state dicts (.npz), any layout"
    )
    p.add_argument("--pairs", required=True, help=".npz with start (N, P) and goal (N, P)")
    p.add_argument("--env", default="swm/TwoRoom-v1")
    p.add_argument("--image_size", type=int, required=True)
    p.add_argument("--action_mean", type=float, nargs="+", required=True)
    p.add_argument("--action_std", type=float, nargs="+", required=True)
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--horizon", type=int, default=5)
    p.add_argument("--receding", type=int, default=5)
    p.add_argument("--frameskip", type=int, default=5)
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--topk", type=int, default=30)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    p.add_argument("--out", required=True, help="write the result here (JSON)")
    args = p.parse_args()
    if len(args.action_mean) != len(args.action_std):
        raise SystemExit(
            f"error: {len(args.action_mean)} action means but {len(args.action_std)} stds"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    Path(args.out).write_text(json.dumps(cross_evaluate(args)))


if __name__ == "__main__":
    main()
