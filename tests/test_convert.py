"""Conversion to and from the PyTorch reference state dict (lewm_jax.convert).

The round-trip, naming and error tests are pure NumPy/JAX. The parity test runs the
PyTorch reference in another interpreter: set ``LEWM_TORCH_PYTHON`` to a python with
torch, transformers and stable-worldmodel (install: BENCHMARKS.md, "Reference interpreter").
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax import convert
from lewm_jax.models import build_model
from lewm_jax.training.run_dir import load_run

ROOT = Path(__file__).resolve().parents[1]
TORCH_PYTHON = os.environ.get("LEWM_TORCH_PYTHON")
needs_torch = pytest.mark.skipif(
    not TORCH_PYTHON,
    reason="set LEWM_TORCH_PYTHON to a python with torch, transformers and stable-worldmodel "
    "(install: BENCHMARKS.md) to compare with the PyTorch reference",
)
# The official Push-T release's config.json (Hydra targets, as written by the reference).
PUSHT_OFFICIAL = {
    "_target_": "stable_worldmodel.wm.lewm.LeWM",
    "encoder": {
        "_target_": "stable_pretraining.backbone.utils.vit_hf",
        "size": "tiny",
        "patch_size": 14,
        "image_size": 224,
        "pretrained": False,
        "use_mask_token": False,
    },
    "predictor": {
        "_target_": "stable_worldmodel.wm.lewm.module.Predictor",
        "num_frames": 3,
        "input_dim": 192,
        "hidden_dim": 192,
        "output_dim": 192,
        "depth": 6,
        "heads": 16,
        "mlp_dim": 2048,
        "dim_head": 64,
        "dropout": 0.1,
        "emb_dropout": 0.0,
    },
    "action_encoder": {
        "_target_": "stable_worldmodel.wm.lewm.module.Embedder",
        "input_dim": 10,
        "emb_dim": 192,
    },
    **{
        head: {
            "_target_": "stable_worldmodel.wm.lewm.module.MLP",
            "input_dim": 192,
            "output_dim": 192,
            "hidden_dim": 2048,
            "norm_fn": {"_target_": "torch.nn.BatchNorm1d", "_partial_": True},
        }
        for head in ("projector", "pred_proj")
    },
}


def _config(size):
    config = get_config(size).copy_and_resolve_references()
    config.model.dtype = "float32"
    return config


def _random_variables(config, seed=0):
    """Variables of the config's model filled with distinct random values."""
    model = build_model(config.model, image_size=config.data.image_size)
    d, t = config.data, config.model.history + 1
    pixels = jax.ShapeDtypeStruct((1, t, d.image_size, d.image_size, 3), np.uint8)
    actions = jax.ShapeDtypeStruct((1, t, d.frameskip * d.action_dim), np.float32)
    abstract = jax.eval_shape(lambda p, a: model.init(jax.random.key(0), p, a), pixels, actions)
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: rng.standard_normal(s.shape).astype(np.float32), abstract)


