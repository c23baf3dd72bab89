"""LeWorldModel training config.

Sizes (the ``:arg`` after the file name; ``size=...`` or a bare word):
  paper  the paper's model and hyperparameters (ViT-tiny/14 at 224 px, batch 128, bf16).
  cpu    a small model on 64 px frames that trains Two-Room in minutes on a laptop CPU
         (450 steps); the harder environments' cpu recipes are their own files, which
         override this one: push_t.py, reacher.py, cube.py.
  ablation  the cpu model with half the batch, 150 steps and a 100 x 10 CEM, so that the
         9 runs of experiments/ablation.py finish in about 30 minutes on 2 CPU cores.
  test   a tiny model for unit tests.
Other args: ``env=<dataset name>`` (``two_room`` by default, ``moving_dot`` for ``test``;
any registered environment's dataset such as ``push_t`` or ``reacher``, which planning is
evaluated in, ``hdf5`` with ``--config.data.path=...``, or a registered host environment's
name such as ``cube`` or ``reacher_dmc``: a file of its episodes (``data.path``), planned in
its simulator, e.g. ``lewm/CubeOGB-v0``), ``lam=<sigreg weight>``.

Run:
  python -m experiments.train --config experiments/configs/lewm.py:cpu --workdir runs/lewm_cpu
  python -m experiments.train --config experiments/configs/lewm.py:paper \
      --workdir runs/lewm_paper --config.optim.lr=1e-4
  python -m experiments.ablation --config experiments/configs/lewm.py:ablation \
      --workdir runs/ablation
"""

import ml_collections

from experiments.configs.common import parse_arg

