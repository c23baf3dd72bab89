"""Frames/s of stable-worldmodel's ``swm/TwoRoom-v1`` and ``swm/PushT-v1`` (reference side).

Run with the reference interpreter only: it imports torch, gymnasium and stable-worldmodel
(plus its ``env`` extra for Push-T: pygame, pymunk, shapely, opencv-python-headless; and
imageio, which the package's ``__init__`` imports), never jax or lewm_jax.
``experiments/bench/env_speed.py --reference_python=...`` runs it and compares.

Every frame is a rendered pixel observation resized to ``--sizes`` the way the reference
pipeline does it (``swm.World(..., image_shape=(S, S))``: PIL bilinear in ``MegaWrapper``).
Natively, TwoRoom draws 224 px frames with torch and Push-T draws a 512 px pygame canvas that
``cv2.resize`` shrinks to its ``resolution`` (default 224, as ``World`` leaves it). Actions are
uniform in [-1, 1]^2. Frames = env steps x B. Torch runs one intra-op thread by default
(``--torch_threads``): TwoRoom's per-frame tensors are small, and more threads only add
synchronisation (on a busy 2-core machine, torch's default of 2 rendered 100x slower). Modes:

- ``single``: one bare ``gym.make`` env: ``step`` + ``render`` + resize (B = 1 only).
- ``world``: ``swm.World(...).envs``, the ``EnvPool`` that ``World.collect``/``evaluate``
  drive: B wrapped envs stepped in turn in this process, done envs reset by mask.
- ``sync`` / ``async``: gymnasium ``SyncVectorEnv`` (in this process) / ``AsyncVectorEnv``
  (one worker process per env, one torch thread each) over the same wrapped envs, with
  gymnasium's auto-reset.

Output: one JSON row per line on stdout, and ``{"meta", "rows"}`` in ``--out`` if given.

  $LEWM_TORCH_PYTHON -m experiments.bench.torch.envs --sizes=64,224 \\
      --num_envs=1,8,32,64 --out=/tmp/torch_envs.json
"""

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
import warnings
from functools import partial

import numpy as np

MODES = ("single", "world", "sync", "async")
NATIVE = {
    "TwoRoom-v1": "224 px (torch)",
    "PushT-v1": "512 px pygame canvas, cv2-resized to 224",
}
MAX_EPISODE_STEPS = 100  # World's default time limit


def reset_options(env_id: str, start, goal) -> dict:
    """The env's own reset options for a start state and a goal state (both its layout)."""
    if "TwoRoom" in env_id:
        return {"state": start[:2], "target_state": goal[:2]}
    return {"state": start, "goal_state": goal}


def make_wrapped(env_id: str, image_size: int):
    """One env as ``swm.World`` builds it: ``gym.make`` + ``MegaWrapper`` (pixels in info)."""
    import gymnasium as gym
    import torch
    from stable_worldmodel.wrapper import MegaWrapper

    if multiprocessing.parent_process() is not None:
        # An async worker: B processes already share the cores.
        torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    env = gym.make(env_id, render_mode="rgb_array", max_episode_steps=MAX_EPISODE_STEPS)
    return MegaWrapper(env, image_shape=(image_size, image_size))


def _single(env_id, image_size, num_envs):
    import gymnasium as gym
    from PIL import Image

    env = gym.make(env_id, render_mode="rgb_array", max_episode_steps=MAX_EPISODE_STEPS)
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def step():
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        frame = env.render()
        if frame.shape[0] != image_size:
            frame = Image.fromarray(frame).resize((image_size, image_size), Image.BILINEAR)
            frame = np.asarray(frame)
        if terminated or truncated:
            env.reset()

    return step, env.close


def _world(env_id, image_size, num_envs):
    import stable_worldmodel as swm

    pool = swm.World(env_id, num_envs=num_envs, image_shape=(image_size, image_size)).envs
    pool.reset(seed=0)
    rng = np.random.default_rng(0)

    def step():
        actions = rng.uniform(-1, 1, (num_envs, 2)).astype(np.float32)
        _, _, terminated, truncated, infos = pool.step(actions)
        assert infos["pixels"].shape[2:] == (image_size, image_size, 3)
        done = terminated | truncated
        if done.any():
            pool.reset(mask=done)

    return step, pool.close


