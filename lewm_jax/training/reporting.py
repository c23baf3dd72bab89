"""Host-side reporting: per-step metrics as JSONL, and the loss/rank curves as a PNG."""

import json
import math
import os
from pathlib import Path

METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"


class MetricsLog:
    """Appends one JSON object per row to ``<workdir>/metrics.jsonl``.

    Args:
        workdir: run directory.
        resume_step: on resume, rows for steps after this one (from a run that died after
            its last checkpoint) are dropped, so the file describes a single history.
    """

    def __init__(self, workdir: str | os.PathLike, resume_step: int = 0):
        self.path = Path(workdir) / METRICS_FILE
        if self.path.exists():
            kept = [r for r in self.read() if r["step"] <= resume_step]
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
            os.replace(tmp, self.path)

    def write(self, rows: list[dict]) -> None:
        """Appends rows (each with an int ``step``) and flushes them to disk."""
        with self.path.open("a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

    def read(self) -> list[dict]:
        """All rows written so far."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


def plot_curves(rows: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """Plots losses (log scale) and the collapse indicators against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(key):
        pts = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
        return zip(*pts, strict=True) if pts else ((), ())

    fig, (ax_loss, ax_rank, ax_std) = plt.subplots(1, 3, figsize=(15, 4))
    for key in ("loss", "pred_loss", "sigreg_loss", "val_pred_loss"):
        xs, ys = series(key)
        if xs:
            ax_loss.plot(xs, ys, label=key, marker="o" if key.startswith("val") else None)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.legend()
    ax_loss.set_title("losses")
    xs, ys = series("z_rank")
    ax_rank.plot(xs, ys)
    ax_rank.set_xlabel("step")
    ax_rank.set_title("effective rank of z")
    xs, ys = series("z_std")
    ax_std.plot(xs, ys)
    ax_std.set_xlabel("step")
    ax_std.set_title("mean per-dim std of z")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
