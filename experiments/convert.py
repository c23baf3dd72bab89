"""Converts the official PyTorch LeWM release to a lewm_jax workdir, and back.

  python -m experiments.convert --weights=weights.pt --official_config=config.json \
      --workdir=runs/pusht_official
  python -m experiments.plan --workdir=runs/pusht_official --planner=cem
  python -m experiments.convert --export --workdir=runs/pusht_official --out=export/weights.pt

Import writes ``config.json`` (``--config`` with the architecture of the official
``config.json``) and a step-0 checkpoint whose params/batch_stats are the converted
weights, so ``experiments.plan`` (and fine-tuning via ``--config.init_from``) can load it.
Export writes the reference state dict (``.pt`` needs the torch extra, BENCHMARKS.md; ``.npz``
does not) and a reference ``config.json`` beside it. Neither overwrites existing files.
"""

import json
from pathlib import Path

from absl import app, flags, logging

from experiments.cli import exit_with_error

FLAGS = flags.FLAGS
flags.DEFINE_string("weights", None, "Official state dict: weights.pt (or .npz).")
flags.DEFINE_string("official_config", None, "The official config.json beside the weights.")
flags.DEFINE_string("workdir", None, "lewm_jax run directory to write (import) or read (export).")
flags.DEFINE_string(
    "config",
    "experiments/configs/lewm.py:paper,env=push_t",
    "Base config: file[:arg], or a stored config.json.",
)
flags.DEFINE_integer("frameskip", 5, "Env steps per action block of the official model.")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "model.dtype of the workdir.")
flags.DEFINE_bool("export", False, "Export --workdir to --out instead of importing.")
flags.DEFINE_string("out", None, "Export: the state dict to write (.pt or .npz).")
flags.DEFINE_enum("hf_layout", "legacy", ["legacy", "v5"], "Export: HF ViT key names.")
flags.DEFINE_bool("traceback", False, "Show full tracebacks instead of one-line errors.")
flags.mark_flag_as_required("workdir")


def check_fresh(workdir) -> None:
    """Raises FileExistsError when ``workdir`` already holds a config or checkpoints."""
    from lewm_jax.training import run_dir

    workdir = Path(workdir)
    ckpts = workdir / run_dir.CHECKPOINT_DIR
    if (workdir / run_dir.CONFIG_FILE).exists() or (ckpts.exists() and any(ckpts.iterdir())):
        raise FileExistsError(
            f"workdir {str(workdir)!r} already holds a run; refusing to overwrite"
        )


def write_workdir(workdir, config, variables) -> None:
    """Writes ``config.json`` and a step-0 TrainState checkpoint holding ``variables``."""
    import jax
    import jax.numpy as jnp

    from lewm_jax.training import run_dir
    from lewm_jax.training.optim import make_optimizer
    from lewm_jax.training.state import TrainState

    check_fresh(workdir)
    workdir = run_dir.check_workdir(workdir)
    params = jax.tree.map(jnp.asarray, variables["params"])
    # The optimizer's state layout does not depend on the step count (see
    # run_dir.load_run), so one step is enough to match the restore target.
    tx = make_optimizer(config.optim, 1)
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=jax.tree.map(jnp.asarray, variables["batch_stats"]),
        opt_state=tx.init(params),
    )
    ckpt = run_dir.checkpointer(workdir, keep=config.keep_checkpoints, async_save=False)
    ckpt.save(0, state)
    ckpt.close()
    run_dir.write_config(workdir, config.to_json(indent=2))


def import_official(weights, official_config, workdir, base_config, *, frameskip, dtype):
    """Converts an official release into ``workdir``; returns a one-line summary."""
    import jax

    from lewm_jax import convert

    check_fresh(workdir)  # before the slow part
    overrides, variables = convert.load_official(weights, official_config, frameskip=frameskip)
    config = base_config.copy_and_resolve_references()
    for section, values in overrides.items():
        config[section].update(values)
    config.model.dtype = dtype
    write_workdir(workdir, config, variables)
    n = sum(x.size for x in jax.tree.leaves(variables["params"]))
    return f"converted {weights} ({n:,} params, encoder {config.model.encoder}) -> {workdir}"


def export(workdir, out, *, hf_layout):
    """Writes the reference state dict of ``workdir``'s latest checkpoint; returns a summary."""
    from lewm_jax import convert
    from lewm_jax.training.run_dir import load_run

    out = Path(out)
    if out.suffix != ".npz":
        convert.import_torch()  # fail before reading the checkpoint
    official = out.parent / "config.json"
    for path in (out, official):
        if path.exists():
            raise FileExistsError(f"{str(path)!r} exists; refusing to overwrite")
    run = load_run(workdir)
    config, variables = run.config, run.variables
    sd = convert.variables_to_torch_state_dict(variables, config.model, hf_layout=hf_layout)
    out.parent.mkdir(parents=True, exist_ok=True)
    convert.save_state_dict(sd, out)
    a = config.data.frameskip * config.data.action_dim
    cfg = convert.official_config_from_model(
        config.model, image_size=config.data.image_size, action_input_dim=a
    )
    official.write_text(json.dumps(cfg, indent=2))
    return f"exported {workdir} ({len(sd)} tensors, {hf_layout} HF layout) -> {out}, {official}"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from experiments.configs.common import load_config

    logging.set_verbosity(logging.WARNING)
    try:
        if FLAGS.export:
            if not FLAGS.out:
                raise ValueError("--export needs --out=<weights.pt or .npz>")
            print(export(FLAGS.workdir, FLAGS.out, hf_layout=FLAGS.hf_layout))
        else:
            if not (FLAGS.weights and FLAGS.official_config):
                raise ValueError("import needs --weights and --official_config")
            base = load_config(FLAGS.config)
            line = import_official(
                FLAGS.weights,
                FLAGS.official_config,
                FLAGS.workdir,
                base,
                frameskip=FLAGS.frameskip,
                dtype=FLAGS.dtype,
            )
            print(line)
    except (ValueError, TypeError, OSError, ImportError, json.JSONDecodeError) as e:
        if FLAGS.traceback:
            raise
        exit_with_error(e)


if __name__ == "__main__":
    app.run(main)
