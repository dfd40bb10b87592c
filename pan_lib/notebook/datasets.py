"""The prepared dataset as the notebooks see it: where it is, getting it, what is in it.

`ensure_dataset` is the first thing a training notebook does: an unknown name lists the valid ones,
a real dataset that is not prepared stops with the exact command that prepares it, the embedded one
is generated on first use. Paths given to the notebooks are relative to the repository.
"""
from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

from data_prep.datasets import PREPARERS
from pan_lib.data.lists import read_list_file
from pan_lib.data.registry import TINY_EMBEDDED_FOLDER, PreparedDataset, default_data_root, get_prepared
from pan_lib.notebook.environment import repo_path, resolve_progress
from pan_lib.viz.video import dataset_videos


def embedded_size(small: bool) -> str:
    """The embedded dataset's size preset: 'tiny' in small (CI) mode, else 'default'."""
    return "tiny" if small else "default"


def resolve_data_root(dataset: str, data_root: str | os.PathLike | None, small: bool = False) -> Path:
    """Where `ensure_dataset` looks, without preparing anything: relative paths are taken from the
    repository; '' -> `get_prepared`'s default (data/<dataset>; data/embedded_tiny for the small
    embedded set)."""
    if data_root not in (None, ""):
        return repo_path(data_root)  # type: ignore[return-value]
    root = default_data_root(dataset)
    return root.with_name(TINY_EMBEDDED_FOLDER) if dataset == "embedded" and small else root


def ensure_dataset(dataset: str, data_root: str | os.PathLike | None = None, *, small: bool = False,
                   seed: int = 0, progress: str = "auto") -> PreparedDataset:
    """`pan_lib.data.registry.get_prepared` with the notebooks' conventions: `data_root` relative to
    the repository ('' -> the default folder), small mode -> the tiny embedded set, progress bars
    as text under papermill.

    Whatever is prepared there is used as is; a missing embedded dataset is generated (seconds), a
    real one that is not prepared raises `DatasetNotPreparedError` with the exact `python -m
    data_prep ...` command; an unknown name raises `ValueError` listing the valid ones.
    """
    return get_prepared(dataset, repo_path(data_root), size=embedded_size(small), seed=seed,
                        progress=resolve_progress(progress))


def prepare_real(dataset: str, raw_root: str | os.PathLike, data_root: str | os.PathLike | None = None,
                 **kwargs: Any) -> PreparedDataset:
    """Prepare a real dataset from its downloaded files (what `python -m data_prep <name>` does)."""
    if dataset not in PREPARERS or dataset == "embedded":
        raise ValueError(f"no preparer for {dataset!r}; valid: {', '.join(k for k in PREPARERS if k != 'embedded')}")
    out = resolve_data_root(dataset, data_root)
    PREPARERS[dataset](repo_path(raw_root), out, **kwargs)
    return get_prepared(dataset, out)


def dataset_statistics(prepared: PreparedDataset) -> list[dict[str, Any]]:
    """Per split: videos, labelled videos, classes present, frames per video (min/median/max)."""
    rows = []
    for split in ("train", "val", "test"):
        try:
            records = read_list_file(prepared.list_for(split))
        except FileNotFoundError:
            continue
        frames = [r.num_frames for r in records if r.num_frames >= 0]
        labels = [r.label for r in records if r.label >= 0]
        rows.append({"dataset": prepared.name, "split": split, "videos": len(records), "labelled": len(labels),
                     "classes_present": len(set(labels)), "num_classes": prepared.num_classes,
                     "frames_min": min(frames) if frames else "",
                     "frames_median": statistics.median(frames) if frames else "",
                     "frames_max": max(frames) if frames else "", "source": prepared.source,
                     "fingerprint": prepared.fingerprint})
    return rows


def class_counts(prepared: PreparedDataset, split: str = "train") -> list[int]:
    """Videos per class in one split (index = class index)."""
    counts = [0] * prepared.num_classes
    for r in read_list_file(prepared.list_for(split)):
        if 0 <= r.label < len(counts):
            counts[r.label] += 1
    return counts


def sample_videos(prepared: PreparedDataset, split: str = "train", limit: int = 4) -> dict[str, Path]:
    """Up to `limit` videos (or frame folders) of a prepared dataset, one per class first, in class
    order: {"<class> (<video id>)": path} (`pan_lib.viz.video.dataset_videos`)."""
    return dataset_videos(prepared, split=split, limit=limit)
