"""Compute the motion cues of one clip side by side: PA maps (random-init or learned shallow conv) and
optical flow, on the same frames.

    frames (F, H, W, 3) uint8 RGB
        |-- pa_maps(frames, pa)           -> (F-1, H, W)      one PA map per consecutive pair
        |-- FlowEstimator(frames)         -> (F-1, H, W, 2)   one flow field per consecutive pair
        v
    MotionCues(frames, rows=[MotionRow, ...])   rows share the pair axis; each row has its own scale
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from pan_lib.checkpoints import load_checkpoint
from pan_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from pan_lib.modules.pa import PA
from pan_lib.viz.colour import colourise, flow_to_rgb, robust_max

log = logging.getLogger(__name__)

FLOW_STYLES = ("colour", "magnitude")


def normalise_frames(frames: np.ndarray):
    """(F, H, W, 3) uint8 RGB -> (F, 3, H, W) float32 tensor, ImageNet-normalised (what PA sees in PAN)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0  # (F,H,W,3)->(F,3,H,W)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


def random_pa(seed: int = 0, n_length: int = 4):
    """A PA module with the official random initialisation (weights ~ N(0, 0.001)), reproducible by seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return PA(n_length=n_length).eval()


def pa_maps(frames: np.ndarray, pa_module, device: str = "cpu") -> np.ndarray:
    """PA between every consecutive pair of a clip: (F, H, W, 3) uint8 -> (F-1, H, W) float32.

    PA works on groups of `m = pa_module.n_length` frames; groups that overlap by one frame
    (0..m-1, m-1..2m-2, ...) cover every consecutive pair exactly once. The last group is padded by
    repeating the last frame and its extra maps are dropped.
    """
    frames = np.asarray(frames)
    n_frames = frames.shape[0]
    if n_frames < 2:
        raise ValueError(f"need at least 2 frames for PA, got {n_frames}")
    m = int(getattr(pa_module, "n_length", 4))
    step = m - 1
    starts = range(0, n_frames - 1, step)
    index = np.array([min(s + k, n_frames - 1) for s in starts for k in range(m)])  # (G*m,)
    x = normalise_frames(frames[index]).to(device)  # (G*m, 3, H, W)
    with torch.inference_mode():
        out = pa_module.to(device)(x)  # (G*m, 3, H, W) -> (G, m-1, H, W)
    out = out.reshape(-1, *out.shape[-2:])  # (G, m-1, H, W) -> (G*(m-1), H, W)
    return out[: n_frames - 1].float().cpu().numpy()


def most_active_segment(segments: np.ndarray, pa_module) -> int:
    """Index of the segment with the highest mean PA: (S, m, H, W, 3) -> s (where something moves)."""
    return int(np.argmax([pa_maps(seg, pa_module).mean() for seg in segments]))


def learned_pa(checkpoint: str | Path):
    """The trained PA module (shallow conv) of a PA or Lite checkpoint."""
    model = load_checkpoint(checkpoint, map_location="cpu").model
    pa = getattr(model, "PA", None)
    if pa is None:
        raise ValueError(f"checkpoint {checkpoint} is a {getattr(model, 'modality', '?')} model without a PA "
                         f"module; learned PA maps need a 'PA' or 'Lite' checkpoint")
    return pa.eval()


@dataclass
class MotionRow:
    """One motion cue over every frame pair of a clip."""

    name: str
    kind: str  # "pa" (values (P, H, W)) or "flow" (values (P, H, W, 2) in pixels)
    values: np.ndarray
    seconds_per_pair: float = float("nan")
    note: str = ""

    def magnitude(self) -> np.ndarray:
        """(P, H, W): PA values, or the flow length in pixels."""
        return self.values if self.kind == "pa" else np.linalg.norm(self.values, axis=-1)

    def vmax(self) -> float:
        """The row's colour-scale maximum (99th percentile over all its pairs)."""
        return robust_max(self.magnitude())

    def images(self, cmap: str = "magma", flow_style: str = "colour") -> np.ndarray:
        """(P, H, W, 3) uint8 pictures on one scale for the whole row."""
        if flow_style not in FLOW_STYLES:
            raise ValueError(f"unknown flow_style {flow_style!r}; valid: {', '.join(FLOW_STYLES)}")
        if self.kind == "flow" and flow_style == "colour":
            return flow_to_rgb(self.values)
        return colourise(self.magnitude(), cmap, vmax=self.vmax())


@dataclass
class MotionCues:
    """RGB frames of one clip and the motion cues computed on them."""

    frames: np.ndarray  # (F, H, W, 3) uint8
    rows: list[MotionRow] = field(default_factory=list)

    @property
    def num_pairs(self) -> int:
        return self.frames.shape[0] - 1


def compute_motion_cues(frames: np.ndarray, pa_modules: Mapping[str, object] | None = None,
                        flow_estimators: Mapping[str, object] | None = None,
                        device: str = "cpu") -> MotionCues:
    """Every PA module and flow estimator on the same frames, with the time each took per pair."""
    frames = np.asarray(frames)
    cues = MotionCues(frames)
    for name, module in (pa_modules or {}).items():
        start = time.perf_counter()
        values = pa_maps(frames, module, device=device)
        cues.rows.append(MotionRow(name, "pa", values, (time.perf_counter() - start) / cues.num_pairs))
    for name, estimator in (flow_estimators or {}).items():
        start = time.perf_counter()
        values = estimator(frames)
        note = "" if getattr(estimator, "trained", None) is not False else "random weights: speed only"
        cues.rows.append(MotionRow(name, "flow", values, (time.perf_counter() - start) / cues.num_pairs, note))
    return cues
