"""Benchmark "cpu_tuning": the engine's and PA's CPU-specific choices, each timed against its alternative.

    python -m pan_lib.bench cpu_tuning [--quick]

* ``malloc``: glibc keeping freed blocks (`pan_lib.engine.host_memory.keep_freed_memory`, what CPU
  training, evaluation and the benchmarks use) against glibc's default (``PAN_KEEP_FREED_MEMORY=0``) and
  against PyTorch's transparent huge pages (``THP_MEM_ALLOC_ENABLE=1`` with glibc's default). malloc
  settings belong to a process, so each setting runs in a process of its own, the settings in turn, twice;
  each process times: a clone of a 39 MB tensor (above every mmap threshold: fresh pages, the cost of first
  touch), PAN_Lite's bf16 stem input (first frame + PA) of one R50 clip at 224², the Lite-R50 bf16 forward
  and the embedded Lite training step. ``vs default`` = default time / this time (> 1: faster).
* ``PA chunks``: PA forward + backward on the embedded batch (16 clips x 8 snippets x 4 frames at 48²) in one
  chunk (`pan_lib.modules.pa.cpu_chunk_snippets`) against 8 snippets per chunk (the earlier fixed size),
  timed interleaved; ``vs default`` = 8-snippet time / this time.
* ``bf16 norm``: the 8-channel L2 of PA's features at 224² (one R50 clip, 24 frame pairs) as a 1x1
  convolution of the squares (`pair_norms_by_conv`) against ``torch.linalg.vector_norm``, interleaved.

Medians of the calls; rows -> results/bench/cpu_tuning.{csv,md,json}.
"""
from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from pan_lib.bench import host_memory_as_engine
from pan_lib.bench.pa_models import PAModelsBenchConfig, call_times_round_robin
from pan_lib.bench.train_step import embedded_step_fn
from pan_lib.engine.host_memory import OPT_OUT
from pan_lib.engine.speed import time_callable
from pan_lib.models import build_model
from pan_lib.modules.pa import pa_with_first_frame, pair_norms_by_conv, persistence_of_appearance
from pan_lib.provenance import REPO_ROOT, provenance, write_table

log = logging.getLogger(__name__)

NAME = "cpu_tuning"
# process environments of the malloc settings (the child applies keep_freed_memory unless OPT_OUT says no)
MALLOC_SETTINGS: dict[str, dict[str, str]] = {
    "glibc default": {OPT_OUT: "0"},
    "glibc keeps freed blocks (engine)": {},
    "transparent huge pages (THP_MEM_ALLOC_ENABLE=1)": {OPT_OUT: "0", "THP_MEM_ALLOC_ENABLE": "1"},
}


def _median_ms(fn, repeats: int) -> float:
    return 1e3 * statistics.median(time_callable(fn, warmup=2, repeats=repeats))


