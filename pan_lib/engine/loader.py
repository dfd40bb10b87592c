"""The engine's DataLoaders: workers kept across epochs, sized prefetch, pinned memory on CUDA.

Worker processes are started once per run (`persistent_workers`) instead of once per epoch. A
persistent worker keeps the dataset object it was given, so `EpochSeeded.set_epoch()` in the main
process would not reach it: `SharedEpochSeeded` keeps the epoch in a shared-memory tensor that the
workers read when they load a clip (the main process sets it before it asks for the epoch's first
batch), so every clip of epoch e is still drawn from (seed, e, index) whatever the worker count.

Memory: each worker holds `PREFETCH_FACTOR` batches in shared memory. uint8 clips make a batch a
quarter of the float32 one: a GPU process of the official Lite recipe (64 clips over 8 GPUs = 8
per process, 8 x 4 frames x 3 x 224 x 224) holds 8 workers x 2 x 39 MB = 0.6 GB (float32, 8 workers
x 4 batches: 4.9 GB).
"""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from pan_lib.engine.data import EpochSeeded
from pan_lib.engine.signals import ignore_in_worker

PREFETCH_FACTOR = 2  # batches each worker keeps ready


class SharedEpochSeeded(EpochSeeded):
    """`EpochSeeded` whose epoch lives in shared memory, so persistent workers see `set_epoch()`."""

    def __init__(self, dataset: Dataset, seed: int = 0) -> None:
        self._shared_epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        super().__init__(dataset, seed)

    @property
    def epoch(self) -> int:  # type: ignore[override]
        return int(self._shared_epoch[0])

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._shared_epoch[0] = int(value)


def loader_options(num_workers: int, device: torch.device) -> dict[str, Any]:
    """DataLoader keywords: persistent workers with `PREFETCH_FACTOR` batches each (ignoring SIGUSR1,
    which the trainer handles), pinned memory on CUDA (so the host-to-device copy is asynchronous)."""
    options: dict[str, Any] = dict(num_workers=num_workers, pin_memory=device.type == "cuda")
    if num_workers > 0:
        options.update(prefetch_factor=PREFETCH_FACTOR, persistent_workers=True, worker_init_fn=ignore_in_worker)
    return options
