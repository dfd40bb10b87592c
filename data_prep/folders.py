"""Your own videos, one folder per class: ``python -m data_prep folders --root DIR --out OUT --name NAME``.

Two layouts are read (video files of any common container, at any depth below the class folder)::

    DIR/<class>/<video>                 one folder per class: a seeded, stratified split
    DIR/<split>/<class>/<video>         split folders train/ [val/ | validation/] [test/] used as they are

With split folders, a missing val (or test) split is carved out of train like the first layout.
Classes are the sorted class-folder names (line i of ``classes.txt`` = class i). The stratified split
draws, per class, ``round(n * val_fraction)`` (at least 1) videos for val and likewise for test, with
``random.Random(seed)`` over the sorted file names: the same folder and seed always give the same
lists. A class with too few videos for the requested split stops with a message naming it.

The prepared folder is a dataset like the others (``pan_lib.data.catalog``: its manifest declares
the name, flip and frame template), so ``TrainConfig(dataset=NAME, data_root=OUT)``, the notebooks
and ``python -m pan_lib.train`` take it.
"""
from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

from pan_lib.data.catalog import DATASETS
from pan_lib.data.preparation import video_records
from pan_lib.data.prepared import SPLITS, write_prepared
from pan_lib.data.video import VIDEO_EXTENSIONS

log = logging.getLogger(__name__)

SPLIT_FOLDERS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
CUSTOM_IMAGE_TMPL = "img_{:05d}.jpg"  # frame names after extract-frames (as UCF101/HMDB51/Kinetics)
CUSTOM_FRAME_SCALE = 256              # short side of extracted frames (the official value for real videos)


class FolderLayoutError(ValueError):
    """The folder tree cannot be read as classes of videos (or split as asked); the message says why."""


def _videos_below(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())


def _class_folders(folder: Path) -> dict[str, list[Path]]:
    """{class name: its video files} for the sub-folders of ``folder`` that hold videos."""
    out: dict[str, list[Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        videos = _videos_below(sub)
        if videos:
            out[sub.name] = videos
        else:
            log.warning("%s holds no video files (%s); not a class", sub, ", ".join(VIDEO_EXTENSIONS))
    return out


def read_layout(root: Path) -> tuple[str, dict[str, dict[str, list[Path]]]]:
    """("split" | "class", {split: {class: videos}}) of a folder tree."""
    if not root.is_dir():
        raise FolderLayoutError(f"{root} is not a folder")
    split_dirs = {SPLIT_FOLDERS[p.name.lower()]: p for p in sorted(root.iterdir())
                  if p.is_dir() and p.name.lower() in SPLIT_FOLDERS}
    if split_dirs:
        if "train" not in split_dirs:
            raise FolderLayoutError(f"{root} has split folders ({', '.join(sorted(split_dirs))}) but no train/")
        others = [p.name for p in root.iterdir() if p.is_dir() and p.name.lower() not in SPLIT_FOLDERS
                  and not p.name.startswith(".")]
        if others:
            log.warning("%s: split layout; ignoring the other folders %s", root, others)
        return "split", {split: _class_folders(folder) for split, folder in split_dirs.items()}
    by_class = _class_folders(root)
    if not by_class:
        raise FolderLayoutError(f"no class folders with videos under {root}; expected DIR/<class>/<video> or "
                                "DIR/train/<class>/<video>")
    return "class", {"train": by_class}


def stratified_split(videos: dict[str, list[Path]], fractions: dict[str, float],
                     seed: int) -> dict[str, dict[str, list[Path]]]:
    """Split {class: videos} into train + the splits of ``fractions`` ({"val": 0.2, ...}), per class."""
    rng = random.Random(seed)
    out: dict[str, dict[str, list[Path]]] = {"train": {}, **{s: {} for s in fractions}}
    for cls, files in videos.items():
        files = sorted(files)
        take = {s: max(1, round(len(files) * f)) for s, f in fractions.items() if f > 0}
        if len(files) < sum(take.values()) + 1:
            wanted = " + ".join(f"{n} {s}" for s, n in take.items())
            raise FolderLayoutError(
                f"class {cls!r} has {len(files)} video(s); the split "
                f"({', '.join(f'{s} {f:g}' for s, f in fractions.items())}) needs at least "
                f"{sum(take.values()) + 1} (1 train + {wanted}). Add videos to it, remove the class folder, "
                "or lay out DIR/train/<class>/ and DIR/val/<class>/ yourself")
        rng.shuffle(files)
        start = 0
        for split, n in take.items():
            out[split][cls] = sorted(files[start:start + n])
            start += n
        out["train"][cls] = sorted(files[start:])
    return out


def prepare_folders(root: str | Path, out: str | Path, *, name: str, val_fraction: float = 0.2,
                    test_fraction: float = 0.0, seed: int = 0, flip: bool = True, count_frames: bool = True,
                    workers: int | None = None, progress: str = "auto") -> Path:
    """Prepare ``root`` (``<class>/<video>`` or ``<split>/<class>/<video>``) as dataset ``name`` in
    ``out``; returns the manifest. ``flip``: horizontal flip in training (turn it off when left/right
    tells classes apart)."""
    root, out = Path(root), Path(out)
    if name in DATASETS:
        raise ValueError(f"{name!r} is a dataset the workbook knows (python -m data_prep {name}); "
                         "give your own videos another --name")
    if not name or any(c in name for c in "/\\ "):
        raise ValueError(f"--name {name!r}: use a short name without spaces or slashes")
    for what, f in (("val", val_fraction), ("test", test_fraction)):
        if not 0 <= f < 1:
            raise ValueError(f"--{what}-fraction must be in [0, 1), got {f}")
    layout, found = read_layout(root)
    carve = {s: f for s, f in (("val", val_fraction), ("test", test_fraction)) if s not in found and f > 0}
    splits = dict(found)
    if carve:
        splits.update(stratified_split(found["train"], carve, seed))
        log.info("%s: %s split from the train videos with seed %d (fractions %s)", name,
                 "/".join(carve), seed, ", ".join(f"{s} {f:g}" for s, f in carve.items()))
    classes = sorted({cls for by_class in splits.values() for cls in by_class})
    index = {cls: i for i, cls in enumerate(classes)}
    for cls in classes:
        if cls not in splits["train"]:
            log.warning("%s: class %r has no train videos", name, cls)
    lists = {}
    for split in (s for s in SPLITS if s in splits):
        entries = [(path.relative_to(root).as_posix(), index[cls]) for cls, files in splits[split].items()
                   for path in files]
        lists[split], _ = video_records(entries, {key: root / key for key, _ in entries}, root, count_frames,
                                        workers, progress)
    counts = {split: dict(sorted(Counter(classes[r.label] for r in recs).items())) for split, recs in lists.items()}
    options: dict[str, Any] = {"layout": layout, "seed": seed, "flip": flip, "count_frames": count_frames,
                               "split_fractions": carve, "videos_per_class": counts}
    custom = {"flip": flip, "image_tmpl": CUSTOM_IMAGE_TMPL, "frame_scale": CUSTOM_FRAME_SCALE,
              "description": f"own videos from {root.resolve()}", "prepare_args": f"--root {root} --name {name}"}
    return write_prepared(out, name, classes=classes, lists={"video": lists}, video_root=root, frames_root=None,
                          options=options, custom=custom)
