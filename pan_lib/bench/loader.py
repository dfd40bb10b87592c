"""Benchmark "loader": clips per wall-clock second of VideoClipDataset through a DataLoader.

    python -m pan_lib.bench loader [--quick]

Grid: source (JPEG frame folders | video + decord | video + PyAV | uint8 arrays decoded once at the
scale size, `python -m data_prep decode`) x clip (RGB 8x1 | PA 8x4) x configuration ("224": 320x240 VP9 videos,
48 frames, train crops of 224; "embedded": the embedded dataset's 64x64 VP9 videos, 32 frames, crops
of 48 from 56 px) x DataLoader workers (0 | 2), train mode.
Clips are counted over the wall time of a whole pass, worker start-up included (timing
``next(loader)`` alone would credit prefetching). The same run measures the training rate of the
embedded recipe (resnet_tiny, batch 16, 48 px, AdamW step, bf16 autocast + channels_last) so
"loader >= 3x what training consumes" is a ratio within one run.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data_prep.extract import extract_one
from pan_lib.bench import host_memory_as_engine
from pan_lib.bench.train_step import embedded_step_fn
from pan_lib.data.dataset import VideoClipDataset
from pan_lib.data.decoded import decode_one
from pan_lib.data.lists import VideoRecord
from pan_lib.data.synthetic import PAIRS, render_video
from pan_lib.data.video import write_video
from pan_lib.provenance import provenance, write_table

log = logging.getLogger(__name__)

CONFIGS = {"224": dict(height=240, width=320, frames=48, input_size=224, scale_size=256),
           "embedded": dict(height=64, width=64, frames=32, input_size=48, scale_size=56, decode_side=56)}
CLIPS = {"RGB 8x1": 1, "PA 8x4": 4}
SOURCES = ("frames", "decord", "pyav", "decoded")


def _make_data(root: Path, cfg: dict[str, int], n: int) -> list:
    """``n`` VP9 videos (+ their JPEG frame folders) of the embedded kind at ``cfg``'s size."""
    (root / "videos").mkdir(parents=True)
    (root / "frames").mkdir()
    side = max(cfg["height"], cfg["width"])
    records = []
    for i in range(n):
        kind = PAIRS[i % 6][2]
        frames, _ = render_video(kind, bool(i % 2), np.random.default_rng([9, i]), num_frames=cfg["frames"], size=side)
        frames = frames[:, :cfg["height"], :cfg["width"]]
        write_video(root / "videos" / f"{i}.webm", frames)
        res = extract_one((str(root / "videos" / f"{i}.webm"), str(root / "frames" / str(i)), "{:05d}.jpg", 0, 95))
        assert res["status"] == "ok", res
        res = decode_one((str(root / "videos" / f"{i}.webm"), str(root / "decoded" / f"{i}.webm.npy"),
                          cfg["frames"], cfg.get("decode_side", 0)))  # 0: native size, like the videos
        assert res["status"] == "ok", res
        records.append(VideoRecord(str(i), cfg["frames"], i % 12))
    return records


def _clips_per_second(records: list, root: Path, source: str, new_length: int, cfg: dict[str, int],
                      workers: int, passes: int) -> float:
    if source != "frames":
        records = [VideoRecord(f"{r.path}.webm", r.num_frames, r.label) for r in records]
    folder, kind = {"frames": ("frames", "frames"), "decoded": ("decoded", "decoded")}.get(source, ("videos", "video"))
    ds = VideoClipDataset(records, root / folder, num_segments=8, new_length=new_length, mode="train", source=kind,
                          backend="auto" if source == "decord" else "pyav", input_size=cfg["input_size"],
                          scale_size=cfg["scale_size"], flip=False, bad_input="raise")
    best = 0.0
    for p in range(passes):
        ds.set_epoch(p)
        loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True, num_workers=workers,
                                             multiprocessing_context="fork" if workers else None)
        start = time.perf_counter()
        n = sum(len(labels) for _, labels, _ in loader)
        best = max(best, n / (time.perf_counter() - start))
    return best


def _train_rate(modality: str, steps: int) -> float:
    """Clips/s of the embedded recipe's training step (bf16 autocast + channels_last, as the recipe
    trains; `pan_lib.bench.train_step.embedded_step_fn`)."""
    step, recipe = embedded_step_fn(modality, torch.device("cpu"), True, torch.bfloat16)
    for _ in range(2):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * recipe["batch_size"] / (time.perf_counter() - start)


def run(out_dir: Path, quick: bool = False) -> list[Path]:
    host = host_memory_as_engine()
    torch.set_num_threads(2)
    n_videos, passes = (16, 1) if quick else (48, 2)
    rows: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="pan_bench_loader_"))
    try:
        train = {m: _train_rate(m, 3 if quick else 10) for m in ("RGB", "Lite")}
        for cname, cfg in CONFIGS.items():
            root = tmp / cname
            records = _make_data(root, cfg, n_videos)
            for clip, L in CLIPS.items():
                for workers in (0, 2):
                    row: dict[str, Any] = {"config": cname, "clip": clip, "workers": workers}
                    for source in SOURCES:
                        rate = _clips_per_second(records, root, source, L, cfg, workers, passes)
                        row[f"{source} clips/s"] = round(rate, 1)
                        log.info("%s %s workers=%d %s: %.1f clips/s", cname, clip, workers, source, rate)
                    row["video(decord)/frames"] = round(row["decord clips/s"] / row["frames clips/s"], 2)
                    row["decoded/decord"] = round(row["decoded clips/s"] / row["decord clips/s"], 2)
                    if cname == "embedded":
                        need = train["Lite" if L == 4 else "RGB"]
                        row["train clips/s"] = round(need, 1)
                        row["decord / train"] = round(row["decord clips/s"] / need, 2)
                        row["decoded / train"] = round(row["decoded clips/s"] / need, 2)
                    rows.append(row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = provenance(config={"videos": n_videos, "passes (best of)": passes, "batch": 8, "mode": "train",
                              "train model": "resnet_tiny Lite (PA 8x4) / RGB (8x1), batch 16, 48 px, AdamW, "
                                             "bf16 + channels_last",
                              "quick": quick, **host})
    return write_table(rows, Path(out_dir) / "loader",
                       title="Loader throughput (clips per wall-clock second, train mode)", meta=meta,
                       command=f"python -m pan_lib.bench loader{' --quick' if quick else ''}")
