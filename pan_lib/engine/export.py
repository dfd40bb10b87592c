"""Export a training checkpoint to the official layout and file name, so official tools read it.

    export_official("runs/Lite_sthv2_resnet50_seg8_seed0/best.pt")
    # -> runs/.../PAN_Lite_sthv2_resnet50_shift8_blockres_avg_segment8_e80.pth.tar
    #    {'epoch', 'arch', 'state_dict' ('module.'-prefixed), 'optimizer', 'best_prec1'}
"""
from __future__ import annotations

import logging
from pathlib import Path

from pan_lib.checkpoints import official_checkpoint_name, save_official_checkpoint
from pan_lib.engine.checkpointing import load_train_checkpoint
from pan_lib.models import ModelConfig, build_model

log = logging.getLogger(__name__)


def export_official(checkpoint: str | Path, out_dir: str | Path | None = None, *, dataset: str | None = None,
                    include_optimizer: bool = False) -> Path:
    """Write `checkpoint` (last.pt / best.pt) as `<official name>.pth.tar` in `out_dir` (default: beside it).

    The official file name encodes modality / arch / shift / segments / epochs, which the official
    `test_models.py` parses. Data set names with '_' are written without it.
    """
    checkpoint = Path(checkpoint)
    ckpt = load_train_checkpoint(checkpoint)
    cfg = ckpt.get("config") or {}
    # the stored ModelConfig (old names map through RENAMED_FIELDS); the weights come from the file
    mc = ModelConfig.from_dict({**ckpt["model_meta"], "pretrained": False}, ignore_unknown=True)
    model = build_model(mc)
    model.load_state_dict(ckpt["model"])
    name = official_checkpoint_name(mc.modality, (dataset or cfg.get("dataset", "custom")).replace("_", ""),
                                    arch=mc.backbone, num_segments=mc.num_segments,
                                    epochs=int(cfg.get("epochs", ckpt["epoch"])), shift=mc.shift,
                                    shift_div=mc.shift_div, shift_place=mc.shift_place)
    out = Path(out_dir) if out_dir is not None else checkpoint.parent
    best = ckpt.get("best_top1")
    path = save_official_checkpoint(model, out / name, epoch=int(ckpt["epoch"]),
                                    best_prec1=float(best) if best is not None else 0.0,
                                    optimizer=ckpt["optimizer"] if include_optimizer else None,
                                    arch=mc.backbone)
    log.info("exported %s -> %s", checkpoint, path)
    return path
