"""``python -m data_prep <command> ...`` - prepare datasets for the PAN workbook.

Commands:
  embedded        generate + prepare the embedded motion dataset (no download needed)
  sthv1, sthv2, kinetics400, ucf101, hmdb51, jester
                  read the annotation files of a download, match them to the videos / frame
                  folders, write list files + classes.txt + prepared.json into --out
  folders         your own videos: DIR/<class>/<video> or DIR/<split>/<class>/<video> -> dataset NAME
  extract-frames  optional: decode the videos of a prepared folder into JPEG frame folders
  decode          optional: decode the videos of a prepared folder once into small uint8 arrays
  flow            optional: optical flow of a prepared folder, computed once (DIS | TV-L1 | Farneback | RAFT)
  check-videos    report unreadable, empty and truncated video files (never crashes)
  baseline        order-free baselines (single frame, bag of frames) vs an order-aware control
                  on a prepared embedded dataset -> results/data/embedded_baseline.{csv,md,json}

Examples:
  python -m data_prep embedded --out data/embedded
  python -m data_prep sthv2 --root /data/ssv2 --out data/sthv2
  python -m data_prep ucf101 --root /data/ucf101 --split 1 --out data/ucf101
  python -m data_prep folders --root ~/my_videos --out data/mine --name mine
  python -m data_prep extract-frames data/sthv2 --workers 8
  python -m data_prep check-videos /data/ssv2/20bn-something-something-v2 --report bad.csv
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from data_prep.check import check_videos, write_report
from data_prep.datasets import PREPARERS
from data_prep.extract import extract_frames
from data_prep.flow import compute_flow
from data_prep.folders import prepare_folders
from pan_lib.data.baseline import bag_of_frames_baseline
from pan_lib.data.decoded import decode_videos
from pan_lib.data.lists import AnnotationError
from pan_lib.data.prepared import find_prepared
from pan_lib.data.registry import prepare_embedded
from pan_lib.data.synthetic import CLASS_SETS, CODECS, SIZES
from pan_lib.provenance import provenance, write_table

DATASET_HELP = {
    "sthv1": "Something-Something V1: --root holds something-something-v1-{labels,train,validation,test}.csv "
             "and the frame folders 20bn-something-something-v1/<id>/00001.jpg",
    "sthv2": "Something-Something V2: --root holds something-something-v2-{labels,train,validation,test}.json "
             "(optionally test-answers.csv) and 20bn-something-something-v2/<id>.webm",
    "kinetics400": "Kinetics-400: --root holds kinetics_{train,val,test}.csv and the crawler clips "
                   "<label>/<youtube_id>_<start:06d>_<end:06d>.mp4 (any folder depth)",
    "ucf101": "UCF101: --root holds ucfTrainTestlist/ (classInd.txt, trainlist0N.txt, testlist0N.txt) and "
              "UCF-101/<Class>/<video>.avi",
    "hmdb51": "HMDB51: --root holds the <class>_test_split<N>.txt files (testTrainMulti_7030_splits/) and "
              "hmdb51_org/<class>/<video>.avi",
    "jester": "Jester V1: --root holds jester-v1-{labels,train,validation,test}.csv and 20bn-jester-v1/<id>/00001.jpg",
}


def _add_pool_args(p: argparse.ArgumentParser) -> None:
    """Options shared by the commands that process every listed video with a process pool."""
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--splits", nargs="+", default=["train", "val", "test"])
    p.add_argument("--progress", default="auto", choices=["auto", "text", "off"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data_prep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    p = sub.add_parser("embedded", help="generate + prepare the embedded motion dataset",
                       description="Generate the embedded motion dataset (SSv2 layout) into OUT/raw and prepare "
                                   "it with the SSv2 code. Re-running with the same parameters does nothing; an "
                                   "interrupted run resumes.")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: data/embedded or $PAN_DATA_ROOT/embedded)")
    p.add_argument("--size", default="default", choices=list(SIZES), help="preset: videos per class, frames, resolution")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", default="default", choices=list(CLASS_SETS), help="default: 12 classes, all: 16")
    p.add_argument("--codec", default="vp9", choices=list(CODECS))
    p.add_argument("--num-frames", type=int, default=None)
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--train-per-class", type=int, default=None)
    p.add_argument("--val-per-class", type=int, default=None)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--decoded-short-side", type=int, default=56,
                   help="also decode the videos once into uint8 arrays at this short side (0: videos only)")
    p.add_argument("--progress", default="auto", choices=["auto", "text", "off"])

    for name, text in DATASET_HELP.items():
        p = sub.add_parser(name, help=text.split(":")[0], description=text)
        p.add_argument("--root", type=Path, required=True, help="the downloaded dataset folder")
        p.add_argument("--out", type=Path, required=True, help="where lists, classes.txt and prepared.json go")
        if name in ("sthv1", "jester"):
            p.add_argument("--frames", type=Path, default=None, help="frame folder if not under --root")
            p.add_argument("--label-order", default="sorted", choices=["sorted", "file"],
                           help="sorted = PAN/TSM index (default); file = mmaction2 (labels-file order)")
        else:
            p.add_argument("--videos", type=Path, default=None, help="video folder if not under --root")
            p.add_argument("--count-frames", action=argparse.BooleanOptionalAction, default=True,
                           help="count frames now (default) or leave -1 and count at load time")
            p.add_argument("--workers", type=int, default=None, help="processes for counting frames")
            p.add_argument("--progress", default="auto", choices=["auto", "text", "off"])
        if name == "sthv2":
            p.add_argument("--test-answers", type=Path, default=None, help="<id>;<label> CSV for the test list")
        if name == "kinetics400":
            p.add_argument("--label-order", default="sorted", choices=["sorted", "pan"],
                           help="sorted raw names (= mmaction2 label_map_k400) or sorted after PAN normalisation")
            p.add_argument("--label-map", type=Path, default=None, help="a label map file (one class per line)")
        if name in ("ucf101", "hmdb51"):
            p.add_argument("--split", type=int, default=1, choices=[1, 2, 3])
        if name == "hmdb51":
            p.add_argument("--class-list", type=Path, default=None,
                           help="class order file (e.g. TSN class_list.txt); default: Python-sorted names")

    p = sub.add_parser("folders", help="your own videos, one folder per class",
                       description="Prepare your own videos as dataset NAME: DIR/<class>/<video> (a seeded, "
                                   "stratified train/val[/test] split) or DIR/<split>/<class>/<video> (train/, "
                                   "val/, test/ used as they are; a missing val/test is split from train). Then "
                                   "train with TrainConfig(dataset=NAME, data_root=OUT). Long or large videos: "
                                   "run `decode` (small sets) or `extract-frames` (large ones) once afterwards.")
    p.add_argument("--root", type=Path, required=True, help="DIR: class folders, or train/ val/ test/ folders")
    p.add_argument("--out", type=Path, required=True, help="where lists, classes.txt and prepared.json go")
    p.add_argument("--name", required=True, help="the dataset name to train with (not one of the known datasets)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="per class, when there is no val/ folder")
    p.add_argument("--test-fraction", type=float, default=0.0, help="per class, when there is no test/ folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the stratified split")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="horizontal flip in training (--no-flip when left/right tells classes apart)")
    p.add_argument("--count-frames", action=argparse.BooleanOptionalAction, default=True,
                   help="count frames now (default) or leave -1 and count at load time")
    p.add_argument("--workers", type=int, default=None, help="processes for counting frames")
    p.add_argument("--progress", default="auto", choices=["auto", "text", "off"])

    p = sub.add_parser("extract-frames", help="decode videos of a prepared folder into JPEG folders",
                       description="Extract frames of a prepared dataset (resumable, bounded pool); writes "
                                   "{split}_frames.txt, extraction.json and extraction_videos.tsv.")
    p.add_argument("prepared", type=Path, help="a folder written by `python -m data_prep <dataset>`")
    p.add_argument("--frames-dir", type=Path, default=None, help="default: <prepared>/frames")
    p.add_argument("--scale", type=int, default=None, help="short side in px (default: the official value; 0 keeps)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality")
    _add_pool_args(p)

    p = sub.add_parser("decode", help="decode the videos of a prepared folder once into uint8 arrays",
                       description="Decode every listed video into <prepared>/decoded_s<S>/<path>.npy (uint8 "
                                   "[F, H, W, 3], short side S); loaders then read clips as array slices "
                                   "(source 'decoded', chosen automatically). Resumable; undecodable videos "
                                   "are listed in decode_failures.txt. Meant for small datasets (embedded).")
    p.add_argument("prepared", type=Path, help="a folder written by `python -m data_prep <dataset>`")
    p.add_argument("--short-side", type=int, default=56, help="short side in px (0 keeps the video size)")
    _add_pool_args(p)

    p = sub.add_parser("flow", help="optical flow of a prepared folder, computed once (for the Flow modality)",
                       description="Compute the optical flow of every listed video (on the decoded arrays when "
                                   "present, same short side) and store it like TSN: clipped to +-20 px, uint8, "
                                   "in <prepared>/flow_<method>_s<S>/<path>.npy ([F-1, H, W, 2]); seconds per "
                                   "video in flow_<method>_s<S>_timing.csv, failures in ..._failures.txt. "
                                   "Resumable.")
    p.add_argument("prepared", type=Path, help="a folder written by `python -m data_prep <dataset>`")
    p.add_argument("--method", default="dis", help="dis (OpenCV DIS medium, default) | tvl1 | farneback | raft "
                                                   "(torchvision RAFT large, trained weights needed locally)")
    p.add_argument("--short-side", type=int, default=None,
                   help="short side when reading videos (default: the decoded arrays' side, else 256)")
    p.add_argument("--threads", type=int, default=1, help="OpenCV / torch threads per worker process")
    p.add_argument("--raft-weights", default="auto", help="auto (torch hub cache) | a state-dict path")
    _add_pool_args(p)

    p = sub.add_parser("baseline", help="single-frame / bag-of-frames baselines on the embedded dataset",
                       description="Linear classifiers on order-free views of each video (one frame; mean/std/"
                                   "min/max over frames) and on an order-aware control (antisymmetric lag-1 "
                                   "correlation); reports accuracy per time-reversal pair (chance 0.5).")
    p.add_argument("prepared", type=Path, help="a prepared embedded folder")
    p.add_argument("--split", default="val", choices=["val", "test"])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--out", type=Path, default=Path("results/data/embedded_baseline"), help="output stem")

    p = sub.add_parser("check-videos", help="report unreadable / truncated / empty videos",
                       description="Decode every video under a folder completely and compare the decoded frame "
                                   "count with the header; exit status 1 when any file is bad.")
    p.add_argument("folder", type=Path)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tolerance", type=float, default=0.05, help="allowed fraction of missing frames")
    p.add_argument("--report", type=Path, default=None, help="write every result to a .csv or .json file")
    p.add_argument("--progress", default="auto", choices=["auto", "text", "off"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level), format="%(levelname)s %(name)s: %(message)s")
    cmd = args.command
    try:
        if cmd == "embedded":
            overrides = {k: v for k, v in (("num_frames", args.num_frames), ("resolution", args.resolution),
                                            ("train_per_class", args.train_per_class),
                                            ("val_per_class", args.val_per_class)) if v is not None}
            prepared = prepare_embedded(args.out, size=args.size, seed=args.seed, classes=args.classes,
                                        codec=args.codec, workers=args.workers, progress=args.progress,
                                        decoded_short_side=args.decoded_short_side or None, **overrides)
            print(f"embedded dataset ready in {prepared.root} ({prepared.num_classes} classes, "
                  f"fingerprint {prepared.fingerprint})")
            return 0
        if cmd == "folders":
            manifest = json.loads(prepare_folders(
                args.root, args.out, name=args.name, val_fraction=args.val_fraction, test_fraction=args.test_fraction,
                seed=args.seed, flip=args.flip, count_frames=args.count_frames, workers=args.workers,
                progress=args.progress).read_text())
            print(f"{args.name} prepared in {args.out}: {manifest['num_classes']} classes, {manifest['counts']}")
            print(f"train with: python -m pan_lib.train --recipe {args.name}/Lite --set data_root={args.out}")
            return 0
        if cmd == "extract-frames":
            summary = extract_frames(args.prepared, frames_dir=args.frames_dir, scale=args.scale,
                                     quality=args.quality, workers=args.workers, splits=args.splits,
                                     progress=args.progress)
            print(json.dumps({k: v for k, v in summary.items() if k != "tools"}, indent=1))
            return 1 if summary["failed"] else 0
        if cmd == "decode":
            summary = decode_videos(args.prepared, short_side=args.short_side, workers=args.workers,
                                    splits=args.splits, progress=args.progress)
            print(json.dumps({k: v for k, v in summary.items() if k != "tools"}, indent=1))
            return 1 if summary["failed"] else 0
        if cmd == "flow":
            summary = compute_flow(args.prepared, args.method, short_side=args.short_side, workers=args.workers,
                                   threads=args.threads, splits=args.splits, raft_weights=args.raft_weights,
                                   progress=args.progress)
            print(json.dumps({k: v for k, v in summary.items() if k != "tools"}, indent=1))
            return 1 if summary["failed"] else 0
        if cmd == "baseline":
            prepared = find_prepared("embedded", args.prepared, source="video")
            res = bag_of_frames_baseline(prepared, frames=args.frames, split=args.split)
            rows = []
            for variant in ("single_frame", "bag_of_frames", "ordered_control"):
                row = {"features": variant, "accuracy": round(res[variant]["accuracy"], 3),
                       "pair_accuracy_mean": round(res[variant]["pair_accuracy_mean"], 3)}
                row.update({k: round(v, 3) for k, v in res[variant]["pairs"].items()})
                rows.append(row)
            meta = provenance(config={k: v for k, v in res.items() if not isinstance(v, dict)},
                              data_fingerprint=prepared.fingerprint)
            for path in write_table(rows, args.out, title="Embedded dataset: order-free baselines "
                                    f"({res['classes']} classes, {res['test_videos']} {args.split} videos; "
                                    "pair chance = 0.5)", meta=meta,
                                    command="python -m data_prep " + " ".join(sys.argv[1:] if argv is None else argv)):
                print(f"wrote {path}")
            print(json.dumps(rows, indent=1))
            return 0
        if cmd == "check-videos":
            results = check_videos(args.folder, workers=args.workers, tolerance=args.tolerance,
                                   progress=args.progress)
            bad = [r for r in results if not r.ok]
            for r in bad:
                print(f"{r.status:10s} {r.path}: {r.message}")
            print(f"checked {len(results)} videos: {len(results) - len(bad)} ok, {len(bad)} bad")
            if args.report:
                print(f"report: {write_report(results, args.report)}")
            return 1 if bad else 0
        kwargs = {k: v for k, v in vars(args).items() if k not in ("command", "log_level", "root", "out")}
        manifest = PREPARERS[cmd](args.root, args.out, **kwargs)
        written = json.loads(Path(manifest).read_text())
        print(f"{cmd} prepared in {args.out}: {written['counts']}")
        for split, why in (written.get("absent_splits") or {}).items():
            print(f"no {split} list: {why}")
        return 0
    except (AnnotationError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
