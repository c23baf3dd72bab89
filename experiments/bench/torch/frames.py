"""The original's frames of given states (reference side of ``experiments/bench/frames.py``).

Run with the reference interpreter only (torch, gymnasium, stable-worldmodel; never jax).
For each state of ``--states`` (.npz with ``state (N, P)``), one ``swm.World``-style env
(``gym.make`` + ``MegaWrapper``, ``make_wrapped``) per frame size is reset to it with the
env's own ``options={"state": ...}`` and its ``pixels`` (rendered at 224 px, or 512 px shrunk
to 224 for Push-T, then Pillow-resized to the size) are saved, with the state the env reports
after the reset (Push-T runs its physics once to place the bodies):

  python -m experiments.bench.torch.frames --env swm/TwoRoom-v1 --states s.npz \\
      --sizes 64,96,224 --out frames.npz
"""

import argparse
import contextlib
import io

import numpy as np

from experiments.bench.torch.envs import make_wrapped, reset_options


def render_states(env_id: str, states: np.ndarray, sizes: list[int]) -> dict:
    """``{"pixels_<size>": (N, size, size, 3) uint8, "state": (N, P)}`` of the original."""
    out, reported = {}, None
    for size in sizes:
        with contextlib.redirect_stdout(io.StringIO()):
            env = make_wrapped(env_id, size)
        pixels, seen = [], []
        for state in states:
            # The goal does not change the frame (Push-T draws none, Two-Room a target only
            # in its goal image): the state itself serves.
            _, info = env.reset(seed=0, options=reset_options(env_id, state, state))
            pixels.append(np.asarray(info["pixels"], np.uint8))
            seen.append(np.asarray(info["state"], np.float64))
        env.close()
        out[f"pixels_{size}"] = np.stack(pixels)
        reported = np.stack(seen) if reported is None else reported
    out["state"] = reported
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", required=True, help="swm/TwoRoom-v1 or swm/PushT-v1")
    p.add_argument("--states", required=True, help=".npz with state (N, P)")
    p.add_argument("--sizes", default="64,96,224")
    p.add_argument("--out", required=True, help="write the frames here (.npz)")
    args = p.parse_args()
    states = np.load(args.states)["state"]
    sizes = [int(s) for s in args.sizes.split(",")]
    np.savez_compressed(args.out, **render_states(args.env, states, sizes))


if __name__ == "__main__":
    main()
