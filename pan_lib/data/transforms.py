"""Group transforms: the official TSN/TSM/PAN augmentations applied with ONE set of random
parameters to every frame of a clip (PA frames included), then ImageNet normalisation.

Frames come in as ``uint8`` arrays ``[F, H, W, 3]`` (RGB, F = T*m frames, segment-major) and leave as
a float32 tensor ``[V*F*3, S, S]`` (V = number of test views, 1 for train/val), or, with
``output="uint8"``, as the same clip in uint8 before normalisation (what the engine moves to the
device: a quarter of the bytes; it normalises there with ``normalize_clip`` and the modality's
stats from ``CLIP_STATS``)::

    train:  GroupMultiScaleCrop(S, scales 1/.875/.75/.66, 13 fixed offsets) -> [flip] -> normalise
    val:    GroupScale(scale_size) (short side) -> GroupCenterCrop(S) -> normalise
    test:   like val (1 crop), GroupFullResSample (3 crops) or GroupOverSample (5 / 10 crops)

A uint8 output stays uint8 throughout (crops, flips, and resizes with torch's uint8 kernel), so it
equals the float output's pixels within one grey level (exactly where no resize happens).
Resizing is bilinear with antialiasing (``torch.nn.functional.interpolate(antialias=True)``, which
follows PIL's bilinear filter used by the official code). Random choices come from a
``numpy.random.Generator`` so a clip is reproducible under a seed.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# Per-channel (mean, std) of each modality's input, in 0..1 units of a uint8 pixel (/255): the one table
# the datasets' float output and the engine's on-device normalisation (normalize_clip) read.
CLIP_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    modality: (IMAGENET_MEAN, IMAGENET_STD) for modality in ("TSN", "TSM", "RGB", "PA", "Lite")
}
# TSN/TSM (tests/fixtures/reference/tsn_flow_rgbdiff.md): Flow (x, y stored as uint8) is centred on 0.5
# with the mean ImageNet std; RGBDiff frames get mean 0 and twice that std, so the differences the
# network takes of them are TSN's normalised differences (the mean cancels in a difference).
FLOW_STD = sum(IMAGENET_STD) / len(IMAGENET_STD)
CLIP_STATS["Flow"] = ((0.5, 0.5), (FLOW_STD, FLOW_STD))
CLIP_STATS["RGBDiff"] = ((0.0, 0.0, 0.0), (2 * FLOW_STD,) * 3)
OUTPUTS = ("float", "uint8")

OFFICIAL_SCALES: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)


def to_tensor(frames: np.ndarray | torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 ``[F, H, W, 3]`` -> ``[F, 3, H, W]`` in 0..255 (float32, or kept uint8 with ``dtype=torch.uint8``)."""
    x = torch.as_tensor(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if x.ndim != 4 or x.shape[-1] not in (2, 3):  # 2: (x, y) flow fields
        raise ValueError(f"expected frames [F, H, W, 3] (or flow [F, H, W, 2]), got {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).to(dtype)  # (F, H, W, 3) -> (F, 3, H, W)


def resize(x: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Bilinear (antialiased) resize of ``[F, C, H, W]`` to ``[F, C, height, width]``, in x's dtype.

    float: PIL's bilinear filter (the official transforms). uint8: torch's uint8 kernel on
    channels-last frames, ~10x faster on the CPU (0.5 vs 6 ms for a Lite clip at 48 px) and within
    one grey level of the rounded float result -- what the uint8 clips of the engine use."""
    if x.shape[-1] == width and x.shape[-2] == height:
        return x
    if x.dtype == torch.uint8:
        x = x.contiguous(memory_format=torch.channels_last)  # (F, C, H, W) strides of (F, H, W, C)
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """0..255 pixels -> uint8 (rounded, clamped); uint8 stays as it is."""
    return x if x.dtype == torch.uint8 else x.round().clamp_(0, 255).to(torch.uint8)


def scale_short_side(x: torch.Tensor, size: int) -> torch.Tensor:
    """``GroupScale(size)``: short side -> ``size``, aspect kept (torchvision ``Resize(int)`` rule)."""
    h, w = x.shape[-2:]
    if min(h, w) == size:
        return x
    if w < h:
        return resize(x, size, int(size * h / w))
    return resize(x, int(size * w / h), size)


def fixed_offsets(image_w: int, image_h: int, crop_w: int, crop_h: int,
                  more_fix_crop: bool = True) -> list[tuple[int, int]]:
    """The official 5 (+8 with ``more_fix_crop``) crop positions, step = (W - cw) // 4."""
    w_step, h_step = (image_w - crop_w) // 4, (image_h - crop_h) // 4
    ret = [(0, 0), (4 * w_step, 0), (0, 4 * h_step), (4 * w_step, 4 * h_step), (2 * w_step, 2 * h_step)]
    if more_fix_crop:
        ret += [(0, 2 * h_step), (4 * w_step, 2 * h_step), (2 * w_step, 4 * h_step), (2 * w_step, 0),
                (w_step, h_step), (3 * w_step, h_step), (w_step, 3 * h_step), (3 * w_step, 3 * h_step)]
    return ret


@functools.lru_cache(maxsize=256)
def crop_sizes(image_w: int, image_h: int, input_size: int, scales: tuple[float, ...],
               max_distort: int) -> tuple[tuple[int, int], ...]:
    """The ``(crop_w, crop_h)`` pairs ``GroupMultiScaleCrop`` draws from for an image of ``image_w x image_h``:
    sides ``int(min(w, h) * scale)`` (snapped to ``input_size`` within 3 px), scale indices at most
    ``max_distort`` apart. The same for every clip of a dataset, so made once per image size."""
    sizes = [int(min(image_w, image_h) * s) for s in scales]
    sides = [input_size if abs(s - input_size) < 3 else s for s in sizes]
    return tuple((w, h) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= max_distort)


@dataclass
class GroupMultiScaleCrop:
    """Official train crop: side ``int(min(w, h) * scale)`` (snapped to ``input_size`` within 3 px),
    (w, h) pairs whose scale indices differ by at most ``max_distort``, one of the fixed offsets,
    then resize to ``input_size``."""
    input_size: int
    scales: Sequence[float] = OFFICIAL_SCALES
    max_distort: int = 1
    fix_crop: bool = True
    more_fix_crop: bool = True

    def sample(self, image_w: int, image_h: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """Random ``(crop_w, crop_h, x, y)`` for an image of ``image_w x image_h``."""
        pairs = crop_sizes(image_w, image_h, self.input_size, tuple(self.scales), self.max_distort)
        cw, ch = pairs[int(rng.integers(len(pairs)))]
        cw, ch = min(cw, image_w), min(ch, image_h)
        if self.fix_crop:
            offsets = fixed_offsets(image_w, image_h, cw, ch, self.more_fix_crop)
            x, y = offsets[int(rng.integers(len(offsets)))]
        else:
            x, y = int(rng.integers(image_w - cw + 1)), int(rng.integers(image_h - ch + 1))
        return cw, ch, x, y

    def __call__(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        h, w = x.shape[-2:]
        cw, ch, ox, oy = self.sample(w, h, rng)
        return resize(x[..., oy:oy + ch, ox:ox + cw], self.input_size, self.input_size)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """``GroupCenterCrop(size)`` (torchvision rounding: ``int(round((H - size) / 2))``)."""
    h, w = x.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    if top < 0 or left < 0:
        x = scale_short_side(x, size)
        h, w = x.shape[-2:]
        top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top:top + size, left:left + size]


def _channel_stat(values: Sequence[float] | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-channel values as a ``[C, 1, 1]`` tensor of `like`'s dtype and device, in 0..255 units.

    Pass a tensor already on the device in a hot loop: building one from a list there is a blocking
    host-to-device copy."""
    t = (values.to(device=like.device, dtype=like.dtype) if isinstance(values, torch.Tensor)
         else torch.tensor(values, dtype=like.dtype, device=like.device))
    return t.view(-1, 1, 1) * 255.0  # (C,) -> (C, 1, 1)


def normalize(x: torch.Tensor, mean: Sequence[float] | torch.Tensor = IMAGENET_MEAN,
              std: Sequence[float] | torch.Tensor = IMAGENET_STD) -> torch.Tensor:
    """0..255 ``[..., C, H, W]`` (C = len(mean)) -> normalised: ``(x - 255 mean) / (255 std)`` (uint8 -> float32)."""
    if x.is_floating_point():
        return (x - _channel_stat(mean, x)) / _channel_stat(std, x)
    x = x.float()  # a new tensor: normalised in place (one allocation per batch instead of three)
    return x.sub_(_channel_stat(mean, x)).div_(_channel_stat(std, x))


def clip_stats(modality: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel of `modality`'s input (``CLIP_STATS``); unknown -> ValueError."""
    if modality not in CLIP_STATS:
        raise ValueError(f"no input statistics for modality {modality!r}; known: {', '.join(CLIP_STATS)}")
    return CLIP_STATS[modality]


def normalize_clip(clip_uint8: torch.Tensor, mean: Sequence[float] | torch.Tensor,
                   std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """uint8 clip(s) ``[..., F*C, H, W]`` (C = len(mean) channels per frame) -> normalised float32, on the
    clip's own device (the engine calls it after the host-to-device copy).

    The same arithmetic as the datasets' float output, so both give equal values for the same pixels.
    """
    c = len(mean)
    *lead, channels, h, w = clip_uint8.shape
    if channels % c:
        raise ValueError(f"clip has {channels} channels, not a multiple of the {c} of the stats")
    frames = clip_uint8.reshape(*lead, channels // c, c, h, w)  # (..., F*C, H, W) -> (..., F, C, H, W)
    return normalize(frames, mean, std).reshape(*lead, channels, h, w)  # (..., F, C, H, W) -> (..., F*C, H, W)


def flip_frames(x: torch.Tensor, *, flow: bool = False) -> torch.Tensor:
    """Horizontal flip of ``[..., C, H, W]`` 0..255 frames; for flow (C = 2: x, y as stored) the x
    component is inverted too (``255 - x``, TSN's ``GroupRandomHorizontalFlip(is_flow=True)``)."""
    out = x.flip(-1)
    if flow:
        out[..., 0, :, :] = 255 - out[..., 0, :, :]  # flip(-1) copied: x itself is untouched
    return out


TEST_CROPS = (1, 3, 5, 10)


@dataclass
class ClipTransform:
    """Frames ``[F, H, W, 3]`` uint8 -> clip ``[V*F*3, S, S]`` float32 (V views, crop-major).

    ``mode``: "train" (multi-scale crop + optional flip), "val" (scale + centre crop), "test"
    (``test_crops`` in 1, 3, 5, 10 as in ``test_models.py``; ``full_res`` makes crops
    ``scale_size`` square). ``output``: "float" (normalised) or "uint8" (0..255, not normalised).
    """
    mode: str = "train"
    input_size: int = 224
    scale_size: int = 256
    flip: bool = True
    test_crops: int = 1
    full_res: bool = False
    scales: Sequence[float] = OFFICIAL_SCALES
    output: str = "float"
    modality: str = "RGB"  # the normalisation (CLIP_STATS) and, for Flow, the flip that inverts x

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"unknown output {self.output!r}; valid: {', '.join(OUTPUTS)}")
        if self.mode not in ("train", "val", "test"):
            raise ValueError(f"unknown transform mode {self.mode!r}; valid: train, val, test")
        if self.test_crops not in TEST_CROPS:
            raise ValueError(f"test_crops must be one of {TEST_CROPS}, got {self.test_crops}")
        self._crop = GroupMultiScaleCrop(self.input_size, self.scales)

    @property
    def output_size(self) -> int:
        return self.scale_size if (self.mode == "test" and self.full_res) else self.input_size

    @property
    def num_views(self) -> int:
        return self.test_crops if self.mode == "test" else 1

    def __call__(self, frames: np.ndarray | torch.Tensor,
                 rng: np.random.Generator | None = None) -> torch.Tensor:
        x = to_tensor(frames, torch.uint8 if self.output == "uint8" else torch.float32)  # (F, C, H, W) 0..255
        if self.mode == "train":
            rng = rng if rng is not None else np.random.default_rng()
            x = self._crop(x, rng)
            if self.flip and rng.random() < 0.5:
                x = flip_frames(x, flow=self.modality == "Flow")
            views = [x]
        elif self.mode == "val" or self.test_crops == 1:
            size = self.output_size
            views = [center_crop(scale_short_side(x, self.scale_size), size)]
        else:
            views = self._multi_crop(scale_short_side(x, self.scale_size))
        # one view (train, val): no stack, whose copy the NCHW reshape below would make a second time
        out = views[0].unsqueeze(0) if len(views) == 1 else torch.stack(views)  # (V, F, 3, S, S)
        out = to_uint8(out) if self.output == "uint8" else normalize(out, *clip_stats(self.modality))
        return out.reshape(-1, *out.shape[-2:]).contiguous()  # (V, F, 3, S, S) -> (V*F*3, S, S)

    def _multi_crop(self, x: torch.Tensor) -> list[torch.Tensor]:
        size = self.output_size
        h, w = x.shape[-2:]
        if self.test_crops == 3:  # GroupFullResSample: left, right, centre (no flip)
            ws, hs = (w - size) // 4, (h - size) // 4
            offsets = [(0, 2 * hs), (4 * ws, 2 * hs), (2 * ws, 2 * hs)]
            return [x[..., oy:oy + size, ox:ox + size] for ox, oy in offsets]
        views = []  # GroupOverSample: 4 corners + centre, each followed by its flip for 10 crops
        for ox, oy in fixed_offsets(w, h, size, size, more_fix_crop=False):
            crop = x[..., oy:oy + size, ox:ox + size]
            views.append(crop)
            if self.test_crops == 10:
                views.append(flip_frames(crop, flow=self.modality == "Flow"))
        return views


def build_transform(mode: str, *, input_size: int = 224, scale_size: int | None = None,
                    flip: bool = True, test_crops: int = 1, full_res: bool = False,
                    output: str = "float", modality: str = "RGB") -> ClipTransform:
    """The official pipeline for ``mode``; ``scale_size`` defaults to ``input_size * 256 // 224``."""
    scale = scale_size if scale_size is not None else input_size * 256 // 224
    return ClipTransform(mode=mode, input_size=input_size, scale_size=scale, flip=flip,
                         test_crops=test_crops, full_res=full_res, output=output, modality=modality)
