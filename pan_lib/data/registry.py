"""The way in to a dataset: get its prepared copy, generate the embedded one, build a split's dataset.

* ``get_prepared(name, data_root=None, ...)`` -> ``PreparedDataset``: THE way to get a prepared dataset
  (engine, notebooks, figures, demo). Whatever is prepared in the folder is used as is; only a
  missing embedded dataset is generated; a missing real one raises ``DatasetNotPreparedError`` whose
  message is the exact ``python -m data_prep ...`` command.
* ``prepare_embedded(out_dir, size=..., seed=...)`` generates the embedded motion dataset (once per
  parameter set; resumable), prepares it with the Something-Something-V2 code and decodes it.
* ``build_dataset(prepared, split, ...)`` -> ``VideoClipDataset`` with flip/templates from the registry.

The facts about each dataset (``pan_lib.data.catalog``: ``DATASETS``, ``get_dataset_info``,
``default_data_root``, ``prepare_command``) and the prepared-folder format (``pan_lib.data.prepared``:
``find_prepared``, ``PreparedDataset``, ``DatasetNotPreparedError``, ``MANIFEST``, ``SOURCES``, ...) are
defined there and importable from here too.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from pan_lib.data.catalog import DATASETS, DatasetInfo, default_data_root, get_dataset_info, prepare_command
from pan_lib.data.dataset import VideoClipDataset
from pan_lib.data.decoded import decode_videos
from pan_lib.data.preparation import prepare_sthv2
from pan_lib.data.prepared import (CLASSES_FILE, MANIFEST, SOURCES, SPLITS, DatasetNotPreparedError, PreparedDataset,
                                   find_prepared, manifest_path)
from pan_lib.data.synthetic import SIZES, SyntheticConfig, generate

log = logging.getLogger(__name__)

__all__ = ["CLASSES_FILE", "DATASETS", "MANIFEST", "SOURCES", "SPLITS", "DatasetInfo",
           "DatasetNotPreparedError", "PreparedDataset", "build_dataset", "default_data_root", "find_prepared",
           "get_dataset_info", "get_prepared", "prepare_command", "prepare_embedded", "TINY_EMBEDDED_FOLDER"]

TINY_EMBEDDED_FOLDER = "embedded_tiny"  # default folder of the tiny (CI / small-mode) embedded dataset


def get_prepared(name: str, data_root: str | Path | None = None, *, source: str = "auto", size: str = "default",
                 seed: int = 0, progress: str = "off") -> PreparedDataset:
    """The prepared dataset ``name`` in ``data_root``.

    ``data_root`` None (or "") -> ``default_data_root(name)``; for the embedded dataset with
    ``size="tiny"`` its sibling ``embedded_tiny`` (``data/embedded_tiny``). Whatever is prepared
    there is used as is (``size`` and ``seed`` do not regenerate it; ``prepare_embedded`` does). A
    missing embedded dataset is generated with ``size``/``seed`` (seconds to a minute, ``progress``
    "auto" | "text" | "off"); a missing real one raises ``DatasetNotPreparedError`` with the exact
    preparation command, as does a prepared folder that lacks the requested ``source`` ("auto" |
    "decoded" | "frames" | "video"). An unknown name raises ``ValueError`` listing the valid ones.
    """
    get_dataset_info(name, data_root)
    if name == "embedded" and size not in SIZES:
        raise ValueError(f"unknown size {size!r}; valid: {', '.join(SIZES)}")
    if data_root in (None, ""):
        root = default_data_root(name)
        if name == "embedded" and size == "tiny":
            root = root.with_name(TINY_EMBEDDED_FOLDER)
    else:
        root = Path(data_root)
    if name == "embedded" and manifest_path(name, root) is None:
        log.info("the embedded dataset is not prepared in %s; generating it (size %s, seed %d)", root, size, seed)
        prepare_embedded(root, size=size, seed=seed, progress=progress)
    return find_prepared(name, root, source=source)


def prepare_embedded(out_dir: str | Path | None = None, *, size: str = "default", seed: int = 0,
                     classes: str = "default", codec: str = "vp9", workers: int | None = None,
                     progress: str = "auto", count_frames: bool = True, decoded_short_side: int | None = 56,
                     **overrides: Any) -> PreparedDataset:
    """Generate (unless already generated with the same parameters) and prepare the embedded dataset.

    ``out_dir`` (default ``default_data_root("embedded")``) receives ``raw/`` (the SSv2-layout
    videos and JSON) and the prepared lists. ``size``: tiny | small | default | large; further
    ``SyntheticConfig`` fields (``num_frames``, ``resolution``, ``train_per_class``, ...) as keywords.
    ``decoded_short_side``: also decode every video once into uint8 arrays at this short side
    (``python -m data_prep decode``; loaders then read clips as array slices); ``None``: videos only.
    """
    out = Path(out_dir) if out_dir is not None else default_data_root("embedded")
    cfg = SyntheticConfig(size=size, seed=seed, classes=classes, codec=codec, **overrides)
    manifest = out / MANIFEST
    meta = json.loads(manifest.read_text()) if manifest.is_file() else {}
    if meta.get("options", {}).get("generator_fingerprint") != cfg.fingerprint():
        for stale in out.glob("decoded_s*"):  # arrays of the previous videos
            shutil.rmtree(stale, ignore_errors=True)
        raw = generate(out / "raw", cfg, workers=workers, overwrite=True, progress=progress)
        meta = json.loads(prepare_sthv2(raw, out, name="embedded", count_frames=count_frames, progress=progress,
                                        extra_options={"generator_fingerprint": cfg.fingerprint(),
                                                       "generator": cfg.to_dict()}).read_text())
    decoded = meta.get("decoded") or {}
    if decoded_short_side is not None and (decoded.get("short_side") != decoded_short_side
                                           or not meta.get("lists", {}).get("decoded")):
        decode_videos(out, short_side=decoded_short_side, workers=workers or 2, progress=progress)
    return find_prepared("embedded", out)


def build_dataset(prepared: PreparedDataset, split: str, *, num_segments: int = 8, new_length: int = 1,
                  mode: str | None = None, input_size: int = 224, scale_size: int | None = None,
                  **kwargs: Any) -> VideoClipDataset:
    """``VideoClipDataset`` for ``split`` of a prepared dataset; flip and frame naming come from the
    registry, ``mode`` defaults to "train" for the train split and "val" otherwise; further keywords
    (``dense_sample``, ``test_crops``, ``seed``, ...) go to ``VideoClipDataset``."""
    mode = mode or ("train" if split == "train" else "val")
    kwargs.setdefault("flip", prepared.info.flip)
    kwargs.setdefault("list_format", "pan")
    return VideoClipDataset(prepared.list_for(split), prepared.data_dir, num_segments=num_segments,
                            new_length=new_length, mode=mode, source=prepared.source,
                            image_tmpl=prepared.image_tmpl, input_size=input_size,
                            scale_size=scale_size, **kwargs)
