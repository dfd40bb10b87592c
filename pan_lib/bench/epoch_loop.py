"""Benchmark "epoch_loop": the training epoch loop (validation included) against the compute-only step.

    python -m pan_lib.bench epoch_loop [--quick]

The compute-only rate is `pan_lib.bench.train_step.embedded_step_fn` (the embedded recipe's step on
a batch already in memory, bf16 autocast + channels_last, as `python -m pan_lib.bench train_step`
measures it). The epoch-loop rate is `pan_lib.engine.train` itself with the embedded recipe
(`pan_lib.engine.recipes`) on clips of the embedded kind stored like the prepared set (uint8 arrays
decoded at a 56 px short side, 32 frames; the default set's 960 train / 300 val videos, fewer with
`--quick`): train clips of an epoch over the wall time of the epoch *plus its validation*, epochs
after the first (worker start-up, oneDNN primitives); the compute-only rate is measured right after
each loop, so each ratio compares two measurements close in time. The ratio epoch loop / compute-only says how
much of the step rate the loop keeps (loading, validation, bookkeeping); rows for 0, 1 and 2 loader
workers show what overlapping the loading buys on this machine. Modalities: Lite and PA (4 frames per
segment: the runs issue 11 measured) and RGB (1 frame). Rows -> results/bench/epoch_loop.*
"""
from __future__ import annotations

import logging
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pan_lib.bench import host_memory_as_engine
from pan_lib.bench.train_step import embedded_step_fn
from pan_lib.data.dataset import VideoClipDataset
from pan_lib.data.lists import VideoRecord
from pan_lib.data.synthetic import PAIRS, render_video
from pan_lib.engine import TrainConfig, train
from pan_lib.engine.recipes import get_recipe
from pan_lib.engine.speed import time_callable
from pan_lib.models import frames_per_segment
from pan_lib.provenance import provenance, write_table

log = logging.getLogger(__name__)

NUM_CLASSES = 12
FRAMES, SIDE = 32, 56  # the embedded set as prepare_embedded decodes it


def _make_arrays(root: Path, n: int, seed: int) -> list[VideoRecord]:
    """`n` uint8 videos [FRAMES, SIDE, SIDE, 3] of the embedded kind as `<root>/<i>.npy`."""
    root.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        label = i % NUM_CLASSES
        frames, _ = render_video(PAIRS[label // 2][2], bool(label % 2), np.random.default_rng([seed, i]),
                                 num_frames=FRAMES, size=SIDE)
        np.save(root / f"{i}.npy", frames)
        records.append(VideoRecord(str(i), FRAMES, label))
    return records


def _compute_rate(modality: str, quick: bool) -> float:
    step, recipe = embedded_step_fn(modality, torch.device("cpu"), True, torch.bfloat16, num_classes=NUM_CLASSES)
    times = time_callable(step, warmup=2, repeats=5 if quick else 20, min_seconds=1.0 if quick else 5.0)
    return recipe["batch_size"] / statistics.median(times)


def _loop_rate(modality: str, workers: int, data: dict[str, tuple[Path, list[VideoRecord]]], run_dir: Path,
               epochs: int) -> dict[str, Any]:
    recipe = get_recipe("embedded", modality)
    common = dict(num_segments=recipe["num_segments"], new_length=frames_per_segment(modality), source="decoded",
                  input_size=recipe["input_size"], scale_size=recipe["scale_size"], flip=False, output="uint8")
    train_set = VideoClipDataset(data["train"][1], data["train"][0], mode="train", **common)
    val_set = VideoClipDataset(data["val"][1], data["val"][0], mode="val", **common)
    cfg = TrainConfig.from_recipe("embedded", modality, epochs=epochs, num_workers=workers, run_dir=str(run_dir),
                                  progress="off", tensorboard=False, count_flops=False, resume=False)
    res = train(cfg, train_set=train_set, val_set=val_set, num_classes=NUM_CLASSES)
    rows = res.metrics[1:]  # the first epoch starts workers and builds kernels
    clips = (len(train_set) // cfg.batch_size) * cfg.batch_size
    seconds = [r["epoch_seconds"] + r["val_seconds"] for r in rows]
    return {"epoch_clips_per_s": clips / statistics.median(seconds),
            "train_only_clips_per_s": clips / statistics.median(r["epoch_seconds"] for r in rows),
            "val_seconds": statistics.median(r["val_seconds"] for r in rows),
            "epoch_seconds": statistics.median(seconds)}


def run(out_dir: Path, quick: bool = False) -> list[Path]:
    host = host_memory_as_engine()
    torch.set_num_threads(2)
    n_train, n_val, epochs = (64, 16, 2) if quick else (960, 300, 3)
    tmp = Path(tempfile.mkdtemp(prefix="pan_bench_epoch_loop_"))
    rows: list[dict[str, Any]] = []
    try:
        data = {split: (tmp / split, _make_arrays(tmp / split, n, seed))
                for split, n, seed in (("train", n_train, 0), ("val", n_val, 1))}
        for modality in ("Lite",) if quick else ("Lite", "PA", "RGB"):
            for workers in (0, 1) if quick else (0, 1, 2):
                # the compute-only rate right next to each loop: a ratio of two measurements close in time
                loop = _loop_rate(modality, workers, data, tmp / f"run_{modality}_{workers}", epochs)
                compute = _compute_rate(modality, quick)
                row = {"modality": modality, "workers": workers, "train clips": n_train, "val clips": n_val,
                       "compute-only clips/s": round(compute, 1),
                       "epoch loop clips/s": round(loop["epoch_clips_per_s"], 1),
                       "train part clips/s": round(loop["train_only_clips_per_s"], 1),
                       "val s/epoch": round(loop["val_seconds"], 2), "s/epoch": round(loop["epoch_seconds"], 2),
                       "ratio": round(loop["epoch_clips_per_s"] / compute, 3),
                       "recipe workers": get_recipe("embedded", modality)["num_workers"]}
                rows.append(row)
                log.info("%s", row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = provenance({"benchmark": "epoch_loop", "quick": quick, "epochs (first not counted)": epochs,
                       "threads": torch.get_num_threads(), "train clips": n_train, "val clips": n_val, **host}, None, "cpu")
    return write_table(rows, Path(out_dir) / "epoch_loop",
                       title="Epoch loop (train + validation) vs compute-only train step, embedded recipe, CPU",
                       meta=meta, command=f"python -m pan_lib.bench epoch_loop{' --quick' if quick else ''}")
