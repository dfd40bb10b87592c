"""Honest speed measurement: clips per second for reading, forward and backward, and peak memory.

Every phase boundary synchronises the device (CUDA kernels run asynchronously; a clock read
without `torch.cuda.synchronize()` times the kernel *launch*), the first `warmup` steps are not
counted (allocator, cuDNN autotuning, oneDNN primitive creation) and throughput is clips over
the summed time of the phase — never the time of `next(loader)` while workers prefetch alone.

    monitor = SpeedMonitor(device, warmup=3)
    for batch in loader:             # monitor.phase("data") wraps the wait for the batch
        with monitor.phase("forward"): ...
        with monitor.phase("backward"): ...
        monitor.step(clips=len(batch))
    monitor.summary()  # {'data_clips_per_s': ..., 'forward_clips_per_s': ..., 'train_clips_per_s': ...}
"""
from __future__ import annotations

import contextlib
import resource
import sys
import time
from collections import defaultdict
from typing import Iterator

import torch


def synchronize(device: torch.device | str | None) -> None:
    """Wait for queued kernels on `device` (no-op on the CPU)."""
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device | str | None) -> float:
    """Peak CUDA memory allocated by tensors on `device`, or the process's peak RSS on the CPU."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def reset_peak_memory(device: torch.device | str | None) -> None:
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats(device)


class SpeedMonitor:
    """Per-phase timing of training/evaluation steps, synchronised, warm-up excluded."""

    def __init__(self, device: torch.device | str = "cpu", warmup: int = 2) -> None:
        self.device = torch.device(device)
        self.warmup = warmup
        self.reset()

    def reset(self) -> None:
        self.steps = 0
        self.clips = 0
        self.seconds: dict[str, float] = defaultdict(float)
        self._pending: dict[str, float] = defaultdict(float)
        self._step_start: float | None = None
        self._measured_wall = 0.0
        reset_peak_memory(self.device)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        synchronize(self.device)
        start = time.perf_counter()
        if self._step_start is None:
            self._step_start = start
        try:
            yield
        finally:
            synchronize(self.device)
            self._pending[name] += time.perf_counter() - start

    def step(self, clips: int) -> None:
        """Close one step of `clips` clips; counts it when past the warm-up."""
        now = time.perf_counter()
        self.steps += 1
        if self.steps > self.warmup:
            self.clips += clips
            for name, sec in self._pending.items():
                self.seconds[name] += sec
            if self._step_start is not None:
                self._measured_wall += now - self._step_start
        self._pending = defaultdict(float)
        self._step_start = None

    @property
    def measured_steps(self) -> int:
        return max(0, self.steps - self.warmup)

    def summary(self) -> dict[str, float]:
        """clips/s per phase, overall clips/s and ms per step over the measured steps; peak memory."""
        out: dict[str, float] = {"measured_steps": self.measured_steps,
                                 "peak_memory_mb": round(peak_memory_mb(self.device), 1)}
        if self.measured_steps == 0 or self.clips == 0:
            return out
        for name, sec in self.seconds.items():
            out[f"{name}_clips_per_s"] = self.clips / sec if sec > 0 else float("inf")
            out[f"{name}_ms_per_step"] = 1000 * sec / self.measured_steps
        if self._measured_wall > 0:
            out["clips_per_s"] = self.clips / self._measured_wall
        return out


def time_callable(fn, *, device: torch.device | str = "cpu", warmup: int = 2, repeats: int = 5,
                  min_seconds: float = 0.0) -> list[float]:
    """Seconds per call of `fn()` (synchronised), after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    budget_start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - budget_start < min_seconds:
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times
