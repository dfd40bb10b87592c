"""Prepare each dataset from its download: list files, label map and a manifest with provenance.

``prepare_<name>(root, out, ...)`` reads the annotation files under ``root`` (searched in ``root``
and one folder below, by the names the datasets ship with), matches them to the videos / frame
folders on disk and writes into ``out``::

    prepared.json          manifest: dataset, roots, lists, label order, counts, fingerprint, provenance
    classes.txt            label map (line i = class i)
    {train,val,test}_videos.txt   <video path relative to video_root> <num_frames> <label>
    {train,val,test}_frames.txt   <frame folder relative to frames_root> <num_frames> <label>  (frame datasets)
    missing_<split>.txt    annotated videos not found on disk (left out of the lists)

An evaluation-only download (SSv2 labels + validation (+ test) JSON; Kinetics val (+ test) CSV) is
prepared without a train list; the manifest's ``absent_splits`` says that training needs the train file.

``num_frames`` of a video is counted at preparation (decord's index, parallel) unless
``count_frames=False`` (then ``-1``: counted when first loaded). Frame folders count only files that
match the frame template (a stray ``DONE`` file does not inflate the count).

The steps the preparers share and the SSv2 preparer (which the library runs itself for the embedded
dataset) are in ``pan_lib.data.preparation``; the annotation parsers in ``pan_lib.data.parsers``;
the folder format in ``pan_lib.data.prepared``.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Sequence

from pan_lib.data import parsers as P
from pan_lib.data.catalog import get_dataset_info
from pan_lib.data.lists import VideoRecord
from pan_lib.data.prepared import write_prepared

log = logging.getLogger(__name__)
from pan_lib.data.preparation import (find_dir, find_file, find_listed_videos, index_videos, prepare_sthv2,
                                      video_records)


def frame_count(folder: Path, image_tmpl: str) -> int:
    """Frames named by ``image_tmpl`` (1-based, contiguous from 1) in ``folder``."""
    pattern = re.compile("^" + re.escape(image_tmpl).replace(r"\{:05d\}", r"\d{5}")
                         .replace(r"\{:06d\}", r"\d{6}").replace(r"\{:04d\}", r"\d{4}") + "$")
    try:
        return sum(1 for name in os.listdir(folder) if pattern.match(name))
    except FileNotFoundError:
        return 0


# ----------------------------------------------------------------------------- SSv1 / Jester (frames)
def _prepare_frame_csv_dataset(name: str, prefix: str, frame_dirs: Sequence[str], root: Path, out: Path,
                               frames: Path | None, label_order: str) -> Path:
    info = get_dataset_info(name)
    labels_f = find_file(root, [f"{prefix}-labels.csv", "*labels.csv"], f"{name} labels CSV")
    train_f = find_file(root, [f"{prefix}-train.csv", "*train*.csv"], f"{name} train CSV")
    val_f = find_file(root, [f"{prefix}-validation.csv", "*validation*.csv"], f"{name} validation CSV")
    test_f = find_file(root, [f"{prefix}-test.csv", "*test*.csv"], f"{name} test CSV", required=False)
    classes = P.label_index(P.parse_label_lines(labels_f), label_order)
    frames_root = Path(frames) if frames else find_dir(root, frame_dirs, "frame folder")
    lists: dict[str, list[VideoRecord]] = {}
    missing: dict[str, list[str]] = {}
    for split, f, labeled in (("train", train_f, True), ("val", val_f, True), ("test", test_f, False)):
        if f is None:
            continue
        recs, miss = [], []
        for vid, label in P.parse_id_label_csv(f, classes, labeled=labeled):
            n = frame_count(frames_root / vid, info.image_tmpl)
            if n == 0:
                miss.append(vid)
            else:
                recs.append(VideoRecord(vid, n, int(label)))
        lists[split], missing[split] = recs, miss
    return write_prepared(out, name, classes=classes, lists={"frames": lists}, video_root=None,
                          frames_root=frames_root, missing=missing, options={"label_order": label_order},
                          source_files=[f for f in (labels_f, train_f, val_f, test_f) if f])


def prepare_sthv1(root: str | Path, out: str | Path, *, frames: str | Path | None = None,
                  label_order: str = "sorted", **_: Any) -> Path:
    """SSv1 ships JPEG frames (``<id>/00001.jpg``); label order "sorted" (PAN/TSM) or "file" (mmaction2)."""
    return _prepare_frame_csv_dataset("sthv1", "something-something-v1",
                                      ["20bn-something-something-v1", "frames", "img"], Path(root), Path(out),
                                      Path(frames) if frames else None, label_order)


def prepare_jester(root: str | Path, out: str | Path, *, frames: str | Path | None = None,
                   label_order: str = "sorted", **_: Any) -> Path:
    """Jester ships JPEG frames (``<id>/00001.jpg``); label order as for SSv1."""
    return _prepare_frame_csv_dataset("jester", "jester-v1", ["20bn-jester-v1", "frames"], Path(root), Path(out),
                                      Path(frames) if frames else None, label_order)


def training_needs(what: str, root: Path, out: Path, command: str) -> str:
    """Why an evaluation-only download has no train list, and how to add one."""
    return (f"evaluation-only download: training needs the {what}, which is not under {root}; add it and "
            f"re-run `python -m data_prep {command} --root {root} --out {out}` (val/test lists are ready)")


# ----------------------------------------------------------------------------- SSv2 (downloads)


def prepare_sthv2_download(root: str | Path, out: str | Path, *, videos: str | Path | None = None,
                           count_frames: bool = True, workers: int | None = None, progress: str = "auto",
                           test_answers: str | Path | None = None) -> Path:
    """SSv2 from its download (``pan_lib.data.preparation.prepare_sthv2``). Without the train JSON --
    the labels + validation (+ test) JSON, what evaluating the official checkpoints needs -- the
    val/test lists are prepared and the manifest says that training needs the train JSON."""
    root, out = Path(root), Path(out)
    absent_train = training_needs("SSv2 train JSON (something-something-v2-train.json)", root, out, "sthv2")
    return prepare_sthv2(root, out, videos=videos, count_frames=count_frames, workers=workers, progress=progress,
                         test_answers=test_answers, absent_train=absent_train)


# ----------------------------------------------------------------------------- Kinetics-400
def prepare_kinetics400(root: str | Path, out: str | Path, *, videos: str | Path | None = None,
                        label_order: str = "sorted", label_map: str | Path | None = None,
                        count_frames: bool = True, workers: int | None = None, progress: str = "auto") -> Path:
    """Kinetics-400 crawler clips ``<label folder>/<id>_<start:06d>_<end:06d>.mp4`` (any folder layout;
    clips are matched by file name). Classes: ``label_map`` file if given, else the sorted train
    labels ("sorted" = mmaction2 ``label_map_k400.txt``) or "pan" (sorted after PAN's name
    normalisation, which swaps the two skiing classes)."""
    root, out = Path(root), Path(out)
    train_f = find_file(root, ["kinetics*train*.csv", "*train*.csv"], "Kinetics train CSV", required=False)
    val_f = find_file(root, ["kinetics*val*.csv", "*val*.csv"], "Kinetics val CSV")
    test_f = find_file(root, ["kinetics*test*.csv", "*test*.csv"], "Kinetics test CSV", required=False)
    train_rows = P.parse_kinetics_csv(train_f) if train_f else None
    val_rows = P.parse_kinetics_csv(val_f)
    for f, rows in ((train_f, train_rows), (val_f, val_rows)):
        if rows and rows[0].label is None:
            raise P.AnnotationError(f, 1, "train/val CSV needs a 'label' column")
    absent = {}
    if train_rows is None:  # evaluation only: the val (+ test) CSV of the download
        absent["train"] = training_needs("Kinetics train CSV (kinetics_train.csv)", root, out, "kinetics400")
        if not label_map:
            log.warning("no train CSV: classes are the %d labels of %s (the official 400 when the val CSV is "
                        "complete; --label-map fixes the order otherwise)", len({r.label for r in val_rows}),
                        val_f.name)
    named = {r.label for r in (train_rows if train_rows is not None else val_rows)}
    if label_map:
        classes = [c for c in Path(label_map).read_text(encoding="utf-8").splitlines() if c.strip()]
    elif label_order == "pan":
        classes = sorted(named, key=P.kinetics_pan_name)
    elif label_order == "sorted":
        classes = sorted(named)
    else:
        raise ValueError(f"unknown label order {label_order!r}; valid: sorted, pan")
    cls_index = {c: i for i, c in enumerate(classes)}
    cls_index.update({c.replace(" ", "_"): i for i, c in enumerate(classes)})
    video_root = Path(videos) if videos else root
    index = index_videos(video_root, recursive=True)
    lists, missing = {}, {}
    for split, f, rows in (("train", train_f, train_rows), ("val", val_f, val_rows),
                           ("test", test_f, P.parse_kinetics_csv(test_f) if test_f else None)):
        if rows is None:
            continue
        entries = []
        for r in rows:
            label = -1
            if r.label is not None:
                if r.label not in cls_index:
                    raise P.AnnotationError(f, None, f"label {r.label!r} ({r.key}) is not in the class list")
                label = cls_index[r.label]
            key = r.key if r.key in index else r.youtube_id
            entries.append((key if key in index else r.key, label))
        lists[split], missing[split] = video_records(entries, index, video_root, count_frames, workers, progress)
    return write_prepared(out, "kinetics400", classes=classes, lists={"video": lists}, video_root=video_root,
                          frames_root=None, missing=missing,
                          options={"label_order": "label_map" if label_map else label_order,
                                   "count_frames": count_frames, "evaluation_only": bool(absent)},
                          source_files=[f for f in (train_f, val_f, test_f, label_map) if f], absent_splits=absent)


# ----------------------------------------------------------------------------- UCF101
def prepare_ucf101(root: str | Path, out: str | Path, *, split: int = 1, videos: str | Path | None = None,
                   count_frames: bool = True, workers: int | None = None, progress: str = "auto") -> Path:
    """UCF101 split ``split`` (1-3): trainlist -> train, testlist -> val (the evaluation split).
    Listed ``Class/v_X.avi`` names match files of any video extension (re-encoded ``.mp4`` copies)."""
    if split not in (1, 2, 3):
        raise ValueError(f"UCF101 split must be 1, 2 or 3, got {split}")
    root, out = Path(root), Path(out)
    classind_f = find_file(root, ["classInd.txt"], "UCF101 classInd.txt")
    train_f = find_file(root, [f"trainlist0{split}.txt"], f"UCF101 trainlist0{split}.txt")
    test_f = find_file(root, [f"testlist0{split}.txt"], f"UCF101 testlist0{split}.txt")
    classes = P.parse_ucf_classind(classind_f)
    video_root = Path(videos) if videos else find_dir(root, ["UCF-101", "UCF101", "videos"], "UCF101 video folder")
    lists, missing = {}, {}
    for name, f in (("train", train_f), ("val", test_f)):
        rows = P.parse_ucf_split(f, classes)
        index = find_listed_videos((rel for rel, _ in rows), video_root)  # v_X.avi also matches v_X.mp4
        lists[name], missing[name] = video_records(rows, index, video_root, count_frames, workers, progress)
    return write_prepared(out, "ucf101", classes=classes, lists={"video": lists}, video_root=video_root,
                          frames_root=None, missing=missing,
                          options={"split": split, "label_order": "classInd - 1", "count_frames": count_frames},
                          source_files=[classind_f, train_f, test_f])


# ----------------------------------------------------------------------------- HMDB51
def prepare_hmdb51(root: str | Path, out: str | Path, *, split: int = 1, videos: str | Path | None = None,
                   class_list: str | Path | None = None, count_frames: bool = True, workers: int | None = None,
                   progress: str = "auto") -> Path:
    """HMDB51 split ``split``: flag 1 -> train, 2 -> val, 0 unused. Classes: Python-sorted (mmaction2
    ``label_map.txt``) unless ``class_list`` (e.g. TSN's ``class_list.txt``, lines stripped) is given.
    Videos are ``<class>/<listed name>``, whatever their video extension."""
    if split not in (1, 2, 3):
        raise ValueError(f"HMDB51 split must be 1, 2 or 3, got {split}")
    root, out = Path(root), Path(out)
    split_files = sorted(root.rglob(f"*_test_split{split}.txt"))
    if not split_files:
        raise FileNotFoundError(f"no '<class>_test_split{split}.txt' files under {root}")
    parsed = [P.parse_hmdb_split_file(f) for f in split_files]
    names = sorted({cls for cls, _, _ in parsed})
    if class_list:
        classes = [c.strip() for c in Path(class_list).read_text(encoding="utf-8").splitlines() if c.strip()]
        unknown = set(names) - set(classes)
        if unknown:
            raise ValueError(f"{class_list} lacks classes {sorted(unknown)}")
    else:
        classes = names
    cls_index = {c: i for i, c in enumerate(classes)}
    video_root = Path(videos) if videos else find_dir(root, ["hmdb51_org", "HMDB51", "videos"], "HMDB51 video folder")
    lists, missing = {}, {}
    for name, flag in (("train", 1), ("val", 2)):
        rows = [(f"{cls}/{video}", cls_index[cls]) for cls, _, vids in parsed for video, fl in vids if fl == flag]
        index = find_listed_videos((rel for rel, _ in rows), video_root)  # x.avi also matches x.mp4
        lists[name], missing[name] = video_records(rows, index, video_root, count_frames, workers, progress)
    return write_prepared(out, "hmdb51", classes=classes, lists={"video": lists}, video_root=video_root,
                          frames_root=None, missing=missing,
                          options={"split": split, "label_order": "class_list" if class_list else "sorted",
                                   "count_frames": count_frames},
                          source_files=split_files)


# the embedded dataset is generated and prepared by pan_lib.data.registry.prepare_embedded
PREPARERS = {"sthv1": prepare_sthv1, "sthv2": prepare_sthv2_download, "kinetics400": prepare_kinetics400,
             "ucf101": prepare_ucf101, "hmdb51": prepare_hmdb51, "jester": prepare_jester}
