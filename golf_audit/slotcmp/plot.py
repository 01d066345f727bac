"""The sweep as a picture: bpb against SLOT steps (or lr) per mask, and the leak curve beside it."""

from __future__ import annotations

import io
import os

from ..errors import BadInput
from ..output import write_atomic
from .compare import LABELS, SlotComparison

STYLES = {"scored_window": ("tab:red", "o"), "context_window": ("tab:green", "s"), "context_batch": ("tab:orange", "^")}


def plot_png(result: SlotComparison) -> bytes:
    """PNG bytes of the sweep (needs ``result.sweep``)."""
    if not result.sweep:
        raise BadInput("--plot needs --sweep (there is nothing to plot without a sweep)")
    import matplotlib

    matplotlib.use("Agg")  # no display; also keeps tests headless
    import matplotlib.pyplot as plt

    parameter = result.sweep[0].parameter
    xs = [float(row.value) for row in result.sweep]
    fig, (ax, leak_ax) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    ax.axhline(result.sliding_bpb, color="tab:gray", linestyle="--", label="sliding (no SLOT)")
    for key in result.sweep[0].bpb:
        color, marker = STYLES.get(key, ("black", "x"))
        ax.plot(xs, [row.bpb[key] for row in result.sweep], marker=marker, color=color, label=LABELS[key])
    ax.set_xlabel(f"SLOT {parameter}")
    ax.set_ylabel("val_bpb (lower is better)")
    ax.set_title("bpb per mask")
    ax.legend(fontsize=8)
    leak_ax.plot(xs, [row.leak_bpb for row in result.sweep], marker="o", color="tab:purple")
    leak_ax.axhline(0.0, color="tab:gray", linewidth=0.8)
    leak_ax.set_xlabel(f"SLOT {parameter}")
    leak_ax.set_ylabel("leak = bpb(context) − bpb(scored)")
    leak_ax.set_title("bpb gained by scoring-on-the-targets")
    for axis in (ax, leak_ax):
        if parameter == "lr" and min(xs) > 0:
            axis.set_xscale("log")
        axis.grid(alpha=0.3)
    fig.suptitle(f"SLOT sweep on {result.model} ({result.stream_tokens} tokens)", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_plot(result: SlotComparison, path: str | os.PathLike) -> None:
    write_atomic(path, plot_png(result))
