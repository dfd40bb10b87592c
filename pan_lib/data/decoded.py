"""Decode every video of a prepared folder ONCE into uint8 arrays (`source="decoded"`).

For small datasets (the embedded one above all) decoding, not the network, is what a CPU spends
its time on: a PA clip needs 32 frames, i.e. a VP9 seek and decode per clip and epoch. This step
writes each video as ``<prepared>/decoded_s<S>/<list path>.npy`` (``[F, H, W, 3]`` uint8, short side
``S``, antialiased bilinear resize), which the loader memory-maps: reading a clip is an array slice,
and the operating system's page cache shares the frames between DataLoader workers and runs.

Like frame extraction it is the official "extract at a fixed short side" step (256 px for SSv2),
only with arrays instead of JPEGs (no re-compression). It is resumable: finished videos are kept,
each file is written to a temporary name and renamed. A video that cannot be decoded is reported
(``decode_failures.txt``) and left out of the cache; the loader's bad-input policy then handles it
like any unreadable video, so nothing crashes and the file is named.

Size: ``frames * S * S * 3`` bytes per square video (embedded default, S = 56: 0.3 MB per video).
Real datasets are far too large for this; use ``extract-frames`` there. Run by
``python -m data_prep decode`` and by ``pan_lib.data.registry.prepare_embedded``.

The machinery (resume check, atomic array writes, the bounded process pool, the failure list) is
shared with ``python -m data_prep flow``: :func:`is_up_to_date`, :func:`save_array`,
:func:`run_jobs`, :func:`remove_leftovers`, :func:`write_failures`.
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from pan_lib.progress import progress_bar
from pan_lib.data.lists import read_list_file
from pan_lib.data.prepared import MANIFEST, portable_path, update_manifest
from pan_lib.data.transforms import scale_short_side, to_tensor
from pan_lib.data.video import count_frames, read_video_frames
from pan_lib.provenance import package_versions

log = logging.getLogger(__name__)


def decoded_dir_name(short_side: int) -> str:
    return f"decoded_s{int(short_side)}"


def is_up_to_date(target: str | Path, source: str | Path) -> bool:
    """``target`` exists and is not older than ``source`` (what resuming keeps)."""
    out, src = Path(target), Path(source)
    return out.is_file() and src.exists() and out.stat().st_mtime >= src.stat().st_mtime


def save_array(target: str | Path, arr: np.ndarray) -> None:
    """``np.save`` to a temporary name in the same folder, then rename (an interrupted write leaves nothing)."""
    out = Path(target)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, arr)
    os.replace(tmp, out)


def remove_leftovers(out_root: str | Path) -> None:
    """Delete the temporary files of an interrupted run under ``out_root``."""
    for leftover in Path(out_root).rglob(".*.tmp"):
        leftover.unlink(missing_ok=True)


def run_jobs(fn: Callable[[Any], dict[str, Any]], jobs: Sequence[Any], *, workers: int, desc: str,
             progress: str = "auto", chunksize: int = 4) -> list[dict[str, Any]]:
    """``fn(job)`` for every job (a module-level function returning a status row), in a bounded pool
    of ``workers`` spawned processes (in this process when ``workers <= 1``), with a progress bar."""
    rows: list[dict[str, Any]] = []
    with progress_bar(total=len(jobs), desc=desc, mode=progress) as bar:
        if workers > 1 and len(jobs) > 1:
            with mp.get_context("spawn").Pool(workers) as pool:
                for row in pool.imap(fn, list(jobs), chunksize=chunksize):
                    rows.append(row)
                    bar.update(1)
        else:
            for job in jobs:
                rows.append(fn(job))
                bar.update(1)
    return rows


def write_failures(path: str | Path, rows: Sequence[dict[str, Any]], what: str = "process") -> list[dict[str, Any]]:
    """Write ``<video>\t<error>`` for every failed row to ``path`` (empty file: none); returns them."""
    failures = [r for r in rows if r["status"] == "failed"]
    Path(path).write_text("".join(f"{r['video']}\t{r['error']}\n" for r in failures))
    for r in failures:
        log.warning("could not %s %s: %s (left out)", what, r["video"], r["error"])
    return failures


def decode_one(args: tuple[str, str, int, int]) -> dict[str, Any]:
    """Decode one video ``(source, target, num_frames, short_side)`` to ``target`` (skipped when it
    exists and is newer than the video); returns a status row."""
    source, target, num_frames, short_side = args
    row: dict[str, Any] = {"video": source, "target": target, "status": "ok", "frames": 0, "error": ""}
    out = Path(target)
    if is_up_to_date(out, source):  # resume: done and up to date
        row.update(status="kept", frames=int(np.load(out, mmap_mode="r").shape[0]))
        return row
    try:
        n = num_frames if num_frames > 0 else count_frames(source)
        frames = read_video_frames(source, np.arange(n))  # (F, H, W, 3) uint8
        x = to_tensor(frames)  # (F, 3, H, W) float
        if short_side > 0:
            x = scale_short_side(x, short_side)
        arr = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()  # (F, 3, S, S') -> (F, S, S', 3)
        save_array(out, arr)
        row["frames"] = int(arr.shape[0])
    except Exception as exc:  # noqa: BLE001 - one bad video must not stop the others
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    return row


def decode_videos(prepared_dir: str | Path, *, short_side: int = 56, workers: int = 2,
                  splits: Sequence[str] = ("train", "val", "test"), progress: str = "auto") -> dict[str, Any]:
    """Decode the videos listed in ``prepared_dir`` into ``decoded_s<short_side>/``; returns the summary.

    Afterwards ``find_prepared(name, prepared_dir)`` (source "auto") loads clips from the arrays.
    """
    prepared_dir = Path(prepared_dir)
    manifest = json.loads((prepared_dir / MANIFEST).read_text())
    video_lists = manifest.get("lists", {}).get("video")
    if not manifest.get("video_root") or not video_lists:
        raise ValueError(f"{prepared_dir} has no video lists; `decode` works on prepared video datasets")
    if short_side < 0:
        raise ValueError(f"short_side must be >= 0 (0 keeps the size), got {short_side}")
    video_root = Path(manifest["video_root"])
    if not video_root.is_absolute():
        video_root = prepared_dir / video_root
    out_root = prepared_dir / decoded_dir_name(short_side)
    remove_leftovers(out_root)
    jobs: dict[str, tuple[str, str, int, int]] = {}
    used_lists: dict[str, str] = {}
    for split in splits:
        rel = video_lists.get(split)
        if not rel:
            continue
        used_lists[split] = rel
        for r in read_list_file(prepared_dir / rel, "pan"):
            jobs[r.path] = (str(video_root / r.path), str(out_root / f"{r.path}.npy"), r.num_frames, short_side)
    rows = run_jobs(decode_one, list(jobs.values()), workers=workers,
                    desc=f"decoding videos (short side {short_side})", progress=progress)
    failures = write_failures(prepared_dir / "decode_failures.txt", rows, "decode")
    nbytes = sum(Path(r["target"]).stat().st_size for r in rows if r["status"] != "failed")
    summary = {"short_side": short_side, "videos": len(rows), "failed": len(failures),
               "kept": sum(r["status"] == "kept" for r in rows), "bytes": nbytes,
               "resize": "torch bilinear, antialias (pan_lib.data.transforms.scale_short_side)",
               "tools": package_versions(("decord", "av", "torch", "numpy"))}
    lists = dict(manifest.get("lists", {}), decoded=used_lists)
    update_manifest(prepared_dir, lists=lists, decoded_root=portable_path(out_root, prepared_dir), decoded=summary)
    log.info("decoded %d videos (%d kept, %d failed) into %s, %.1f MB", len(rows), summary["kept"],
             len(failures), out_root, nbytes / 1e6)
    return summary
