"""Static matplotlib figures: the motion-cue grid, one frame pair, the speed chart.

These are what papermill keeps in executed notebooks (widgets need a live kernel), and what the
widgets render to PNG.

    motion_figure(cues)          rows: RGB, PA (random), PA (learned), Farneback, TV-L1, DIS, RAFT ...
                                 columns: frame pairs; one colour scale per row (colour bar on the right)
    pair_figure(cues, pair)      one frame pair, every cue side by side (the widget's picture)
"""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np

from pan_lib.viz.maps import MotionCues, MotionRow


def _row_label(row: MotionRow) -> str:
    label = row.name
    if np.isfinite(row.seconds_per_pair):
        label += f"\n{row.seconds_per_pair * 1e3:.3g} ms/pair"
    if row.note:
        label += f"\n[{row.note}]"
    return label


def _colourbar(fig, ax, row: MotionRow, cmap: str, flow_style: str) -> None:
    import matplotlib as mpl

    if row.kind == "flow" and flow_style == "colour":
        return  # direction wheel: no scalar scale to show
    norm = mpl.colors.Normalize(0.0, row.vmax())
    bar = fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.046, pad=0.02)
    bar.ax.tick_params(labelsize=6)
    bar.set_label("px" if row.kind == "flow" else "PA", fontsize=6)


def pick_pairs(num_pairs: int, max_pairs: int) -> list[int]:
    """Up to `max_pairs` pair indices spread evenly over the clip."""
    if num_pairs <= max_pairs:
        return list(range(num_pairs))
    return sorted({int(round(i)) for i in np.linspace(0, num_pairs - 1, max_pairs)})


def motion_figure(cues: MotionCues, pairs: Sequence[int] | None = None, *, cmap: str = "magma",
                  flow_style: str = "colour", max_pairs: int = 4, title: str | None = None,
                  panel_size: float = 1.6):
    """Grid of RGB frames and motion cues: rows = cues, columns = frame pairs, one scale per row."""
    import matplotlib.pyplot as plt

    pairs = list(pairs) if pairs is not None else pick_pairs(cues.num_pairs, max_pairs)
    bad = [p for p in pairs if not 0 <= p < cues.num_pairs]
    if bad:
        raise ValueError(f"pair indices {bad} out of range 0..{cues.num_pairs - 1}")
    n_rows, n_cols = 1 + len(cues.rows), len(pairs)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(panel_size * n_cols + 1.8, panel_size * n_rows),
                             squeeze=False, layout="constrained")
    for col, p in enumerate(pairs):
        axes[0, col].imshow(cues.frames[p])
        axes[0, col].set_title(f"frames {p}\u2192{p + 1}", fontsize=7)
    axes[0, 0].set_ylabel("RGB", fontsize=7)
    for r, row in enumerate(cues.rows, start=1):
        images = row.images(cmap, flow_style)  # whole row at once: one scale
        for col, p in enumerate(pairs):
            axes[r, col].imshow(images[p])
        axes[r, 0].set_ylabel(_row_label(row), fontsize=7)
        _colourbar(fig, list(axes[r, :]), row, cmap, flow_style)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def pair_figure(cues: MotionCues, pair: int, *, cmap: str = "magma", flow_style: str = "colour",
                row_images: Sequence[np.ndarray] | None = None, title: str | None = None,
                panel_size: float = 1.9):
    """One frame pair, every cue side by side; scales are those of the whole clip (pass precomputed
    `row_images` from `MotionRow.images` to skip recolouring)."""
    import matplotlib.pyplot as plt

    if not 0 <= pair < cues.num_pairs:
        raise ValueError(f"pair {pair} out of range 0..{cues.num_pairs - 1}")
    row_images = row_images if row_images is not None else [r.images(cmap, flow_style) for r in cues.rows]
    n = 2 + len(cues.rows)
    fig, axes = plt.subplots(1, n, figsize=(panel_size * n, panel_size + 0.6), squeeze=False,
                             layout="constrained")
    axes = axes[0]
    axes[0].imshow(cues.frames[pair])
    axes[0].set_title(f"frame {pair}", fontsize=7)
    axes[1].imshow(cues.frames[pair + 1])
    axes[1].set_title(f"frame {pair + 1}", fontsize=7)
    for ax, row, images in zip(axes[2:], cues.rows, row_images):
        ax.imshow(images[pair])
        ax.set_title(_row_label(row), fontsize=7)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=8)
    return fig


def figure_to_png(fig, dpi: int = 80, close: bool = True) -> bytes:
    """Render a figure to PNG bytes (for ipywidgets.Image); closes it so it is not shown twice."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    if close:
        plt.close(fig)
    return buf.getvalue()


def speed_figure(rows: Sequence[dict], *, title: str = "Frame pairs per second (log scale)"):
    """Horizontal bar chart of a motion_cues speed table (rows with 'method' and 'pairs_per_s'); with
    several contents (a 'content' column), each bar is labelled "method [content]"."""
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("pairs_per_s") not in (None, "", "nan")]
    several = len({str(r.get("content", "")) for r in rows}) > 1
    names = [str(r["method"]) + (f" [{r['content']}]" if several else "") for r in rows]
    speeds = [float(r["pairs_per_s"]) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(rows) + 1.0), layout="constrained")
    colours = ["tab:orange" if str(r.get("kind")) == "PA" else "tab:blue" for r in rows]
    ax.barh(range(len(rows)), speeds, color=colours)
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("frame pairs / s")
    for i, s in enumerate(speeds):
        ax.text(s, i, f" {s:,.0f}" if s >= 100 else f" {s:.3g}", va="center", fontsize=6)
    ax.set_title(title, fontsize=9)
    return fig
