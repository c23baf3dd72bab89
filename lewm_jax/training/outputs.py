"""What one run writes into its run directory while the training loop runs.

:class:`RunOutputs` is a run's side of the loop: its config and action statistics
(written once), its metrics log, its checkpoints and the last metrics it logged. The loop
(:func:`lewm_jax.training.train.run_loop`) keeps one per run it trains: one for a plain
run, one per member of a population.
"""

import math
from pathlib import Path

import jax

from lewm_jax.training import reporting, run_dir


def _to_rows(steps: list[int], fetched: list[dict]) -> list[dict]:
    """Per-step host metrics as JSON rows."""
    return [
        {"step": s, **{k: float(v) for k, v in m.items()}}
        for s, m in zip(steps, fetched, strict=True)
    ]


def stop_if_non_finite(rows: list[dict], ckpt, workdir: Path) -> None:
    """Raises FloatingPointError naming the first non-finite loss and the last good checkpoint."""
    bad = [r["step"] for r in rows if not math.isfinite(r["loss"])]
    if not bad:
        return
    ckpt.wait()  # pending saves are of earlier, finite steps: let them reach the disk
    last = ckpt.latest_step()
    kept = f"step {last}" if last is not None else "none saved"
    kept += f" in {workdir / 'checkpoints'}"
    raise FloatingPointError(
        f"non-finite loss at step {bad[0]} (checked steps {rows[0]['step']}-{rows[-1]['step']}); "
        f"training stopped without saving; last good checkpoint: {kept}"
    )


class RunOutputs:
    """One run's directory during the loop. Nothing is written until :meth:`open`.

    Args:
        member: the run (:class:`lewm_jax.training.train.Member`).

    Attributes:
        workdir: its run directory.
        ckpt: its checkpointer.
        last: the last logged training metrics; ``val`` the last validation metrics.
    """

    def __init__(self, member):
        config = member.config
        self.member = member
        self.workdir = run_dir.check_workdir(member.workdir)
        self.ckpt = run_dir.checkpointer(
            self.workdir,
            keep=config.keep_checkpoints,
            async_save=config.async_checkpoints,
            keep_every=config.get("keep_checkpoints_every", 0),
        )
        self.existing = set(self.ckpt.all_steps())  # steps it need not save again
        self.is_main = jax.process_index() == 0
        self.log, self.last, self.val = None, {}, {}

    def open(self, start: int) -> None:
        """Writes the config and action statistics of a new run and opens its metrics log
        at ``start``. One run directory serves all hosts: only the first writes these files
        (orbax checkpoints are written collectively by all of them)."""
        if not self.is_main:
            return
        if self.member.stored is None:
            run_dir.write_config(self.workdir, self.member.config.to_json(indent=2))
        # Planning and analysis de-normalise actions with exactly these statistics.
        if run_dir.read_action_stats(self.workdir) is None:
            run_dir.write_action_stats(self.workdir, *self.member.stats)
        self.log = run_dir.MetricsLog(self.workdir, resume_step=start)

    def write_metrics(self, steps: list[int], fetched: list[dict]) -> None:
        """Logs the training metrics of ``steps``; stops on a non-finite loss first."""
        rows = _to_rows(steps, fetched)
        stop_if_non_finite(rows, self.ckpt, self.workdir)
        if self.log:
            self.log.write(rows)
        self.last = rows[-1]

    def write_validation(self, step: int, metrics: dict) -> None:
        """Logs the validation metrics of ``step``."""
        self.val = metrics
        if self.log:
            self.log.write([{"step": step, **metrics}])

    def save(self, step: int, state) -> None:
        """Checkpoints ``state`` at ``step`` unless the directory already holds that step."""
        if step not in self.existing:
            self.ckpt.save(step, state)

    def close_log(self) -> None:
        if self.log:
            self.log.close()

    def close_checkpoints(self) -> None:
        """Waits for background checkpoint writes and closes the checkpointer."""
        self.ckpt.wait()
        self.ckpt.close()

    def plot(self) -> None:
        """Training curves from the metrics log (first host only)."""
        if self.is_main:
            reporting.plot_curves(
                self.log.read(), self.workdir / run_dir.CURVES_FILE, title=str(self.workdir)
            )
