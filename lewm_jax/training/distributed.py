"""Multi-host start-up: ``jax.distributed.initialize`` with checks that fail in one line.

On TPU pods, SLURM and other clusters JAX detects the coordinator itself; elsewhere (a
set of plain machines, or several processes on one) the three values are given
explicitly. CPU processes exchange collectives over gloo. JAX's own failure when the
coordinator cannot be reached is a fatal abort with a stack dump, so a non-coordinator
process first checks, within the timeout, that the coordinator's port answers.
"""

import socket
import time


def _reachable(address: str, timeout_s: float) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout_s`` (retried)."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def check_args(
    coordinator_address: str | None, num_processes: int | None, process_id: int | None
) -> None:
    """One-line errors for an incomplete or inconsistent explicit cluster description."""
    given = [v is not None for v in (coordinator_address, num_processes, process_id)]
    if any(given) and not all(given):
        raise ValueError(
            "--coordinator_address, --num_processes and --process_id go together; got "
            f"{coordinator_address!r}, {num_processes!r}, {process_id!r}"
        )
    if not any(given):
        return
    host, sep, port = coordinator_address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--coordinator_address {coordinator_address!r} must be host:port")
    if num_processes < 1:
        raise ValueError(f"--num_processes must be >= 1, got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"--process_id {process_id} must be in [0, {num_processes})")


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout_s: int = 120,
) -> None:
    """Joins this process to a multi-host JAX run.

    Args:
        coordinator_address: ``host:port`` of process 0's coordinator (None: detect the
            cluster, as on TPU pods and under SLURM).
        num_processes: processes in the run.
        process_id: this process's index.
        timeout_s: how long to wait for the coordinator and the other processes.

    Raises:
        ValueError: bad arguments.
        ConnectionError: the coordinator did not answer within ``timeout_s``.
    """
    import jax

    check_args(coordinator_address, num_processes, process_id)
    # CPU processes need a collectives backend to all-reduce across processes.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator_address is None:
        jax.distributed.initialize(initialization_timeout=timeout_s)
        return
    if process_id != 0 and not _reachable(coordinator_address, timeout_s):
        raise ConnectionError(
            f"coordinator {coordinator_address} did not answer within {timeout_s} s; start "
            "process 0 there (--process_id=0) or fix --coordinator_address"
        )
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=timeout_s,
    )
