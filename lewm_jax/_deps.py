"""Optional dependencies: a one-line ImportError naming the extra that installs them.

``pip install lewm_jax`` installs the core only (jax, chex, numpy: the losses and the
collapse metrics); every other part needs an extra of ``setup.cfg``. A package calls
:func:`require` before importing its optional dependencies, so a missing one fails as
``ImportError: lewm_jax.envs needs gymnax: pip install 'lewm_jax[envs]'``.
"""

import importlib.util


def require(package: str, extra: str, *modules: str) -> None:
    """Raises a one-line ImportError when one of ``modules`` is not installed.

    Only looks the modules up (nothing is imported), so calling it costs no import time.

    Args:
        package: the lewm_jax module that needs them, named in the message.
        extra: the extra of ``lewm_jax`` that installs them.
        *modules: top-level import names, e.g. ``"gymnax"``, ``"PIL"``.
    """
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise ImportError(
                f"{package} needs {module}: pip install 'lewm_jax[{extra}]'", name=module
            )
