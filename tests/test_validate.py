"""The one config check: every section is checked before training writes anything."""

import pytest

from experiments.configs.lewm import get_config
from lewm_jax.run import train_and_evaluate, validate_config


def _with(**overrides):
    config = get_config("test").copy_and_resolve_references()
    with config.unlocked():
        for dotted, value in overrides.items():
            *path, name = dotted.split(".")
            node = config
            for p in path:
                node = node[p]
            node[name] = value
    return config


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"planning.planner": "beam"}, r"unknown planner 'beam'; expected one of \['cem'"),
        ({"planning.cost": "max"}, r"unknown cost 'max'; expected one of \['all_steps'"),
        ({"planning.settings.cem": {"num_samples": 8, "iters": 3}}, r"no settings \['iters'\]"),
        ({"planning.settings.beam": {}}, "unknown planner 'beam'"),
        ({"planning.horizon": 5}, "exceeds the budget"),
        ({"planning.num_episodes": 0}, "planning.num_episodes must be >= 1"),
        ({"planning.enabled": True}, "has no environment"),
        ({"planning.num_seeds": 0}, "planning.num_seeds must be >= 1, got 0"),
        ({"planning.pairs": "val"}, r"unknown planning.pairs 'val'; expected one of \('heldout'"),
        (
            {"planning.enabled": True, "planning.seed": 3071, "planning.num_seeds": 2},
            "planning seeds 3071-3072 include the training seed 3072",
        ),
        (
            {
                "data.name": "hdf5",
                "data.path": "missing.h5",
                "data.env": "TwoRoom-v0",
                "planning.enabled": True,
            },
            r"dataset 'hdf5' has no held-out episodes .*; set planning.pairs=train",
        ),
        ({"model.encoder": "Mu/7"}, "multiple of the patch size 7"),
        ({"model.dropout": 1.0}, r"model.dropout must be in \[0, 1\)"),
        ({"optim.lr": 0.0}, "optim.lr must be > 0"),
        ({"loss.regularizer": "nope"}, "loss.regularizer 'nope'"),
        ({"data.num_frames": 2}, "data.num_frames 2 must be >= model.history"),
        ({"keep_checkpoints": 0}, "keep_checkpoints must be >= 1"),
        ({"keep_checkpoints_every": 4}, "keep_checkpoints_every 4 must be 0 or a multiple of"),
    ],
)
def test_bad_sections_fail_before_training_writes_anything(tmp_path, overrides, message):
    config = _with(**overrides)
    with pytest.raises(ValueError, match=message) as err:
        validate_config(config)
    assert "\n" not in str(err.value)
    workdir = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        train_and_evaluate(config, str(workdir))
    assert not workdir.exists()


def test_shipped_configs_are_valid():
    for arg in ("paper", "cpu", "ablation", "test", "cpu,env=push_t", "cpu,env=reacher"):
        validate_config(get_config(arg))


@pytest.mark.parametrize("name", ["push_t", "reacher"])  # cube.py needs a data file
@pytest.mark.parametrize("size", ["cpu", "test"])
def test_recipe_configs_and_every_screened_point_are_valid(name, size):
    from experiments.configs.common import load_module
    from lewm_jax.analysis.sweep import configs, grid

    module = load_module(f"experiments/configs/{name}.py")
    base = module.get_config(size)
    validate_config(base)
    configs(base, grid(module.sweep, size))  # derives and validates every point


@pytest.mark.parametrize("name", ["push_t", "reacher"])
def test_paper_recipes_read_the_tfds_dataset_their_docstring_builds(name):
    """The paper size trains on a streamed 224 px TFDS build; the data.build command in the
    config file's docstring builds exactly the dataset the config reads."""
    from experiments.configs.common import load_module
    from lewm_jax.data.datasets import tfds_config
    from lewm_jax.data.tfds import build_command

    module = load_module(f"experiments/configs/{name}.py")
    config = module.get_config("paper")
    validate_config(config)
    assert (config.data.name, config.data.image_size, config.planning.pairs) == (
        "tfds",
        224,
        "train",
    )
    command = build_command(tfds_config(config.data), "~/tensorflow_datasets")
    assert command in " ".join(module.__doc__.replace("\\\n", " ").split())


def test_the_paper_cube_recipe_trains_on_the_224_px_file_its_docstring_collects():
    from experiments.configs.common import load_module

    module = load_module("experiments/configs/cube.py")
    config = module.get_config("paper")
    with config.unlocked():
        config.data.path = "runs/cube/cube_single_224.h5"
    validate_config(config)
    assert (config.data.name, config.data.image_size, config.batch_size) == ("hdf5", 224, 128)
    doc = " ".join(module.__doc__.replace("\\\n", " ").split())
    assert f"--image_size={config.data.image_size}" in doc and config.data.env in doc
