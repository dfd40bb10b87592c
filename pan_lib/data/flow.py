"""Stored optical flow (``python -m data_prep flow``): the uint8 encoding, where it lives, reading it.

TSN's extraction (``denseflow``) clips each flow component to ``[-20, 20]`` px and maps it linearly
to ``[0, 255]`` (``(v + 20) * 255 / 40``, rounded); we store the same values, as arrays instead of
grey JPEGs::

    <prepared>/flow_<method>_s<S>/<list path>.npy      uint8 [F-1, H, W, 2]   (x, y) per frame pair
    <prepared>/flow_<method>_s<S>_timing.csv           seconds spent per video (extraction cost)
    <prepared>/flow_<method>_s<S>_failures.txt         videos whose flow could not be computed
    prepared.json  "flow": {method: {root, short_side, estimator, fingerprint, ...}}

``S`` is the short side of the frames the flow was computed on (the decoded arrays'). A video of
``F`` frames has ``F - 1`` flow fields; a ``Flow`` clip takes 5 consecutive fields per segment.
The ``Flow`` modality's dataset reads the arrays (``VideoClipDataset(modality="Flow",
flow_root=...)``; :func:`flow_dataset_kwargs` gives those keywords for a prepared dataset).
"""
from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from pan_lib.data.prepared import DatasetNotPreparedError, PreparedDataset
from pan_lib.data.video import VideoReadError, open_uint8_array

log = logging.getLogger(__name__)

FLOW_BOUND = 20.0  # px; TSN's "bound"
DEFAULT_FLOW_METHOD = "dis"
# `--method` of `python -m data_prep flow` -> pan_lib.motion estimator
FLOW_PREP_METHODS: dict[str, str] = {"dis": "dis_medium", "tvl1": "tvl1", "farneback": "farneback",
                                     "raft": "raft_large"}


# ----------------------------------------------------------------------------- encoding
def encode_flow(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Flow in pixels (any shape) -> uint8: clipped to ``[-bound, bound]``, ``(v + bound) * 255 / (2 bound)``."""
    v = np.clip(np.asarray(flow, dtype=np.float32), -bound, bound)
    return np.rint((v + bound) * (255.0 / (2 * bound))).astype(np.uint8)


def decode_flow(encoded: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """uint8 flow -> pixels (float32); the inverse of :func:`encode_flow` up to 40/255 px."""
    return np.asarray(encoded, dtype=np.float32) * (2 * bound / 255.0) - bound


# ----------------------------------------------------------------------------- where it lives
def flow_dir_name(method: str, short_side: int) -> str:
    return f"flow_{method}_s{int(short_side)}"


def timing_file(prepared_root: str | Path, method: str, short_side: int) -> Path:
    return Path(prepared_root) / f"{flow_dir_name(method, short_side)}_timing.csv"


def failures_file(prepared_root: str | Path, method: str, short_side: int) -> Path:
    return Path(prepared_root) / f"{flow_dir_name(method, short_side)}_failures.txt"


def flow_methods(prepared: PreparedDataset) -> list[str]:
    """Flow methods computed for ``prepared`` (``python -m data_prep flow``), in the order they were run."""
    return list((prepared.manifest.get("flow") or {}))


def flow_entry(prepared: PreparedDataset, method: str | None = None) -> tuple[str, dict[str, Any]]:
    """(method, manifest entry) of the flow to read; ``None`` picks "dis" when present, else the only
    one. Missing flow raises ``DatasetNotPreparedError`` with the command that computes it."""
    entries = prepared.manifest.get("flow") or {}
    if method is None:
        method = DEFAULT_FLOW_METHOD if DEFAULT_FLOW_METHOD in entries or not entries else next(iter(entries))
        if len(entries) > 1 and DEFAULT_FLOW_METHOD not in entries:
            log.warning("%s has flow from %s; reading %s (choose with flow_method=...)", prepared.root,
                        ", ".join(entries), method)
    if method not in entries:
        have = f" (it has: {', '.join(entries)})" if entries else ""
        raise DatasetNotPreparedError(f"{prepared.root} has no {method} optical flow{have}; compute it with:\n"
                                      f"    python -m data_prep flow {prepared.root} --method {method}")
    return method, entries[method]


def flow_root(prepared: PreparedDataset, method: str | None = None) -> Path:
    """Folder of the flow arrays of ``method`` (list paths + ``.npy`` are relative to it)."""
    _, entry = flow_entry(prepared, method)
    root = Path(entry["root"])
    return root if root.is_absolute() else prepared.root / root


def flow_fingerprint(prepared: PreparedDataset, method: str | None = None) -> str:
    """The data fingerprint of a Flow run: the videos' fingerprint + the flow method and frame size."""
    method, entry = flow_entry(prepared, method)
    return f"{prepared.manifest.get('fingerprint', '')}+flow_{method}_s{entry.get('short_side', '?')}"


def flow_dataset_kwargs(prepared: PreparedDataset, modality: str, flow_method: str | None = None) -> dict[str, Any]:
    """Keywords for ``VideoClipDataset`` / ``registry.build_dataset`` so ``modality`` reads what it
    needs: ``{"modality": ...}``, plus ``flow_root`` for Flow."""
    kwargs: dict[str, Any] = {"modality": modality}
    if modality == "Flow":
        kwargs["flow_root"] = flow_root(prepared, flow_method)
    return kwargs


# ----------------------------------------------------------------------------- reading
def open_flow(path: str | Path) -> np.ndarray:
    """The whole stored flow ``[F-1, H, W, 2]`` uint8 of one video (memory-mapped), or ``VideoReadError``."""
    return open_uint8_array(path, 2, "no stored flow (the computation failed or `data_prep flow` did not "
                                     "finish; see flow_*_failures.txt)")


def count_flow_fields(path: str | Path) -> int:
    """Flow fields stored for one video (``F - 1`` for ``F`` frames)."""
    return int(open_flow(path).shape[0])


def read_flow(path: str | Path, indices: np.ndarray) -> np.ndarray:
    """Flow fields at 0-based ``indices`` as uint8 ``[len(indices), H, W, 2]`` (a copy)."""
    flow = open_flow(path)
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= flow.shape[0]):
        raise VideoReadError(f"{path}: flow field {int(idx.max()) + 1} requested, {flow.shape[0]} stored")
    return np.ascontiguousarray(flow[idx])


