"""`python -m pan_lib.evaluate CKPT [CKPT ...] --dataset sthv2 [protocol options]` — the official test protocol.

One checkpoint evaluates a single network; several form an ensemble (mean of raw logits, like
`test_models.py --weights a,b,c`). Checkpoints are our `best.pt`/`last.pt` or official `.pth.tar` files.

    python -m pan_lib.evaluate runs/Lite_sthv2*/best.pt --dataset sthv2 --data-root /data/sthv2        # PAN_Lite
    python -m pan_lib.evaluate rgb/best.pt pa/best.pt --dataset sthv2                                 # PAN_Full
    python -m pan_lib.evaluate lite.pt rgb.pt pa.pt --dataset sthv2 --full-res --twice-sample         # PAN_En

Writes record.json, scores.npz (sorted by video id), confusion.npy, per_class.csv to --out-dir
(default: <first checkpoint's run dir>/eval/<name>).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from pan_lib.engine import evaluate
from pan_lib.engine.config import AMP_CHOICES, CROP_CHOICES, PROGRESS_CHOICES, ConfigError, EvalConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pan_lib.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--dataset", default="embedded")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--split", default="val", choices=("train", "val", "test"))
    parser.add_argument("--crops", type=int, default=1, choices=CROP_CHOICES)
    parser.add_argument("--full-res", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--twice-sample", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--dense-sample", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--coeffs", type=float, nargs="+", default=None, help="per-checkpoint weights (official --coeff)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="auto", choices=AMP_CHOICES)
    parser.add_argument("--max-videos", type=int, default=None)
    parser.add_argument("--name", default=None)
    parser.add_argument("--out-dir", default=None)
    parser.add_argument("--progress", default="auto", choices=PROGRESS_CHOICES)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = EvalConfig(dataset=args.dataset, data_root=args.data_root, split=args.split, crops=args.crops,
                         full_res=args.full_res, twice_sample=args.twice_sample, dense_sample=args.dense_sample,
                         coeffs=args.coeffs, batch_size=args.batch_size, num_workers=args.num_workers,
                         device=args.device, amp=args.amp, max_videos=args.max_videos, name=args.name,
                         out_dir=args.out_dir, progress=args.progress)
    except ConfigError as err:
        parser.error(str(err))
    res = evaluate(args.checkpoints, cfg)
    print(json.dumps({"model": res.model, "top1": res.top1, "top5": res.top5, "mean_class_acc": res.mean_class_acc,
                      "views": res.views, "videos": len(res.video_ids), "record": str(res.record_path)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
