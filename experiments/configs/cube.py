"""OGBench Cube at the cpu size: lewm.py's ``cpu,env=cube`` (a file of oracle episodes,
planned in the host simulator ``lewm/CubeOGB-v0``) with its longer run.

Run (result and minutes: RESULTS.md, "OGBench Cube at the cpu size"):
  python -m data.collect_host --env=lewm/CubeOGB-v0 --episodes=300 --max_steps=100 \
      --num_envs=2 --asynchronous --env_kwargs='{"fast_render": true}' \
      --out=runs/cube/cube_single_64.h5
  python -m experiments.train --config experiments/configs/cube.py \
      --config.data.path=runs/cube/cube_single_64.h5 --workdir runs/cube/cpu
Paper size on a GPU (the paper's model, batch and schedule on 10,000 x 200-step oracle
episodes at 224 px, as many as the paper's; the file is written round by round):
  python -m data.collect_host --env=lewm/CubeOGB-v0 --episodes=10000 --max_steps=200 \
      --image_size=224 --num_envs=16 --asynchronous --env_kwargs='{"fast_render": true}' \
      --out=runs/cube/cube_single_224.h5
  python -m experiments.train --config experiments/configs/cube.py:paper \
      --config.data.path=runs/cube/cube_single_224.h5 --workdir runs/cube_paper
Args: ``size`` (``cpu`` by default; ``paper``; ``test`` for CI).
"""

import ml_collections

from experiments.configs import lewm
from experiments.configs.common import parse_arg


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Returns the Cube config of size ``arg`` (see the module docstring)."""
    arg = parse_arg(arg, size="cpu")
    c = lewm.get_config(f"{arg.size},env=cube")
    # Planned with the renderer the data was collected with: ~2.4x the frames/s on a CPU.
    with c.unlocked():
        c.data.env_kwargs.fast_render = True
    if arg.size == "cpu":
        # 300 x 100-step oracle episodes at 64 px (26 min to collect with 2 simulators on 2
        # cores); 1500 steps are 4 passes over their clips.
        c.total_steps = 1500
    return c
