"""Our frames against the original's, state by state, at several frame sizes.

For Two-Room and Push-T, ``--states`` states are drawn from our environment's reset
distribution; the reference interpreter renders them through stable-worldmodel's own
pipeline (``experiments/bench/torch/frames.py``: the env at 224 px, Pillow-resized by its
``MegaWrapper``) and we render the state it reports, at each size. Prints, per env and size,
the mean and largest absolute difference (0-255), the share of values more than 8 levels
apart, and writes them as JSON (``--json``) and PNG strips (``--out``: original | ours |
difference x 4). Reacher (dm_control, no stable-worldmodel renderer of its own) is compared
by ``experiments/bench/reacher_dmc.py --sizes=224,96,64``.

  LEWM_TORCH_PYTHON=/work/ref-venv/bin/python python -m experiments.bench.frames \\
      --sizes=64,96,224 --states=200 --json=/tmp/frames.json --out=/tmp/frames
"""

import json
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from experiments.bench import reference
from lewm_jax.envs import make

FLAGS = flags.FLAGS
ENVS = reference.ORIGINAL_ENVS


def define_flags():
    """Defines the flags (only when run as a script, so that tests can import this module)."""
    flags.DEFINE_list("envs", list(ENVS), "Our env ids to compare.")
    flags.DEFINE_list("sizes", ["64", "96", "224"], "Frame sides.")
    flags.DEFINE_integer("states", 200, "States compared per env.")
    flags.DEFINE_integer("seed", 0, "Seed of the states.")
    flags.DEFINE_string("reference_python", reference.default_python(), "Reference interpreter.")
    flags.DEFINE_string("json", "", "Write the figures here.")
    flags.DEFINE_string("out", "", "Folder for PNG strips.")


def sample_states(env_id: str, n: int, seed: int) -> np.ndarray:
    """``(n, P)`` physical states from our env's reset distribution."""
    env, params = make(env_id, image_size=64)
    keys = jax.random.split(jax.random.key(seed), n)
    _, states = jax.vmap(lambda k: env.reset_env(k, params))(keys)
    return np.asarray(jax.vmap(env.physical_state)(states), np.float64)


def compare(env_id: str, sizes: list[int], n: int, seed: int, python: str) -> tuple[dict, dict]:
    """Per-size difference statistics of our frames against the original's, and strips."""
    states = sample_states(env_id, n, seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "states.npz"
        np.savez(path, state=states)
        args = ["--env", ENVS[env_id], "--states", path, "--sizes", ",".join(map(str, sizes))]
        ref = reference.run(python, "experiments.bench.torch.frames", args, npz=True)
    reported = jnp.asarray(ref["state"], jnp.float32)
    stats, strips = {}, {}
    for size in sizes:
        env, _ = make(env_id, image_size=size)
        ours = np.asarray(jax.jit(jax.vmap(env.render_physical))(reported))
        theirs = ref[f"pixels_{size}"]
        diff = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
        stats[str(size)] = {
            "mean_abs_diff": round(float(diff.mean()), 3),
            "max_abs_diff": int(diff.max()),
            "share_over_8": round(float((diff > 8).mean()), 4),
            "states": n,
        }
        rows = [
            np.concatenate([t, o, np.minimum(4 * d, 255).astype(np.uint8)], 1)
            for t, o, d in zip(theirs[:4], ours[:4], diff[:4], strict=True)
        ]
        strips[size] = np.concatenate(rows, 0)
    return stats, strips


def main(argv):
    del argv
    if not FLAGS.reference_python:
        raise SystemExit("error: set --reference_python or LEWM_TORCH_PYTHON (BENCHMARKS.md)")
    sizes = [int(s) for s in FLAGS.sizes]
    result = {}
    for env_id in FLAGS.envs:
        if env_id not in ENVS:
            raise SystemExit(
                f"error: env {env_id!r} has no stable-worldmodel renderer; expected one of "
                f"{list(ENVS)}"
            )
        result[env_id], strips = compare(
            env_id, sizes, FLAGS.states, FLAGS.seed, FLAGS.reference_python
        )
        for size, s in result[env_id].items():
            print(
                f"{env_id:11s} {size:>4s} px: mean |ours - original| {s['mean_abs_diff']:.2f}/255, "
                f"max {s['max_abs_diff']}, {100 * s['share_over_8']:.2f} % of values > 8"
            )
        if FLAGS.out:
            from PIL import Image

            Path(FLAGS.out).mkdir(parents=True, exist_ok=True)
            for size, strip in strips.items():
                Image.fromarray(strip).save(Path(FLAGS.out) / f"{env_id}_{size}.png")
    if FLAGS.json:
        Path(FLAGS.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    define_flags()
    app.run(main)
