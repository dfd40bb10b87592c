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

import torch

from pan_lib.data.catalog import DATASETS
from pan_lib.models import MODALITIES

log = logging.getLogger(__name__)

# What the notebooks / workbook pick from: "auto" (embedded recipe on the embedded data set, official
# scripts on real ones), "embedded" (the small CPU recipe on any data set), "official" (real data sets).
RECIPES = ("auto", "embedded", "official")

# Loader workers of the GPU recipes: 8 per GPU process (decoding 8 x 1-4 frames per clip keeps a
# GPU fed at 224 px; raise it to the CPU cores per GPU for video sources), each with
# engine.loader.PREFETCH_FACTOR batches of uint8 clips in shared memory (0.6 GB per process for Lite).
_OFFICIAL_COMMON: dict[str, Any] = dict(
    backbone="resnet50", pretrained=True, num_segments=8, shift_div=8, batch_size=64, optimizer="sgd", lr=None, base_lr=0.01,
    base_batch=64, lr_type="step", weight_decay=1e-4, momentum=0.9, clip_grad=20.0, dropout=0.5,
    fc_lr5=True, input_size=224, scale_size=256, accumulate=1, eval_every=1, num_workers=8,
)
_OFFICIAL_MODALITY: dict[str, dict[str, Any]] = {
    "Lite": dict(epochs=80, lr_steps=(30, 60)),
    "RGB": dict(epochs=50, lr_steps=(20, 40)),
    "PA": dict(epochs=80, lr_steps=(30, 60)),
    # TSM repo, scripts/train_tsm_something_rgb_8f.sh (SSv1): wd 5e-4 (TSM default), 50 epochs
    "TSM": dict(epochs=50, lr_steps=(20, 40), weight_decay=5e-4),
    "TSN": dict(epochs=50, lr_steps=(20, 40), weight_decay=5e-4),
    # no PAN script trains Flow or RGBDiff: they get the PA stream's recipe (Full_PA.sh), the motion
    # stream they stand beside in RGB + motion ensembles (TSN's lr x5/x10 on the Flow stem is in optim)
    "Flow": dict(epochs=80, lr_steps=(30, 60)),
    "RGBDiff": dict(epochs=80, lr_steps=(30, 60)),
}
OFFICIAL_DATASETS = ("sthv1", "sthv2")

# The embedded synthetic motion data set on a 2-core CPU (measured; see the README "Training" section):
# * a tiny ResNet from scratch (no ImageNet offline) at 48 px on frames decoded once at 56 px
#   (`python -m data_prep decode`, done by `prepare_embedded`): clips are array slices, so the CPU
#   trains instead of decoding VP9, and loading stays in the main process (num_workers 0);
# * AdamW lr 0.001, wd 0.01, no per-group lr multipliers: with the official SGD (lr 0.02-0.2, x5/x10
#   groups) TSM stayed near chance for 8-40 epochs on 960 clips (train top-1 <= 24 %), as every
#   modality had on the earlier 288-clip set;
# * temporal shift of 1/4 of the channels each way (official 1/8): resnet_tiny's first stage has 16
#   channels, so 1/8 moves 2 of them; TSM reached 25 % val with 1/8 and 53 % with 1/4 (12 epochs);
# * bf16 autocast + channels_last (1.3-1.7x on these train steps, results/bench/train_step.md);
# * the same 10 epochs for every modality (PA and Lite cost ~4x per clip: 4 frames per segment).
_EMBEDDED_COMMON: dict[str, Any] = dict(
    dataset="embedded", backbone="resnet_tiny", pretrained=False, num_segments=8, shift_div=4,
    input_size=48, scale_size=56, batch_size=16, optimizer="adamw", lr=0.001, group_lr=False,
    lr_type="cos", lr_steps=(), warmup_epochs=1.0, weight_decay=0.01, momentum=0.9, clip_grad=20.0,
    dropout=0.0, fc_lr5=True, accumulate=1, epochs=10, eval_every=1, num_workers=0, device="cpu",
    amp="bf16", channels_last=True, count_flops=True, save_every_minutes=0.0,
)
_EMBEDDED_MODALITY: dict[str, dict[str, Any]] = {m: {} for m in MODALITIES}

# Own videos (`python -m data_prep folders --name NAME`, any name not in the catalog): no official
# script exists, so the machine decides. Without CUDA: the embedded CPU recipe (resnet_tiny from scratch,
# AdamW) at 112 px on frames decoded at a 128 px short side (`python -m data_prep decode OUT --short-side
# 128`); with CUDA: the official sthv recipe for the modality (ResNet-50, ImageNet init, SGD), with the
# warning below. `--set` / overrides change either.
_CUSTOM_CPU: dict[str, Any] = dict(_EMBEDDED_COMMON, input_size=112, scale_size=128)

RECIPE_SOURCES = {
    **{(d, m): f"official PAN script scripts/train/{d}/{s}" for d in OFFICIAL_DATASETS
       for m, s in (("Lite", "Lite.sh"), ("RGB", "Full_RGB.sh"), ("PA", "Full_PA.sh"))},
    **{(d, m): "TSM repository SSv1 script (lr 0.01, steps 20 40, 50 epochs, wd 5e-4)"
       for d in OFFICIAL_DATASETS for m in ("TSM", "TSN")},
    **{(d, m): "no official script: the PA stream's (scripts/train/{d}/Full_PA.sh)".format(d=d)
       for d in OFFICIAL_DATASETS for m in ("Flow", "RGBDiff")},
    **{("embedded", m): "embedded CPU recipe (pan_lib.engine.recipes; AdamW, from scratch)" for m in _EMBEDDED_MODALITY},
}


def recipe_names() -> list[tuple[str, str]]:
    return sorted(RECIPE_SOURCES)


def get_recipe(dataset: str, modality: str) -> dict[str, Any]:
    """Config values (a dict of `TrainConfig` fields) for training `modality` on `dataset`.

    An unknown modality raises `ValueError` (`TrainConfig.from_recipe` re-raises it as `ConfigError`).
    """
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")
    if dataset == "embedded":
        return {**_EMBEDDED_COMMON, **_EMBEDDED_MODALITY[modality], "modality": modality}
    if dataset not in DATASETS and not torch.cuda.is_available():
        log.info("dataset %r is not in the catalog (own videos) and there is no GPU: the small CPU recipe "
                 "(resnet_tiny from scratch, %d px)", dataset, _CUSTOM_CPU["input_size"])
        return {**_CUSTOM_CPU, "dataset": dataset, "modality": modality}
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
                         optimizer=r["optimizer"], lr_type=r["lr_type"],
                         lr_steps=" ".join(f"{s:g}" for s in r["lr_steps"]),
                         weight_decay=r["weight_decay"], dropout=r["dropout"],
                         source=RECIPE_SOURCES[(dataset, modality)]))
    return rows
