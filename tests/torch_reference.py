"""Runs the PyTorch reference LeWM for the conversion parity test (torch python only).

Needs torch, transformers and stable-worldmodel (not lewm_jax or jax); tests/test_convert.py
runs it as a subprocess with the interpreter named by ``LEWM_TORCH_PYTHON``.

  python tests/torch_reference.py reference CONFIG INPUTS OUT_DIR [--seed N]
      builds the model of the reference-format CONFIG (config.json), perturbs every
      parameter and BatchNorm statistic (fixed seed; AdaLN-zero and fresh statistics would
      hide mapping errors), saves OUT_DIR/weights.npz (its state dict) and
      OUT_DIR/outputs.npz (eval-mode outputs on INPUTS).
  python tests/torch_reference.py check CONFIG INPUTS OUT_DIR --weights W.npz
      loads W.npz strictly into a fresh model and saves OUT_DIR/outputs.npz.

INPUTS (.npz): ``pixels`` uint8 (B, T, H, W, 3), optional ``pixels_big`` at another size,
``z`` float32 (B, T, D) and ``actions`` float32 (B, T, A). Outputs: ``emb`` (B, T, D),
``emb_big``, ``act_emb`` (B, T, D) and ``pred`` (B, T, D).
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
VIT_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12)}


def vit_hf(size="tiny", patch_size=16, image_size=224, pretrained=False, use_mask_token=True, **kw):
    """stable_pretraining.backbone.utils.vit_hf (used when that package is not installed)."""
    try:
        from stable_pretraining.backbone.utils import vit_hf as reference
    except ImportError:
        reference = None
    if reference is not None:
        return reference(size, patch_size, image_size, pretrained, use_mask_token, **kw)
    from transformers import ViTConfig, ViTModel

    width, depth, heads = VIT_SIZES[size]
    params = dict(hidden_size=width, num_hidden_layers=depth, num_attention_heads=heads)
    params.update(intermediate_size=4 * width, image_size=image_size, patch_size=patch_size)
    params.update(kw)
    model = ViTModel(ViTConfig(**params), add_pooling_layer=False, use_mask_token=use_mask_token)
    model.config.interpolate_pos_encoding = True
    return model


def reference_modules():
    """stable_worldmodel's ``wm/lewm/lewm.py`` and ``module.py``, loaded by path: the
    package's ``__init__`` imports every environment, which takes seconds."""
    import importlib.util

    root = Path(importlib.util.find_spec("stable_worldmodel").origin).parent / "wm" / "lewm"
    modules = []
    for name in ("lewm", "module"):
        spec = importlib.util.spec_from_file_location(f"swm_lewm_{name}", root / f"{name}.py")
        modules.append(importlib.util.module_from_spec(spec))
        spec.loader.exec_module(modules[-1])
    return modules


def build(config: dict):
    """The LeWM described by a reference ``config.json`` (what Hydra would instantiate)."""
    lewm, module = reference_modules()
    LeWM, MLP, Embedder, Predictor = lewm.LeWM, module.MLP, module.Embedder, module.Predictor

    def kwargs(section):
        return {k: v for k, v in config[section].items() if not k.startswith("_")}

    def head(section):
        kw = kwargs(section)
        assert kw.pop("norm_fn")["_target_"] == "torch.nn.BatchNorm1d"
        return MLP(**kw, norm_fn=torch.nn.BatchNorm1d)

    return LeWM(
        encoder=vit_hf(**kwargs("encoder")),
        predictor=Predictor(**kwargs("predictor")),
        action_encoder=Embedder(**kwargs("action_encoder")),
        projector=head("projector"),
        pred_proj=head("pred_proj"),
    )


def perturb(model, seed: int) -> None:
    """Moves every parameter and BatchNorm statistic off its (often trivial) init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))
            elif name.endswith("num_batches_tracked"):
                b.fill_(100)


def outputs(model, inputs) -> dict:
    """Eval-mode encode / action embedding / predict outputs as NumPy arrays."""
    model.eval()

    def encode(pixels):
        x = (pixels.astype(np.float32) / 255.0 - MEAN) / STD
        x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3)))
        return model.encode({"pixels": x})["emb"].numpy()

    with torch.no_grad():
        out = {"emb": encode(inputs["pixels"])}
        if "pixels_big" in inputs:
            out["emb_big"] = encode(inputs["pixels_big"])
        act_emb = model.action_encoder(torch.from_numpy(inputs["actions"]))
        out["act_emb"] = act_emb.numpy()
        out["pred"] = model.predict(torch.from_numpy(inputs["z"]), act_emb).numpy()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["reference", "check"])
    parser.add_argument("config")
    parser.add_argument("inputs")
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    model = build(json.loads(Path(args.config).read_text()))
    out_dir = Path(args.out_dir)
    if args.mode == "reference":
        perturb(model, args.seed)
        sd = {k: v.numpy() for k, v in model.state_dict().items()}
        np.savez(out_dir / "weights.npz", **sd)
    else:
        with np.load(args.weights) as f:
            model.load_state_dict({k: torch.from_numpy(f[k]) for k in f.files}, strict=True)
    with np.load(args.inputs) as f:
        inputs = {k: f[k] for k in f.files}
    np.savez(out_dir / "outputs.npz", **outputs(model, inputs))


if __name__ == "__main__":
    main()
