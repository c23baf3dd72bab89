"""Conversion between lewm_jax variables and the PyTorch LeWM state dict.

The reference (``stable_worldmodel.wm.lewm.LeWM`` with a Hugging Face ``ViTModel``
encoder) saves ``weights.pt``, a flat state dict (303 tensors for the paper size), plus a
Hydra-style ``config.json``. This module maps every tensor both ways: Linear weights are
transposed, the patch Conv goes OIHW -> HWIO, HF's separate query/key/value become our
fused ``qkv`` (concatenated along the output axis), LayerNorm ``weight`` -> ``scale`` and
BatchNorm ``running_mean/var`` -> ``batch_stats`` ``mean/var``. Two HF key layouts exist:
``"legacy"`` (transformers < 5, ``encoder.encoder.layer.N.attention.attention.query``;
the official release) and ``"v5"`` (``encoder.layers.N.attention.q_proj``). Imports
detect the layout; exports write the one asked for.

PyTorch is optional and used only to read or write ``.pt`` files (``.npz`` works
without it). Arrays here are host NumPy: state dicts map key -> array, variables are
``{"params", "batch_stats"}`` pytrees of float32 arrays.
"""

import zipfile
from pathlib import Path

from lewm_jax._deps import require

require("lewm_jax.convert", "train", "ml_collections", "flax")

import jax  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from lewm_jax.models.vit import VIT_SIZES, decode_variant  # noqa: E402
from lewm_jax.training.run_dir import read_json  # noqa: E402

TORCH_HINT = "pip install -e '.[torch]' --extra-index-url https://download.pytorch.org/whl/cpu"
# HF ViT sizes of stable_pretraining's vit_hf: (width, depth, heads); MLP is 4 x width.
HF_VIT_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12)}
# Keys the reference may hold that do not affect LeWM's outputs (vit_hf's default
# use_mask_token=True adds a mask token that encode() never uses).
IGNORED_KEYS = ("encoder.embeddings.mask_token",)
# transformers 5 renamed the ViT weights (its conversion_mapping.py), applied in order.
_V5_RENAMES = (
    ("encoder.encoder.layer.", "encoder.layers."),
    ("attention.attention.query", "attention.q_proj"),
    ("attention.attention.key", "attention.k_proj"),
    ("attention.attention.value", "attention.v_proj"),
    ("attention.output.dense", "attention.o_proj"),
    ("intermediate.dense", "mlp.fc1"),
    ("output.dense", "mlp.fc2"),
)
HF_LAYOUTS = ("legacy", "v5")
# kind -> (torch arrays -> jax array, jax array -> torch arrays).
_TRANSFORMS = {
    "id": (lambda xs: xs[0], lambda a: [a]),
    "linear": (lambda xs: xs[0].T, lambda a: [a.T]),
    "conv2d": (lambda xs: xs[0].transpose(2, 3, 1, 0), lambda a: [a.transpose(3, 2, 0, 1)]),
    "conv1d": (lambda xs: xs[0][:, :, 0].T, lambda a: [a.T[:, :, None]]),
    "qkv": (
        lambda xs: np.concatenate([x.T for x in xs], axis=1),
        lambda a: [x.T for x in np.split(a, 3, axis=1)],
    ),
    "qkv_bias": (lambda xs: np.concatenate(xs), lambda a: np.split(a, 3)),
    "counter": (None, None),  # BatchNorm num_batches_tracked: torch only
}


