"""How visible a Reacher success-sized error is at each frame size.

Reacher's success needs every joint within ``success_tol`` (0.05 rad) of the goal, so the
encoder must tell such an error apart in pixels. For random arm configurations this renders
the arm and the arm with one joint moved by the tolerance and prints, per frame size and
joint, how many pixels change (summed RGB change above ``--threshold``/255 per channel) and
the summed absolute change in pixel units. Used to choose the ``cpu`` size's frames.

  python -m experiments.bench.reacher_size --json=/tmp/reacher_size.json
"""

import json

import jax
import jax.numpy as jnp
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["64", "96", "128", "224"], "Frame sides measured.")
flags.DEFINE_integer("configs", 200, "Random arm configurations.")
flags.DEFINE_float("threshold", 8.0, "Mean per-channel change (0-255) that counts a pixel.")
flags.DEFINE_integer("seed", 0, "Seed of the configurations.")
flags.DEFINE_string("json", None, "Write the figures here.")


def visibility(size: int, configs: jax.Array, tol: float, threshold: float) -> dict:
    """Per joint: mean pixels changed and mean summed |change| (pixels) for a ``tol`` error."""
    from lewm_jax.envs.reacher import Reacher

    env = Reacher(size)

    @jax.jit
    @jax.vmap
    def render(q):
        return env.render_physical(jnp.concatenate([q, jnp.zeros(2)])).astype(jnp.float32)

    base = render(configs)
    out = {}
    for j, name in enumerate(Reacher.angle_targets):
        change = jnp.abs(render(configs.at[:, j].add(tol)) - base).sum(-1)
        out[name] = {
            "changed_pixels": float((change > 3 * threshold).sum((1, 2)).mean()),
            "abs_change_pixels": float(change.sum((1, 2)).mean() / (3 * 255)),
            "frame_pixels": size * size,
        }
    return out


def main(argv):
    del argv
    from lewm_jax.envs.reacher import EnvParams, sample_configuration

    tol = EnvParams().success_tol
    keys = jax.random.split(jax.random.PRNGKey(FLAGS.seed), FLAGS.configs)
    configs = jax.vmap(sample_configuration)(keys)
    result = {"success_tol": tol, "configs": FLAGS.configs, "sizes": {}}
    print(f"{'size':>5} {'joint':>9} {'changed px':>11} {'sum |change| (px)':>18}")
    for size in map(int, FLAGS.sizes):
        row = visibility(size, configs, tol, FLAGS.threshold)
        result["sizes"][size] = row
        for name, r in row.items():
            print(
                f"{size:>5} {name:>9} {r['changed_pixels']:>11.1f} {r['abs_change_pixels']:>18.2f}"
            )
    if FLAGS.json:
        with open(FLAGS.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    app.run(main)
