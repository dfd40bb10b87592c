"""Benchmarks: `python -m pan_lib.bench <name>|all` writes results/bench/<name>.{csv,md,json}.

Each benchmark module defines `run(out_dir: Path, quick: bool = False) -> list[Path]` and registers
itself in BENCHMARKS below (module path, one-line description).
"""
from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from pan_lib.engine.host_memory import keep_freed_memory

C = TypeVar("C")

BENCHMARKS: dict[str, tuple[str, str]] = {
    # name: (module, description) — filled by the issues that own each benchmark
    "pa_models": ("pan_lib.bench.pa_models", "PA pairs/s (ours vs official-style loop, fp32/bf16, 1/8 clips), R50 forward cost Lite/PA/RGB/TSM, tiny-backbone train step"),
    "motion_cues": ("pan_lib.bench.motion_cues", "PA vs optical flow (TV-L1, Farneback, DIS, RAFT): frame pairs/s at 224x224"),
    "train_step": ("pan_lib.bench.train_step", "SGD step per modality: embedded (tiny, 64px, b16) and R50@224 b1-2 on CPU, fp32 vs channels_last vs bf16; GPU Lite R50 b64 AMP+CL vs fp32"),
    "epoch_loop": ("pan_lib.bench.epoch_loop", "embedded recipe: train epoch + validation clips/s vs the compute-only train step (ratio), 0/1/2 loader workers"),
    "cpu_tuning": ("pan_lib.bench.cpu_tuning", "CPU choices vs their alternatives: glibc keeping freed blocks vs default vs THP (own processes), PA chunk size at 48 px, bf16 norm as 1x1 conv vs vector_norm"),
    "loader": ("pan_lib.bench.loader", "clips/s of VideoClipDataset: frame folders vs decord vs PyAV, RGB 8x1 / PA 8x4, 224 and embedded, 0/2 workers, vs embedded train rate"),
}


def with_overrides(config: C, overrides: dict[str, Any]) -> C:
    """Set dataclass fields of a benchmark config; an unknown name is an error listing the valid ones."""
    valid = [f.name for f in dataclasses.fields(config)]
    for key, value in overrides.items():
        if key not in valid:
            raise ValueError(f"unknown option {key!r}; valid: {', '.join(valid)}")
        setattr(config, key, value)
    return config


def host_memory_as_engine() -> dict[str, bool]:
    """Set this process's malloc as CPU training and evaluation do (`pan_lib.engine.host_memory`), so a
    benchmark times what they run; returns the provenance entry that says whether it is in effect."""
    return {"malloc_keeps_freed_blocks": keep_freed_memory()}
