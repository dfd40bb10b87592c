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

  A 3 -> 8 channel convolution keeps a CPU's vector units mostly idle (8 outputs per pixel), so the
  differences are convolved two columns at a time: in channels-last memory, neighbouring columns of
  a frame are neighbouring 3-channel groups, so a frame of width W (zero-padded to an even width) *is*
  a 6-channel frame of width W/2 without moving data, and the same convolution written for column
  pairs (:func:`column_pair_weight`: 6 -> 16 channels, kernel k x (k//2 + 1), 14 % more
  multiply-adds) returns the 16 = 2 x 8 features of both columns, whose memory again *is* the
  ``[H, W, 8]`` feature map. Same sums, same result up to float rounding; about 1.5-2x faster on a
  2-core CPU. In bf16 on a CPU the 8-channel norm is a 1x1 convolution of the squares
  (:func:`pair_norms_by_conv`), faster than ``linalg.vector_norm`` there (``python -m pan_lib.bench cpu_tuning``).
* :func:`pa_with_first_frame` — PAN_Lite's stem input ``[N*T, 3 + (m-1), H, W]`` (first RGB frame of
  every snippet, then its PA maps), written into one channels-last tensor in inference instead of
  ``torch.cat`` of a channels-first PA map with a strided frame (which the stem then copies again).

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

# Snippet pixels per chunk on the CPU (snippets x H x W): ~5 MB of fp32 intermediates per snippet at 224^2;
# one clip (8 snippets) per chunk was the fastest setting measured at 224^2 on a 2-core CPU (bigger chunks fall
# out of cache). Smaller frames get more snippets per chunk: at 48^2 (the embedded recipe) a batch of 16 clips is
# one chunk instead of 16, where the per-chunk work (weight rewrite, small ops) dominated (one chunk against 8
# snippets per chunk: `python -m pan_lib.bench cpu_tuning`).
CPU_CHUNK_PIXELS = 8 * 224 * 224


