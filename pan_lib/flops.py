"""FLOPs and parameters per model with ``torch.utils.flop_counter`` (no hand-written counter).

``FlopCounterMode`` counts 2 FLOPs per multiply-add of convolutions and matrix products; the paper's
"FLOPs" are multiply-adds (MACs), so :func:`count_flops` reports both. Element-wise work (BN, ReLU,
pooling, the temporal shift, PA's distance) is not counted — neither was it in the official numbers.

PA convention. Our fast PA convolves the ``m-1`` frame *differences* (3 convolutions per snippet)
where the official module convolves all ``m`` frames (4); the result is the same (the conv is
linear). ``convention="official"`` (default) counts PA as the official model runs it, so the figures
compare with the paper (ResNet-50, 8 segments, 224²: RGB 32.70 G, PA 34.59 G, Lite 35.53 G MACs);
``macs_executed`` is what our implementation actually computes (PA's shallow conv 6/7 of that: 3 differences
instead of 4 frames, convolved as column pairs with 8/7 of the multiply-adds).
The count runs on a ``meta`` copy of the model: no memory, no compute, milliseconds even for R101.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pan_lib.modules.pa import PA

CONVENTIONS = ("official", "executed")


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


def _input_channels(model: nn.Module) -> int:
    """Channels per segment of ``model``'s clip (``PANNet.input_channels``; RGB frames otherwise)."""
    return getattr(model, "input_channels", 3 * model.new_length)


def example_input(model: nn.Module, batch: int, h: int, w: int, *,
                  device: torch.device | str = "cpu") -> torch.Tensor | dict[str, torch.Tensor]:
    """Zeros shaped like ``model``'s input: ``[batch, T*m*c, h, w]``, or ``{member: clip}`` for an
    ensemble with a member that does not read RGB frames (Flow)."""
    members = getattr(model, "members", None)
    if members is not None and any(getattr(m, "channels_per_frame", 3) != 3 for m in members.values()):
        return {name: torch.zeros(batch, m.num_segments * _input_channels(m), h, w, device=device)
                for name, m in members.items()}
    return torch.zeros(batch, model.num_segments * _input_channels(model), h, w, device=device)


def _count(model: nn.Module, x: torch.Tensor | dict[str, torch.Tensor]) -> tuple[int, dict[str, int]]:
    with FlopCounterMode(display=False, depth=None) as counter, torch.no_grad():
        model(x)
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    return counter.get_total_flops(), per_module


def count_flops(
    model: nn.Module,
    input_size: int | tuple[int, int] = 224,
    batch: int = 1,
    *,
    convention: str = "official",
    on_meta: bool = True,
) -> dict[str, Any]:
    """Multiply-adds, FLOPs and parameters of one forward pass of ``batch`` clips.

    Args:
        model: a :class:`pan_lib.models.PANNet` or :class:`pan_lib.ensemble.Ensemble` (anything with
            ``num_segments`` and ``new_length``).
        input_size: side (or ``(H, W)``) of the frames.
        batch: clips per forward.
        convention: ``"official"`` (PA counted as the official code runs it, comparable with the
            paper) or ``"executed"`` (what our fast PA computes); both numbers are returned, this picks
            which one fills ``macs``/``flops``.
        on_meta: count on a meta-device copy (default; instant). ``False`` runs the model on its device.
    Returns:
        dict with ``macs``, ``gmacs``, ``flops`` (= 2 x macs), ``gflops``, ``macs_official``,
        ``macs_executed``, ``params``, ``input_shape``, ``convention``, ``by_module`` (MACs of the
        direct children, or of the members for an ensemble, official convention).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
    model = _unwrap(model)
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    t, m = getattr(model, "num_segments", None), getattr(model, "new_length", None)
    if t is None or m is None:
        raise TypeError(f"count_flops needs a model with num_segments and new_length, got {type(model).__name__}")
    params = sum(p.numel() for p in model.parameters())
    if on_meta:
        work = copy.deepcopy(model).to("meta")
        device = torch.device("meta")
    else:
        work = model
        device = next(model.parameters()).device
    x = example_input(work, batch, h, w, device=device)
    was_training = work.training
    work.eval()
    pa_modules = [mod for mod in work.modules() if isinstance(mod, PA)]
    saved = [mod.implementation for mod in pa_modules]
    try:
        executed, _ = _count(work, x)
        for mod in pa_modules:
            mod.implementation = "reference"
        official, per_module = _count(work, x)
    finally:
        for mod, impl in zip(pa_modules, saved):
            mod.implementation = impl
        work.train(was_training)
    root = type(work).__name__
    prefix = f"{root}.members." if hasattr(work, "members") else f"{root}."
    by_module = {k[len(prefix):]: v // 2 for k, v in per_module.items() if k.startswith(prefix) and "." not in k[len(prefix):]}
    flops = official if convention == "official" else executed
    return {
        "macs": flops // 2,
        "gmacs": flops / 2e9,
        "flops": flops,
        "gflops": flops / 1e9,
        "macs_official": official // 2,
        "macs_executed": executed // 2,
        "params": params,
        "input_shape": tuple(x.shape) if isinstance(x, torch.Tensor) else {k: tuple(v.shape) for k, v in x.items()},
        "convention": convention,
        "by_module": by_module,
    }
