"""Figures the notebooks draw from library data: frame sampling, training curves, and saving them.

matplotlib is imported by the function that draws (an optional dependency of the library).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from pan_lib.data.sampling import clip_frame_indices, segment_offsets
from pan_lib.notebook.environment import repo_path
from pan_lib import provenance


def sampling_figure(num_frames: int = 32, num_segments: int = 8, new_length: int = 4, seed: int = 0):
    """Which frames TSN/TSM (m=1) and PA/Lite (m=4) read from one video, in train and val mode."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    rows = [(f"{mode}, m={m}", clip_frame_indices(segment_offsets(num_frames, num_segments, m, mode, rng=rng),
                                                  m, num_frames))
            for m in (1, new_length) for mode in ("train", "val")]
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(rows)))
    for y, (label, idx) in enumerate(rows):
        ax.scatter(np.asarray(idx), [y] * len(idx), s=18, marker="s")
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.set_xlim(0.5, num_frames + 0.5)
    ax.set_xlabel(f"frame (1-based) of a {num_frames}-frame video, {num_segments} segments")
    ax.grid(axis="x", alpha=0.3)
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def history_figure(results: Iterable, key: str = "val_top1", title: str = "validation top-1 during training"):
    """Per-epoch curves of the runs (one line per run, colour per model)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    colours: dict[str, str] = {}
    for res in results:
        hist = [h for h in res.metrics if h.get(key) is not None]
        if not hist:
            continue
        name = res.run_dir.name.split("_")[0]  # <modality>_<dataset>_... -> modality
        first = name not in colours
        colour = colours.setdefault(name, f"C{len(colours)}")
        ax.plot([h["epoch"] for h in hist], [h[key] for h in hist], "-o", ms=3, color=colour,
                label=name if first else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key.replace("_", " ") + (" (%)" if "top" in key else ""))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if colours:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig, results_dir: str | os.PathLike, name: str, dpi: int = 100) -> Path:
    """results/figures/<name>.png with the git sha in the PNG metadata (`pan_lib.provenance.save_figure`);
    the figure stays open for the notebook to show."""
    out = repo_path(results_dir) / "figures" / f"{name}.png"  # type: ignore[operator]
    return provenance.save_figure(fig, out, dpi=dpi)
