"""Trains the stable-worldmodel PyTorch LeWM on a fixed batch plan (reference interpreter only).

The PyTorch side of ``experiments/bench/yardstick.py``; it imports torch and
stable-worldmodel, never jax. The model is built from ``--config`` (stable-worldmodel's
modules), the clips are read from ``--data`` (an official-layout HDF5 file) with
stable-worldmodel's own ``HDF5Dataset``, and the run follows ``--plan`` (.npz written by the
lewm_jax side): the clip of every row of every step (episode and first step), the
validation clips, the action statistics and the optimizer settings. One step is the
authors' training step (as ``experiments/bench/torch/train.py`` times it): ImageNet-normalised
frames, encode all T frames (BatchNorm in training mode), predict frames 1..T-1 from
0..T-2 (teacher forcing, dropout on), loss = MSE + lam * SIGReg, backward, global-norm
clip, AdamW with linear warmup then cosine decay to 0 (the schedule of
``lewm_jax.training.optim``). Writes the state dict (``--weights``, .npz) and the loss
curve (``--out``, JSON).

  python -m experiments.bench.torch.fit --config config.json --data data.h5 \\
      --plan plan.npz --weights w.npz --out curve.json
"""

import argparse
import json
import math
import time

import numpy as np
import torch

from experiments.bench.torch.lewm import MEAN, STD, build, swm_module


def lr_factor(step: int, total: int, warmup: int) -> float:
    """optax.warmup_cosine_decay_schedule(0, 1, warmup, total, 0) at update ``step``."""
    if step < warmup:
        return step / warmup
    frac = min(step - warmup, total - warmup) / max(total - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * frac))


class Clips:
    """Clips of the plan read with stable-worldmodel's HDF5 reader, ready for the model."""

    def __init__(self, path: str, num_frames: int, frameskip: int, mean, std):
        from stable_worldmodel.data.formats.hdf5 import HDF5Dataset

        self.ds = HDF5Dataset(
            path=path, frameskip=frameskip, num_steps=num_frames, keys_to_load=["pixels", "action"]
        )
        self.span = num_frames * frameskip
        self.mean = torch.as_tensor(mean, dtype=torch.float32)
        self.std = torch.as_tensor(std, dtype=torch.float32)
        self.pix_mean = torch.from_numpy(MEAN).view(1, 1, 3, 1, 1)
        self.pix_std = torch.from_numpy(STD).view(1, 1, 3, 1, 1)

    def batch(self, episodes: np.ndarray, starts: np.ndarray):
        """Pixels ``(B, T, 3, H, W)`` normalised and action blocks ``(B, T, k*A)`` z-scored."""
        items = [
            self.ds._load_slice(int(e), int(s), int(s) + self.span)
            for e, s in zip(episodes, starts, strict=True)
        ]
        pixels = torch.stack([x["pixels"] for x in items]).float() / 255.0
        actions = torch.stack([x["action"] for x in items]).float()
        actions = torch.nan_to_num((actions - self.mean) / self.std, nan=0.0)
        b, t = pixels.shape[:2]
        x = (pixels - self.pix_mean) / self.pix_std
        return x, actions.reshape(b, t, -1)


def losses(model, sigreg, x, actions, history: int, lam: float):
    """Prediction MSE, SIGReg and their weighted sum (the authors' objective)."""
    info = model.encode({"pixels": x, "action": actions})
    z, act = info["emb"], info["act_emb"]
    pred = model.predict(z[:, :history], act[:, :history])
    pred_loss = (pred - z[:, 1 : history + 1]).square().mean()
    reg = sigreg(z.transpose(0, 1))
    return pred_loss, reg, pred_loss + lam * reg


def validate(model, sigreg, clips, val_eps, val_starts, args) -> float:
    """Validation prediction loss as lewm_jax computes it: no dropout, BatchNorm normalising
    with each batch's own statistics, running averages left untouched."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [
        (m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
        for m in norms
    ]
    model.eval()
    for m in norms:
        m.train()
    total = []
    with torch.no_grad():
        for i in range(0, len(val_eps), args.batch_size):
            rows = slice(i, i + args.batch_size)
            x, a = clips.batch(val_eps[rows], val_starts[rows])
            total.append(float(losses(model, sigreg, x, a, args.history, args.lam)[0]))
    for m, (mu, var, n) in zip(norms, saved, strict=True):
        m.running_mean.copy_(mu), m.running_var.copy_(var), m.num_batches_tracked.copy_(n)
    model.train()
    return float(np.mean(total))


def fit(args) -> dict:
    """Trains along the plan; returns the curve and timing."""
    plan = dict(np.load(args.plan))
    opt_cfg = json.loads(str(plan["optim"]))
    torch.manual_seed(int(plan["seed"]))
    model = build(json.loads(open(args.config).read())).train()
    sigreg = swm_module("wm/loss.py").SIGReg()
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=opt_cfg["lr"],
        betas=(opt_cfg["b1"], opt_cfg["b2"]),
        eps=opt_cfg["eps"],
        weight_decay=opt_cfg["weight_decay"],
    )
    eps, starts = plan["episodes"], plan["starts"]  # (steps, B)
    total = len(eps)
    warmup = max(1, int(round(opt_cfg["warmup_fraction"] * total)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warmup))
    stats = plan["action_mean"], plan["action_std"]
    clips = Clips(args.data, args.num_frames, args.frameskip, *stats)
    args.batch_size = eps.shape[1]
    curve, times = [], []
    for step in range(total):
        t0 = time.perf_counter()
        x, a = clips.batch(eps[step], starts[step])
        pred_loss, reg, loss = losses(model, sigreg, x, a, args.history, args.lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if opt_cfg["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), opt_cfg["grad_clip"])
        opt.step()
        sched.step()
        row = {"step": step + 1, "pred_loss": float(pred_loss), "sigreg": float(reg)}
        times.append(time.perf_counter() - t0)
        if (step + 1) % args.eval_every == 0 or step + 1 == total:
            row["val_pred_loss"] = validate(
                model, sigreg, clips, plan["val_episodes"], plan["val_starts"], args
            )
            print(json.dumps(row), flush=True)
        curve.append(row)
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    np.savez(args.weights, **state)
    steady = times[len(times) // 10 :] or times
    return {
        "impl": "stable-worldmodel (PyTorch)",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "steps": total,
        "s_per_step": round(float(np.median(steady)), 4),
        "train_seconds": round(float(np.sum(times)), 1),
        "curve": curve,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="reference-format config.json")
    p.add_argument("--data", required=True, help="official-layout HDF5 file")
    p.add_argument("--plan", required=True, help="batch plan (.npz) of the lewm_jax side")
    p.add_argument("--weights", required=True, help="state dict to write (.npz)")
    p.add_argument("--num_frames", type=int, default=4)
    p.add_argument("--frameskip", type=int, default=5)
    p.add_argument("--history", type=int, default=3)
    p.add_argument("--lam", type=float, default=0.09)
    p.add_argument("--eval_every", type=int, default=100)
    p.add_argument("--out", required=True, help="curve and timing (JSON)")
    args = p.parse_args()
    result = fit(args)
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
