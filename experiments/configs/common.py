"""Helpers shared by configs: parsing of ``:arg`` strings, loading, the cpu run of the
environments with 200-step episodes, and the paper-size data of a pure-JAX environment."""

import os

import ml_collections


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
    """Parses ``"word,key=value,..."`` into a locked ConfigDict of ``defaults``.

    A bare word is the value of the first default (e.g. the size in ``"cpu"`` or
    ``"cpu,env=moving_dot"``). Values are converted to the type of their default; an
    unknown key raises.

    Args:
        arg: the text after ``:`` in ``--config=file.py:arg`` (may be None).
        **defaults: allowed keys and their default values, first one positional.
    """
    out = ml_collections.ConfigDict(defaults)
    first = next(iter(defaults))
    for part in filter(None, (arg or "").split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            key, value = first, part
        if key not in defaults:
            raise ValueError(f"unknown config arg {key!r} in {arg!r}; expected {sorted(defaults)}")
        default = defaults[key]
        if isinstance(default, bool):
            value = value.lower() in ("1", "true", "yes")
        out[key] = type(default)(value) if default is not None else value
    out.lock()
    return out


def load_module(path: str):
    """The Python module of config file ``path`` (a one-line error if there is none)."""
    import importlib.util

    module_spec = importlib.util.spec_from_file_location("_lewm_config", path)
    if module_spec is None:
        raise FileNotFoundError(f"config file {path!r} not found")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Loads ``"path/to/config.py[:arg]"`` by calling its ``get_config(arg)``, or a resolved
    config stored as JSON (``"runs/x/config.json"``, as runs and the yardstick write it)."""
    if spec.endswith(".json"):
        from lewm_jax.training.run_dir import read_json

        return ml_collections.ConfigDict(read_json(spec, "config"))
    path, _, arg = spec.partition(":")
    return load_module(path).get_config(arg or None)


def config_spec(argv: list[str], default_spec: str) -> str:
    """The ``path[:arg]`` that ``--config`` names in ``argv`` (``default_spec`` if none)."""
    spec = default_spec
    for i, a in enumerate(argv):
        if a.startswith("--config="):
            spec = a.split("=", 1)[1]
        elif a == "--config" and i + 1 < len(argv):
            spec = argv[i + 1]
    return spec


def check_config_flags(argv: list[str], default_spec: str) -> None:
    """Fails with one line if ``--config`` cannot be loaded or a ``--config.a.b=v`` flag
    names a field the config lacks (ml_collections would print a long traceback).
    """
    spec = config_spec(argv, default_spec)
    overrides = [a[len("--config.") :].split("=", 1)[0] for a in argv if a.startswith("--config.")]
    try:
        config = load_config(spec)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: --config={spec}: {e}") from None
    for dotted in overrides:
        node, walked = config, []
        for name in dotted.split("."):
            if not isinstance(node, ml_collections.ConfigDict) or name not in node:
                where = ".".join(walked) or "the config"
                fields = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
                raise SystemExit(
                    f"error: --config.{dotted}: {where} has no field {name!r}; known: "
                    f"{', '.join(fields)}"
                )
            node, walked = node[name], walked + [name]


def long_expert_run(c: ml_collections.ConfigDict) -> None:
    """Sets the cpu run of Push-T and Reacher (push_t.py, reacher.py) on ``c``: expert
    episodes as long as the official ones (200 steps), 4.4x the Two-Room steps, and the
    learning curve's points kept as checkpoints (25/50/75/100 %)."""
    c.total_steps = 2000
    c.data.num_episodes, c.data.episode_len = 1000, 200
    c.keep_checkpoints_every = 500


def paper_data(c: ml_collections.ConfigDict, num_episodes: int, episode_len: int) -> None:
    """Sets the paper-size run of a pure-JAX environment on ``c`` (a ``paper`` config of its
    dataset): the paper's amount of data at 224 px, built once as a TFDS dataset that
    training streams (a 224 px set does not fit in memory; ``python -m data.build`` with the
    fields of ``lewm_jax.data.datasets.tfds_config``), planned from the training episodes as
    the original's protocol does."""
    from lewm_jax.data.datasets import ENVS

    c.data.name, c.data.env = "tfds", ENVS[c.data.name]
    c.data.path = os.path.expanduser("~/tensorflow_datasets")
    c.data.num_episodes, c.data.episode_len = num_episodes, episode_len
    c.data.num_workers = 4  # a record holds a whole 224 px episode: decode in parallel
    c.planning.pairs, c.planning.pair_policy = "train", ""
