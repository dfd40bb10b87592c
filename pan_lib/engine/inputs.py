"""Loader batches to network inputs on the device: uint8 clips cross as uint8 and are normalised there.

A uint8 clip is a quarter of the bytes of the float32 one (host-to-device copy, pinned buffers, the
workers' shared memory); `pan_lib.data.transforms.normalize_clip` with the modality's statistics
(`CLIP_STATS`) then runs on the device. Float clips (datasets that normalise themselves) pass
through unchanged. The statistics are device tensors made once: building them per batch from
Python lists would be a blocking host-to-device copy in every step.
"""
from __future__ import annotations

import torch

from pan_lib.data.transforms import CLIP_STATS, IMAGENET_MEAN, IMAGENET_STD, normalize_clip


class DeviceInput:
    """`DeviceInput(modality, device)(clips)` -> normalised float clips on `device` (non-blocking copy)."""

    def __init__(self, modality: str, device: torch.device | str) -> None:
        self.device = torch.device(device)
        mean, std = CLIP_STATS.get(modality, (IMAGENET_MEAN, IMAGENET_STD))
        self.mean = torch.tensor(mean, dtype=torch.float32).to(self.device)
        self.std = torch.tensor(std, dtype=torch.float32).to(self.device)

    def normalize(self, clips: torch.Tensor) -> torch.Tensor:
        """Clips already on the device: uint8 -> normalised float32; float stays as it is."""
        return normalize_clip(clips, self.mean, self.std) if clips.dtype == torch.uint8 else clips

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        return self.normalize(clips.to(self.device, non_blocking=True))
