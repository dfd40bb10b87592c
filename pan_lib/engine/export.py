"""Export a training checkpoint to the official layout and file name, so official tools read it.

    export_official("runs/Lite_sthv2_resnet50_seg8_seed0/best.pt")
    # -> runs/.../PAN_Lite_sthv2_resnet50_shift8_blockres_avg_segment8_e80.pth.tar
    #    {'epoch', 'arch', 'state_dict' ('module.'-prefixed), 'optimizer', 'best_prec1'}
"""
from __future__ import annotations

import logging
from pathlib import Path

from pan_lib.engine.checkpointing import load_train_checkpoint

log = logging.getLogger(__name__)


def export_official(checkpoint: str | Path, out_dir: str | Path | None = None, *, dataset: str | None = None,
                    include_optimizer: bool = False) -> Path:
    """Write `checkpoint` (last.pt / best.pt) as `<official name>.pth.tar` in `out_dir` (default: beside it).

    The official file name encodes modality / arch / shift / segments / epochs, which the official
    `test_models.py` parses. Data set names with '_' are written without it.
    """
    from pan_lib.checkpoints import official_checkpoint_name, save_official_checkpoint
    from pan_lib.models import build_model

    checkpoint = Path(checkpoint)
    ckpt = load_train_checkpoint(checkpoint)
    meta, cfg = ckpt["model_meta"], ckpt.get("config") or {}
    model = build_model(meta["modality"], meta["num_classes"], num_segments=meta["num_segments"],
                        backbone=meta["backbone"], dropout=meta.get("dropout", 0.5), shift=meta.get("shift"),
                        head=meta.get("head"), fold_div=meta.get("fold_div", 8),
                        shift_place=meta.get("shift_place", "blockres"))
    model.load_state_dict(ckpt["model"])
    name = official_checkpoint_name(meta["modality"], (dataset or cfg.get("dataset", "custom")).replace("_", ""),
                                    arch=meta["backbone"], num_segments=meta["num_segments"],
                                    epochs=int(cfg.get("epochs", ckpt["epoch"])), shift=meta.get("shift"),
                                    shift_div=meta.get("fold_div", 8), shift_place=meta.get("shift_place", "blockres"))
    out = Path(out_dir) if out_dir is not None else checkpoint.parent
    best = ckpt.get("best_top1")
    path = save_official_checkpoint(model, out / name, epoch=int(ckpt["epoch"]),
                                    best_prec1=float(best) if best is not None else 0.0,
                                    optimizer=ckpt["optimizer"] if include_optimizer else None,
                                    arch=meta["backbone"])
    log.info("exported %s -> %s", checkpoint, path)
    return path
