"""Training recipes as data: the official PAN scripts and the embedded (2-core CPU) recipe.

Official (`scripts/train/sthv{1,2}/*.sh`, all ResNet-50, 8 segments, batch 64, lr 0.01, dropout 0.5,
wd 1e-4, clip 20, momentum 0.9, ImageNet init, TSM shift 1/8, VAP):

| modality | epochs | lr_steps | official script |
|---|---|---|---|
| Lite | 80 | 30 60 | Lite.sh |
| RGB  | 50 | 20 40 | Full_RGB.sh |
| PA   | 80 | 30 60 | Full_PA.sh |

TSN/TSM baselines on sthv1/sthv2 follow TSM's own SSv1 script (50 epochs, steps 20 40, wd 5e-4).
Other data sets have no official PAN script; they get the sthv values for the modality and a
warning. `RECIPE_SOURCES` says where every recipe comes from.
"""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_OFFICIAL_COMMON: dict[str, Any] = dict(
    backbone="resnet50", pretrained=True, segments=8, shift_div=8, batch_size=64, lr=None, base_lr=0.01,
    base_batch=64, lr_type="step", weight_decay=1e-4, momentum=0.9, clip_grad=20.0, dropout=0.5,
    fc_lr5=True, input_size=224, scale_size=256, accumulate=1, eval_every=1,
)
_OFFICIAL_MODALITY: dict[str, dict[str, Any]] = {
    "Lite": dict(epochs=80, lr_steps=(30, 60)),
    "RGB": dict(epochs=50, lr_steps=(20, 40)),
    "PA": dict(epochs=80, lr_steps=(30, 60)),
    # TSM repo, scripts/train_tsm_something_rgb_8f.sh (SSv1): wd 5e-4 (TSM default), 50 epochs
    "TSM": dict(epochs=50, lr_steps=(20, 40), weight_decay=5e-4),
    "TSN": dict(epochs=50, lr_steps=(20, 40), weight_decay=5e-4),
}
OFFICIAL_DATASETS = ("sthv1", "sthv2")

# The embedded synthetic motion data set on a 2-core CPU: a tiny ResNet at 48 px (videos are 96 px),
# no ImageNet, warm-up + short cosine schedule; lr 0.01 at batch 16 because PA/Lite from scratch
# diverged at 0.02-0.05 (PA's first conv trains at x5/x10, officially). Decoding runs in 2 workers:
# decord in the main process is ~8x slower while torch's threads spin. Target: one run <= ~40 s wall
# (5 modalities x 3 seeds + evaluation in ~12 min). Status: NOT yet tuned — on the default embedded
# set (24 train clips per class) Lite stayed at chance after 2 epochs, and TSM from scratch reached
# 69 % train / ~11 % val top-1 after 10 epochs (overfitting); the data set's own linear order-aware
# control scores 19.8 % (bag_of_frames_baseline). Measured on a shared 2-core machine.
_EMBEDDED_COMMON: dict[str, Any] = dict(
    dataset="embedded", backbone="resnet_tiny", pretrained=False, segments=8, shift_div=8,
    input_size=48, scale_size=56, batch_size=16, lr=0.01, lr_type="cos", lr_steps=(), warmup_epochs=1.0,
    weight_decay=1e-4, momentum=0.9, clip_grad=20.0, dropout=0.0, fc_lr5=True, accumulate=1,
    epochs=5, eval_every=1, num_workers=2, device="cpu", amp="off", channels_last=False,
    count_flops=True, save_every_minutes=0.0,
)
_EMBEDDED_MODALITY: dict[str, dict[str, Any]] = {m: {} for m in ("TSN", "TSM", "RGB", "PA", "Lite")}

RECIPE_SOURCES = {
    **{(d, m): f"official PAN script scripts/train/{d}/{s}" for d in OFFICIAL_DATASETS
       for m, s in (("Lite", "Lite.sh"), ("RGB", "Full_RGB.sh"), ("PA", "Full_PA.sh"))},
    **{(d, m): "TSM repository SSv1 script (lr 0.01, steps 20 40, 50 epochs, wd 5e-4)"
       for d in OFFICIAL_DATASETS for m in ("TSM", "TSN")},
    **{("embedded", m): "embedded CPU recipe (pan_lib.engine.recipes)" for m in _EMBEDDED_MODALITY},
}


def recipe_names() -> list[tuple[str, str]]:
    return sorted(RECIPE_SOURCES)


def get_recipe(dataset: str, modality: str) -> dict[str, Any]:
    """Config values (a dict of `TrainConfig` fields) for training `modality` on `dataset`."""
    from pan_lib.engine.config import MODALITIES, ConfigError

    if modality not in MODALITIES:
        raise ConfigError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")
    if dataset == "embedded":
        return {**_EMBEDDED_COMMON, **_EMBEDDED_MODALITY[modality], "modality": modality}
    values = {**_OFFICIAL_COMMON, **_OFFICIAL_MODALITY[modality], "dataset": dataset, "modality": modality}
    if dataset not in OFFICIAL_DATASETS:
        log.warning("no official PAN script for dataset %r; using the sthv1/sthv2 %s recipe "
                    "(epochs %s, lr_steps %s) — check it suits this data set", dataset, modality,
                    values["epochs"], values["lr_steps"])
    return values


def recipe_table() -> list[dict[str, Any]]:
    """One row per named recipe (for README/notebooks)."""
    rows = []
    for dataset, modality in recipe_names():
        r = get_recipe(dataset, modality)
        rows.append(dict(dataset=dataset, modality=modality, backbone=r["backbone"], epochs=r["epochs"],
                         batch_size=r["batch_size"], lr=r["lr"] if r["lr"] is not None else r["base_lr"],
                         lr_type=r["lr_type"], lr_steps=" ".join(f"{s:g}" for s in r["lr_steps"]),
                         weight_decay=r["weight_decay"], dropout=r["dropout"],
                         source=RECIPE_SOURCES[(dataset, modality)]))
    return rows
