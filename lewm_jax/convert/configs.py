"""The reference's Hydra-style ``config.json`` mapped to our config sections, both ways."""

import ml_collections

from lewm_jax.models.resnet import is_resnet
from lewm_jax.models.vit import VIT_SIZES, decode_variant

# HF ViT sizes of stable_pretraining's vit_hf: (width, depth, heads); MLP is 4 x width.
HF_VIT_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12)}
# The reference Embedder's smoothed_dim when a config.json leaves it out.
EMBEDDER_SMOOTHED_DIM = 10


def as_model_config(model_config) -> ml_collections.ConfigDict:
    """A mutable copy of ``config.model`` (a ConfigDict or a plain dict)."""
    if isinstance(model_config, ml_collections.ConfigDict):
        return ml_collections.ConfigDict(model_config.to_dict())
    return ml_collections.ConfigDict(dict(model_config))


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


def check_vit_encoder(model_config) -> None:
    """Raises a one-line error unless the model's encoder is a ViT, the only one the
    original (stable-worldmodel 0.1.1) has; a ResNet encoder has nothing to convert to."""
    if is_resnet(model_config.encoder):
        raise ValueError(
            f"model.encoder {model_config.encoder!r} is a ResNet; the original has only the "
            f"ViT encoder, so only ViT models convert"
        )


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
    _require(act["emb_dim"] == d, "action_encoder needs emb_dim = predictor.input_dim")
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
        action_smoothed_dim=act.get("smoothed_dim", EMBEDDER_SMOOTHED_DIM),
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
    mc = as_model_config(model_config)
    check_vit_encoder(mc)
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
    smoothed = getattr(mc, "action_smoothed_dim", None)
    action["smoothed_dim"] = action_input_dim if smoothed is None else smoothed
    return {
        "_target_": "stable_worldmodel.wm.lewm.LeWM",
        "encoder": {"_target_": "stable_pretraining.backbone.utils.vit_hf", **encoder},
        "predictor": {"_target_": module + "Predictor", **predictor},
        "action_encoder": {"_target_": module + "Embedder", **action},
        "projector": {"_target_": module + "MLP", "input_dim": dims[0], **head, "output_dim": d},
        "pred_proj": {"_target_": module + "MLP", "input_dim": d, **head, "output_dim": d},
    }
