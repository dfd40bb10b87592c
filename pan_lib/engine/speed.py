"""Honest speed measurement: clips per second for reading, forward and backward, and peak memory.

CUDA kernels run asynchronously: a clock read without `torch.cuda.synchronize()` times the kernel
*launch*, but a synchronisation in every step stalls the GPU (the host stops queueing work). So the
monitor synchronises the phase boundaries of *sampled* steps only (every `sample_every`-th step after
the `warmup` steps, which are never counted: allocator, cuDNN autotuning, oneDNN primitives); the
phase rates come from those steps, and the overall rate from the wall time of all measured steps,
with one synchronisation where the measurement starts and one in `summary()` (the queue cannot run
ahead of the host by more than a few steps, so the wall time of many steps is the device's time).

    monitor = SpeedMonitor(device, warmup=3, sample_every=10)
    for batch in loader:             # monitor.phase("data") wraps the wait for the batch
        with monitor.phase("forward"): ...
        with monitor.phase("backward"): ...
        monitor.step(clips=len(batch))
    monitor.summary()  # {'data_clips_per_s': ..., 'forward_clips_per_s': ..., 'clips_per_s': ...}

Every host synchronisation of the training loop goes through `synchronize` or `to_host` in this
module, so a test can count them (tests/test_engine_hotloop.py).
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


def to_host(tensor: torch.Tensor) -> list[float]:
    """The values of a small (device) tensor as Python floats: ONE blocking read (a host sync on CUDA).

    The training loop reads device values only through here, and only every few steps."""
    return tensor.detach().double().cpu().reshape(-1).tolist()


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
    """Per-phase timing of training/evaluation steps: sampled steps synchronised, warm-up excluded.

    `sample_every=1` synchronises every step (exact per-step phases; what a benchmark wants)."""

    def __init__(self, device: torch.device | str = "cpu", warmup: int = 2, sample_every: int = 1) -> None:
        self.device = torch.device(device)
        self.warmup = warmup
        self.sample_every = max(1, int(sample_every))
        self.reset()

    def reset(self) -> None:
        self.steps = 0
        self.clips = 0
        self.sampled_steps = 0
        self.sampled_clips = 0
        self.seconds: dict[str, float] = defaultdict(float)
        self._pending: dict[str, float] = defaultdict(float)
        self._wall_start: float | None = None
        self._measured_wall = 0.0
        reset_peak_memory(self.device)

    @property
    def sampling(self) -> bool:
        """Whether the current step's phases are timed (and synchronised)."""
        return self.steps >= self.warmup and (self.steps - self.warmup) % self.sample_every == 0

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if self.steps == self.warmup and self._wall_start is None:  # the measured wall time starts here
            synchronize(self.device)
            self._wall_start = time.perf_counter()
        if not self.sampling:
            yield
            return
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self._pending[name] += time.perf_counter() - start

    def step(self, clips: int) -> None:
        """Close one step of `clips` clips; counts it when past the warm-up."""
        if self.steps == self.warmup and self._wall_start is None:  # a step without phases
            synchronize(self.device)
            self._wall_start = time.perf_counter()
        if self.sampling and self._pending:
            self.sampled_steps += 1
            self.sampled_clips += clips
            for name, sec in self._pending.items():
                self.seconds[name] += sec
        if self.steps >= self.warmup:
            self.clips += clips
        self.steps += 1
        self._pending = defaultdict(float)

    @property
    def measured_steps(self) -> int:
        return max(0, self.steps - self.warmup)

    def summary(self) -> dict[str, float]:
        """clips/s per phase (sampled steps), overall clips/s (all measured steps, wall time) and ms
        per step; peak memory. Synchronises once."""
        out: dict[str, float] = {"measured_steps": self.measured_steps,
                                 "peak_memory_mb": round(peak_memory_mb(self.device), 1)}
        if self.measured_steps == 0 or self.clips == 0:
            return out
        if self._wall_start is not None:
            synchronize(self.device)
            self._measured_wall = time.perf_counter() - self._wall_start
        if self.sampled_steps:
            for name, sec in self.seconds.items():
                out[f"{name}_clips_per_s"] = self.sampled_clips / sec if sec > 0 else float("inf")
                out[f"{name}_ms_per_step"] = 1000 * sec / self.sampled_steps
            out["sampled_steps"] = self.sampled_steps
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