def _rules(model_config, layout: str) -> list[tuple[tuple[str, ...], tuple[str, ...], str]]:
    """``(torch keys, variables path, kind)`` for every tensor, in the reference's order."""
    if layout not in HF_LAYOUTS:
        raise ValueError(f"unknown HF layout {layout!r}; expected one of {HF_LAYOUTS}")
    rules = []

    def add(keys, path, kind="id", collection="params"):
        if layout == "v5":
            keys = [
                _rename(k, _V5_RENAMES) if k.startswith("encoder.encoder.") else k for k in keys
            ]
        rules.append((tuple(keys), (collection, *path), kind))

    def linear(key, path, bias=True):
        add([f"{key}.weight"], (*path, "kernel"), "linear")
        if bias:
            add([f"{key}.bias"], (*path, "bias"))

    def norm(key, path):
        add([f"{key}.weight"], (*path, "scale"))
        add([f"{key}.bias"], (*path, "bias"))

    emb = "encoder.embeddings."
    add([emb + "cls_token"], ("vit", "cls"))
    add([emb + "position_embeddings"], ("vit", "pos_embedding"))
    add([emb + "patch_embeddings.projection.weight"], ("vit", "patch_embed", "kernel"), "conv2d")
    add([emb + "patch_embeddings.projection.bias"], ("vit", "patch_embed", "bias"))
    for i in range(decode_variant(model_config.encoder)["depth"]):
        pre, path = f"encoder.encoder.layer.{i}.", ("vit", f"block{i}")
        qkv = [f"{pre}attention.attention.{n}" for n in ("query", "key", "value")]
        add([f"{k}.weight" for k in qkv], (*path, "attn", "qkv", "kernel"), "qkv")
        add([f"{k}.bias" for k in qkv], (*path, "attn", "qkv", "bias"), "qkv_bias")
        linear(pre + "attention.output.dense", (*path, "attn", "out"))
        norm(pre + "layernorm_before", (*path, "ln1"))
        norm(pre + "layernorm_after", (*path, "ln2"))
        linear(pre + "intermediate.dense", (*path, "mlp", "fc1"))
        linear(pre + "output.dense", (*path, "mlp", "fc2"))
    norm("encoder.layernorm", ("vit", "norm"))
    add(["predictor.pos_embedding"], ("predictor", "pos_embedding"))
    norm("predictor.transformer.norm", ("predictor", "norm"))
    for i in range(model_config.pred_depth):
        pre, path = f"predictor.transformer.layers.{i}.", ("predictor", f"block{i}")
        norm(pre + "attn.norm", (*path, "attn_norm"))
        # The predictor's to_qkv is already fused in chunk(3) -> "(h d)" order, as ours.
        linear(pre + "attn.to_qkv", (*path, "attn", "qkv"), bias=False)
        linear(pre + "attn.to_out.0", (*path, "attn", "out"))
        norm(pre + "mlp.net.0", (*path, "mlp_norm"))
        linear(pre + "mlp.net.1", (*path, "mlp", "fc1"))
        linear(pre + "mlp.net.4", (*path, "mlp", "fc2"))
        linear(pre + "adaLN_modulation.1", (*path, "adaln"))
    add(["action_encoder.patch_embed.weight"], ("action_encoder", "smooth", "kernel"), "conv1d")
    add(["action_encoder.patch_embed.bias"], ("action_encoder", "smooth", "bias"))
    linear("action_encoder.embed.0", ("action_encoder", "fc1"))
    linear("action_encoder.embed.2", ("action_encoder", "fc2"))
    for head in ("projector", "pred_proj"):
        linear(f"{head}.net.0", (head, "fc1"))
        norm(f"{head}.net.1", (head, "bn"))
        add([f"{head}.net.1.running_mean"], (head, "bn", "mean"), collection="batch_stats")
        add([f"{head}.net.1.running_var"], (head, "bn", "var"), collection="batch_stats")
        add([f"{head}.net.1.num_batches_tracked"], (), "counter", collection="buffers")
        linear(f"{head}.net.3", (head, "fc2"))
    return rules


def _rename(key: str, renames) -> str:
    for old, new in renames:
        key = key.replace(old, new)
    return key


def _as_config(model_config) -> ml_collections.ConfigDict:
    if isinstance(model_config, ml_collections.ConfigDict):
        return ml_collections.ConfigDict(model_config.to_dict())
    return ml_collections.ConfigDict(dict(model_config))


def _detect_layout(state_dict) -> str:
    return "v5" if any(k.startswith("encoder.layers.") for k in state_dict) else "legacy"


def _abstract_variables(model_config, image_size: int, action_input_dim: int):
    """Shapes of the variables our JEPA creates for this config (no computation)."""
    from lewm_jax.models import build_model

    config = _as_config(model_config)
    config.dtype = "float32"
    model = build_model(config, image_size=image_size)
    t = config.history + 1
    pixels = jax.ShapeDtypeStruct((1, t, image_size, image_size, 3), np.uint8)
    actions = jax.ShapeDtypeStruct((1, t, action_input_dim), np.float32)
    return jax.eval_shape(lambda p, a: model.init(jax.random.key(0), p, a), pixels, actions)


def _get(tree, path):
    for name in path:
        tree = tree[name]
    return tree


def _torch_shapes(kind: str, shape) -> list[tuple]:
    dummy = np.broadcast_to(np.float32(0), shape)  # zero strides: no memory
    return [tuple(x.shape) for x in _TRANSFORMS[kind][1](dummy)]


