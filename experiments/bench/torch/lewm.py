"""The stable-worldmodel PyTorch LeWM, built from a reference ``config.json`` (torch only).

Shared by the PyTorch sides of the parity test (tests/torch_reference.py) and of the
side-by-side benchmarks (experiments/bench/torch_*.py). Imports torch, transformers and
stable-worldmodel, never jax or lewm_jax, so it runs in the reference interpreter
(``LEWM_TORCH_PYTHON``; install: BENCHMARKS.md).
"""

from pathlib import Path

import numpy as np
import torch

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
VIT_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12)}


def vit_hf(size="tiny", patch_size=16, image_size=224, pretrained=False, use_mask_token=True, **kw):
    """stable_pretraining.backbone.utils.vit_hf (used when that package is not installed)."""
    try:
        from stable_pretraining.backbone.utils import vit_hf as reference
    except ImportError:
        reference = None
    if reference is not None:
        return reference(size, patch_size, image_size, pretrained, use_mask_token, **kw)
    from transformers import ViTConfig, ViTModel

    width, depth, heads = VIT_SIZES[size]
    params = dict(hidden_size=width, num_hidden_layers=depth, num_attention_heads=heads)
    params.update(intermediate_size=4 * width, image_size=image_size, patch_size=patch_size)
    params.update(kw)
    model = ViTModel(ViTConfig(**params), add_pooling_layer=False, use_mask_token=use_mask_token)
    model.config.interpolate_pos_encoding = True
    return model


def swm_module(relative: str):
    """The stable-worldmodel source file ``relative`` (e.g. ``"wm/loss.py"``), loaded by path:
    the package's ``__init__`` imports every environment, which takes seconds."""
    import importlib.util

    path = Path(importlib.util.find_spec("stable_worldmodel").origin).parent / relative
    name = "swm_" + relative.removesuffix(".py").replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_modules():
    """stable_worldmodel's ``wm/lewm/lewm.py`` and ``module.py``."""
    return [swm_module(f"wm/lewm/{name}.py") for name in ("lewm", "module")]


def build(config: dict):
    """The LeWM described by a reference ``config.json`` (what Hydra would instantiate)."""
    lewm, module = reference_modules()
    LeWM, MLP, Embedder, Predictor = lewm.LeWM, module.MLP, module.Embedder, module.Predictor

    def kwargs(section):
        return {k: v for k, v in config[section].items() if not k.startswith("_")}

    def head(section):
        kw = kwargs(section)
        assert kw.pop("norm_fn")["_target_"] == "torch.nn.BatchNorm1d"
        return MLP(**kw, norm_fn=torch.nn.BatchNorm1d)

    return LeWM(
        encoder=vit_hf(**kwargs("encoder")),
        predictor=Predictor(**kwargs("predictor")),
        action_encoder=Embedder(**kwargs("action_encoder")),
        projector=head("projector"),
        pred_proj=head("pred_proj"),
    )