def cpu_chunk_snippets(height: int, width: int) -> int:
    """Snippets per chunk on the CPU for frames of ``height x width`` (:data:`CPU_CHUNK_PIXELS`)."""
    return max(1, CPU_CHUNK_PIXELS // (height * width))


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


def column_pair_weight(weight: Tensor) -> Tensor:
    """The conv ``[C, 3, k, k]`` (padding k//2; k = 3, 7, 11, ...: PA's is 7) rewritten for frames whose
    column pairs are stacked as channels: ``[2C, 6, k, k//2 + 1]``, used with padding
    ``(k//2, (k//2 - 1)//2)`` on a frame with one zero column on the left (so pair ``L`` holds columns
    ``2L-1, 2L``).

    Output channel ``dx*C + c`` is channel ``c`` of output column ``2j + dx``; input channel ``b*3 + ci``
    is channel ``ci`` of the pair's column ``b``; tap ``kL`` of the pair kernel covers original tap
    ``2*kL + b - dx`` (zero outside ``0..k-1``).
    """
    c, ci, kh, kw = weight.shape
    if kw % 4 != 3:  # the tap alignment below holds when k//2 is odd
        raise ValueError(f"column_pair_weight needs a kernel width of 3, 7, 11, ... (k % 4 == 3), got {kw}")
    pair_taps = kw // 2 + 1
    padded = F.pad(weight, (1, 1))  # (C, ci, k, k) -> (C, ci, k, k+2): tap t at index t+1, zeros at both ends
    dx = torch.arange(2, device=weight.device).view(2, 1, 1)
    b = torch.arange(2, device=weight.device).view(1, 2, 1)
    kl = torch.arange(pair_taps, device=weight.device).view(1, 1, pair_taps)
    taps = padded[..., 2 * kl + b - dx + 1]  # (C, ci, k, 2, 2, k//2+1) = (c, ci, ky, dx, b, kL)
    # (c, ci, ky, dx, b, kL) -> (dx, c, b, ci, ky, kL) -> (2C, 2ci, k, k//2+1)
    return taps.permute(3, 0, 4, 1, 2, 5).reshape(2 * c, 2 * ci, kh, pair_taps)


def pair_norms_by_conv(feats: Tensor, inplace: bool = False) -> Tensor:
    """L2 over each column's features of the column-pair convolution's output: ``[P, 2C, H, W2] -> [P, 2, H, W2]``.

    Channel ``dx*C + c`` of `feats` is feature ``c`` of column ``2j + dx`` (:func:`column_pair_weight`);
    output channel ``dx`` is ``sqrt(sum_c feats[dx*C + c]^2)``. The sum of the squares is a 1x1
    convolution with a block of ones (``[2, 2C, 1, 1]``), which oneDNN runs in bf16 on a CPU faster than
    ``linalg.vector_norm`` reduces an innermost dimension of 8 (``python -m pan_lib.bench cpu_tuning``,
    at 224²). Same sums; in bf16 the squares are
    rounded before they are added (relative error ~1e-3 on a bf16 result). Used for bf16 on the CPU
    only: in fp32 the norm is faster, and in fp16 the squares of PA's ``1e-6`` would underflow.
    ``inplace=True`` (inference, when `feats` is not needed afterwards) squares `feats` in place: no
    second 2C-channel buffer, whose first touch costs as much as the squaring.
    """
    c2 = feats.shape[1]
    ones = torch.zeros(2, c2, 1, 1, dtype=feats.dtype, device=feats.device)
    ones[0, :c2 // 2] = 1
    ones[1, c2 // 2:] = 1
    squares = feats.square_() if inplace else feats * feats
    return F.conv2d(squares, ones).sqrt_()  # (P, 2C, H, W2) -> (P, 2, H, W2), channels-last kept


def _autocast_dtype(tensor: Tensor) -> torch.dtype:
    """The dtype a conv on `tensor` computes in: autocast's lower precision when enabled, else its own."""
    device_type = tensor.device.type
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return tensor.dtype


def _needs_grad(tensor: Tensor, *params: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (tensor, *params))


def _pa_from_differences(snippets: Tensor, weight: Tensor, bias: Tensor | None, out: Tensor | None = None) -> Tensor:
    """``[S, m, 3, H, W]`` -> ``[S, m-1, H, W]`` by convolving the frame differences, two columns at a time
    (module docstring). ``out`` (inference only): an ``[S, m-1, H, W]`` tensor of any strides to write into."""
    s, m, _, h, w = snippets.shape
    pairs = s * (m - 1)
    k = weight.shape[-1]
    padded_w = 2 * ((w + 1) // 2 + 1)  # one zero column on the left, one (two for odd W) on the right: even
    if _needs_grad(snippets, weight, bias):
        diffs = (snippets[:, :-1] - snippets[:, 1:]).permute(0, 1, 3, 4, 2)  # (S, m-1, 3, H, W) -> (S, m-1, H, W, 3)
        diffs = diffs.reshape(pairs, h, w, 3)  # (S, m-1, H, W, 3) -> (S*(m-1), H, W, 3)
        diffs = F.pad(diffs, (0, 0, 1, padded_w - w - 1))  # zero columns: (S*(m-1), H, W_pad, 3), contiguous
    else:  # write the differences straight into the padded NHWC buffer (and the autocast dtype): one pass
        diffs = torch.empty((pairs, h, padded_w, 3), dtype=_autocast_dtype(snippets), device=snippets.device)
        diffs[:, :, 0].zero_()
        diffs[:, :, w + 1:].zero_()
        inner = diffs[:, :, 1:w + 1].view(s, m - 1, h, w, 3)  # (S*(m-1), H, W, 3) -> (S, m-1, H, W, 3)
        torch.sub(snippets[:, :-1], snippets[:, 1:], out=inner.permute(0, 1, 4, 2, 3))  # as (S, m-1, 3, H, W)
    # column pairs as channels, no copy: (S*(m-1), H, W_pad, 3) -> (S*(m-1), H, W_pad/2, 6) -> NCHW view, channels-last
    column_pairs = diffs.view(pairs, h, padded_w // 2, 6).permute(0, 3, 1, 2)
    # The conv bias cancels in the difference; PA's +1e-6 (added to every channel before the norm) is
    # exactly a per-channel bias, so it rides in the conv for free. `bias - bias` keeps the real bias in
    # the graph with an exactly zero gradient, so optimisers and DDP see every parameter used.
    eps_bias = torch.full((weight.shape[0],), PA_EPS, dtype=weight.dtype, device=weight.device)
    if bias is not None:
        eps_bias = eps_bias + (bias - bias)
    feats = F.conv2d(column_pairs, column_pair_weight(weight), eps_bias.repeat(2),
                     padding=(k // 2, (k // 2 - 1) // 2))  # (S*(m-1), 2*8, H, W_pad/2 - 1) channels-last
    if feats.dtype == torch.bfloat16 and feats.device.type == "cpu":
        # (S*(m-1), 2, H, W_pad/2 - 1) channels-last -> NHWC (S*(m-1), H, W_pad/2 - 1, 2) -> (S*(m-1), H, W_pad - 2), first W
        norms = pair_norms_by_conv(feats, inplace=not feats.requires_grad)  # (S*(m-1), 2, H, W_pad/2 - 1)
        pa = norms.permute(0, 2, 3, 1).reshape(pairs, h, padded_w - 2)[:, :, :w]
        if out is not None:
            return out.copy_(pa.view(s, m - 1, h, w))  # (S*(m-1), H, W) -> (S, m-1, H, W)
        return pa.reshape(s, m - 1, h, w)  # (S*(m-1), H, W) -> (S, m-1, H, W)
    # (S*(m-1), 16, H, W_pad/2 - 1) -> NHWC (S*(m-1), H, W_pad/2 - 1, 2*8) -> (S*(m-1), H, W_pad - 2, 8), first W columns
    feats = feats.permute(0, 2, 3, 1).reshape(pairs, h, padded_w - 2, weight.shape[0])[:, :, :w]
    if out is not None:
        # (S*(m-1), H, W, 8) -> (S, m-1, H, W, 8); L2 over the 8 channels, written into `out`
        return torch.linalg.vector_norm(feats.view(s, m - 1, h, w, -1), ord=2, dim=-1, out=out)
    pa = torch.linalg.vector_norm(feats, ord=2, dim=-1)  # L2 over the 8 channels (innermost): (S*(m-1), H, W)
    return pa.view(s, m - 1, h, w)  # (S*(m-1), H, W) -> (S, m-1, H, W)


def persistence_of_appearance(
    frames: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    n_length: int = 4,
    *,
    chunk_snippets: int | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """Fast PA: same maths as :func:`pa_reference_loop` (within float rounding), vectorised.

    Args:
        frames: ``[N*T*m, 3, H, W]`` (any layout holding that many RGB frames), segment-major.
        weight: shallow conv weight ``[8, 3, k, k]``.
        bias: shallow conv bias; it cancels in the difference and only gets a zero gradient.
        n_length: frames per snippet ``m``.
        chunk_snippets: snippets per chunk; default :func:`cpu_chunk_snippets` on the CPU, all at once
            on accelerators.
        out: inference only (no gradient): an ``[N*T, m-1, H, W]`` tensor of any strides and dtype to
            write the maps into (e.g. channels of a channels-last stem input, see :func:`pa_with_first_frame`).
    Returns:
        ``[N*T, m-1, H, W]`` (non-negative, unnormalised); ``out`` when given.
    """
    snippets = _split_frames(frames, n_length)  # (N*T, m, 3, H, W)
    if out is not None and _needs_grad(snippets, weight, bias):
        raise ValueError("persistence_of_appearance(out=...) is for inference: it cannot record gradients")
    if chunk_snippets is None:
        h, w = snippets.shape[-2:]
        chunk_snippets = cpu_chunk_snippets(h, w) if snippets.device.type == "cpu" else snippets.shape[0]
    if snippets.shape[0] <= chunk_snippets:
        return _pa_from_differences(snippets, weight, bias, out)
    if out is not None:
        for chunk, target in zip(snippets.split(chunk_snippets, dim=0), out.split(chunk_snippets, dim=0)):
            _pa_from_differences(chunk, weight, bias, target)
        return out
    parts = [_pa_from_differences(chunk, weight, bias) for chunk in snippets.split(chunk_snippets, dim=0)]
    return torch.cat(parts, dim=0)  # chunks of (s, m-1, H, W) -> (N*T, m-1, H, W)


def pa_with_first_frame(frames: Tensor, weight: Tensor, bias: Tensor | None = None, n_length: int = 4) -> Tensor:
    """PAN_Lite's stem input: every snippet's first RGB frame, then its PA maps.

    Args:
        frames, weight, bias, n_length: as :func:`persistence_of_appearance`.
    Returns:
        ``[N*T, 3 + (m-1), H, W]``, equal to ``torch.cat([first_frame, PA], dim=1)`` (the frame cast to
        PA's dtype). In inference it is one channels-last tensor (what a channels-last stem reads)
        in the autocast dtype, written in place: no concatenation, no layout or dtype copy in the stem.
    """
    snippets = _split_frames(frames, n_length)  # (N*T, m, 3, H, W)
    s, m, _, h, w = snippets.shape
    if _needs_grad(snippets, weight, bias):
        pa = persistence_of_appearance(frames, weight, bias, n_length)  # (N*T, m-1, H, W)
        return torch.cat([snippets[:, 0].to(pa.dtype), pa], dim=1)  # (N*T, 3 + m-1, H, W)
    dtype = _autocast_dtype(snippets)
    if frames.dtype != dtype:
        # cast the clip once in its own dense layout (a cast into a strided layout is slower on a CPU), then
        # make each frame channels-last: the differences below then read and write NHWC memory contiguously
        # instead of transposing 3-channel pixels element by element. Same values: the copies move bf16 data
        # unchanged (tests/test_pa.py).
        frames = frames.to(dtype).reshape(-1, 3, h, w).contiguous(memory_format=torch.channels_last)
        snippets = _split_frames(frames, n_length)  # (N*T*m, 3, H, W) per-frame NHWC -> (N*T, m, 3, H, W)
    stem = torch.empty((s, 3 + m - 1, h, w), dtype=dtype, device=snippets.device, memory_format=torch.channels_last)
    stem[:, :3].copy_(snippets[:, 0])  # first frame of every snippet: (N*T, 3, H, W)
    persistence_of_appearance(frames, weight, bias, n_length, out=stem[:, 3:])  # (N*T, m-1, H, W)
    return stem


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

    def with_first_frame(self, frames: Tensor) -> Tensor:
        """PAN_Lite's stem input ``[N*T*m, 3, H, W] -> [N*T, 3 + (m-1), H, W]`` (first frame, then PA);
        one channels-last tensor in inference (:func:`pa_with_first_frame`)."""
        if self.implementation == "reference":
            pa = self(frames)  # (N*T, m-1, H, W)
            first = _split_frames(frames, self.n_length)[:, 0]  # (N*T, m, 3, H, W) -> (N*T, 3, H, W)
            return torch.cat([first.to(pa.dtype), pa], dim=1)  # (N*T, 3 + m-1, H, W)
        return pa_with_first_frame(frames, self.shallow_conv.weight, self.shallow_conv.bias, self.n_length)

    def extra_repr(self) -> str:
        return f"n_length={self.n_length}, implementation={self.implementation!r}"