def torch_state_dict_to_variables(
    state_dict: dict, model_config, *, image_size=None, action_input_dim=None
) -> dict:
    """Converts a reference LeWM state dict into our ``{"params", "batch_stats"}``.

    Args:
        state_dict: key -> array (NumPy or anything ``np.asarray`` takes), either HF layout.
        model_config: ``config.model`` (or a dict with its fields) describing the model.
        image_size: native image side; default: inferred from the position table.
        action_input_dim: action-block width A; default: inferred from the state dict.

    Returns:
        Nested dicts of float32 NumPy arrays with exactly our model's structure.

    Raises:
        ValueError: one line naming the first unexpected or missing key, or a key whose
            shape does not fit the config.
    """
    model_config = _as_config(model_config)
    rules = _rules(model_config, _detect_layout(state_dict))
    wanted = [k for keys, _, _ in rules for k in keys]
    known = set(wanted) | set(IGNORED_KEYS)
    for key in state_dict:
        if key not in known:
            shape = tuple(np.shape(state_dict[key]))
            raise ValueError(f"unexpected key {key!r} {shape} in the state dict for this config")
    for key in wanted:
        if key not in state_dict:
            raise ValueError(f"missing key {key!r} in the state dict for this config")
    if image_size is None:
        cells = np.shape(state_dict["encoder.embeddings.position_embeddings"])[1] - 1
        image_size = round(cells**0.5) * decode_variant(model_config.encoder)["patch_size"]
    if action_input_dim is None:
        action_input_dim = np.shape(state_dict["action_encoder.patch_embed.weight"])[1]
    abstract = _abstract_variables(model_config, image_size, action_input_dim)
    out = {"params": {}, "batch_stats": {}}
    for keys, path, kind in rules:
        expected = [()] if kind == "counter" else _torch_shapes(kind, _get(abstract, path).shape)
        for key, want in zip(keys, expected, strict=True):
            got = tuple(np.shape(state_dict[key]))
            if got != want:
                raise ValueError(f"{key!r} has shape {got}, expected {want} for this config")
        if kind == "counter":
            continue
        arrays = [np.asarray(state_dict[k], np.float32) for k in keys]
        node = out
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = np.ascontiguousarray(_TRANSFORMS[kind][0](arrays))
    return out


def variables_to_torch_state_dict(
    variables: dict, model_config, *, hf_layout: str = "legacy", num_batches_tracked: int = 0
) -> dict:
    """Converts our ``{"params", "batch_stats"}`` into the reference's state dict.

    Args:
        variables: the model's variables (NumPy or JAX arrays).
        model_config: ``config.model`` describing the model.
        hf_layout: ``"legacy"`` (official release, transformers < 5) or ``"v5"``.
        num_batches_tracked: value of the BatchNorm counters (unused at momentum 0.1).

    Returns:
        Key -> NumPy array (float32; int64 counters) with the reference's exact names.

    Raises:
        ValueError: one line naming a variable that is missing, extra or mis-shaped.
    """
    model_config = _as_config(model_config)
    rules = _rules(model_config, hf_layout)
    paths = {path for _, path, kind in rules if kind != "counter"}
    given = {
        tuple(getattr(k, "key", k) for k in p): np.shape(x)
        for p, x in jax.tree_util.tree_leaves_with_path(
            {c: variables[c] for c in ("params", "batch_stats") if c in variables}
        )
    }
    for path in given.keys() - paths:
        raise ValueError(f"unexpected variable {'/'.join(path)} {given[path]} for this config")
    for path in paths - given.keys():
        raise ValueError(f"missing variable {'/'.join(path)} for this config")
    pos = given[("params", "vit", "pos_embedding")]
    patch = decode_variant(model_config.encoder)["patch_size"]
    image_size = round((pos[1] - 1) ** 0.5) * patch
    action_dim = given[("params", "action_encoder", "smooth", "kernel")][0]
    abstract = _abstract_variables(model_config, image_size, action_dim)
    out = {}
    for keys, path, kind in rules:
        if kind == "counter":
            out[keys[0]] = np.array(num_batches_tracked, np.int64)
            continue
        want = _get(abstract, path).shape
        if given[path] != want:
            raise ValueError(f"variable {'/'.join(path)} has shape {given[path]}, expected {want}")
        arrays = _TRANSFORMS[kind][1](np.asarray(_get(variables, path), np.float32))
        out.update({k: np.ascontiguousarray(x) for k, x in zip(keys, arrays, strict=True)})
    return out


