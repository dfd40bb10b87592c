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

import logging
from typing import Any, Callable, Iterable, Iterator

import torch
from torch.utils.data import Dataset

from pan_lib.engine.data import EpochSeeded, unpack_batch
from pan_lib.engine.signals import ignore_in_worker

log = logging.getLogger(__name__)

PREFETCH_FACTOR = 2  # batches each worker keeps ready
VAL_CACHE_MB = 512  # network inputs of a deterministic validation set kept in CPU memory, when they fit


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


class CachedBatches:
    """A loader of deterministic clips (validation: fixed segments, centre crop) whose prepared batches
    are kept after the first complete pass, so later epochs only run the network.

    ``CachedBatches(loader, prepare, budget_mb)``: iterating yields ``(prepare(clips), labels, index)``.
    The first pass reads through `loader` and keeps the batches while their total stays within
    `budget_mb`; an interrupted pass or a larger set keeps nothing and every epoch reads `loader` again.
    """

    def __init__(self, loader: Iterable, prepare: Callable[[torch.Tensor], torch.Tensor], budget_mb: float) -> None:
        self.loader, self.prepare, self.budget_bytes = loader, prepare, budget_mb * 2**20
        self.batches: list[tuple[torch.Tensor, torch.Tensor, Any]] | None = None
        self.too_big = False

    def __len__(self) -> int:
        return len(self.batches) if self.batches is not None else len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, Any]]:
        if self.batches is not None:
            yield from self.batches
            return
        kept: list[tuple[torch.Tensor, torch.Tensor, Any]] | None = None if self.too_big else []
        size = 0
        for batch in self.loader:
            clips, labels, index = unpack_batch(batch)
            item = (self.prepare(clips), labels, index)
            if kept is not None:
                size += item[0].element_size() * item[0].numel()
                if size > self.budget_bytes:
                    log.info("validation inputs exceed %.0f MB: read from the loader every epoch", self.budget_bytes / 2**20)
                    kept, self.too_big = None, True
                else:
                    kept.append(item)
            yield item
        self.batches = kept  # only after a complete pass
