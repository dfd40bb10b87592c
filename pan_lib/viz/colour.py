"""Turning motion cues into pictures: PA maps and flow magnitudes through a colormap, flow through the
Middlebury colour wheel (torchvision's `flow_to_image`). One colour scale per row: the scale is
computed over every map given together, so maps of the same method stay comparable.
"""
from __future__ import annotations

import numpy as np
import torch
from torchvision.utils import flow_to_image

# colormaps offered by the widgets (perceptually uniform first)
COLORMAPS = ("magma", "inferno", "viridis", "gray", "turbo")


def robust_max(values: np.ndarray, percentile: float = 99.0) -> float:
    """The `percentile`-th value over all maps (a few hot pixels should not wash out a row)."""
    values = np.asarray(values, dtype=np.float32)
    vmax = float(np.percentile(values, percentile)) if values.size else 0.0
    return vmax if vmax > 0 else float(values.max(initial=0.0)) or 1.0


def colourise(maps: np.ndarray, cmap: str = "magma", vmax: float | None = None,
              vmin: float = 0.0) -> np.ndarray:
    """(N, H, W) non-negative maps -> (N, H, W, 3) uint8 through `cmap`, one scale for all N."""
    import matplotlib

    if cmap not in matplotlib.colormaps:
        raise ValueError(f"unknown colormap {cmap!r}; try one of {', '.join(COLORMAPS)}")
    maps = np.asarray(maps, dtype=np.float32)
    vmax = robust_max(maps) if vmax is None else float(vmax)
    scaled = np.clip((maps - vmin) / max(vmax - vmin, 1e-12), 0.0, 1.0)
    rgba = matplotlib.colormaps[cmap](scaled)  # (N, H, W, 4) floats
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def flow_to_rgb(flows: np.ndarray) -> np.ndarray:
    """(N, H, W, 2) flow -> (N, H, W, 3) uint8 colour-wheel images (hue = direction, saturation = speed),
    normalised by the largest flow over all N, so the N pictures share one scale."""
    flows = torch.from_numpy(np.ascontiguousarray(flows, dtype=np.float32))
    images = flow_to_image(flows.permute(0, 3, 1, 2))  # (N, H, W, 2) -> (N, 2, H, W) -> (N, 3, H, W)
    return images.permute(0, 2, 3, 1).numpy()  # (N, 3, H, W) -> (N, H, W, 3)