def child_measurements(quick: bool) -> dict[str, float]:
    """What one malloc setting's process measures (ms per call)."""
    host_memory_as_engine()
    torch.set_num_threads(2)
    repeats = 3 if quick else 15
    torch.manual_seed(0)
    big = torch.randn(39 * 2**20 // 4)  # 39 MB fp32: above glibc's largest mmap threshold
    weight = torch.randn(8, 3, 7, 7) * 0.05
    clip = torch.randn(1, 8 * 4 * 3, 224, 224)  # one Lite clip: 8 segments x 4 frames, plain memory
    lite = build_model("Lite", 174, num_segments=8, backbone="resnet50").eval().to(memory_format=torch.channels_last)

    def stem() -> None:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            pa_with_first_frame(clip, weight, None, 4)

    def forward() -> None:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            lite(clip)

    step, _ = embedded_step_fn("Lite", torch.device("cpu"), True, torch.bfloat16, num_classes=12)
    return {"clone of a 39 MB tensor": _median_ms(big.clone, repeats),
            "Lite bf16 stem input (first frame + PA), one R50 clip at 224": _median_ms(stem, repeats),
            "Lite-R50 bf16 forward, one clip at 224": _median_ms(forward, max(2, repeats // 3)),
            "embedded Lite training step (batch 16, 48 px, bf16)": _median_ms(step, repeats)}


def malloc_rows(quick: bool) -> list[dict[str, Any]]:
    times: dict[str, list[dict[str, float]]] = {name: [] for name in MALLOC_SETTINGS}
    for _ in range(1 if quick else 2):
        for name, extra in MALLOC_SETTINGS.items():
            env = {k: v for k, v in os.environ.items() if k not in (OPT_OUT, "THP_MEM_ALLOC_ENABLE")}
            out = subprocess.run([sys.executable, "-m", "pan_lib.bench.cpu_tuning", "--child"]
                                 + (["--quick"] if quick else []), env={**env, **extra}, cwd=REPO_ROOT,
                                 capture_output=True, text=True, check=True)
            times[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            log.info("%s: %s", name, times[name][-1])
    rows = []
    default = "glibc default"
    for name in MALLOC_SETTINGS:
        for what in times[name][0]:
            ms = statistics.median(t[what] for t in times[name])
            base = statistics.median(t[what] for t in times[default])
            rows.append({"section": "malloc", "setting": name, "measurement": what, "ms": round(ms, 3),
                         "vs default": round(base / ms, 3), "processes": len(times[name])})
    return rows


def _interleaved_rows(section: str, what: str, calls: dict[str, Any], default: str, quick: bool) -> list[dict]:
    cfg = PAModelsBenchConfig.for_mode(quick)
    names = list(calls)
    times = dict(zip(names, call_times_round_robin([calls[n] for n in names], cfg)))
    base = statistics.median(times[default])
    return [{"section": section, "setting": n, "measurement": what, "ms": round(1e3 * statistics.median(times[n]), 3),
             "vs default": round(base / statistics.median(times[n]), 3), "processes": 1} for n in names]


def chunk_rows(quick: bool) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    frames = torch.randn(16 * 8 * 4, 3, 48, 48)  # the embedded batch: 16 clips x 8 snippets x 4 frames
    weight = (torch.randn(8, 3, 7, 7) * 0.05).requires_grad_()

    def step(chunk: int | None) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pa = persistence_of_appearance(frames, weight, None, 4, chunk_snippets=chunk)
        pa.float().sum().backward()
        weight.grad = None

    return _interleaved_rows("PA chunks", "PA forward + backward, embedded batch at 48 px, bf16",
                             {"8 snippets per chunk (before)": lambda: step(8),
                              "one chunk (cpu_chunk_snippets)": lambda: step(None)},
                             "8 snippets per chunk (before)", quick)


def norm_rows(quick: bool) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    feats = torch.randn(24, 224, 112, 16).to(torch.bfloat16).permute(0, 3, 1, 2)  # column-pair conv output, NHWC

    def by_norm() -> None:
        torch.linalg.vector_norm(feats.permute(0, 2, 3, 1).reshape(24, 224, 224, 8), ord=2, dim=-1)

    with torch.inference_mode():
        return _interleaved_rows("bf16 norm", "L2 over 8 features, 24 pairs at 224, bf16",
                                 {"linalg.vector_norm": by_norm, "1x1 conv of squares (pair_norms_by_conv)":
                                  lambda: pair_norms_by_conv(feats)}, "linalg.vector_norm", quick)


def run(out_dir: Path, quick: bool = False) -> list[Path]:
    host = host_memory_as_engine()
    torch.set_num_threads(2)
    rows = malloc_rows(quick) + chunk_rows(quick) + norm_rows(quick)
    meta = provenance({"benchmark": NAME, "quick": quick, "threads": torch.get_num_threads(), **host}, None, "cpu")
    return write_table(rows, Path(out_dir) / NAME,
                       title="CPU choices against their alternatives: malloc setting, PA chunk size, bf16 norm",
                       meta=meta, command=f"python -m pan_lib.bench {NAME}{' --quick' if quick else ''}")


if __name__ == "__main__":  # the child process of one malloc setting: its timings as one JSON line
    if "--child" not in sys.argv:
        sys.exit("run it as `python -m pan_lib.bench cpu_tuning`")
    print(json.dumps(child_measurements("--quick" in sys.argv)))
