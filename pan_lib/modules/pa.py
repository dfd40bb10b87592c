"""Persistence of Appearance (PA): PAN's motion cue, computed from RGB frames alone.

For every snippet of ``m`` consecutive frames, one shared ``Conv2d(3, 8, 7, 1, 3)`` maps each frame
to 8 low-level feature channels; PA between neighbouring frames is the per-pixel L2 distance of
those features over the 8 channels::

    PA_i(p) = || F_i(p) - F_{i+1}(p) + 1e-6 ||_2 ,   i = 0 .. m-2

    frames [N*T*m, 3, H, W] --conv 7x7 (3->8)--> [N*T*m, 8, H, W]
                            --L2 over 8 ch of neighbouring differences--> PA [N*T, m-1, H, W]

Two implementations of the same maths live here:

* :func:`pa_reference_loop` — written like the official ``ops/PAN_modules.py`` (conv every frame,
  Python loop over frame pairs, norm over dim 1 of NCHW). It is the readable reference and the
  "naive" baseline of the ``pa_models`` benchmark.
* :func:`persistence_of_appearance` — the fast path used by :class:`PA`. The convolution is linear
  and its bias cancels in the difference, so ``conv(x_i) - conv(x_{i+1}) == conv_nobias(x_i - x_{i+1})``:
  it convolves the ``m-1`` frame differences (3 convolutions per snippet instead of 4) in
  channels-last layout (the 8-channel norm then runs over the innermost dimension) and processes
  snippets in chunks on the CPU to keep intermediates in cache-friendly sizes. The ``+1e-6`` stays
  inside the norm (it is added to every channel, i.e. it is a conv bias, and rides in the conv), so
  identical frames give a finite gradient.

The official module no longer runs on PyTorch >= 1.11 (``nn.PairwiseDistance`` changed the dimension
it reduces); both functions here reduce explicitly over the channel dimension, which is what the
published numbers were computed with.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PA_EPS = 1e-6  # nn.PairwiseDistance's default eps, added to the difference before the norm
PA_CHANNELS = 8  # output channels of the shared shallow convolution
PA_KERNEL = 7

# Snippets per chunk on the CPU: ~5 MB of fp32 intermediates per snippet at 224^2; one clip (8 snippets)
# per chunk was the fastest setting measured on a 2-core CPU (bigger chunks fall out of cache).
CPU_CHUNK_SNIPPETS = 8


def _split_frames(frames: Tensor, n_length: int) -> Tensor:
    """Any leading layout ``[..., k*3, H, W]`` -> ``[S, m, 3, H, W]`` with S snippets of m frames."""
    if n_length < 2:
        raise ValueError(f"PA needs at least 2 frames per snippet, got n_length={n_length}")
    h, w = frames.shape[-2:]
    total = frames.numel() // (3 * h * w)
    if frames.numel() != total * 3 * h * w or total % n_length:
        raise ValueError(
            f"PA expects frames shaped [N*T*{n_length}, 3, H, W] (or any layout with that many RGB "
            f"frames), got {tuple(frames.shape)}: {total} frames is not a multiple of n_length={n_length}"
        )
    return frames.reshape(-1, n_length, 3, h, w)  # (N*T*m, 3, H, W) -> (N*T, m, 3, H, W)


def pa_reference_loop(frames: Tensor, weight: Tensor, bias: Tensor | None, n_length: int = 4) -> Tensor:
    """PA exactly as the official code computes it: conv every frame, loop over pairs, NCHW.

    Args:
        frames: ``[N*T*m, 3, H, W]`` (any layout holding that many RGB frames), segment-major.
        weight, bias: the shallow conv's ``[8, 3, 7, 7]`` weight and ``[8]`` bias.
        n_length: frames per snippet ``m``.
    Returns:
        ``[N*T, m-1, H, W]``.
    """
    h, w = frames.shape[-2:]
    snippets = _split_frames(frames, n_length)
    x = snippets.reshape(-1, 3, h, w)  # (N*T, m, 3, H, W) -> (N*T*m, 3, H, W)
    feats = F.conv2d(x, weight, bias, stride=1, padding=weight.shape[-1] // 2)  # (N*T*m, 8, H, W)
    c = feats.shape[1]
    feats = feats.view(-1, n_length, c, h * w)  # (N*T*m, 8, H, W) -> (N*T, m, 8, H*W)
    distances = []
    for i in range(n_length - 1):
        # L2 over the 8 channels (dim 1 of [N*T, 8, H*W]), eps added to the difference like PairwiseDistance
        d = torch.linalg.vector_norm(feats[:, i] - feats[:, i + 1] + PA_EPS, ord=2, dim=1)  # (N*T, H*W)
        distances.append(d.unsqueeze(1))  # (N*T, 1, H*W)
    pa = torch.cat(distances, dim=1)  # (N*T, m-1, H*W)
    return pa.view(-1, n_length - 1, h, w)  # (N*T, m-1, H*W) -> (N*T, m-1, H, W)


def _pa_from_differences(snippets: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``[S, m, 3, H, W]`` -> ``[S, m-1, H, W]`` by convolving the frame differences."""
    s, m, _, h, w = snippets.shape
    device_type = snippets.device.type
    if snippets.requires_grad and torch.is_grad_enabled():
        diffs = (snippets[:, :-1] - snippets[:, 1:]).reshape(-1, 3, h, w)  # (S, m-1, 3, H, W) -> (S*(m-1), 3, H, W)
        diffs = diffs.contiguous(memory_format=torch.channels_last)
    else:  # write the differences straight into channels-last (and the autocast dtype): one pass, no copies
        autocast = torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type)
        dtype = torch.get_autocast_dtype(device_type) if autocast else snippets.dtype
        diffs = torch.empty((s * (m - 1), 3, h, w), dtype=dtype, device=snippets.device,
                            memory_format=torch.channels_last)
        torch.sub(snippets[:, :-1], snippets[:, 1:], out=diffs.view(s, m - 1, 3, h, w))  # (S*(m-1), 3, H, W) NHWC
    # The conv bias cancels in the difference; PA's +1e-6 (added to every channel before the norm) is
    # exactly a per-channel bias, so it rides in the conv for free. `bias - bias` keeps the real bias in
    # the graph with an exactly zero gradient, so optimisers and DDP see every parameter used.
    eps_bias = torch.full((weight.shape[0],), PA_EPS, dtype=weight.dtype, device=weight.device)
    if bias is not None:
        eps_bias = eps_bias + (bias - bias)
    feats = F.conv2d(diffs, weight, eps_bias, stride=1, padding=weight.shape[-1] // 2)  # (S*(m-1), 8, H, W) NHWC
    pa = torch.linalg.vector_norm(feats, ord=2, dim=1)  # L2 over the 8 channels (innermost in NHWC): (S*(m-1), H, W)
    return pa.view(s, m - 1, h, w)  # (S*(m-1), H, W) -> (S, m-1, H, W)


def persistence_of_appearance(
    frames: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    n_length: int = 4,
    *,
    chunk_snippets: int | None = None,
) -> Tensor:
    """Fast PA: same maths as :func:`pa_reference_loop` (within float rounding), vectorised.

    Args:
        frames: ``[N*T*m, 3, H, W]`` (any layout holding that many RGB frames), segment-major.
        weight: shallow conv weight ``[8, 3, k, k]``.
        bias: shallow conv bias; it cancels in the difference and only gets a zero gradient.
        n_length: frames per snippet ``m``.
        chunk_snippets: snippets per chunk; default :data:`CPU_CHUNK_SNIPPETS` on the CPU, all at once
            on accelerators.
    Returns:
        ``[N*T, m-1, H, W]`` (non-negative, unnormalised).
    """
    snippets = _split_frames(frames, n_length)  # (N*T, m, 3, H, W)
    if chunk_snippets is None:
        chunk_snippets = CPU_CHUNK_SNIPPETS if snippets.device.type == "cpu" else snippets.shape[0]
    if snippets.shape[0] <= chunk_snippets:
        return _pa_from_differences(snippets, weight, bias)
    parts = [_pa_from_differences(chunk, weight, bias) for chunk in snippets.split(chunk_snippets, dim=0)]
    return torch.cat(parts, dim=0)  # chunks of (s, m-1, H, W) -> (N*T, m-1, H, W)


class PA(nn.Module):
    """PA module with the official constructor, parameter names and initialisation.

    ``PA(n_length=4)(x)``: ``[N*T*m, 3, H, W] -> [N*T, m-1, H, W]``; the input may use any layout
    holding ``N*T*m`` RGB frames (e.g. ``[N, T*m*3, H, W]``). Parameters: ``shallow_conv.weight``
    ``[8, 3, 7, 7]`` ~ N(0, 0.001), ``shallow_conv.bias`` ``[8]`` = 0.

    ``implementation`` selects ``"fast"`` (default, :func:`persistence_of_appearance`) or
    ``"reference"`` (:func:`pa_reference_loop`, e.g. to count FLOPs the way the official model runs).
    """

    IMPLEMENTATIONS = ("fast", "reference")

    def __init__(self, n_length: int = 4, implementation: str = "fast") -> None:
        super().__init__()
        if n_length < 2:
            raise ValueError(f"PA needs n_length >= 2 frames per snippet, got {n_length}")
        self.n_length = n_length
        self.implementation = implementation
        self.shallow_conv = nn.Conv2d(3, PA_CHANNELS, kernel_size=PA_KERNEL, stride=1, padding=PA_KERNEL // 2)
        nn.init.normal_(self.shallow_conv.weight, 0.0, 0.001)
        nn.init.constant_(self.shallow_conv.bias, 0.0)

    @property
    def implementation(self) -> str:
        return self._implementation

    @implementation.setter
    def implementation(self, value: str) -> None:
        if value not in self.IMPLEMENTATIONS:
            raise ValueError(f"unknown PA implementation {value!r}; valid: {', '.join(self.IMPLEMENTATIONS)}")
        self._implementation = value

    def forward(self, frames: Tensor) -> Tensor:
        w, b = self.shallow_conv.weight, self.shallow_conv.bias
        if self.implementation == "reference":
            return pa_reference_loop(frames, w, b, self.n_length)
        return persistence_of_appearance(frames, w, b, self.n_length)

    def extra_repr(self) -> str:
        return f"n_length={self.n_length}, implementation={self.implementation!r}"