def _assert_same_tree(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def paper():
    config = _config("paper")
    return config, _random_variables(config)


def test_paper_state_dict_has_reference_names_counts_and_round_trips(paper):
    config, variables = paper
    sd = convert.variables_to_torch_state_dict(variables, config.model)
    assert len(sd) == 303
    stats = [k for k in sd if "running_" in k or "num_batches" in k]
    assert sum(sd[k].size for k in sd if k not in stats) == 18_034_478
    assert sum(x.size for x in jax.tree.leaves(variables["params"])) == 18_034_478
    assert sum(sd[k].size for k in stats) == 8_194
    assert sd["encoder.embeddings.patch_embeddings.projection.weight"].shape == (192, 3, 14, 14)
    assert sd["encoder.encoder.layer.11.attention.attention.value.bias"].shape == (192,)
    assert sd["predictor.transformer.layers.5.attn.to_qkv.weight"].shape == (3072, 192)
    assert sd["action_encoder.patch_embed.weight"].shape == (10, 10, 1)
    assert sd["pred_proj.net.1.num_batches_tracked"].dtype == np.int64
    # Query/key/value are the three output blocks of our fused kernel.
    qkv = variables["params"]["vit"]["block3"]["attn"]["qkv"]["kernel"]
    key = sd["encoder.encoder.layer.3.attention.attention.key.weight"]
    np.testing.assert_array_equal(key, qkv[:, 192:384].T)
    _assert_same_tree(convert.torch_state_dict_to_variables(sd, config.model), variables)


def test_transformers_v5_layout_round_trips_to_the_same_variables(paper):
    config, variables = paper
    sd = convert.variables_to_torch_state_dict(variables, config.model, hf_layout="v5")
    assert len(sd) == 303
    assert sd["encoder.layers.0.attention.q_proj.weight"].shape == (192, 192)
    assert sd["encoder.layers.0.attention.o_proj.bias"].shape == (192,)
    assert sd["encoder.layers.11.mlp.fc2.weight"].shape == (192, 768)
    assert not any(k.startswith("encoder.encoder.") for k in sd)
    _assert_same_tree(convert.torch_state_dict_to_variables(sd, config.model), variables)


@pytest.fixture(scope="module")
def small():
    config = _config("test")
    variables = _random_variables(config)
    return config, variables, convert.variables_to_torch_state_dict(variables, config.model)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda sd: sd.update(extra=np.zeros(3)), "unexpected key 'extra'"),
        (lambda sd: sd.pop("predictor.pos_embedding"), "missing key 'predictor.pos_embedding'"),
        (
            lambda sd: sd.update({"projector.net.0.weight": np.zeros((64, 31))}),
            r"'projector.net.0.weight' has shape \(64, 31\), expected \(64, 32\)",
        ),
        (
            lambda sd: sd.update({"projector.net.1.num_batches_tracked": np.zeros(2)}),
            "num_batches_tracked' has shape",
        ),
    ],
)
def test_bad_state_dicts_raise_one_line_errors(small, edit, match):
    config, _, sd = small
    sd = dict(sd)
    edit(sd)
    with pytest.raises(ValueError, match=match) as err:
        convert.torch_state_dict_to_variables(sd, config.model)
    assert "\n" not in str(err.value)


def test_mask_token_is_ignored_and_bad_variables_raise(small):
    config, variables, sd = small
    with_mask = {**sd, "encoder.embeddings.mask_token": np.zeros((1, 1, 32), np.float32)}
    _assert_same_tree(convert.torch_state_dict_to_variables(with_mask, config.model), variables)
    extra = jax.tree.map(lambda x: x, variables)
    extra["params"]["vit"]["bogus"] = np.zeros(2)
    with pytest.raises(ValueError, match="unexpected variable params/vit/bogus"):
        convert.variables_to_torch_state_dict(extra, config.model)
    wrong = jax.tree.map(lambda x: x, variables)
    wrong["params"]["predictor"]["block0"]["adaln"]["bias"] = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match=r"adaln/bias has shape \(5,\), expected \(192,\)"):
        convert.variables_to_torch_state_dict(wrong, config.model)
    with pytest.raises(ValueError, match="unknown HF layout"):
        convert.variables_to_torch_state_dict(variables, config.model, hf_layout="v4")


def test_official_pusht_config_gives_the_paper_model():
    overrides = convert.config_from_official(PUSHT_OFFICIAL)
    paper = get_config("paper")
    for key, value in overrides["model"].items():
        assert paper.model[key] == value, key
    assert overrides["data"] == dict(image_size=224, action_dim=2, frameskip=5, num_frames=4)
    back = convert.official_config_from_model(paper.model, image_size=224, action_input_dim=10)
    assert convert.config_from_official(back) == overrides


def test_a_resnet_encoder_is_refused_by_both_directions(small):
    config, variables, sd = small
    resnet = _config("test")
    resnet.model.encoder = "R18w8"
    with pytest.raises(ValueError, match="'R18w8' is a ResNet; the original has only the ViT"):
        convert.official_config_from_model(resnet.model, image_size=32, action_input_dim=10)
    with pytest.raises(ValueError, match="'R18w8' is a ResNet"):
        convert.torch_state_dict_to_variables(sd, resnet.model)


