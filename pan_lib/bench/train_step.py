"""Benchmark "train_step": one training step (forward + backward + optimiser) per modality.

CPU: the embedded configuration as the embedded recipe has it (resnet_tiny, 8 segments, 48 px,
batch 16, temporal shift 1/4, AdamW; read from `pan_lib.engine.recipes`) and ResNet-50 at 224
(batch 1 and 2, the official SGD), each fp32 NCHW vs fp32 channels_last vs bf16 autocast +
channels_last.
GPU (only when CUDA is available): PAN_Lite ResNet-50, batch 64, 224 — AMP (bf16, or fp16 with a
GradScaler) + channels_last vs fp32 NCHW, clips/s and the speed-up, recorded with the device name.

Timing: `pan_lib.engine.speed.time_callable` (device synchronised, warm-up steps excluded), median
of the repeats. Rows -> results/bench/train_step.{csv,md,json} with provenance.
"""
from __future__ import annotations

import logging
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F

from pan_lib.bench import host_memory_as_engine
from pan_lib.engine.optim import build_optimizer
from pan_lib.engine.recipes import get_recipe
from pan_lib.engine.speed import peak_memory_mb, reset_peak_memory, time_callable
from pan_lib.models import MODALITIES, build_model
from pan_lib.provenance import provenance, write_table

log = logging.getLogger(__name__)

VARIANTS = (("fp32", False, None), ("fp32+channels_last", True, None), ("bf16+channels_last", True, torch.bfloat16))


def _step_fn(modality: str, backbone: str, size: int, batch: int, num_segments: int, device: torch.device,
             channels_last: bool, amp_dtype: torch.dtype | None, num_classes: int = 174, shift_div: int = 8,
             optimizer: str = "sgd", group_lr: bool = True):
    torch.manual_seed(0)
    model = build_model(modality, num_classes, num_segments=num_segments, backbone=backbone, dropout=0.5,
                        shift_div=shift_div).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(model, lr=0.01, kind=optimizer, group_lr=group_lr)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    x = torch.randn(batch, num_segments * model.input_channels, size, size, device=device)
    y = torch.randint(0, num_classes, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 20)
        scaler.step(opt)
        scaler.update()

    return step


def embedded_step_fn(modality: str, device: torch.device, channels_last: bool, amp_dtype: torch.dtype | None,
                     num_classes: int = 12):
    """One training step of the embedded recipe as it is now (`pan_lib.engine.recipes`), and its batch."""
    r = get_recipe("embedded", modality)
    step = _step_fn(modality, r["backbone"], r["input_size"], r["batch_size"], r["num_segments"], device, channels_last,
                    amp_dtype, num_classes=num_classes, shift_div=r["shift_div"], optimizer=r["optimizer"],
                    group_lr=r["group_lr"])
    return step, r


def _measure(row: dict, step, device: torch.device, warmup: int, repeats: int, min_seconds: float = 0.0) -> dict:
    reset_peak_memory(device)
    times = time_callable(step, device=device, warmup=warmup, repeats=repeats, min_seconds=min_seconds)
    med = statistics.median(times)
    return {**row, "ms_per_step": round(1000 * med, 2), "clips_per_s": round(row["batch"] / med, 2),
            "repeats": len(times), "peak_memory_mb": round(peak_memory_mb(device), 1)}


def run(out_dir: Path, quick: bool = False) -> list[Path]:
    host = host_memory_as_engine()
    rows = []
    cpu = torch.device("cpu")
    configs = [("embedded", None, None, None, m) for m in MODALITIES]  # the embedded recipe as it is now
    configs += [("R50@224", "resnet50", 224, b, m) for b in ((1,) if quick else (1, 2)) for m in
                (("TSM", "Lite") if quick else MODALITIES)]
    for name, backbone, size, batch, modality in configs:
        base_ms = None
        for variant, cl, amp in VARIANTS:
            if name == "embedded":
                step, r = embedded_step_fn(modality, cpu, cl, amp, num_classes=174)
                backbone, size, batch, optimizer = r["backbone"], r["input_size"], r["batch_size"], r["optimizer"]
            else:
                step, optimizer = _step_fn(modality, backbone, size, batch, 8, cpu, cl, amp), "sgd"
            row = _measure({"device": "cpu", "config": name, "modality": modality, "backbone": backbone,
                            "input_size": size, "batch": batch, "optimizer": optimizer,
                            "variant": variant}, step, cpu,
                           warmup=1 if quick else 3, repeats=2 if quick else (3 if backbone == "resnet50" else 5),
                           min_seconds=0.0 if quick else (0.0 if backbone == "resnet50" else 3.0))
            base_ms = base_ms or row["ms_per_step"]
            row["speedup_vs_fp32"] = round(base_ms / row["ms_per_step"], 2)
            rows.append(row)
            log.info("%s", row)
    if torch.cuda.is_available():  # not measured on the CPU-only development machines
        gpu = torch.device("cuda")
        torch.backends.cudnn.benchmark = True
        amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        base = None
        for variant, cl, dtype in (("fp32", False, None), (f"{str(amp)[6:]}+channels_last", True, amp)):
            step = _step_fn("Lite", "resnet50", 224, 64, 8, gpu, cl, dtype)
            row = _measure({"device": torch.cuda.get_device_name(0), "config": "R50@224 GPU", "modality": "Lite",
                            "backbone": "resnet50", "input_size": 224, "batch": 64, "variant": variant}, step, gpu,
                           warmup=5, repeats=10 if quick else 30)
            base = base or row["ms_per_step"]
            row["speedup_vs_fp32"] = round(base / row["ms_per_step"], 2)
            rows.append(row)
    meta = provenance({"benchmark": "train_step", "quick": quick, "threads": torch.get_num_threads(), **host}, None,
                      "cuda" if torch.cuda.is_available() else "cpu")
    return write_table(rows, Path(out_dir) / "train_step",
                       title="Training step per modality: fp32 vs channels_last vs bf16 (median, synchronised)",
                       meta=meta, command=f"python -m pan_lib.bench train_step{' --quick' if quick else ''}")
