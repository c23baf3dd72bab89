"""Reading and writing state dicts (``.pt`` needs PyTorch, ``.npz`` does not) and whole
official releases."""

import zipfile
from pathlib import Path

import numpy as np

from lewm_jax.convert.configs import config_from_official
from lewm_jax.convert.tensors import torch_state_dict_to_variables
from lewm_jax.training.run_dir import read_json

TORCH_HINT = "pip install -e '.[torch]' --extra-index-url https://download.pytorch.org/whl/cpu"


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
