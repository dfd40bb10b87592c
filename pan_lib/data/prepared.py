"""A prepared dataset folder: its format, read (``find_prepared``) and written (``write_prepared``).

A prepared folder (``python -m data_prep <name> --out OUT``) holds ``prepared.json`` (the manifest),
``classes.txt`` (line i = class i), video lists ``{train,val,test}_videos.txt`` and, after
``python -m data_prep extract-frames OUT``, frame lists ``{train,val,test}_frames.txt`` (after
``python -m data_prep decode OUT``: decoded arrays, same lists); all lists are
``<path> <num_frames> <label>`` (PAN/TSM format, ``-1`` = unlabeled).

``find_prepared(name, data_root)`` -> ``PreparedDataset`` (list files, label map, source, fingerprint),
or ``DatasetNotPreparedError`` whose message is the exact ``python -m data_prep ...`` command.

A folder may lack a split on purpose: an evaluation-only download (SSv2 without the train JSON,
Kinetics with only the val CSV) is prepared without a train list, and the manifest's
``absent_splits`` says why (``list_for("train")`` raises ``DatasetNotPreparedError`` with that text).
A custom dataset (own videos, ``data_prep folders``) carries its ``DatasetInfo`` fields under
``custom`` (``pan_lib.data.catalog``).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from pan_lib.data.catalog import (CUSTOM_KEY, MANIFEST, DatasetInfo, default_data_root, get_dataset_info,
                                  prepare_command)
from pan_lib.data.lists import VideoRecord, read_classes, write_classes, write_list_file
from pan_lib.provenance import fingerprint_files, provenance

log = logging.getLogger(__name__)

CLASSES_FILE = "classes.txt"
SPLITS = ("train", "val", "test")
SOURCES = ("decoded", "frames", "video")
FORMAT_VERSION = 1


class DatasetNotPreparedError(FileNotFoundError):
    """The dataset has not been prepared in the given folder; the message holds the command."""


@dataclass
class PreparedDataset:
    name: str
    root: Path                         # the prepared folder (manifest, lists, classes)
    train_list: Path | None
    val_list: Path | None
    test_list: Path | None
    source: str                        # "decoded" | "frames" | "video"
    classes: list[str]
    fingerprint: str
    data_dir: Path                     # list paths are relative to this (video root or frame root)
    image_tmpl: str = "{:05d}.jpg"
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def media_dir(self) -> Path:
        """Where the listed videos / frame folders are, for people to look at (with decoded arrays as
        the training source: the original videos)."""
        if self.source != "decoded":
            return self.data_dir
        root = Path(self.manifest["video_root"])
        return root if root.is_absolute() else self.root / root

    @property
    def info(self) -> DatasetInfo:
        return get_dataset_info(self.name, self.root)

    def list_for(self, split: str) -> Path:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        path = {"train": self.train_list, "val": self.val_list, "test": self.test_list}[split]
        if path is None:
            why = (self.manifest.get("absent_splits") or {}).get(split)
            if why:
                raise DatasetNotPreparedError(f"{self.name} ({self.root}) has no {split} list: {why}")
            raise FileNotFoundError(f"{self.name} ({self.root}) has no {split} list")
        return path


def manifest_path(name: str, data_root: Path) -> Path | None:
    """The manifest of ``name`` in ``data_root`` or ``data_root/<name>``; None when there is none."""
    for candidate in (data_root / MANIFEST, data_root / name / MANIFEST):
        if candidate.is_file():
            return candidate
    return None


def find_prepared(name: str, data_root: str | Path | None = None, source: str = "auto") -> PreparedDataset:
    """The prepared copy of ``name`` in ``data_root`` (or ``data_root/<name>``).

    ``source``: "auto" (decoded arrays when ``data_prep decode`` ran, else frames when extracted,
    else videos), "decoded", "frames" or "video".
    """
    info = get_dataset_info(name, data_root)
    if source not in ("auto",) + SOURCES:
        raise ValueError(f"unknown source {source!r}; valid: auto, {', '.join(SOURCES)}")
    root = Path(data_root) if data_root is not None else default_data_root(name)
    path = manifest_path(name, root)
    if path is None:
        hint = ("or call pan_lib.data.prepare_embedded(out_dir) " if name == "embedded" else "")
        raise DatasetNotPreparedError(
            f"{info.name} is not prepared in {root} (no {MANIFEST}). Prepare it with:\n"
            f"    {prepare_command(name, root)}\n{hint}(see README, section Datasets)")
    manifest = json.loads(path.read_text())
    if manifest.get("name") != name:
        raise DatasetNotPreparedError(f"{path} describes dataset {manifest.get('name')!r}, not {name!r}")
    prepared_root = path.parent.resolve()
    lists = manifest.get("lists", {})
    if source == "auto":
        source = "decoded" if lists.get("decoded") else "frames" if lists.get("frames") else "video"
    if not lists.get(source):
        cmd = {"frames": f"python -m data_prep extract-frames {prepared_root}",
               "decoded": f"python -m data_prep decode {prepared_root}"}.get(source, prepare_command(name, prepared_root))
        raise DatasetNotPreparedError(f"{prepared_root} has no {source} lists; create them with:\n    {cmd}")
    chosen = lists[source]
    data_dir = Path(manifest[{"frames": "frames_root", "decoded": "decoded_root"}.get(source, "video_root")])
    if not data_dir.is_absolute():
        data_dir = prepared_root / data_dir

    def _p(split: str) -> Path | None:
        rel = chosen.get(split)
        return prepared_root / rel if rel else None

    classes_file = prepared_root / manifest.get("classes_file", CLASSES_FILE)
    fingerprint = str(manifest.get("fingerprint", ""))
    if source == "frames" and manifest.get("extraction"):
        fingerprint = str(manifest["extraction"].get("fingerprint", ""))
    elif source == "decoded":  # the same videos, decoded at a fixed short side
        fingerprint = f"{fingerprint}+s{(manifest.get('decoded') or {}).get('short_side', '?')}"
    return PreparedDataset(name=name, root=prepared_root, train_list=_p("train"), val_list=_p("val"),
                           test_list=_p("test"), source=source, classes=read_classes(classes_file),
                           fingerprint=fingerprint, data_dir=data_dir,
                           image_tmpl=manifest.get("image_tmpl", info.image_tmpl), manifest=manifest)


# ----------------------------------------------------------------------------- writing
def write_prepared(out: Path, name: str, *, classes: Sequence[str], lists: dict[str, dict[str, list[VideoRecord]]],
                   video_root: Path | None, frames_root: Path | None, image_tmpl: str | None = None,
                   missing: dict[str, list[str]] | None = None, options: dict[str, Any] | None = None,
                   source_files: Sequence[Path] = (), absent_splits: dict[str, str] | None = None,
                   custom: dict[str, Any] | None = None) -> Path:
    """Write list files, ``classes.txt`` and the manifest; returns the manifest path.

    ``absent_splits``: {split: why it has no list} (e.g. an evaluation-only download has no train
    list); ``custom``: the ``DatasetInfo`` fields of a custom dataset (``flip``, ``image_tmpl``,
    ``frame_scale``, ``description``, ``prepare_args``), which then need not be in the catalog.
    """
    out.mkdir(parents=True, exist_ok=True)
    image_tmpl = image_tmpl or (custom["image_tmpl"] if custom else get_dataset_info(name).image_tmpl)
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
        "classes_file": CLASSES_FILE, "image_tmpl": image_tmpl,
        "video_root": portable_path(video_root, out), "frames_root": portable_path(frames_root, out),
        "lists": manifest_lists, "counts": counts, "options": dict(options or {}),
        "source_files": {p.name: str(Path(p).resolve()) for p in source_files},
        "source_fingerprint": fingerprint_files([p for p in source_files if Path(p).is_file()]) if source_files else None,
        "fingerprint": fingerprint,
        "provenance": provenance(config=options, data_fingerprint=fingerprint),
    }
    if absent_splits:
        manifest["absent_splits"] = dict(absent_splits)
        for split, why in absent_splits.items():
            log.warning("%s: no %s list -- %s", name, split, why)
    if custom:
        manifest[CUSTOM_KEY] = dict(custom)
    path = out / MANIFEST
    _write_manifest(path, manifest)
    log.info("prepared %s in %s: %s", name, out, counts)
    return path


def portable_path(path: Path | None, out: Path) -> str | None:
    """Relative to the prepared folder when inside it (the folder can then be moved), else absolute."""
    if path is None:
        return None
    path, out = Path(path).resolve(), Path(out).resolve()
    try:
        return path.relative_to(out).as_posix()
    except ValueError:
        return str(path)


def update_manifest(out: Path, **changes: Any) -> dict:
    """Set top-level keys of ``out/prepared.json`` (written atomically); returns the new manifest."""
    path = Path(out) / MANIFEST
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    _write_manifest(path, manifest)
    return manifest


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, default=str))
    tmp.replace(path)