SIZES = ("paper", "cpu", "ablation", "test")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Returns the config for ``arg`` (see the module docstring)."""
    from lewm_jax import envs
    from lewm_jax.data.datasets import dataset_names

    arg = parse_arg(arg, size="cpu", env="", lam=0.09)
    if arg.size not in SIZES:
        raise ValueError(f"unknown size {arg.size!r}; expected one of {SIZES}")
    env = arg.env or ("moving_dot" if arg.size == "test" else "two_room")
    # Read from the registries now, so an environment registered after import is accepted.
    # A host environment's dataset is an official-layout HDF5 file (data.path) of episodes
    # collected in it, and planning runs in that simulator.
    datasets, plannable = dataset_names(), envs.dataset_names()
    host = {s.dataset: s for s in envs.specs("host")}
    if env not in datasets and env not in host:
        raise ValueError(f"unknown env {env!r}; expected one of {(*datasets, *host)}")
    c = ml_collections.ConfigDict()
    c.seed = 3072  # every random draw derives from it: init, data split/order, dropout, SIGReg
    c.batch_size = 128  # global batch of clips, split over all devices
    c.num_epochs = 10  # passes over the training clips (ignored when total_steps > 0)
    c.total_steps = 0  # optimizer steps; 0 = num_epochs * steps_per_epoch
    c.log_every = 50  # steps between host syncs writing metrics.jsonl and the progress bar
    c.eval_every = 1000  # steps between validation passes
    c.eval_batches = 8  # validation batches per pass
    c.checkpoint_every = 1000  # steps between checkpoints
    c.keep_checkpoints = 3  # most recent checkpoints kept in workdir
    # also keep for good the checkpoints at multiples of this step (0 = none): the points of
    # a learning curve (python -m experiments.curve)
    c.keep_checkpoints_every = 0
    c.async_checkpoints = True  # write checkpoints in the background
    c.init_from = ""  # workdir whose latest checkpoint initialises params when starting fresh

    c.data = ml_collections.ConfigDict()
    c.data.name = env  # dataset name (lewm_jax.data.datasets.dataset_names())
    c.data.path = ""  # hdf5: the official .h5 file; tfds: the data_dir of data.build
    c.data.env = ""  # environment to plan in; "" = the one that made data.name
    c.data.env_kwargs = ml_collections.ConfigDict()  # constructor kwargs of a host data.env
    c.data.image_size = 224  # frame side the model sees, pixels
    c.data.action_dim = 2  # raw action dimension A of the environment
    c.data.frameskip = 5  # env steps per frame and actions per action block
    c.data.num_frames = 4  # frames per training clip
    c.data.train_fraction = 0.9  # random 90/10 split of clips
    c.data.num_episodes = 2000  # procedurally generated datasets only: episodes
    c.data.episode_len = 100  # procedurally generated datasets only: steps per episode
    # generated datasets only: the collecting policy or mix, e.g. "expert:0.7,random:0.3"
    # (lewm_jax.data.policies), and how often "noisy" replaces the expert's action
    c.data.policy = "expert"
    c.data.noisy_prob = 0.3
    c.data.num_workers = 0  # grain loader processes (0: threads; files read faster with 2-4)
    c.data.prefetch = 2  # batches read ahead of the train step (per worker)
    # hdf5 files whose frames (at image_size) take at most this many GB are read into memory
    # once instead of streamed (0: every file streamed). Off by default: on a 64 px Cube file
    # it removed the loader's waits but not a second of the run (BENCHMARKS.md, "Training
    # loop on a collected file"); it pays where reading, not the step, is the bottleneck.
    c.data.in_memory_gb = 0.0

    c.model = ml_collections.ConfigDict()
    c.model.encoder = "Ti/14"  # ViT "<size>/<patch>", or a ResNet "R18" / "R18w<width>"
    c.model.latent_dim = 192  # D, latent and predictor width
    c.model.proj_hidden = 2048  # hidden width of projector and predictor head
    c.model.history = 3  # predictor context frames
    c.model.pred_depth = 6  # predictor blocks
    c.model.pred_heads = 16  # predictor attention heads
    c.model.pred_head_dim = 64  # width per predictor head
    c.model.pred_mlp_dim = 2048  # predictor MLP hidden width
    c.model.dropout = 0.1  # predictor dropout
    c.model.action_mlp_scale = 4  # action encoder hidden = this * latent_dim
    c.model.action_smoothed_dim = 10  # action encoder's k=1 conv width (the original's, any env)
    c.model.dtype = "bfloat16"  # compute dtype: "float32" or "bfloat16" (params stay float32)

    c.loss = ml_collections.ConfigDict()
    c.loss.regularizer = "sigreg"  # anti-collapse term: sigreg, none, vicreg, pldm, infonce
    c.loss.sigreg_weight = arg.lam  # lambda (0.09 in the released code, 0.1 in the paper text)
    c.loss.num_proj = 1024  # SIGReg random projections, fresh every step
    c.loss.knots = 17  # SIGReg integration knots on [0, 3]
    c.loss.ema_target = False  # BYOL-style: targets from EMA encoder params, no gradient
    c.loss.ema_decay = 0.99  # EMA decay per step of the target params (BYOL: 0.996 for long runs)
    c.loss.vicreg = ml_collections.ConfigDict()  # weights relative to the prediction MSE
    c.loss.vicreg.var_weight = 1.0  # variance hinge (VICReg's 25:25:1, invariance = prediction)
    c.loss.vicreg.cov_weight = 0.04  # off-diagonal covariance
    c.loss.vicreg.gamma = 1.0  # target per-dimension standard deviation
    c.loss.pldm = ml_collections.ConfigDict()  # PLDM Wall (Two-Room) weights, no IDM head
    c.loss.pldm.var_weight = 2.2  # batch variance hinge
    c.loss.pldm.cov_weight = 13.0  # batch covariance, normalised by D (D - 1)
    c.loss.pldm.time_sim_weight = 0.5  # consecutive-latent smoothness
    c.loss.pldm.time_var_weight = 0.19  # per-clip variance hinge over time
    c.loss.pldm.time_cov_weight = 0.0  # per-clip covariance over time
    c.loss.pldm.gamma = 1.0  # target standard deviation of both hinges
    c.loss.infonce = ml_collections.ConfigDict()  # predicted vs encoded next latent
    c.loss.infonce.weight = 1.0  # InfoNCE weight
    c.loss.infonce.temperature = 0.1  # softmax temperature on cosine similarities

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 5e-5  # peak AdamW learning rate
    c.optim.weight_decay = 1e-3  # decoupled weight decay
    c.optim.b1 = 0.9  # Adam beta1
    c.optim.b2 = 0.999  # Adam beta2
    c.optim.eps = 1e-8  # Adam epsilon
    c.optim.grad_clip = 1.0  # global-norm gradient clipping (0 = off)
    c.optim.warmup_fraction = 0.01  # linear warmup share of all steps, then cosine to 0

    c.planning = ml_collections.ConfigDict()
    c.planning.enabled = env in plannable  # evaluate planning after training
    c.planning.planner = "cem"  # "cem", "icem", "gradient" or "mppi"
    c.planning.cost = "terminal"  # "terminal" (the paper's) or "all_steps"
    c.planning.num_episodes = 50  # closed-loop evaluation episodes
    c.planning.seed = 42  # eval seed: held-out episodes, starts, planner noise
    c.planning.num_seeds = 1  # eval seeds seed, seed + 1, ...; num_episodes each, pooled
    # start/goal pairs: "heldout" (episodes generated with the eval seed, never trained on) or
    # "train" (the training episodes; the only choice for hdf5/tfds, split over clips)
    c.planning.pairs = "heldout"
    # policy of the held-out episodes ("" = data.policy): the protocol draws pairs from the
    # dataset, so an evaluation follows the data unless told otherwise
    c.planning.pair_policy = ""
    c.planning.dataset_episodes = 200  # episodes that starts and goals come from
    c.planning.offset = 25  # goal = the dataset frame this many env steps after the start
    c.planning.budget = 50  # env steps per episode
    c.planning.horizon = 5  # planned action blocks
    c.planning.receding = 5  # blocks executed before replanning
    c.planning.gif_episodes = 4  # episodes shown in the GIF
    c.planning.settings = ml_collections.ConfigDict()  # keyword settings of each planner
    c.planning.settings.cem = dict(num_samples=300, num_iters=30, num_elites=30)
    c.planning.settings.gradient = dict(num_samples=100, num_steps=30, lr=0.1)
    c.planning.settings.mppi = dict(num_samples=300, num_iters=30, num_elites=30, temperature=0.5)
    c.planning.settings.icem = dict(
        num_samples=100,
        num_iters=30,
        num_elites=10,
        noise_beta=2.0,
        elite_fraction=0.3,
        momentum=0.1,
    )

    if arg.size in ("cpu", "ablation"):
        c.batch_size = 64
        c.total_steps = 450
        c.log_every, c.eval_every, c.checkpoint_every = 10, 100, 100
        c.data.image_size = 64
        c.data.num_episodes, c.data.episode_len = 300, 100
        c.model.update(
            encoder="Mi/8",
            latent_dim=128,
            proj_hidden=512,
            pred_depth=3,
            pred_heads=4,
            pred_head_dim=32,
            pred_mlp_dim=512,
            dtype="float32",
        )
        c.optim.lr = 1e-3
        c.optim.warmup_fraction = 0.05
    if env in host:
        # Frames from a collected file (python -m data.collect_host), planned in the host
        # simulator from the file's own episodes (a file has no held-out episodes to make).
        c.data.name, c.data.env, c.data.action_dim = "hdf5", host[env].env_id, host[env].action_dim
        c.planning.enabled, c.planning.pairs = True, "train"
    if arg.size == "ablation":
        c.batch_size, c.total_steps = 32, 150
        c.log_every, c.eval_every, c.checkpoint_every, c.eval_batches = 5, 50, 50, 4
        c.planning.settings.cem = dict(num_samples=100, num_iters=10, num_elites=10)
    elif arg.size == "test":
        c.batch_size = 16
        c.total_steps = 6
        c.log_every, c.eval_every, c.checkpoint_every, c.eval_batches = 2, 3, 3, 2
        c.data.image_size = 32
        c.data.num_episodes, c.data.episode_len = 12, 40
        c.model.update(
            encoder="Mu/8",
            latent_dim=32,
            proj_hidden=64,
            pred_depth=2,
            pred_heads=2,
            pred_head_dim=16,
            pred_mlp_dim=64,
            dtype="float32",
        )
        c.loss.num_proj = 64
        c.optim.lr = 1e-3
        c.planning.update(num_episodes=4, dataset_episodes=8, offset=10, budget=10, horizon=2)
        c.planning.receding = 2
        c.planning.settings.cem = dict(num_samples=16, num_iters=3, num_elites=4)
        c.planning.settings.gradient = dict(num_samples=8, num_steps=3, lr=0.1)
        c.planning.settings.mppi = dict(num_samples=16, num_iters=3, num_elites=4, temperature=0.5)
        c.planning.settings.icem = dict(num_samples=16, num_iters=3, num_elites=4)
    c.lock()
    return c


def sweep(add, arg: str | None = None):
    """The paper's sensitivity study: SIGReg weight lambda x seed (``add(**overrides)`` per
    point, dotted keys). ``test``: 2 points for CI. Run with experiments/sweep.py."""
    size = parse_arg(arg, size="cpu", env="", lam=0.09).size
    if size == "test":
        for lam in (0.09, 0.5):
            add(**{"loss.sigreg_weight": lam})
        return
    for lam in (0.0, 0.01, 0.09, 0.5, 2.0):
        for seed in (3072, 3073, 3074):
            add(**{"loss.sigreg_weight": lam, "seed": seed})