_VIT_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
# Fields of each config.json section that lewm_jax models (anything else is refused).
_SECTIONS = {
    "encoder": "size patch_size image_size pretrained use_mask_token " + " ".join(_VIT_KEYS),
    "predictor": "num_frames depth heads mlp_dim input_dim hidden_dim output_dim dim_head "
    "dropout emb_dropout",
    "action_encoder": "input_dim smoothed_dim emb_dim mlp_scale",
    "projector": "input_dim hidden_dim output_dim norm_fn act_fn",
    "pred_proj": "input_dim hidden_dim output_dim norm_fn act_fn",
}


def _require(ok, message: str) -> None:
    if not ok:
        raise ValueError(f"official config: {message}")


def _sections(config_json) -> dict:
    _require(isinstance(config_json, dict), "the file must hold a JSON object")
    extra = sorted(set(config_json) - set(_SECTIONS) - {"_target_"})
    _require(not extra, f"unknown sections {extra}")
    for name, allowed in _SECTIONS.items():
        _require(isinstance(config_json.get(name), dict), f"missing section {name!r}")
        extra = sorted(set(config_json[name]) - set(allowed.split()) - {"_target_", "_partial_"})
        _require(not extra, f"{name} has fields lewm_jax does not model: {extra}")
    return config_json


