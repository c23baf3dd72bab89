"""Train-step speed of the stable-worldmodel PyTorch LeWM (reference interpreter only).

The PyTorch side of ``experiments/bench/train_speed.py --reference_python=...``; it imports
torch and stable-worldmodel, never jax. One step is what the authors' training does per
batch: normalise uint8 frames, encode all T frames (BatchNorm in training mode), embed the
action blocks, predict frames 1..T-1 from 0..T-2 (teacher forcing, dropout on), loss =
MSE + lam * SIGReg (stable-worldmodel's ``wm.loss.SIGReg``), backward, grad-norm clip 1.0,
AdamW (lr 5e-5, weight decay 1e-3). bfloat16 runs the forward pass under ``torch.autocast``
as the authors' bf16 training does.

  python -m experiments.bench.torch.train --config config.json --image_size 64 \\
      --action_dim 10 --batch_size 64 --steps 5 --out rows.json
"""

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

from experiments.bench.torch.lewm import MEAN, STD, build, swm_module


def time_reference_step(args) -> dict:
    """Warm-up step, then the median of ``args.steps`` timed steps of the reference model."""
    torch.manual_seed(0)
    config = json.loads(open(args.config).read())
    model = build(config).train()
    sigreg = swm_module("wm/loss.py").SIGReg()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=1e-3)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rng = np.random.default_rng(0)
    b, t, s = args.batch_size, args.num_frames, args.image_size
    pixels = torch.from_numpy(rng.integers(0, 256, (b, t, 3, s, s), dtype=np.uint8))
    actions = torch.from_numpy(rng.standard_normal((b, t, args.action_dim)).astype(np.float32))
    mean = torch.from_numpy(MEAN).view(1, 1, 3, 1, 1)
    std = torch.from_numpy(STD).view(1, 1, 3, 1, 1)
    h = args.history
    autocast = torch.autocast("cpu" if args.device == "cpu" else "cuda", dtype=torch.bfloat16)
    model.to(args.device)
    sigreg.to(args.device)
    pixels, actions = pixels.to(args.device), actions.to(args.device)
    mean, std = mean.to(args.device), std.to(args.device)

    def step():
        with autocast if args.dtype == "bfloat16" else torch.autocast(args.device, enabled=False):
            x = (pixels.float() / 255.0 - mean) / std
            info = model.encode({"pixels": x, "action": actions})
            z, act = info["emb"], info["act_emb"]
            pred = model.predict(z[:, :h], act[:, :h])
            pred_loss = (pred.float() - z[:, 1 : h + 1].float()).square().mean()
            loss = pred_loss + args.lam * sigreg(z.float().transpose(0, 1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    def timed():
        t0 = time.perf_counter()
        loss = step()
        float(loss.detach())  # waits for the device
        if args.device != "cpu":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    first = timed()
    times = [timed() for _ in range(args.steps)]
    sec = statistics.median(times)
    return {
        "impl": "stable-worldmodel (PyTorch)",
        "params": int(n_params),
        "batch": b,
        "dtype": args.dtype,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "first_step_s": round(first, 3),
        "s_per_step": round(sec, 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "clips_per_s": round(b / sec, 2),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="reference-format config.json")
    p.add_argument("--image_size", type=int, required=True)
    p.add_argument("--action_dim", type=int, required=True, help="frameskip x action_dim")
    p.add_argument("--num_frames", type=int, default=4)
    p.add_argument("--history", type=int, default=3)
    p.add_argument("--batch_size", type=int, required=True)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--lam", type=float, default=0.09)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", default="", help="write the row as JSON here (else stdout)")
    args = p.parse_args()
    if args.batch_size < 2 or args.steps < 1:
        raise SystemExit(f"error: batch_size {args.batch_size} / steps {args.steps}: need >= 2 / 1")
    torch.set_num_threads(args.threads)
    row = time_reference_step(args)
    text = json.dumps(row)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
