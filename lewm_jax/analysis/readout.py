"""Supervised read-out: what a run's encoder architecture can read from its frames when it is
trained to, the ceiling for the probes of a LeWM latent of the same size and budget.

The run's encoder (its ViT and projector, as ``config.model`` builds them, at its frame
size) with one linear head on the latent is trained from scratch to regress the
environment's physical quantities (``probe.physical_targets``, standardised) from single
frames, then scored on held-out episodes with the probes' metrics and split (the same key
gives the same held-out episodes as ``probe.run_probes``). When the read-out finds a
quantity that a LeWM latent's probe does not, the frames and the encoder carry it and the
objective or the budget is what leaves it out; when neither finds it, the frames or the
encoder are at fault.

Shape letters: N frames, Q probe targets, H/W pixels.
"""

import functools

from lewm_jax._deps import require

require("lewm_jax.analysis.readout", "train", "optax", "flax")

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from lewm_jax import envs  # noqa: E402
from lewm_jax.analysis.probe import (  # noqa: E402
    encode_frames,
    physical_targets,
    probe_metrics,
    split_by_episode,
    standardize_targets,
)
from lewm_jax.data.episodes import Episodes  # noqa: E402
from lewm_jax.models.jepa import JEPA, build_model  # noqa: E402


class ReadOut(nn.Module):
    """A JEPA's encoder latent of each frame, then one linear map to Q quantities."""

    jepa: JEPA
    num_targets: int

    @nn.compact
    def __call__(self, pixels: jax.Array, *, train: bool = False) -> jax.Array:
        """Maps uint8 frames ``(N, H, W, 3)`` to ``(N, Q)``; in training the projector's
        BatchNorm normalises with the batch's statistics and updates the running ones."""
        z = self.jepa.encode(pixels[:, None], train=train)[:, 0]
        return nn.Dense(self.num_targets, name="head")(z)


def fit_readout(
    episodes: Episodes,
    env_name: str,
    *,
    model_config,
    key: jax.Array,
    steps: int = 500,
    batch: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-3,
    train_fraction: float = 0.8,
    eval_batch: int = 256,
) -> dict:
    """Trains the read-out on some episodes' frames and scores it on the others.

    Args:
        episodes: frames ``(N, H, W, 3)`` uint8 (H = W) with a physical ``state`` column.
        env_name: the environment that produced them.
        model_config: a run's ``config.model`` (its encoder and projector are used).
        key: PRNG key of the split (as :func:`~lewm_jax.analysis.probe.run_probes`'s),
            the initialisation and the batches.
        steps: AdamW steps (learning rate ``lr`` with 5 % warmup, then cosine to 0).
        batch: frames per step, drawn uniformly from the training episodes' frames.
        lr: peak learning rate.
        weight_decay: decoupled weight decay.
        train_fraction: share of episodes trained on.
        eval_batch: frames per scoring call.

    Returns:
        ``{"env", "encoder", "names", "steps", "batch", "train_episodes", "test_episodes",
        "test_frames", "final_train_loss", "readout"}``; ``"readout"`` maps each quantity to
        held-out ``{"mse", "pearson_r"}`` (MSE in training-std units).
    """
    if episodes.state is None:
        raise ValueError("episodes need a physical `state` column to read out")
    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be >= 1, got {steps} and {batch}")
    side = episodes.pixels.shape[1]
    y, names = physical_targets(env_name, episodes.state)
    k_split, k_rest = jax.random.split(key)  # k_split as run_probes splits
    k_init, k_batches = jax.random.split(k_rest)
    train, test = split_by_episode(k_split, episodes, train_fraction=train_fraction)
    test_eps = np.unique(np.searchsorted(episodes.ep_offset, test, side="right") - 1)
    ys = standardize_targets(y, train)[0].astype(np.float32)

    model = ReadOut(build_model(model_config, image_size=side), len(names))
    variables = model.init(k_init, jnp.zeros((2, side, side, 3), jnp.uint8))
    params, stats = variables["params"], variables["batch_stats"]
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, steps // 20, steps)
    tx = optax.adamw(schedule, weight_decay=weight_decay)
    opt_state = tx.init(params)

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def step(params, stats, opt_state, pixels, target):
        def loss_fn(p):
            pred, new = model.apply(
                {"params": p, "batch_stats": stats}, pixels, train=True, mutable=["batch_stats"]
            )
            return jnp.mean(jnp.square(pred - target)), new["batch_stats"]

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, loss

    rows = np.asarray(jax.random.choice(k_batches, train, (steps, batch)))
    losses = []
    for s in range(steps):
        pixels, target = episodes.pixels[rows[s]], ys[rows[s]]
        params, stats, opt_state, loss = step(params, stats, opt_state, pixels, target)
        losses.append(loss)
    # Scored as the probes score a run: its latents encoded in evaluation mode (the running
    # statistics), then the head.
    jepa = {"params": params["jepa"], "batch_stats": stats["jepa"]}
    z = encode_frames(model.jepa, jepa, episodes.pixels[test], batch=eval_batch)
    head = jax.device_get(params["head"])
    pred = z @ head["kernel"] + head["bias"]
    return {
        "env": envs.env_id(env_name),
        "encoder": model_config.encoder,
        "names": names,
        "steps": steps,
        "batch": batch,
        "train_episodes": len(episodes.ep_len) - len(test_eps),
        "test_episodes": len(test_eps),
        "test_frames": len(test),
        "final_train_loss": float(np.mean(jax.device_get(losses[-min(50, steps) :]))),
        "readout": probe_metrics(pred, ys[test], names),
    }
