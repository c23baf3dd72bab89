"""Supervised read-out of a config's encoder: can its ViT read the physical state from its
frames at all, and at this budget? (lewm_jax.analysis.readout)

  python -m experiments.readout --config experiments/configs/push_t.py --steps=500 \
      --out=runs/readout_push_t.json
  python -m experiments.readout --config experiments/configs/push_t.py \
      --config.data.image_size=224 --config.model.encoder=Mi/28 --out=runs/readout_224.json

Collects ``--episodes`` fresh expert episodes of the config's environment with the seed and
split of ``experiments.probe`` (so the held-out episodes are those every run's probes are
scored on), trains the config's encoder with a linear head from scratch on 80 % of them and
prints the held-out MSE and Pearson r per quantity beside nothing else: compare them with
a run's ``probe.json``. An existing ``--out`` is never overwritten.
"""

import json
import sys
import time
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from experiments.cli import exit_with_error
from experiments.configs.common import check_config_flags

DEFAULT_CONFIG = "experiments/configs/push_t.py"
FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", DEFAULT_CONFIG, "Config file[:arg] of the encoder and data.", lock_config=True
)
flags.DEFINE_integer("episodes", 200, "Expert episodes to collect and split 80/20.")
flags.DEFINE_integer("seed", 0, "Seed of the episodes, the split, the init and the batches.")
flags.DEFINE_integer("steps", 500, "Training steps.")
flags.DEFINE_integer("batch", 64, "Frames per step.")
flags.DEFINE_float("lr", 1e-3, "Peak AdamW learning rate.")
flags.DEFINE_string("out", None, "Report path (.json; must not exist).")
flags.DEFINE_string(
    "probe_cache", None, "Directory keeping a host environment's probe episodes for the next call."
)
flags.mark_flag_as_required("out")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import jax

    from lewm_jax.analysis.readout import fit_readout
    from lewm_jax.data import datasets
    from lewm_jax.models.jepa import check_model_config

    logging.set_verbosity(logging.WARNING)
    out = Path(FLAGS.out)
    try:
        if out.suffix != ".json" or out.exists():
            raise ValueError(f"--out {str(out)!r}: expected a .json path that does not exist")
        config = FLAGS.config
        datasets.check_data_config(config.data)
        check_model_config(config.model, image_size=config.data.image_size)
        k_data, k_probe = jax.random.split(jax.random.key(FLAGS.seed))  # as experiments.probe
        env_name, episodes = datasets.probe_episodes(
            config.data, k_data, FLAGS.episodes, cache_dir=FLAGS.probe_cache
        )
        t0 = time.perf_counter()
        report = fit_readout(
            episodes,
            env_name,
            model_config=config.model,
            key=k_probe,
            steps=FLAGS.steps,
            batch=FLAGS.batch,
            lr=FLAGS.lr,
        )
        report.update(
            config=config.to_dict(),
            image_size=config.data.image_size,
            seed=FLAGS.seed,
            minutes=round((time.perf_counter() - t0) / 60, 2),
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    except (ValueError, TypeError, OSError) as e:
        exit_with_error(e)
    print(
        f"{report['env']} {report['encoder']} at {report['image_size']} px, {report['steps']} "
        f"steps of {report['batch']} frames ({report['minutes']} min): held-out r on "
        f"{report['test_frames']} frames of {report['test_episodes']} episodes"
    )
    print("| quantity | MSE | r |\n|---|---|---|")
    for name in report["names"]:
        r = report["readout"][name]
        print(f"| {name} | {r['mse']:.3f} | {r['pearson_r']:.3f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    check_config_flags(sys.argv, DEFAULT_CONFIG)
    app.run(main)
