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

One module per concern: :mod:`~lewm_jax.convert.tensors` (the tensor rules),
:mod:`~lewm_jax.convert.configs` (the config mapping), :mod:`~lewm_jax.convert.files`
(state dict files and releases); their public names are re-exported here.
"""

from lewm_jax._deps import require

require("lewm_jax.convert", "train", "ml_collections", "flax")

from lewm_jax.convert.configs import (  # noqa: E402
    HF_VIT_SIZES,
    config_from_official,
    official_config_from_model,
)
from lewm_jax.convert.files import (  # noqa: E402
    TORCH_HINT,
    import_torch,
    load_official,
    load_state_dict,
    save_state_dict,
)
from lewm_jax.convert.tensors import (  # noqa: E402
    HF_LAYOUTS,
    IGNORED_KEYS,
    torch_state_dict_to_variables,
    variables_to_torch_state_dict,
)

__all__ = [
    "HF_LAYOUTS",
    "HF_VIT_SIZES",
    "IGNORED_KEYS",
    "TORCH_HINT",
    "config_from_official",
    "import_torch",
    "load_official",
    "load_state_dict",
    "official_config_from_model",
    "save_state_dict",
    "torch_state_dict_to_variables",
    "variables_to_torch_state_dict",
]
