"""Turning a download into a prepared folder: the shared steps, and the Something-Something V2 preparer.

The steps every video dataset's preparer takes (``python -m data_prep <name>``, ``data_prep.datasets``):
find the annotation files (``find_file``, in ``root`` and one folder below, by the names the
datasets ship with), index the videos on disk (``index_videos`` by id, ``find_listed_videos`` by listed
path whatever the extension), match annotations to them and count
their frames (``video_records``; decord's index, parallel) and write the folder
(``pan_lib.data.prepared.write_prepared``).

``prepare_sthv2`` lives here rather than in ``data_prep`` because the library runs it itself: the
embedded dataset is written in the SSv2 layout and prepared with this code
(``pan_lib.data.registry.prepare_embedded``).
"""
from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Sequence

from pan_lib.data import parsers as P
from pan_lib.progress import progress_bar
from pan_lib.data.lists import VideoRecord
from pan_lib.data.prepared import write_prepared
from pan_lib.data.video import VIDEO_EXTENSIONS, VideoReadError
from pan_lib.data.video import count_frames as frames_in_video  # the name `count_frames` is a flag below


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
    """The first of ``root/<name>`` that is a folder, else ``root`` itself."""
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


def strip_video_extension(rel: str) -> str:
    """``Class/v_X.avi`` -> ``Class/v_X``: a listed name without its video extension (other dots stay)."""
    p = PurePosixPath(rel)
    return p.with_suffix("").as_posix() if p.suffix.lower() in VIDEO_EXTENSIONS else p.as_posix()


def find_listed_videos(listed: Iterable[str], video_root: Path) -> dict[str, Path]:
    """``{listed relative path: file on disk}`` for the listed videos found under ``video_root``.

    A listed name matches a file at the same relative path whatever its video extension: the official
    UCF101/HMDB51 lists name ``.avi`` files, re-encoded copies are often ``.mp4``. The listed
    extension wins when both exist. Listed names that match nothing are left out (the caller
    reports them as missing).
    """
    on_disk: dict[str, list[Path]] = {}
    for p in sorted(video_root.rglob("*")):
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file():
            on_disk.setdefault(strip_video_extension(p.relative_to(video_root).as_posix()), []).append(p)
    found: dict[str, Path] = {}
    for rel in listed:
        candidates = on_disk.get(strip_video_extension(rel), [])
        exact = [p for p in candidates if p.name == PurePosixPath(rel).name]
        if exact or candidates:
            found[rel] = (exact or candidates)[0]
    return found


def _count_one(path: str) -> int:
    try:
        return frames_in_video(path)
    except (VideoReadError, Exception):  # noqa: BLE001 - an unreadable file is reported, not fatal
        return -1


def count_video_frames(paths: Sequence[Path], workers: int | None = None, progress: str = "auto") -> list[int]:
    """Frame counts (-1 when unreadable) with a bounded process pool."""
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    out: list[int] = []
    with progress_bar(total=len(paths), desc="counting frames", mode=progress) as bar:
        if workers > 1 and len(paths) > 32:
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


def video_records(entries: Iterable[tuple[str, int]], index: dict[str, Path], video_root: Path,
                  count_frames: bool, workers: int | None, progress: str) -> tuple[list[VideoRecord], list[str]]:
    """List rows for the annotated ``(key, label)`` entries found in ``index``, and the missing keys."""
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


SSV2_TRAIN_PATTERNS = ["something-something-v2-train.json", "*train*.json"]


def prepare_sthv2(root: str | Path, out: str | Path, *, name: str = "sthv2", videos: str | Path | None = None,
                  count_frames: bool = True, workers: int | None = None, progress: str = "auto",
                  test_answers: str | Path | None = None, extra_options: dict[str, Any] | None = None,
                  absent_train: str | None = None) -> Path:
    """Something-Something V2 (and the embedded dataset, which uses the same layout); returns the manifest.

    Without a train JSON the download is evaluation-only when ``absent_train`` says why (the manifest's
    ``absent_splits``; training on the folder fails with that message); otherwise a missing train JSON is
    an error."""
    root, out = Path(root), Path(out)
    labels_f = find_file(root, ["something-something-v2-labels.json", "*labels.json"], "SSv2 labels JSON")
    train_f = find_file(root, SSV2_TRAIN_PATTERNS, "SSv2 train JSON", required=absent_train is None)
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
        if f is None:  # evaluation-only download
            continue
        entries = P.parse_sthv2_entries(f, classes)
        lists[split], missing[split] = video_records(((e.id, e.label) for e in entries), index, video_root,
                                                     count_frames, workers, progress)
    if test_f is not None:
        answers = {}
        if answers_f is not None:
            answers = {vid: lab for vid, lab in P.parse_id_label_csv(answers_f, classes)}
        entries = P.parse_sthv2_entries(test_f, None)
        lists["test"], missing["test"] = video_records(((e.id, answers.get(e.id, -1)) for e in entries), index,
                                                       video_root, count_frames, workers, progress)
    options = {"count_frames": count_frames, "label_order": "labels.json index", **(extra_options or {})}
    absent = None
    if train_f is None:
        options["evaluation_only"] = True
        absent = {"train": absent_train}
    return write_prepared(out, name, classes=classes, lists={"video": lists}, video_root=video_root,
                          frames_root=None, missing=missing, options=options,
                          source_files=[f for f in (labels_f, train_f, val_f, test_f, answers_f) if f],
                          absent_splits=absent)
