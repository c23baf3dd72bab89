"""Physical probes: how much of the environment's state a frozen encoder's latents hold.

Closed-form ridge (linear) and one-hidden-layer MLP regressors map frozen latents to the
env's physical quantities (agent position, block pose, joint angles as sin/cos). They are fit
on the frames of some episodes and scored on the frames of the others, as MSE and Pearson r
per quantity. :func:`run_probes` standardises each quantity by its training-split mean and
std, so a held-out MSE of 1 is what predicting the training mean scores.

Shape letters: N samples (frames), D latent, P physical-state dim, Q probe targets, E episodes.
"""

import functools

from lewm_jax._deps import require

require("lewm_jax.analysis.probe", "train", "optax", "gymnax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from lewm_jax import envs  # noqa: E402
from lewm_jax.data.episodes import Episodes  # noqa: E402

_STD_FLOOR = 1e-6  # latent or target columns that never vary are left unscaled


def physical_targets(env_name: str, state) -> tuple[np.ndarray, list[str]]:
    """Probe targets of an environment's physical state.

    The env class (a JAX or a host environment's) names the physical-state columns
    (``probe_targets``: the leading ones, or those at ``probe_columns``) and which of them
    are angles (``angle_targets``); angles become sin/cos pairs, so wrapping at +-pi costs a
    probe nothing.

    Args:
        env_name: a registered id (``"TwoRoom-v0"``, ``"lewm/CubeOGB-v0"``) or dataset name
            (``"two_room"``).
        state: physical states ``(N, P)`` in the layout of the env's ``physical_state``.

    Returns:
        ``(y (N, Q) float32, names)`` with Q names such as ``"agent_x"``.
    """
    known = [*envs.env_ids(None), *envs.dataset_names(None)]
    if env_name not in known:
        raise ValueError(f"unknown env_name {env_name!r}; expected one of {sorted(known)}")
    env_cls = envs.env_class(env_name)
    env_id, targets = env_cls.env_id, env_cls.probe_targets
    if not targets:
        raise ValueError(f"{env_id} names no probe_targets; expected the physical columns")
    columns = env_cls.probe_columns or tuple(range(len(targets)))
    state = np.asarray(state, np.float32)
    if state.ndim != 2 or state.shape[1] <= max(columns):
        raise ValueError(
            f"{env_id} state must have shape (N, P > {max(columns)}), got {state.shape}"
        )
    names, ys = [], []
    for j, name in zip(columns, targets, strict=True):
        if name in env_cls.angle_targets:
            names += [f"{name}_sin", f"{name}_cos"]
            ys += [np.sin(state[:, j]), np.cos(state[:, j])]
        else:
            names.append(name)
            ys.append(state[:, j])
    return np.stack(ys, axis=1), names


def _check_xy(x, y, min_samples: int = 2):
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, D), got {tuple(x.shape)}")
    if y.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape (N={x.shape[0]}, P), got {tuple(y.shape)}")
    if x.shape[0] < min_samples:
        raise ValueError(f"need at least {min_samples} samples to fit a probe, got {x.shape[0]}")
    return x, y


def _moments(a):
    return a.mean(axis=0), jnp.maximum(a.std(axis=0), _STD_FLOOR)


def _check_x(params, x):
    x = jnp.asarray(x, jnp.float32)
    d = params["x_mean"].shape[0]
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"x must have shape (N, D={d}), got {tuple(x.shape)}")
    return x


@jax.jit
def _ridge_fit(x, y, l2):
    x_mean, x_std = _moments(x)
    xs = (x - x_mean) / x_std
    y_mean = y.mean(axis=0)
    n, d = xs.shape
    # Centred inputs make the bias the target mean, so only w is penalised.
    gram = xs.T @ xs / n + l2 * jnp.eye(d, dtype=xs.dtype)
    w = jnp.linalg.solve(gram, xs.T @ (y - y_mean) / n)
    return {"x_mean": x_mean, "x_std": x_std, "w": w, "b": y_mean}


def ridge_probe_fit(x, y, *, l2: float = 1e-3) -> dict:
    """Closed-form ridge regression with an unpenalised bias.

    ``x`` is standardised by its own mean/std; the weights minimise
    ``mean_n ||y_n - b - w^T xs_n||^2 + l2 ||w||^2``.

    Args:
        x: inputs ``(N, D)``, e.g. latents.
        y: targets ``(N, P)``.
        l2: ridge penalty (per sample, on standardised inputs); ``> 0`` keeps the solve stable.

    Returns:
        Params ``{"x_mean", "x_std" (D,), "w" (D, P), "b" (P,)}``.
    """
    x, y = _check_xy(x, y)
    if not l2 >= 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    return _ridge_fit(x, y, jnp.float32(l2))


def ridge_probe_predict(params: dict, x) -> jax.Array:
    """Predictions ``(N, P)`` of a ridge probe for inputs ``x`` ``(N, D)``."""
    x = _check_x(params, x)
    return (x - params["x_mean"]) / params["x_std"] @ params["w"] + params["b"]


