"""glibc malloc settings that keep XLA's CPU runtime from faulting its memory in every step.

XLA:CPU allocates and frees a step's temporaries from its worker threads. By default glibc
gives those threads their own arenas, whose heaps grow with ``mmap``/``mprotect`` and shrink
back when freed, and serves large blocks with ``mmap``/``munmap``; so every step returns its
memory to the system and page-faults it in again (hundreds of thousands of minor faults and
0.6 s of kernel time per cpu-size step: BENCHMARKS.md, "Train step and training loop").
One arena, no ``mmap`` for large blocks and no trimming keep freed memory in the process for
the next step. The process's resident memory then stays near its peak, which it
reaches every step anyway.

Call :func:`tune` first thing in a program, before JAX starts its threads (the commands in
``experiments/`` do, through ``experiments/__init__.py``). ``LEWM_JAX_MALLOC=default`` in the
environment leaves glibc's defaults; elsewhere than glibc it does nothing.
"""

import ctypes
import ctypes.util
import os
import platform

# mallopt(3) parameter numbers, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8

ENV_VAR = "LEWM_JAX_MALLOC"


def tune() -> bool:
    """Sets one arena, no mmap'ed blocks and no trimming (a threshold of -1, mallopt(3));
    returns whether it was applied.

    Applied only on Linux with glibc and unless ``LEWM_JAX_MALLOC=default``; a value other
    than ``default`` or ``tuned`` is a one-line ValueError.
    """
    choice = os.environ.get(ENV_VAR, "tuned")
    if choice not in ("tuned", "default"):
        raise ValueError(f"{ENV_VAR}={choice!r}: expected 'tuned' or 'default'")
    if choice == "default" or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    settings = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, -1))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)
