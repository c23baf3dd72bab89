"""Host-side plots: the training curves, and the one way every report figure is made."""

import contextlib
import math
import os


@contextlib.contextmanager
def saved_figure(
    path: str | os.PathLike, *, nrows: int = 1, ncols: int = 1, figsize=(5, 3.5), title: str = ""
):
    """Yields ``(fig, axes)`` of a new matplotlib figure and writes it to ``path`` (PNG).

    The figure is drawn off-screen (Agg), laid out tightly, saved at 100 dpi and closed, so
    report code never leaks figures or needs a display.

    Args:
        path: the PNG to write.
        nrows: rows of subplots.
        ncols: subplots side by side; ``axes`` is one Axes for a 1 x 1 grid, else an array.
        figsize: inches.
        title: the figure's suptitle ("" for none).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=figsize)
    try:
        yield fig, axes
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def plot_curves(rows: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """Plots losses (log scale) and the collapse indicators against the step."""

    def series(key):
        pts = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
        return zip(*pts, strict=True) if pts else ((), ())

    with saved_figure(path, ncols=3, figsize=(15, 4), title=title) as (_, axes):
        ax_loss, ax_rank, ax_std = axes
        for key in ("loss", "pred_loss", "sigreg_loss", "val_pred_loss", "val_pred_loss_running"):
            xs, ys = series(key)
            if xs:
                ax_loss.plot(xs, ys, label=key, marker="o" if key.startswith("val") else None)
        ax_loss.set_yscale("log")
        ax_loss.set_xlabel("step")
        ax_loss.legend()
        ax_loss.set_title("losses")
        for ax, key, name in (
            (ax_rank, "z_rank", "effective rank of z"),
            (ax_std, "z_std", "mean per-dim std of z"),
        ):
            ax.plot(*series(key))
            ax.set_xlabel("step")
            ax.set_title(name)
