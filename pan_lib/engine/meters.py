"""Training statistics kept on the device: summed every micro-batch, read on the host every few steps.

`float(loss)`, `int(correct)` or `bool(isfinite(loss))` in every step would each wait for the GPU
to finish the step (a host synchronisation that leaves it idle while the host queues the next one).
`EpochMeter` adds the loss sum, the correct count and a non-finite count into one float64 vector on
the device; `read()` copies it to the host in one go (`pan_lib.engine.speed.to_host`), which the
trainer does every `check_every` micro-batches, before a save and at the epoch end. The number of
clips is known on the host and never needs reading.

Sums in float64 of `loss * batch` in the same order as before give the same epoch means as the
Python floats the loop used to add.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pan_lib.engine import speed


@dataclass
class MeterReading:
    loss_sum: float
    correct: float
    clips: float
    nonfinite: int      # micro-batches whose loss was NaN/inf since the last reset
    last_loss: float    # the loss of the latest micro-batch

    @property
    def stats(self) -> list[float]:
        """[loss sum, correct, clips]: the checkpoint's `epoch_stats`."""
        return [self.loss_sum, self.correct, self.clips]


class EpochMeter:
    """Loss sum, top-1 correct and non-finite count of the current epoch, on `device`."""

    LOSS, CORRECT, NONFINITE, LAST = range(4)

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.reset()

    def reset(self, stats: list[float] | None = None) -> None:
        """Start an epoch, or continue one from a checkpoint's `epoch_stats` [loss sum, correct, clips]."""
        loss_sum, correct, clips = stats if stats is not None else (0.0, 0.0, 0.0)
        self.values = torch.tensor([loss_sum, correct, 0.0, 0.0], dtype=torch.float64).to(self.device)
        self.clips = float(clips)

    @torch.no_grad()
    def add(self, loss: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> None:
        """One micro-batch (no synchronisation: everything stays on the device)."""
        n = target.shape[0]
        loss = loss.detach().double()
        correct = (logits.detach().argmax(dim=1) == target).sum().double()
        nonfinite = (~torch.isfinite(loss)).double()
        update = torch.stack([loss * n, correct, nonfinite, loss])  # (4,)
        self.values[:3] += update[:3]
        self.values[self.LAST] = update[self.LAST]
        self.clips += n

    def read(self) -> MeterReading:
        """The current values on the host (one device-to-host copy)."""
        loss_sum, correct, nonfinite, last = speed.to_host(self.values)
        return MeterReading(loss_sum, correct, self.clips, int(nonfinite), last)
