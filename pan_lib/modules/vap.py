"""VAP (Various-timescale Aggregation Pooling): PAN's video-level head.

Per-frame features are max-pooled over several temporal scales (slots), each slot is weighted by a
small MLP ("TES") with a softmax, and the weighted sum goes through dropout and a linear classifier::

    [N*T, D] --view--> [N, D, T, 1, 1]
        |-- max over T frames                        (s = 1): 1 slot
        |-- max over frames {j, j+2, ...}, j < 2     (s = 2): 2 slots        cat -> [N, S, D]
        |-- max over frames {j, j+4, ...}, j < 4     (s = 4): 4 slots        S = 2^L - 1
    [N, S, D] --mean over D--> [N, S] --TES (S -> 4S -> S) + softmax--> w [N, S]
    sum_s w_s * slot_s --> [N, D] --dropout--> pred --> logits [N, num_class]

with ``L = int(log2(T))`` levels (T = 8: scales 1, 2, 4 and 7 slots). Parameter names and
initialisation follow the official module (``TES.0.weight``, ``TES.2.weight``, ``pred.weight``,
``pred.bias``; every Linear ~ N(0, 0.001), pred bias 0); the pools are an ``nn.ModuleList`` of the
official ``MaxPool3d`` layers.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def vap_timescales(n_segment: int) -> list[int]:
    """Temporal scales ``[1, 2, 4, ...]`` of VAP for ``n_segment`` frames (official: ``int(log2(T))`` levels).

    Every scale must divide ``T`` (otherwise the official pooling produces more slots than TES has
    inputs and crashes); such ``T`` raise a ``ValueError`` here instead.
    """
    if n_segment < 2:
        raise ValueError(f"VAP needs at least 2 segments, got n_segment={n_segment}")
    levels = int(math.log(n_segment, 2))
    scales = [2**i for i in range(levels)]
    if n_segment % scales[-1]:
        valid = [t for t in range(2, 33) if t % (2 ** (int(math.log(t, 2)) - 1)) == 0]
        raise ValueError(
            f"VAP cannot pool n_segment={n_segment}: its largest timescale {scales[-1]} does not divide it "
            f"(the official head would crash); valid segment counts up to 32: {valid}"
        )
    return scales


def vap_slots(features: Tensor, n_segment: int) -> Tensor:
    """Multi-timescale max pooling as a pure function: ``[N*T, D] -> [N, S, D]``.

    Slot order as in the official head: scale 1; scale 2 with j = 0, 1; scale 4 with j = 0..3; ...
    Slot (s, j) is the maximum over frames ``{j, j+s, j+2s, ...}``.
    """
    d = features.shape[-1]
    x = features.reshape(-1, n_segment, d)  # (N*T, D) -> (N, T, D)
    slots = []
    for s in vap_timescales(n_segment):
        # frame t = k*s + j  ->  (N, T//s, s, D); max over k gives slot j of scale s
        slots.append(x.view(x.shape[0], n_segment // s, s, d).amax(dim=1))  # (N, s, D)
    return torch.cat(slots, dim=1)  # (N, S, D)


def vap_aggregate(slots: Tensor, slot_logits: Tensor) -> Tensor:
    """Softmax-weighted sum of the slots: ``[N, S, D]``, ``[N, S] -> [N, D]``."""
    weights = torch.softmax(slot_logits, dim=1)  # (N, S)
    return (slots * weights.unsqueeze(2)).sum(dim=1)  # (N, S, D) * (N, S, 1) -> (N, D)


class VAP(nn.Module):
    """``VAP(n_segment, feature_dim, num_class, dropout_ratio)``: ``[N*T, D] -> [N, num_class]``."""

    def __init__(self, n_segment: int, feature_dim: int, num_class: int, dropout_ratio: float = 0.5) -> None:
        super().__init__()
        self.n_segment = n_segment
        self.timescales = vap_timescales(n_segment)
        self.num_slots = sum(self.timescales)  # 2^L - 1
        # official pooling: kernel T//s over time, dilation s, stride 1 -> s output positions (slots)
        self.pools = nn.ModuleList(
            nn.MaxPool3d(kernel_size=(n_segment // s, 1, 1), stride=1, padding=0, dilation=(s, 1, 1))
            for s in self.timescales
        )
        self.TES = nn.Sequential(
            nn.Linear(self.num_slots, self.num_slots * 4, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(self.num_slots * 4, self.num_slots, bias=False),
        )
        self.dropout = nn.Dropout(p=dropout_ratio)
        self.pred = nn.Linear(feature_dim, num_class)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.001)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0.0)

    def slots(self, features: Tensor) -> Tensor:
        """``[N*T, D] -> [N, S, D]`` with the official MaxPool3d layers (equal to :func:`vap_slots`)."""
        d = features.shape[-1]
        x = features.reshape(-1, self.n_segment, d, 1, 1).permute(0, 2, 1, 3, 4)  # (N*T, D) -> (N, D, T, 1, 1)
        pooled = torch.cat([pool(x) for pool in self.pools], dim=2)  # (N, D, S, 1, 1)
        return pooled.flatten(2).transpose(1, 2)  # (N, D, S, 1, 1) -> (N, S, D)

    def slot_weights(self, slots: Tensor) -> Tensor:
        """Softmax slot weights ``[N, S]`` from ``[N, S, D]`` (global average over D, then TES)."""
        return torch.softmax(self.TES(slots.mean(dim=2)), dim=1)

    def forward(self, features: Tensor) -> Tensor:
        slots = self.slots(features)  # (N, S, D)
        video = vap_aggregate(slots, self.TES(slots.mean(dim=2)))  # (N, D)
        return self.pred(self.dropout(video))  # (N, num_class)

    def extra_repr(self) -> str:
        return f"n_segment={self.n_segment}, timescales={self.timescales}, slots={self.num_slots}"