# ----------------------------------------------------------------------------- extraction cost
TIMING_FIELDS = ("video", "status", "frames", "pairs", "seconds", "flow_seconds", "error")


def read_timing(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a timing file (numbers parsed); an absent file gives ``[]``. ``status``: "ok" (timed),
    "untimed" (kept from a run whose timing was lost) or "failed"."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for key in ("frames", "pairs"):
            r[key] = int(r.get(key) or 0)
        for key in ("seconds", "flow_seconds"):
            r[key] = float(r.get(key) or 0.0)
    return rows


def write_timing(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=TIMING_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def flow_timing(prepared: PreparedDataset) -> dict[str, dict[str, Any]]:
    """Per flow method of ``prepared``: the measured extraction cost from its timing file.

    ``{method: {videos, pairs, seconds_per_clip, flow_seconds_per_clip, seconds_per_pair,
    pairs_per_clip, short_side, estimator, workers, threads}}``: ``seconds`` = reading the frames,
    the flow itself, encoding and writing; ``flow_seconds`` = the estimator alone; a clip = one video
    of the list (means over the videos whose flow was computed).
    """
    out: dict[str, dict[str, Any]] = {}
    for method, entry in (prepared.manifest.get("flow") or {}).items():
        rows = [r for r in read_timing(timing_file(prepared.root, method, entry["short_side"]))
                if r["status"] == "ok" and r["pairs"] > 0]
        n, pairs = len(rows), sum(r["pairs"] for r in rows)
        seconds, flow_seconds = sum(r["seconds"] for r in rows), sum(r["flow_seconds"] for r in rows)
        out[method] = {"videos": n, "pairs": pairs,
                       "seconds_per_clip": seconds / n if n else None,
                       "flow_seconds_per_clip": flow_seconds / n if n else None,
                       "seconds_per_pair": seconds / pairs if pairs else None,
                       "pairs_per_clip": pairs / n if n else None,
                       **{k: entry.get(k) for k in ("short_side", "estimator", "workers", "threads")}}
    return out


def extraction_seconds_per_clip(prepared: PreparedDataset) -> dict[str, float | None]:
    """``{method: measured flow-extraction seconds per clip}`` (see :func:`flow_timing`)."""
    return {method: t["seconds_per_clip"] for method, t in flow_timing(prepared).items()}
