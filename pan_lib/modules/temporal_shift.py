"""Temporal shift (TSM): exchange a fraction of the channels with the neighbouring frames, for free.

``temporal_shift(x, T, fold_div=8)`` on ``[N*T, C, H, W]`` with ``fold = C // fold_div``::

    channels [0, fold)        <- the NEXT frame    (last frame zero-filled)
    channels [fold, 2*fold)   <- the PREVIOUS frame (first frame zero-filled)
    channels [2*fold, C)      unchanged

PAN (like TSM) puts the shift inside the residual branch of every ResNet block, before ``conv1``
("blockres"); ResNet-101 shifts only every second block of each stage. :func:`make_temporal_shift`
injects :class:`TemporalShift` wrappers into a torchvision ResNet, which is what makes shifted blocks
appear as ``layerS.B.conv1.net.weight`` in official checkpoints.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

SHIFT_PLACES = ("blockres", "block")


def temporal_shift(x: Tensor, n_segment: int, fold_div: int = 8) -> Tensor:
    """Shift ``1/fold_div`` of the channels one frame back and ``1/fold_div`` one frame forward.

    Args:
        x: ``[N*T, C, H, W]`` frame features, segment-major per video.
        n_segment: ``T``.
        fold_div: ``C // fold_div`` channels move each way.
    Returns:
        ``[N*T, C, H, W]`` (same memory format as ``x``).
    """
    nt, c, h, w = x.shape
    if nt % n_segment:
        raise ValueError(f"temporal_shift: batch dim {nt} is not a multiple of n_segment={n_segment}")
    x5 = x.view(nt // n_segment, n_segment, c, h, w)  # (N*T, C, H, W) -> (N, T, C, H, W)
    fold = c // fold_div
    out = torch.zeros_like(x5)
    out[:, :-1, :fold] = x5[:, 1:, :fold]  # from the next frame
    out[:, 1:, fold : 2 * fold] = x5[:, :-1, fold : 2 * fold]  # from the previous frame
    out[:, :, 2 * fold :] = x5[:, :, 2 * fold :]  # not shifted
    return out.view(nt, c, h, w)  # (N, T, C, H, W) -> (N*T, C, H, W)


class TemporalShift(nn.Module):
    """Wraps a layer: ``net(temporal_shift(x))``. The wrapped layer is ``.net`` (official key layout)."""

    def __init__(self, net: nn.Module, n_segment: int = 8, n_div: int = 8) -> None:
        super().__init__()
        self.net = net
        self.n_segment = n_segment
        self.fold_div = n_div

    def forward(self, x: Tensor) -> Tensor:
        return self.net(temporal_shift(x, self.n_segment, self.fold_div))

    def extra_repr(self) -> str:
        return f"n_segment={self.n_segment}, fold_div={self.fold_div}"


def make_temporal_shift(net: nn.Module, n_segment: int, n_div: int = 8, place: str = "blockres") -> nn.Module:
    """Insert temporal shift into a torchvision-style ResNet (in place; returns ``net``).

    ``place="blockres"`` (PAN/TSM default) wraps ``block.conv1`` (shift in the residual branch only);
    ``place="block"`` wraps the whole block. Networks with >= 23 blocks in ``layer3`` (ResNet-101)
    shift only blocks ``0, 2, 4, ...`` of every stage, as the official code does.
    """
    if place not in SHIFT_PLACES:
        raise ValueError(f"unknown shift place {place!r}; valid: {', '.join(SHIFT_PLACES)}")
    stages = [getattr(net, f"layer{i}", None) for i in range(1, 5)]
    if any(not isinstance(s, nn.Sequential) for s in stages):
        raise TypeError(f"make_temporal_shift expects a ResNet with layer1..layer4, got {type(net).__name__}")
    n_round = 2 if len(stages[2]) >= 23 else 1
    for stage in stages:
        for i, block in enumerate(stage):
            if i % n_round:
                continue
            if place == "blockres":
                block.conv1 = TemporalShift(block.conv1, n_segment=n_segment, n_div=n_div)
            else:
                stage[i] = TemporalShift(block, n_segment=n_segment, n_div=n_div)
    return net
