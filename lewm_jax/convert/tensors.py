"""Every tensor of the PyTorch LeWM state dict mapped to lewm_jax variables, both ways.

Linear weights are transposed, the patch Conv goes OIHW -> HWIO, HF's separate
query/key/value become our fused ``qkv`` (concatenated along the output axis), LayerNorm
``weight`` -> ``scale`` and BatchNorm ``running_mean/var`` -> ``batch_stats`` ``mean/var``.
Two HF key layouts exist: ``"legacy"`` (transformers < 5,
``encoder.encoder.layer.N.attention.attention.query``; the official release) and ``"v5"``
(``encoder.layers.N.attention.q_proj``). Imports detect the layout; exports write the one
asked for. Arrays are host NumPy.
"""

import jax
import numpy as np

from lewm_jax.convert.configs import as_model_config, check_vit_encoder
from lewm_jax.models.vit import decode_variant

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
    check_vit_encoder(model_config)
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


def _detect_layout(state_dict) -> str:
    return "v5" if any(k.startswith("encoder.layers.") for k in state_dict) else "legacy"


def _abstract_variables(model_config, image_size: int, action_input_dim: int):
    """Shapes of the variables our JEPA creates for this config (no computation)."""
    from lewm_jax.models import build_model

    config = as_model_config(model_config)
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
    model_config = as_model_config(model_config)
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
    model_config = as_model_config(model_config)
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