def test_a_wider_action_block_is_squeezed_to_the_originals_ten():
    """The original builds ``Embedder(input_dim=frameskip * action_dim)``, keeping
    smoothed_dim 10 for every environment: Cube's 5 x 5 block goes 25 -> 10."""
    cube = json.loads(json.dumps(PUSHT_OFFICIAL))
    cube["action_encoder"]["input_dim"] = 25
    overrides = convert.config_from_official(cube)
    assert overrides["model"]["action_smoothed_dim"] == 10
    assert overrides["data"]["action_dim"] == 5
    config = _config("test")
    config.data.action_dim = 5
    params = _random_variables(config)["params"]["action_encoder"]
    assert params["smooth"]["kernel"].shape == (25, 10)
    assert params["fc1"]["kernel"].shape[0] == 10
    back = convert.official_config_from_model(config.model, image_size=32, action_input_dim=25)
    assert back["action_encoder"]["smoothed_dim"] == 10


def test_a_run_config_from_before_the_smoothed_width_keeps_the_block_width():
    """Run directories written before ``model.action_smoothed_dim`` existed built the k=1
    conv as wide as the action block; they restore (and export) as they were built."""
    config = _config("test")
    config.data.action_dim = 5
    with config.unlocked():
        del config.model["action_smoothed_dim"]
    params = _random_variables(config)["params"]["action_encoder"]
    assert params["smooth"]["kernel"].shape == (25, 25)
    back = convert.official_config_from_model(config.model, image_size=32, action_input_dim=25)
    assert back["action_encoder"]["smoothed_dim"] == 25


@pytest.mark.parametrize(
    "section, change, match",
    [
        ("projector", {"norm_fn": None}, "LayerNorm"),
        ("predictor", {"hidden_dim": 256}, "no projections"),
        ("encoder", {"size": "huge"}, "encoder.size 'huge'"),
        ("encoder", {"hidden_act": "relu"}, "does not model: \\['hidden_act'\\]"),
        ("action_encoder", {"input_dim": 9}, "not a multiple of 5"),
        ("pred_proj", {"hidden_dim": 1024}, r"pred_proj \(in, hidden, out\)"),
    ],
)
def test_unrepresentable_official_configs_raise(section, change, match):
    cfg = json.loads(json.dumps(PUSHT_OFFICIAL))
    cfg[section].update(change)
    with pytest.raises(ValueError, match=match):
        convert.config_from_official(cfg)


def test_pt_files_without_torch_name_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ImportError, match=r"pip install -e '\.\[torch\]'"):
        convert.load_state_dict(tmp_path / "weights.pt")


def _write_release(config, sd, directory):
    d = config.data
    cfg = convert.official_config_from_model(
        config.model, image_size=d.image_size, action_input_dim=d.frameskip * d.action_dim
    )
    (directory / "config.json").write_text(json.dumps(cfg))
    convert.save_state_dict(sd, directory / "weights.npz")
    return directory / "weights.npz", directory / "config.json"