def _mlp_apply(params, xs):
    h = jax.nn.gelu(xs @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


@functools.partial(jax.jit, static_argnames=("hidden", "steps", "batch", "lr", "weight_decay"))
def _mlp_fit(key, x, y, *, hidden, steps, lr, batch, weight_decay):
    x_mean, x_std = _moments(x)
    y_mean, y_std = _moments(y)
    xs, ys = (x - x_mean) / x_std, (y - y_mean) / y_std
    (n, d), p = xs.shape, ys.shape[1]
    k1, k2, k_data = jax.random.split(key, 3)
    init = jax.nn.initializers.lecun_normal()
    net = {"w1": init(k1, (d, hidden)), "b1": jnp.zeros(hidden)}
    net |= {"w2": init(k2, (hidden, p)), "b2": jnp.zeros(p)}
    tx = optax.adamw(optax.cosine_decay_schedule(lr, steps), weight_decay=weight_decay)

    def loss_fn(net, idx):
        return jnp.mean(jnp.square(_mlp_apply(net, xs[idx]) - ys[idx]))

    def step(carry, t):
        net, opt_state = carry
        idx = jax.random.randint(jax.random.fold_in(k_data, t), (batch,), 0, n)
        grads = jax.grad(loss_fn)(net, idx)
        updates, opt_state = tx.update(grads, opt_state, net)
        return (optax.apply_updates(net, updates), opt_state), None

    (net, _), _ = jax.lax.scan(step, (net, tx.init(net)), jnp.arange(steps))
    return {**net, "x_mean": x_mean, "x_std": x_std, "y_mean": y_mean, "y_std": y_std}


def mlp_probe_fit(
    key: jax.Array,
    x,
    y,
    *,
    hidden: int = 256,
    steps: int = 2000,
    lr: float = 3e-3,
    batch: int = 256,
    weight_decay: float = 1e-4,
) -> dict:
    """A one-hidden-layer GELU MLP probe trained with AdamW (cosine decay) on MSE.

    Inputs and targets are standardised by their own statistics; minibatches are drawn with
    replacement, one per step of a ``lax.scan``.

    Args:
        key: PRNG key for initialisation and minibatches.
        x: inputs ``(N, D)``.
        y: targets ``(N, P)``.
        hidden: hidden width.
        steps: optimizer steps.
        lr: peak learning rate.
        batch: minibatch size.
        weight_decay: decoupled weight decay.

    Returns:
        Params: the network (``w1, b1, w2, b2``) and the input/target standardisation.
    """
    x, y = _check_xy(x, y)
    for name, value in (("hidden", hidden), ("steps", steps), ("batch", batch)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return _mlp_fit(
        key, x, y, hidden=hidden, steps=steps, lr=lr, batch=batch, weight_decay=weight_decay
    )


def mlp_probe_predict(params: dict, x) -> jax.Array:
    """Predictions ``(N, P)`` of an MLP probe for inputs ``x`` ``(N, D)``."""
    x = _check_x(params, x)
    xs = (x - params["x_mean"]) / params["x_std"]
    return _mlp_apply(params, xs) * params["y_std"] + params["y_mean"]


def probe_metrics(pred, y, names) -> dict[str, dict[str, float]]:
    """Per-quantity mean squared error and Pearson correlation.

    Args:
        pred: predictions ``(N, Q)``.
        y: targets ``(N, Q)``.
        names: Q quantity names.

    Returns:
        ``{name: {"mse": float, "pearson_r": float}}``; r is NaN for a constant column.
    """
    pred, y = np.asarray(pred, np.float64), np.asarray(y, np.float64)
    if y.ndim != 2 or pred.shape != y.shape:
        raise ValueError(f"pred {pred.shape} and y {y.shape} must both have shape (N, Q)")
    if len(names) != y.shape[1]:
        raise ValueError(f"names must hold Q={y.shape[1]} names, got {len(names)}")
    if y.shape[0] < 2:
        raise ValueError(f"need at least 2 samples for metrics, got {y.shape[0]}")
    mse = np.mean(np.square(pred - y), axis=0)
    pc, yc = pred - pred.mean(axis=0), y - y.mean(axis=0)
    denom = np.sqrt(np.sum(pc**2, axis=0) * np.sum(yc**2, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, np.sum(pc * yc, axis=0) / denom, np.nan)
    return {
        n: {"mse": float(m), "pearson_r": float(c)} for n, m, c in zip(names, mse, r, strict=True)
    }


def _episode_split(key, num: int, train_fraction: float):
    if num < 2:
        raise ValueError(f"need at least 2 episodes to split, got {num}")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    order = np.asarray(jax.random.permutation(key, num))
    n_train = min(max(round(train_fraction * num), 1), num - 1)
    return np.sort(order[:n_train]), np.sort(order[n_train:])


def _frames(episodes: Episodes, eps: np.ndarray) -> np.ndarray:
    bounds = zip(episodes.ep_offset[eps], episodes.ep_len[eps], strict=True)
    return np.concatenate([np.zeros(0, np.int64), *(o + np.arange(n) for o, n in bounds)])


def split_by_episode(
    key: jax.Array, episodes: Episodes, *, train_fraction: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of a random episode-level split: no episode is in both parts.

    Args:
        key: PRNG key of the episode permutation.
        episodes: the dataset (E >= 2 episodes).
        train_fraction: share of episodes in the training part, in (0, 1); each part gets
            at least one episode.

    Returns:
        ``(train_idx, test_idx)``: sorted int64 frame indices into the flat columns.
    """
    train, test = _episode_split(key, len(episodes.ep_len), train_fraction)
    return _frames(episodes, train), _frames(episodes, test)


def encode_frames(model, variables, pixels, *, batch: int = 256) -> np.ndarray:
    """Frozen (evaluation-mode) latents of every frame.

    Frames go through one jitted encoder call per chunk of ``batch``; the last chunk is
    padded so it compiles once.

    Args:
        model: the JEPA.
        variables: its ``{"params", "batch_stats"}``.
        pixels: uint8 frames ``(N, H, W, 3)`` at the model's image size.
        batch: frames per encoder call.

    Returns:
        float32 latents ``(N, D)`` on the host.
    """
    side = model.image_size
    if pixels.ndim != 4 or tuple(pixels.shape[1:]) != (side, side, 3):
        raise ValueError(f"pixels must have shape (N, {side}, {side}, 3), got {pixels.shape}")
    if pixels.dtype != np.uint8:
        raise TypeError(f"pixels must be uint8, got dtype {pixels.dtype}")
    encode = jax.jit(lambda v, f: model.apply(v, f[:, None], method="encode")[:, 0])
    n = pixels.shape[0]
    batch = max(1, min(batch, n))
    out = []
    for start in range(0, n, batch):
        chunk = np.asarray(pixels[start : start + batch])
        pad = batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], pad, axis=0)])
        out.append(np.asarray(encode(variables, chunk))[: batch - pad])
    return np.concatenate(out).astype(np.float32)


def standardize_targets(y: np.ndarray, train: np.ndarray):
    """``(ys, mean, std)``: targets ``y (N, Q)`` in units of the ``train`` rows' mean and
    standard deviation (a column that never varies there is left unscaled)."""
    y_mean, y_std = y[train].mean(axis=0), np.maximum(y[train].std(axis=0), _STD_FLOOR)
    return (y - y_mean) / y_std, y_mean, y_std


def linear_r(report: dict) -> dict[str, float]:
    """The linear probe's Pearson r per quantity of a :func:`run_probes` report."""
    return {name: report["linear"][name]["pearson_r"] for name in report["names"]}


def run_probes(
    model,
    variables,
    episodes: Episodes,
    env_name: str,
    *,
    key: jax.Array,
    train_fraction: float = 0.8,
    l2: float = 1e-3,
    mlp_settings: dict | None = None,
    encode_batch: int = 256,
) -> dict:
    """Linear and MLP probes from frozen latents to physical quantities, on held-out episodes.

    Args:
        model: the JEPA.
        variables: its ``{"params", "batch_stats"}``.
        episodes: frames with a physical ``state (N, P)`` column.
        env_name: the environment that produced ``episodes`` (see :func:`physical_targets`).
        key: PRNG key for the split and the MLP.
        train_fraction: share of episodes the probes are fit on.
        l2: ridge penalty of the linear probe.
        mlp_settings: keyword arguments of :func:`mlp_probe_fit`.
        encode_batch: frames per encoder call.

    Returns:
        ``{"env", "names", "train_episodes", "test_episodes", "train_frames", "test_frames",
        "target_mean", "target_std", "linear", "mlp"}``; ``"linear"`` and ``"mlp"`` map each
        quantity to held-out ``{"mse", "pearson_r"}``, MSE in training-std units.
    """
    if episodes.state is None:
        raise ValueError("episodes need a physical `state` column to probe")
    y, names = physical_targets(env_name, episodes.state)
    k_split, k_mlp = jax.random.split(key)
    train_eps, test_eps = _episode_split(k_split, len(episodes.ep_len), train_fraction)
    train, test = _frames(episodes, train_eps), _frames(episodes, test_eps)
    for part, idx in (("train", train), ("held-out", test)):
        if len(idx) < 2:
            raise ValueError(f"the {part} split holds {len(idx)} frames; need at least 2")
    z = encode_frames(model, variables, episodes.pixels, batch=encode_batch)
    ys, y_mean, y_std = standardize_targets(y, train)
    ridge = ridge_probe_fit(z[train], ys[train], l2=l2)
    mlp = mlp_probe_fit(k_mlp, z[train], ys[train], **(mlp_settings or {}))
    return {
        "env": envs.env_id(env_name),
        "names": names,
        "train_episodes": len(train_eps),
        "test_episodes": len(test_eps),
        "train_frames": len(train),
        "test_frames": len(test),
        "latent_dim": int(z.shape[1]),
        "target_mean": dict(zip(names, y_mean.tolist(), strict=True)),
        "target_std": dict(zip(names, y_std.tolist(), strict=True)),
        "linear": probe_metrics(ridge_probe_predict(ridge, z[test]), ys[test], names),
        "mlp": probe_metrics(mlp_probe_predict(mlp, z[test]), ys[test], names),
    }
