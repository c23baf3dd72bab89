"""Push-T at the cpu size: lewm.py's ``cpu,env=push_t`` with a ResNet encoder and a longer
run, and the screening.

Run (the recipe of this file; result and minutes: RESULTS.md, "Push-T: a ResNet encoder"):
  python -m experiments.train --config experiments/configs/push_t.py --workdir runs/push_t
  python -m experiments.curve --workdir runs/push_t --seeds=2
Screening (every candidate at one short budget, planned over 2 seeds; probes per point with
``python -m experiments.probe --workdir runs/push_t_screen/<point>``):
  python -m experiments.sweep --config experiments/configs/push_t.py \
      --workdir runs/push_t_screen --config.total_steps=500 --config.planning.num_seeds=2
Paper size on a GPU (the paper's model, batch, schedule and 20,000 x 200-step episodes at
224 px; our scripted expert's, built once as a TFDS dataset and streamed):
  python -m data.build --env=push_t --image_size=224 --episodes=20000 --max_steps=200 \
      --seed=0 --data_dir=~/tensorflow_datasets
  python -m experiments.train --config experiments/configs/push_t.py:paper \
      --workdir runs/push_t_paper
(the official file of the paper's data instead: docs/runs.md, "Official datasets").
Args: ``size`` (``cpu`` by default; ``paper``; ``test`` for CI).
"""

import ml_collections

from experiments.configs import lewm
from experiments.configs.common import long_expert_run, paper_data, parse_arg


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Returns the Push-T config of size ``arg`` (see the module docstring)."""
    arg = parse_arg(arg, size="cpu")
    c = lewm.get_config(f"{arg.size},env=push_t")
    if arg.size == "cpu":
        # A half-width ResNet-18 on 64 px frames, latent 128, expert-only data, 1500 steps:
        # it plans at 38 % where the ViT's 4000 steps (0.7x its step time, success flat from
        # 1000 steps on) reach 25 %, and reads the agent and the angle better (RESULTS.md,
        # "Push-T: a ResNet encoder"). No ViT candidate beat the ViT base (frame size, latent
        # width, data, lambda, predictor depth: "Push-T recipe screening" and after it).
        long_expert_run(c)
        c.model.encoder = "R18w32"
        c.total_steps = 1500
    elif arg.size == "paper":
        paper_data(c, num_episodes=20000, episode_len=200)
    return c


def sweep(add, arg: str | None = None):
    """The screened candidates, one change each from the ViT base (``Mi/8``): frame size with
    the patch that keeps 64 tokens (success needs the block within 2.5 px of a 64 px frame,
    5 px of a 128 px one), the latent width (the paper: success falls below ~184), and the data
    (the expert with random actions mixed in, as the paper's noisy replays; random-action
    episodes alone and half of them, which gave Reacher its better model; half of them the
    turning policy, whose block turns in most steps, for the angle the probes miss), and the
    encoder (a ResNet-18 at half width, the paper's encoder ablation at a CPU's cost)."""
    if parse_arg(arg, size="cpu").size == "test":
        add(**{"data.image_size": 32, "model.encoder": "Mu/8"})
        add(**{"data.image_size": 64, "model.encoder": "Mu/16"})
        return
    vit = {"model.encoder": "Mi/8"}
    add(**{"data.image_size": 64, **vit})  # the base
    add(**{"data.image_size": 128, "model.encoder": "Mi/16"})
    add(**{"model.latent_dim": 192, **vit})
    add(**{"data.policy": "noisy", **vit})
    add(**{"data.policy": "random", **vit})
    add(**{"data.policy": "expert:0.5,random:0.5", **vit})
    add(**{"data.policy": "expert:0.5,turning:0.5", **vit})
    add(**{"model.encoder": "R18w32"})  # the recipe
