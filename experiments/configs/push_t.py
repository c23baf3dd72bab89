"""Push-T at the cpu size: lewm.py's ``cpu,env=push_t`` with a longer run, and the screening.

Run (the recipe of this file; result and minutes: RESULTS.md, "Push-T recipe screening"):
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
        # 64 px frames, latent 128 and expert-only data: no screened candidate did better
        # at 500 steps (RESULTS.md, "Push-T recipe screening"), nor half turning data at
        # 4000 ("Push-T: data that turns the block, 4000 steps").
        long_expert_run(c)
    elif arg.size == "paper":
        paper_data(c, num_episodes=20000, episode_len=200)
    return c


def sweep(add, arg: str | None = None):
    """The screened candidates, one change each from the base: frame size with the patch
    that keeps 64 tokens (success needs the block within 2.5 px of a 64 px frame, 5 px of a
    128 px one), the latent width (the paper: success falls below ~184), and the data
    (the expert with random actions mixed in, as the paper's noisy replays; random-action
    episodes alone and half of them, which gave Reacher its better model; half of them the
    turning policy, whose block turns in most steps, for the angle the probes miss), and the
    encoder (a ResNet-18 at half width, the paper's encoder ablation at a CPU's cost)."""
    if parse_arg(arg, size="cpu").size == "test":
        add(**{"data.image_size": 32, "model.encoder": "Mu/8"})
        add(**{"data.image_size": 64, "model.encoder": "Mu/16"})
        return
    add(**{"data.image_size": 64, "model.encoder": "Mi/8"})  # the base
    add(**{"data.image_size": 128, "model.encoder": "Mi/16"})
    add(**{"model.latent_dim": 192})
    add(**{"data.policy": "noisy"})
    add(**{"data.policy": "random"})
    add(**{"data.policy": "expert:0.5,random:0.5"})
    add(**{"data.policy": "expert:0.5,turning:0.5"})
    add(**{"model.encoder": "R18w32"})