def _vector(env_id, image_size, num_envs, asynchronous):
    import gymnasium as gym

    fns = [partial(make_wrapped, env_id, image_size)] * num_envs
    if asynchronous:
        # Forking a process whose torch thread pool is running deadlocks the child; a fork
        # server that has only imported the modules avoids that and the per-worker imports.
        envs = gym.vector.AsyncVectorEnv(fns, context="forkserver")
    else:
        envs = gym.vector.SyncVectorEnv(fns)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)

    def step():
        actions = rng.uniform(-1, 1, (num_envs, 2)).astype(np.float32)
        infos = envs.step(actions)[-1]
        assert infos["pixels"].shape[1:] == (image_size, image_size, 3)

    return step, envs.close


BUILDERS = {
    "single": _single,
    "world": _world,
    "sync": partial(_vector, asynchronous=False),
    "async": partial(_vector, asynchronous=True),
}


def time_mode(env_id, image_size, num_envs, mode, min_seconds, warmup=2):
    """Steps ``num_envs`` envs with random actions for ``min_seconds``; returns a row."""
    step, close = BUILDERS[mode](env_id, image_size, num_envs)
    try:
        for _ in range(warmup):
            step()
        steps, start = 0, time.perf_counter()
        while steps == 0 or time.perf_counter() - start < min_seconds:
            step()
            steps += 1
        seconds = time.perf_counter() - start
    finally:
        close()
    return dict(
        env=env_id.removeprefix("swm/"),
        image_size=image_size,
        num_envs=num_envs,
        mode=mode,
        frames_per_s=round(steps * num_envs / seconds, 1),
        seconds=round(seconds, 3),
        steps=steps,
    )


def _check_env(env_id):
    """Creates the env once, so a missing dependency is one clear line, not a traceback."""
    import gymnasium as gym

    try:
        gym.make(env_id, render_mode="rgb_array").close()
    except Exception as e:  # any failure here means the setup is incomplete
        raise SystemExit(
            f"cannot create {env_id}: {type(e).__name__}: {e} (Push-T needs pygame, pymunk, "
            "shapely and opencv-python-headless in this interpreter)"
        ) from e


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="TwoRoom-v1,PushT-v1", help="swm env ids, comma list")
    parser.add_argument("--sizes", default="64,224", help="image sizes, comma list")
    parser.add_argument("--num_envs", default="1,8,32,64", help="parallel env counts B")
    parser.add_argument("--modes", default=",".join(MODES), help=f"subset of {MODES}")
    parser.add_argument("--min_seconds", type=float, default=1.0, help="timed span per row")
    parser.add_argument(
        "--torch_threads", type=int, default=1, help="torch threads in-process (0: torch's default)"
    )
    parser.add_argument("--out", default="", help="also write {meta, rows} JSON here")
    args = parser.parse_args(argv)
    args.envs = [e if e.startswith("swm/") else f"swm/{e}" for e in args.envs.split(",")]
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.num_envs = [int(b) for b in args.num_envs.split(",")]
    args.modes = args.modes.split(",")
    bad = [m for m in args.modes if m not in MODES]
    if bad:
        parser.error(f"unknown --modes {bad}; expected a subset of {list(MODES)}")
    return args


def main(argv=None):
    """Times every (env, size, B, mode) and prints/writes the rows."""
    args = _parse(argv)
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # also silences the fork server
    warnings.filterwarnings("ignore")
    import gymnasium
    import stable_worldmodel  # noqa: F401 - registers the swm/ ids
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    multiprocessing.set_forkserver_preload(["stable_worldmodel"])
    meta = dict(
        python=platform.python_version(),
        torch=torch.__version__,
        gymnasium=gymnasium.__version__,
        torch_threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        host=platform.node(),
        native_frames={e: NATIVE.get(e.removeprefix("swm/"), "?") for e in args.envs},
    )
    for env_id in args.envs:
        _check_env(env_id)
    rows = []
    for env_id in args.envs:
        for size in args.sizes:
            for b in args.num_envs:
                for mode in args.modes:
                    if mode == "single" and b != 1:
                        continue
                    rows.append(time_mode(env_id, size, b, mode, args.min_seconds))
                    print(json.dumps(rows[-1]), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
