"""Prepare each dataset from its download: list files, label map and a manifest with provenance.

``prepare_<name>(root, out, ...)`` reads the annotation files under ``root`` (searched in ``root``
and one folder below, by the names the datasets ship with), matches them to the videos / frame
folders on disk and writes into ``out``::

    prepared.json          manifest: dataset, roots, lists, label order, counts, fingerprint, provenance
    classes.txt            label map (line i = class i)
    {train,val,test}_videos.txt   <video path relative to video_root> <num_frames> <label>
    {train,val,test}_frames.txt   <frame folder relative to frames_root> <num_frames> <label>  (frame datasets)
    missing_<split>.txt    annotated videos not found on disk (left out of the lists)

``num_frames`` of a video is counted at preparation (decord's index, parallel) unless
``count_frames=False`` (then ``-1``: counted when first loaded). Frame folders count only files that
match the frame template (a stray ``DONE`` file does not inflate the count).
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from data_prep import parsers as P
from pan_lib.data.lists import VideoRecord, write_classes, write_list_file
from pan_lib.data.registry import CLASSES_FILE, MANIFEST, get_dataset_info
from pan_lib.data.video import VIDEO_EXTENSIONS

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


# ----------------------------------------------------------------------------- helpers
def find_file(root: Path, patterns: Sequence[str], what: str, required: bool = True) -> Path | None:
    """First file matching one of ``patterns`` in ``root`` or one folder below."""
    for pattern in patterns:
        for base in (root, *sorted(p for p in root.iterdir() if p.is_dir())) if root.is_dir() else ():
            hits = sorted(base.glob(pattern))
            if hits:
                return hits[0]
    if required:
        raise FileNotFoundError(f"{what} not found under {root} (looked for {', '.join(patterns)} "
                                f"in {root} and its sub-folders)")
    return None


def find_dir(root: Path, names: Sequence[str], what: str) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    if root.is_dir():
        return root
    raise FileNotFoundError(f"{what} not found: {root} is not a folder")


def index_videos(folder: Path, recursive: bool = False) -> dict[str, Path]:
    """``{file stem: path}`` of the video files in ``folder`` (or below it)."""
    out: dict[str, Path] = {}
    it = folder.rglob("*") if recursive else folder.iterdir()
    for p in it:
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file():
            out.setdefault(p.stem, p)
    return out


def frame_count(folder: Path, image_tmpl: str) -> int:
    """Frames named by ``image_tmpl`` (1-based, contiguous from 1) in ``folder``."""
    pattern = re.compile("^" + re.escape(image_tmpl).replace(r"\{:05d\}", r"\d{5}")
                         .replace(r"\{:06d\}", r"\d{6}").replace(r"\{:04d\}", r"\d{4}") + "$")
    try:
        return sum(1 for name in os.listdir(folder) if pattern.match(name))
    except FileNotFoundError:
        return 0


def _count_one(path: str) -> int:
    from pan_lib.data.video import VideoReadError, count_frames

    try:
        return count_frames(path)
    except (VideoReadError, Exception):  # noqa: BLE001 - an unreadable file is reported, not fatal
        return -1


def count_video_frames(paths: Sequence[Path], workers: int | None = None, progress: str = "auto") -> list[int]:
    """Frame counts (-1 when unreadable) with a bounded process pool."""
    from pan_lib.data._progress import progress_bar

    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    out: list[int] = []
    with progress_bar(total=len(paths), desc="counting frames", mode=progress) as bar:
        if workers > 1 and len(paths) > 32:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")  # decord must not be forked after use in the parent
            with ctx.Pool(workers) as pool:
                for n in pool.imap(_count_one, [str(p) for p in paths], chunksize=16):
                    out.append(n)
                    bar.update(1)
        else:
            for p in paths:
                out.append(_count_one(str(p)))
                bar.update(1)
    return out


def _video_records(entries: Iterable[tuple[str, int]], index: dict[str, Path], video_root: Path,
                   count_frames: bool, workers: int | None, progress: str) -> tuple[list[VideoRecord], list[str]]:
    found, missing = [], []
    for key, label in entries:
        path = index.get(key)
        if path is None:
            missing.append(key)
        else:
            found.append((path, label))
    counts = count_video_frames([p for p, _ in found], workers, progress) if count_frames else [-1] * len(found)
    records = [VideoRecord(p.relative_to(video_root).as_posix(), n, label) for (p, label), n in zip(found, counts)]
    return records, missing


def write_prepared(out: Path, name: str, *, classes: Sequence[str], lists: dict[str, dict[str, list[VideoRecord]]],
                   video_root: Path | None, frames_root: Path | None, image_tmpl: str | None = None,
                   missing: dict[str, list[str]] | None = None, options: dict[str, Any] | None = None,
                   source_files: Sequence[Path] = ()) -> Path:
    """Write list files, ``classes.txt`` and the manifest; returns the manifest path."""
    from pan_lib.provenance import fingerprint_files, provenance

    out.mkdir(parents=True, exist_ok=True)
    info = get_dataset_info(name)
    written: list[Path] = [write_classes(out / CLASSES_FILE, classes)]
    manifest_lists: dict[str, dict[str, str]] = {}
    counts: dict[str, Any] = {}
    for source, by_split in lists.items():
        manifest_lists[source] = {}
        for split, records in by_split.items():
            if records is None:
                continue
            fname = f"{split}_{'videos' if source == 'video' else 'frames'}.txt"
            written.append(write_list_file(out / fname, records))
            manifest_lists[source][split] = fname
            counts[f"{source}/{split}"] = len(records)
            unknown = sum(1 for r in records if r.num_frames < 0)
            if unknown:
                counts[f"{source}/{split}/unknown_frames"] = unknown
    for split, keys in (missing or {}).items():
        if keys:
            (out / f"missing_{split}.txt").write_text("".join(f"{k}\n" for k in keys), encoding="utf-8")
            counts[f"missing/{split}"] = len(keys)
            log.warning("%s %s: %d annotated videos not found on disk (listed in %s)", name, split, len(keys),
                        out / f"missing_{split}.txt")
    fingerprint = fingerprint_files(written)
    manifest = {
        "name": name, "format_version": FORMAT_VERSION, "num_classes": len(classes),
        "classes_file": CLASSES_FILE, "image_tmpl": image_tmpl or info.image_tmpl,
        "video_root": _portable(video_root, out), "frames_root": _portable(frames_root, out),
        "lists": manifest_lists, "counts": counts, "options": dict(options or {}),
        "source_files": {p.name: str(Path(p).resolve()) for p in source_files},
        "source_fingerprint": fingerprint_files([p for p in source_files if Path(p).is_file()]) if source_files else None,
        "fingerprint": fingerprint,
        "provenance": provenance(config=options, data_fingerprint=fingerprint),
    }
    path = out / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, default=str))
    tmp.replace(path)
    log.info("prepared %s in %s: %s", name, out, counts)
    return path


def _portable(path: Path | None, out: Path) -> str | None:
    """Relative to the prepared folder when inside it (the folder can then be moved), else absolute."""
    if path is None:
        return None
    path, out = Path(path).resolve(), Path(out).resolve()
    try:
        return path.relative_to(out).as_posix()
    except ValueError:
        return str(path)


def update_manifest(out: Path, **changes: Any) -> dict:
    path = Path(out) / MANIFEST
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, default=str))
    tmp.replace(path)
    return manifest


# ----------------------------------------------------------------------------- SSv2 (+ embedded)
def prepare_sthv2(root: str | Path, out: str | Path, *, name: str = "sthv2", videos: str | Path | None = None,
                  count_frames: bool = True, workers: int | None = None, progress: str = "auto",
                  test_answers: str | Path | None = None, extra_options: dict[str, Any] | None = None) -> Path:
    """Something-Something V2 (and the embedded dataset, which uses the same layout)."""
    root, out = Path(root), Path(out)
    labels_f = find_file(root, ["something-something-v2-labels.json", "*labels.json"], "SSv2 labels JSON")
    train_f = find_file(root, ["something-something-v2-train.json", "*train*.json"], "SSv2 train JSON")
    val_f = find_file(root, ["something-something-v2-validation.json", "*validation*.json"], "SSv2 validation JSON")
    test_f = find_file(root, ["something-something-v2-test.json", "*test.json"], "SSv2 test JSON", required=False)
    answers_f = Path(test_answers) if test_answers else find_file(root, ["test-answers.csv", "*test-answers*.csv"],
                                                                   "test answers", required=False)
    classes = P.parse_sthv2_labels(labels_f)
    video_root = Path(videos) if videos else find_dir(root, ["20bn-something-something-v2", "videos"], "video folder")
    index = index_videos(video_root)
    lists: dict[str, list[VideoRecord] | None] = {}
    missing: dict[str, list[str]] = {}
    for split, f in (("train", train_f), ("val", val_f)):
        entries = P.parse_sthv2_entries(f, classes)
        lists[split], missing[split] = _video_records(((e.id, e.label) for e in entries), index, video_root,
                                                      count_frames, workers, progress)
    if test_f is not None:
        answers = {}
        if answers_f is not None:
            answers = {vid: lab for vid, lab in P.parse_id_label_csv(answers_f, classes)}
        entries = P.parse_sthv2_entries(test_f, None)
        lists["test"], missing["test"] = _video_records(((e.id, answers.get(e.id, -1)) for e in entries), index,
                                                        video_root, count_frames, workers, progress)
    options = {"count_frames": count_frames, "label_order": "labels.json index", **(extra_options or {})}
    return write_prepared(out, name, classes=classes, lists={"video": lists}, video_root=video_root,
                          frames_root=None, missing=missing, options=options,
                          source_files=[f for f in (labels_f, train_f, val_f, test_f, answers_f) if f])


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


# ----------------------------------------------------------------------------- Kinetics-400
def prepare_kinetics400(root: str | Path, out: str | Path, *, videos: str | Path | None = None,
                        label_order: str = "sorted", label_map: str | Path | None = None,
                        count_frames: bool = True, workers: int | None = None, progress: str = "auto") -> Path:
    """Kinetics-400 crawler clips ``<label folder>/<id>_<start:06d>_<end:06d>.mp4`` (any folder layout;
    clips are matched by file name). Classes: ``label_map`` file if given, else the sorted train
    labels ("sorted" = mmaction2 ``label_map_k400.txt``) or "pan" (sorted after PAN's name
    normalisation, which swaps the two skiing classes)."""
    root, out = Path(root), Path(out)
    train_f = find_file(root, ["kinetics*train*.csv", "*train*.csv"], "Kinetics train CSV")
    val_f = find_file(root, ["kinetics*val*.csv", "*val*.csv"], "Kinetics val CSV")
    test_f = find_file(root, ["kinetics*test*.csv", "*test*.csv"], "Kinetics test CSV", required=False)
    train_rows, val_rows = P.parse_kinetics_csv(train_f), P.parse_kinetics_csv(val_f)
    for f, rows in ((train_f, train_rows), (val_f, val_rows)):
        if rows and rows[0].label is None:
            raise P.AnnotationError(f, 1, "train/val CSV needs a 'label' column")
    if label_map:
        classes = [c for c in Path(label_map).read_text(encoding="utf-8").splitlines() if c.strip()]
    elif label_order == "pan":
        classes = sorted({r.label for r in train_rows}, key=P.kinetics_pan_name)
    elif label_order == "sorted":
        classes = sorted({r.label for r in train_rows})
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
        lists[split], missing[split] = _video_records(entries, index, video_root, count_frames, workers, progress)
    return write_prepared(out, "kinetics400", classes=classes, lists={"video": lists}, video_root=video_root,
                          frames_root=None, missing=missing,
                          options={"label_order": "label_map" if label_map else label_order,
                                   "count_frames": count_frames},
                          source_files=[f for f in (train_f, val_f, test_f, label_map) if f])


# ----------------------------------------------------------------------------- UCF101
def prepare_ucf101(root: str | Path, out: str | Path, *, split: int = 1, videos: str | Path | None = None,
                   count_frames: bool = True, workers: int | None = None, progress: str = "auto") -> Path:
    """UCF101 split ``split`` (1-3): trainlist -> train, testlist -> val (the evaluation split)."""
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
        index = {rel: video_root / rel for rel, _ in rows if (video_root / rel).is_file()}
        lists[name], missing[name] = _video_records(rows, index, video_root, count_frames, workers, progress)
    return write_prepared(out, "ucf101", classes=classes, lists={"video": lists}, video_root=video_root,
                          frames_root=None, missing=missing,
                          options={"split": split, "label_order": "classInd - 1", "count_frames": count_frames},
                          source_files=[classind_f, train_f, test_f])


# ----------------------------------------------------------------------------- HMDB51
def prepare_hmdb51(root: str | Path, out: str | Path, *, split: int = 1, videos: str | Path | None = None,
                   class_list: str | Path | None = None, count_frames: bool = True, workers: int | None = None,
                   progress: str = "auto") -> Path:
    """HMDB51 split ``split``: flag 1 -> train, 2 -> val, 0 unused. Classes: Python-sorted (mmaction2
    ``label_map.txt``) unless ``class_list`` (e.g. TSN's ``class_list.txt``, lines stripped) is given."""
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
        index = {rel: video_root / rel for rel, _ in rows if (video_root / rel).is_file()}
        lists[name], missing[name] = _video_records(rows, index, video_root, count_frames, workers, progress)
    return write_prepared(out, "hmdb51", classes=classes, lists={"video": lists}, video_root=video_root,
                          frames_root=None, missing=missing,
                          options={"split": split, "label_order": "class_list" if class_list else "sorted",
                                   "count_frames": count_frames},
                          source_files=split_files)


def prepare_embedded(out: str | Path, **kwargs: Any) -> Path:
    """Generate + prepare the embedded dataset (see ``pan_lib.data.prepare_embedded``)."""
    from pan_lib.data.registry import prepare_embedded as _prep

    return _prep(out, **kwargs).root / MANIFEST


PREPARERS = {"sthv1": prepare_sthv1, "sthv2": prepare_sthv2, "kinetics400": prepare_kinetics400,
             "ucf101": prepare_ucf101, "hmdb51": prepare_hmdb51, "jester": prepare_jester}
