"""BatchNorm statistics over all processes of a DDP run (``sync_bn=True``), on GPUs and on the CPU.

``torch.nn.SyncBatchNorm`` refuses CPU tensors (and DDP refuses it in a CPU model), so a gloo run
(the CPU tests, a CPU-only cluster) could not use it. :func:`convert_sync_batchnorm` converts every
BatchNorm of a model on CUDA to torch's ``SyncBatchNorm``, and on the CPU to
:class:`CrossProcessBatchNorm`: a ``BatchNorm2d`` (same parameters, buffers and state-dict keys; the
official parameter groups treat it as BatchNorm) whose training forward computes the batch statistics
with two autograd-aware all-reduces (sum -> mean, then sum of squared deviations -> variance), which is
what one process would compute on the whole global batch.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import Tensor, nn


def batch_norm_across_processes(x: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
                                running_var: Tensor | None, momentum: float, eps: float,
                                group: dist.ProcessGroup | None = None) -> Tensor:
    """Training-mode batch norm of ``x`` [N, C, ...] with mean/variance over the samples of every process
    in ``group``; updates the running statistics (unbiased variance, as ``F.batch_norm``)."""
    channels = x.shape[1]
    dims = [0, *range(2, x.dim())]
    shape = [1, channels] + [1] * (x.dim() - 2)   # per-channel values broadcast over [N, C, ...]
    count = x.new_tensor([x.numel() // channels])
    totals = dist_fn.all_reduce(torch.cat([x.sum(dims), count]), group=group)  # [C + 1]: sums, samples
    n = totals[channels]
    mean = totals[:channels] / n
    centred = x - mean.view(shape)
    var = dist_fn.all_reduce((centred * centred).sum(dims), group=group) / n  # biased, as BN normalises
    if running_mean is not None and running_var is not None:
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
            running_var.mul_(1 - momentum).add_(var.detach() * (n / (n - 1)), alpha=momentum)
    out = centred * torch.rsqrt(var.view(shape) + eps)
    if weight is not None:
        out = out * weight.view(shape)
    if bias is not None:
        out = out + bias.view(shape)
    return out


class CrossProcessBatchNorm(nn.BatchNorm2d):
    """Batch norm whose training statistics cover every process (gloo, CPU): see the module docstring.
    Takes ``[N, C, ...]`` inputs like any BatchNorm it replaces; without a process group (or with one
    process) it is the framework batch norm."""

    process_group: dist.ProcessGroup | None = None

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:
        group = self.process_group or (dist.group.WORLD if dist.is_available() and dist.is_initialized() else None)
        if (not self.training or group is None or dist.get_world_size(group) == 1
                or not self.track_running_stats or self.momentum is None):
            return super().forward(input)
        self._check_input_dim(input)
        self.num_batches_tracked.add_(1)
        return batch_norm_across_processes(input, self.weight, self.bias, self.running_mean, self.running_var,
                                           self.momentum, self.eps, group)


def convert_sync_batchnorm(model: nn.Module, device: torch.device | str | None = None) -> nn.Module:
    """Every BatchNorm of ``model`` synchronised over the processes: torch's ``SyncBatchNorm`` on CUDA,
    :class:`CrossProcessBatchNorm` otherwise (``device`` defaults to the model's; state kept)."""
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if torch.device(device).type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, nn.SyncBatchNorm):
            module.__class__ = CrossProcessBatchNorm  # same parameters and buffers; only forward differs
    return model