def config_from_official(config_json: dict, *, frameskip: int = 5) -> dict:
    """Our config overrides for a reference ``config.json`` (Hydra-style, ``_target_`` keys).

    Args:
        config_json: the parsed file, with sections ``encoder``, ``predictor``,
            ``action_encoder``, ``projector`` and ``pred_proj``.
        frameskip: env steps per action block; ``action_encoder.input_dim`` is
            ``frameskip * action_dim`` and the file does not say how it splits.

    Returns:
        ``{"model": {...}, "data": {...}}``: values for those fields of our config.

    Raises:
        ValueError: one line when the file describes a model lewm_jax cannot represent.
    """
    s = _sections(config_json)
    enc, pred, act = s["encoder"], s["predictor"], s["action_encoder"]
    size = enc.get("size", "tiny")
    _require(size in HF_VIT_SIZES, f"encoder.size {size!r} not in {sorted(HF_VIT_SIZES)}")
    width, depth, heads = HF_VIT_SIZES[size]
    # vit_hf takes the MLP width from the named size, then applies explicit overrides.
    vit = dict(zip(_VIT_KEYS, (width, depth, heads, 4 * width), strict=True))
    vit.update({k: enc[k] for k in _VIT_KEYS if k in enc})
    dims = tuple(vit.values())
    variants = [name for name, v in VIT_SIZES.items() if v == dims]
    _require(variants, f"ViT (width, depth, heads, mlp) {dims} is not a lewm_jax size {VIT_SIZES}")
    d = pred["input_dim"]
    _require(
        pred["hidden_dim"] == d and (pred.get("output_dim") or d) == d,
        "predictor input/hidden/output dims differ; lewm_jax's predictor has no projections",
    )
    _require(pred.get("emb_dropout", 0.0) == 0.0, "predictor.emb_dropout must be 0")
    _require(
        pred["heads"] > 1 or pred.get("dim_head", 64) != d,
        "one head as wide as the latent has no output projection in the reference",
    )
    a = act["input_dim"]
    _require(
        act.get("smoothed_dim", a) == a and act["emb_dim"] == d,
        "action_encoder needs smoothed_dim = input_dim and emb_dim = predictor.input_dim",
    )
    _require(a % frameskip == 0, f"action_encoder.input_dim {a} is not a multiple of {frameskip}")
    hidden = s["projector"]["hidden_dim"]
    for name, fan_in in (("projector", vit["hidden_size"]), ("pred_proj", d)):
        h = s[name]
        norm = (h.get("norm_fn") or {}).get("_target_", "torch.nn.LayerNorm")
        act_fn = (h.get("act_fn") or {}).get("_target_", "torch.nn.GELU")
        _require(
            (norm, act_fn) == ("torch.nn.BatchNorm1d", "torch.nn.GELU"),
            f"{name} uses {norm} + {act_fn}; lewm_jax's heads are BatchNorm1d + GELU",
        )
        got = (h["input_dim"], h["hidden_dim"], h.get("output_dim") or h["input_dim"])
        want = (fan_in, hidden, d)
        _require(got == want, f"{name} (in, hidden, out) = {got}, expected {want}")
    model = dict(
        encoder=f"{variants[0]}/{enc.get('patch_size', 16)}",
        latent_dim=d,
        proj_hidden=hidden,
        history=pred["num_frames"],
        pred_depth=pred["depth"],
        pred_heads=pred["heads"],
        pred_head_dim=pred.get("dim_head", 64),
        pred_mlp_dim=pred["mlp_dim"],
        dropout=float(pred.get("dropout", 0.0)),
        action_mlp_scale=act.get("mlp_scale", 4),
    )
    image_size, history = enc.get("image_size", 224), pred["num_frames"]
    data = dict(image_size=image_size, action_dim=a // frameskip, frameskip=frameskip)
    return {"model": model, "data": {**data, "num_frames": history + 1}}


def official_config_from_model(model_config, *, image_size: int, action_input_dim: int) -> dict:
    """The reference ``config.json`` for our model (inverse of :func:`config_from_official`).

    Args:
        model_config: ``config.model``.
        image_size: native image side (``config.data.image_size``).
        action_input_dim: action-block width, ``frameskip * action_dim``.
    """
    mc = _as_config(model_config)
    vit = decode_variant(mc.encoder)
    dims = (vit["width"], vit["depth"], vit["num_heads"])
    named = [n for n, v in HF_VIT_SIZES.items() if v == dims and vit["mlp_dim"] == 4 * dims[0]]
    encoder = dict(size=named[0] if named else "tiny", patch_size=vit["patch_size"])
    encoder.update(image_size=image_size, pretrained=False, use_mask_token=False)
    if not named:
        encoder.update(zip(_VIT_KEYS, (*dims, vit["mlp_dim"]), strict=True))
    d, module = mc.latent_dim, "stable_worldmodel.wm.lewm.module."
    head = dict(hidden_dim=mc.proj_hidden)
    head["norm_fn"] = {"_target_": "torch.nn.BatchNorm1d", "_partial_": True}
    predictor = dict(num_frames=mc.history, input_dim=d, hidden_dim=d, output_dim=d)
    predictor.update(depth=mc.pred_depth, heads=mc.pred_heads, mlp_dim=mc.pred_mlp_dim)
    predictor.update(dim_head=mc.pred_head_dim, dropout=mc.dropout, emb_dropout=0.0)
    action = dict(input_dim=action_input_dim, emb_dim=d, mlp_scale=mc.action_mlp_scale)
    return {
        "_target_": "stable_worldmodel.wm.lewm.LeWM",
        "encoder": {"_target_": "stable_pretraining.backbone.utils.vit_hf", **encoder},
        "predictor": {"_target_": module + "Predictor", **predictor},
        "action_encoder": {"_target_": module + "Embedder", **action},
        "projector": {"_target_": module + "MLP", "input_dim": dims[0], **head, "output_dim": d},
        "pred_proj": {"_target_": module + "MLP", "input_dim": d, **head, "output_dim": d},
    }


def import_torch():
    """Returns the ``torch`` module, or raises a one-line ImportError naming the install."""
    try:
        import torch
    except ImportError:
        raise ImportError(
            "reading or writing .pt weights needs PyTorch (optional, converter only): "
            f"{TORCH_HINT}, or use .npz files"
        ) from None
    return torch


def load_state_dict(path) -> dict:
    """Reads a state dict from ``.pt`` (PyTorch, tensors only) or ``.npz`` into NumPy."""
    if Path(path).suffix == ".npz":
        try:
            with np.load(path) as f:
                return {k: f[k] for k in f.files}
        except (ValueError, EOFError, zipfile.BadZipFile) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ValueError(f"{str(path)!r} is not a .npz state dict: {first[:200]}") from None
    torch = import_torch()
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as e:  # torch raises several types for unreadable or pickled files
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{str(path)!r} is not a tensor state dict: {first[:200]}") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"{str(path)!r} holds no flat state dict of tensors")
    return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in sd.items()}


def save_state_dict(state_dict: dict, path) -> None:
    """Writes a NumPy state dict as ``.pt`` (``torch.save`` of tensors) or ``.npz``."""
    if Path(path).suffix == ".npz":
        np.savez(path, **state_dict)
        return
    torch = import_torch()
    torch.save({k: torch.from_numpy(np.array(v)) for k, v in state_dict.items()}, path)


def load_official(weights_path, config_path, *, frameskip: int = 5) -> tuple[dict, dict]:
    """Loads a reference release (``weights.pt`` or ``.npz`` + ``config.json``).

    Returns:
        ``(overrides, variables)``: our config overrides (see :func:`config_from_official`)
        and the converted ``{"params", "batch_stats"}``.
    """
    config_json = read_json(config_path, "official config")
    overrides = config_from_official(config_json, frameskip=frameskip)
    data = overrides["data"]
    variables = torch_state_dict_to_variables(
        load_state_dict(weights_path),
        overrides["model"],
        image_size=data["image_size"],
        action_input_dim=data["action_dim"] * data["frameskip"],
    )
    return overrides, variables
