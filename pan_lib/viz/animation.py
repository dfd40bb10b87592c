"""A short jshtml animation of PA over a clip: RGB frame on the left, its PA map on the right.

jshtml embeds every frame as a PNG in the page (no ffmpeg needed); keep clips short (8-16 pairs at
~112 px) so executed notebooks stay small.
"""
from __future__ import annotations

import numpy as np

from pan_lib.viz.colour import robust_max


def pa_animation(frames: np.ndarray, maps: np.ndarray, *, cmap: str = "magma", fps: float = 4.0,
                 title: str = "PA over the clip", vmax: float | None = None, dpi: int = 72):
    """FuncAnimation over pairs: frames (F, H, W, 3) uint8, maps (F-1, H, W); one colour scale."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    if maps.shape[0] != frames.shape[0] - 1:
        raise ValueError(f"expected {frames.shape[0] - 1} PA maps for {frames.shape[0]} frames, got {maps.shape[0]}")
    vmax = robust_max(maps) if vmax is None else vmax
    fig, (ax_rgb, ax_pa) = plt.subplots(1, 2, figsize=(5.0, 2.6), dpi=dpi, layout="constrained")
    rgb = ax_rgb.imshow(frames[0])
    pa = ax_pa.imshow(maps[0], cmap=cmap, vmin=0.0, vmax=vmax)
    for ax in (ax_rgb, ax_pa):
        ax.set_xticks([])
        ax.set_yticks([])
    ax_pa.set_title("PA", fontsize=8)
    caption = ax_rgb.set_title("frame 0", fontsize=8)
    fig.suptitle(title, fontsize=9)

    def update(i: int):
        rgb.set_data(frames[i])
        pa.set_data(maps[i])
        caption.set_text(f"frames {i}\u2192{i + 1}")
        return rgb, pa, caption

    anim = FuncAnimation(fig, update, frames=maps.shape[0], interval=1000.0 / fps, blit=False)
    return anim


def animation_html(anim, close: bool = True) -> str:
    """The animation as self-contained jshtml (play/pause/step controls in the page)."""
    import matplotlib.pyplot as plt

    html = anim.to_jshtml(default_mode="loop")
    if close:
        plt.close(anim._fig)
    return html