def _cli(*args):
    cmd = [sys.executable, "-m", "experiments.convert", *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_cli_import_writes_a_loadable_workdir_and_export_restores_the_state_dict(small, tmp_path):
    config, variables, sd = small
    weights, official = _write_release(config, sd, tmp_path)
    workdir = tmp_path / "run"
    args = [f"--weights={weights}", f"--official_config={official}", f"--workdir={workdir}"]
    done = _cli(*args, "--config=experiments/configs/lewm.py:test")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "converted" in done.stdout
    run = load_run(workdir, config=_config("test"))
    stored, restored = run.config, run.variables
    assert stored.model.encoder == "Mu/8"
    _assert_same_tree(restored, variables)
    again = _cli(*args)
    assert again.returncode != 0
    assert again.stderr.strip().splitlines() == [
        f"error: workdir {str(workdir)!r} already holds a run; refusing to overwrite"
    ]

    out = tmp_path / "export" / "weights.npz"
    done = _cli("--export", f"--workdir={workdir}", f"--out={out}")
    assert done.returncode == 0, done.stderr[-2000:]
    exported = convert.load_state_dict(out)
    assert exported.keys() == sd.keys()
    for k in sd:
        np.testing.assert_array_equal(exported[k], sd[k])
    official_out = json.loads((out.parent / "config.json").read_text())
    assert convert.config_from_official(official_out)["model"]["encoder"] == "Mu/8"
    again = _cli("--export", f"--workdir={workdir}", f"--out={out}")
    assert again.returncode != 0 and "refusing to overwrite" in again.stderr


def test_cli_names_the_file_that_is_not_json(small, tmp_path):
    config, _, sd = small
    weights, official = _write_release(config, sd, tmp_path)
    official.write_bytes(b"\xab\xcd not json")
    workdir = tmp_path / "run"
    done = _cli(f"--weights={weights}", f"--official_config={official}", f"--workdir={workdir}")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"official config {str(official)!r} is not a JSON file" in lines[0]
    assert not workdir.exists()


def _torch_reference(*args):
    cmd = [TORCH_PYTHON, str(ROOT / "tests" / "torch_reference.py"), *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _jax_outputs(model, variables, inputs):
    out = {"emb": model.apply(variables, inputs["pixels"], method="encode")}
    if "pixels_big" in inputs:
        out["emb_big"] = model.apply(variables, inputs["pixels_big"], method="encode")
    out["act_emb"] = model.apply(variables, inputs["actions"], method="embed_actions")
    out["pred"] = model.apply(variables, inputs["z"], out["act_emb"], method="predict")
    return {k: np.asarray(v) for k, v in out.items()}


@needs_torch
@pytest.mark.parametrize("size, action_dim", [("test", 2), ("paper", 2), ("test", 5)])
def test_parity_with_the_pytorch_reference(size, action_dim, tmp_path):
    config = _config(size)
    config.data.action_dim = action_dim  # 5: Cube's width, a block squeezed 25 -> 10
    d, m = config.data, config.model
    a = d.frameskip * d.action_dim
    (tmp_path / "config.json").write_text(
        json.dumps(
            convert.official_config_from_model(m, image_size=d.image_size, action_input_dim=a)
        )
    )
    rng = np.random.default_rng(7)
    patch = int(m.encoder.split("/")[1])
    inputs = {
        "pixels": rng.integers(0, 256, (2, 2, d.image_size, d.image_size, 3), dtype=np.uint8),
        "z": rng.standard_normal((2, m.history, m.latent_dim)).astype(np.float32),
        "actions": rng.standard_normal((2, m.history, a)).astype(np.float32),
    }
    if size == "test":  # position-table interpolation at another size (cheap only when small)
        big = d.image_size + 2 * patch
        inputs["pixels_big"] = rng.integers(0, 256, (2, 1, big, big, 3), dtype=np.uint8)
    np.savez(tmp_path / "inputs.npz", **inputs)
    _torch_reference("reference", tmp_path / "config.json", tmp_path / "inputs.npz", tmp_path)
    sd = convert.load_state_dict(tmp_path / "weights.npz")
    reference = convert.load_state_dict(tmp_path / "outputs.npz")

    variables = convert.torch_state_dict_to_variables(sd, m)
    ours = _jax_outputs(build_model(m, image_size=d.image_size), variables, inputs)
    errors = {k: float(np.abs(ours[k] - reference[k]).max()) for k in reference}
    print(f"\nparity[{size}] max abs error vs PyTorch: {errors}")
    assert max(errors.values()) <= 1e-4, errors

    # Export in the layout the installed transformers uses, load it into torch strictly.
    layout = "v5" if any(k.startswith("encoder.layers.") for k in sd) else "legacy"
    exported = convert.variables_to_torch_state_dict(
        variables, m, hf_layout=layout, num_batches_tracked=100
    )
    assert exported.keys() == sd.keys()
    np.savez(tmp_path / "exported.npz", **exported)
    (tmp_path / "check").mkdir()
    _torch_reference(
        "check",
        tmp_path / "config.json",
        tmp_path / "inputs.npz",
        tmp_path / "check",
        "--weights",
        tmp_path / "exported.npz",
    )
    again = convert.load_state_dict(tmp_path / "check" / "outputs.npz")
    for k in reference:
        np.testing.assert_array_equal(again[k], reference[k])
