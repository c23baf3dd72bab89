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
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root
from experiments.bench.torch.lewm import MEAN, STD, build


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
