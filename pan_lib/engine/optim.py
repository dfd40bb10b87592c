"""The official optimiser parameter groups and learning-rate schedules (pan_official.md §6b, §8).

Parameter groups follow `get_optim_policies`: modules are visited in registration order and

| group | what | lr x | wd x |
|---|---|---|---|
| first_conv_weight | the first Conv in `model.modules()` (PA.shallow_conv for PA/Lite) | 5 (PA/Lite), 1 | 1 |
| first_conv_bias   | its bias                                                          | 10 (PA/Lite), 2 | 0 |
| normal_weight     | every other Conv weight (and Linear weights without fc_lr5)      | 1 | 1 |
| normal_bias       | every other Conv bias                                            | 2 | 0 |
| bn                | BatchNorm/GroupNorm/LayerNorm affine parameters                  | 1 | 0 |
| custom_ops        | parameters of any other leaf module                              | 1 | 1 |
| lr5_weight        | Linear weights (VAP TES + pred, or the TSN/TSM fc) with fc_lr5    | 5 | 1 |
| lr10_bias         | Linear biases with fc_lr5                                        | 10 | 0 |

Schedules are applied per epoch as in `adjust_learning_rate` (step: `0.1 ** #steps passed`;
cos: `0.5 (1 + cos(pi epoch / epochs))`), with an optional linear warm-up per iteration.
"""
from __future__ import annotations

import logging
import math
from typing import Iterable, Sequence

import torch
from torch import nn

from pan_lib.engine.config import OPTIMIZERS

log = logging.getLogger(__name__)

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm)
# modalities whose first conv is PA.shallow_conv, trained like the official Flow stem (x5 / x10)
FIRST_CONV_LR5 = ("PA", "Lite", "Flow")


def official_param_groups(model: nn.Module, modality: str | None = None, *, fc_lr5: bool = True) -> list[dict]:
    """Split `model`'s trainable parameters into the 8 official groups (carrying lr_mult/decay_mult/name).

    `modality` defaults to `model.modality` (PANNet); PA/Lite get the x5/x10 first-conv multipliers.
    Every trainable parameter lands in exactly one group (checked).
    """
    modality = modality if modality is not None else getattr(_unwrap(model), "modality", "RGB")
    first_lr = (5, 10) if modality in FIRST_CONV_LR5 else (1, 2)
    groups: dict[str, list[nn.Parameter]] = {k: [] for k in (
        "first_conv_weight", "first_conv_bias", "normal_weight", "normal_bias", "bn", "custom_ops",
        "lr5_weight", "lr10_bias")}
    seen_conv = False
    for module in _unwrap(model).modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if isinstance(module, _CONV):
            prefix = "normal" if seen_conv else "first_conv"
            seen_conv = True
            groups[f"{prefix}_weight"].append(module.weight)
            if module.bias is not None and module.bias.requires_grad:
                groups[f"{prefix}_bias"].append(module.bias)
        elif isinstance(module, nn.Linear):
            groups["lr5_weight" if fc_lr5 else "normal_weight"].append(module.weight)
            if module.bias is not None and module.bias.requires_grad:
                groups["lr10_bias" if fc_lr5 else "normal_bias"].append(module.bias)
        elif isinstance(module, _NORM):
            groups["bn"].extend(own)
        else:
            log.debug("parameters of %s go to custom_ops (lr x1, wd x1)", type(module).__name__)
            groups["custom_ops"].extend(own)
    mults = {"first_conv_weight": (first_lr[0], 1), "first_conv_bias": (first_lr[1], 0),
             "normal_weight": (1, 1), "normal_bias": (2, 0), "bn": (1, 0), "custom_ops": (1, 1),
             "lr5_weight": (5, 1), "lr10_bias": (10, 0)}
    out = [{"params": ps, "lr_mult": mults[name][0], "decay_mult": mults[name][1], "name": name}
           for name, ps in groups.items()]
    n_grouped = sum(len(g["params"]) for g in out)
    n_trainable = sum(1 for p in model.parameters() if p.requires_grad)
    if n_grouped != n_trainable:
        raise RuntimeError(f"parameter groups hold {n_grouped} tensors but the model has {n_trainable} "
                           "trainable ones (a parameter is registered outside a leaf module?)")
    return out


def build_optimizer(model: nn.Module, *, lr: float, momentum: float = 0.9, weight_decay: float = 1e-4,
                    modality: str | None = None, fc_lr5: bool = True, kind: str = "sgd",
                    group_lr: bool = True) -> torch.optim.Optimizer:
    """The optimiser over the official groups, lr/wd already multiplied in.

    `kind`: "sgd" (official: momentum, no Nesterov) or "adamw" (decoupled weight decay, for small
    networks trained from scratch). `group_lr=False` sets every group's lr multiplier to 1 (the
    x5/x10 multipliers are tuned for SGD on an ImageNet-initialised network); the weight-decay
    rules (none on BN and biases) stay.
    """
    if kind not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {kind!r}; valid: {', '.join(OPTIMIZERS)}")
    groups = official_param_groups(model, modality, fc_lr5=fc_lr5)
    for g in groups:
        if not group_lr:
            g["lr_mult"] = 1
        g["lr"] = lr * g["lr_mult"]
        g["weight_decay"] = weight_decay * g["decay_mult"]
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def lr_factor(epoch: int, *, epochs: int, lr_type: str = "step", lr_steps: Sequence[float] = (),
              warmup_epochs: float = 0.0, fraction: float = 1.0) -> float:
    """Multiplier of the base lr in epoch `epoch` (0-based).

    The official schedule changes at epoch boundaries (step: `0.1 ** #steps passed`; cos:
    `0.5 (1 + cos(pi epoch / epochs))`). The optional warm-up ramps linearly per iteration over the
    first `warmup_epochs`; `fraction` in (0, 1] is how far into the epoch the current step ends.
    """
    if lr_type == "step":
        factor = 0.1 ** sum(epoch >= s for s in lr_steps)
    elif lr_type == "cos":
        factor = 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    else:
        raise ValueError(f"unknown lr_type {lr_type!r}; valid: step, cos")
    progress_epochs = epoch + fraction
    if warmup_epochs > 0 and progress_epochs < warmup_epochs:
        factor *= progress_epochs / warmup_epochs
    return factor


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, weight_decay: float) -> None:
    """Apply `base_lr` / `weight_decay` to every group through its lr_mult / decay_mult."""
    for g in optimizer.param_groups:
        g["lr"] = base_lr * g.get("lr_mult", 1)
        g["weight_decay"] = weight_decay * g.get("decay_mult", 1)


def group_summary(groups: Iterable[dict]) -> list[dict]:
    """Name, tensor count, element count and multipliers of each group (for logs and notebooks)."""
    return [{"name": g["name"], "tensors": len(g["params"]), "params": sum(p.numel() for p in g["params"]),
             "lr_mult": g["lr_mult"], "decay_mult": g["decay_mult"]} for g in groups]


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model
