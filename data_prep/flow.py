"""``python -m data_prep flow <prepared> --method dis|tvl1|farneback|raft``: optical flow, computed once.

Every listed video's frames (the decoded arrays of ``python -m data_prep decode`` when the folder has
them, so the flow has their short side; otherwise the video, decoded and resized to ``--short-side``)
go through one ``pan_lib.motion`` estimator (OpenCV DIS medium preset by default, TV-L1, Farneback,
or torchvision RAFT large with trained weights present locally). The flow of every consecutive pair
is clipped to +-20 px and stored as uint8 the way TSN's extraction does (``pan_lib.data.flow``)::

    <prepared>/flow_<method>_s<S>/<list path>.npy     uint8 [F-1, H, W, 2]
    <prepared>/flow_<method>_s<S>_timing.csv          seconds per video (frames in, flow, encode, write)
    <prepared>/flow_<method>_s<S>_failures.txt        videos whose flow could not be computed
    prepared.json "flow": {method: {...}}             what find_prepared / the Flow dataset read

Resumable (finished videos are kept, their earlier timing too), atomic writes, a bounded process pool
(``pan_lib.data.decoded``'s machinery). Each worker gives OpenCV ``--threads`` threads (default 1),
so the recorded seconds are single-core costs when ``--workers`` processes run side by side.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from pan_lib.data.decoded import is_up_to_date, remove_leftovers, run_jobs, save_array, write_failures
from pan_lib.data.flow import (FLOW_BOUND, FLOW_PREP_METHODS, encode_flow, failures_file, flow_dir_name,
                               read_timing, timing_file, write_timing)
from pan_lib.data.lists import read_list_file
from pan_lib.data.prepared import MANIFEST, portable_path, update_manifest
from pan_lib.data.transforms import scale_short_side, to_tensor
from pan_lib.data.video import count_frames, read_video_frames
from pan_lib.motion import FLOW_METHODS, make_flow_estimator, raft_weights_cached
from pan_lib.provenance import package_versions

log = logging.getLogger(__name__)

DEFAULT_SHORT_SIDE = 256  # frames read from videos (no decoded arrays): TSN/TSM extract at a 256 px short side
_ESTIMATORS: dict[tuple[str, str, int], Any] = {}  # per process: built once, reused for every video


def estimator_name(method: str) -> str:
    """``--method`` value -> ``pan_lib.motion`` estimator ("dis" -> "dis_medium"; motion names pass)."""
    if method in FLOW_PREP_METHODS:
        return FLOW_PREP_METHODS[method]
    if method in FLOW_METHODS:
        return method
    raise ValueError(f"unknown flow method {method!r}; valid: {', '.join(FLOW_PREP_METHODS)} "
                     f"(or a pan_lib.motion name: {', '.join(FLOW_METHODS)})")


def check_raft_weights(estimator: str, raft_weights: str | Path) -> None:
    """Fail early, with where to put the file, when RAFT's trained weights are not here."""
    if not estimator.startswith("raft"):
        return
    if raft_weights == "auto" and raft_weights_cached(estimator.split("_")[1]) is None:
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise FileNotFoundError(  # the CLI reports it as an error message, no traceback
            f"--method raft needs torchvision's trained RAFT-{estimator.split('_')[1]} weights and they are not "
            f"in {cache}. Put the file there (torchvision's Raft_{estimator.split('_')[1].capitalize()}_Weights."
            f"DEFAULT, e.g. copied from a machine with network) or pass --raft-weights PATH (a state dict)")
    if raft_weights not in ("auto", "default") and not Path(raft_weights).is_file():
        raise FileNotFoundError(f"--raft-weights {raft_weights}: no such file")


def _estimator(name: str, raft_weights: str, threads: int):
    key = (name, str(raft_weights), threads)
    if key not in _ESTIMATORS:
        import cv2

        cv2.setNumThreads(int(threads))
        torch.set_num_threads(int(threads))
        _ESTIMATORS[key] = make_flow_estimator(name, raft_weights=raft_weights)
    return _ESTIMATORS[key]


def _frames(source: str, kind: str, num_frames: int, short_side: int) -> np.ndarray:
    """uint8 ``[F, H, W, 3]`` frames of one video: its decoded array, or the video resized."""
    if kind == "decoded":
        return np.load(source)
    n = num_frames if num_frames > 0 else count_frames(source)
    x = to_tensor(read_video_frames(source, np.arange(n)))  # (F, 3, H, W) float
    if short_side > 0:
        x = scale_short_side(x, short_side)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()  # -> (F, H, W, 3)


def flow_one(job: dict[str, Any]) -> dict[str, Any]:
    """Compute and store the flow of one video (``job`` from :func:`compute_flow`); a timing row."""
    row: dict[str, Any] = {"video": job["video"], "target": job["target"], "status": "ok", "frames": 0, "pairs": 0,
                           "seconds": 0.0, "flow_seconds": 0.0, "error": ""}
    if is_up_to_date(job["target"], job["source"]):
        row.update(status="kept", pairs=int(np.load(job["target"], mmap_mode="r").shape[0]))
        row["frames"] = row["pairs"] + 1
        return row
    try:
        estimator = _estimator(job["estimator"], job["raft_weights"], job["threads"])
        start = time.perf_counter()
        frames = _frames(job["source"], job["kind"], job["num_frames"], job["short_side"])
        t0 = time.perf_counter()
        flow = estimator(frames)  # (F-1, H, W, 2) float32 px
        t1 = time.perf_counter()
        save_array(job["target"], encode_flow(flow, FLOW_BOUND))
        row.update(frames=int(frames.shape[0]), pairs=int(flow.shape[0]), flow_seconds=round(t1 - t0, 6),
                   seconds=round(time.perf_counter() - start, 6))
    except Exception as exc:  # noqa: BLE001 - one bad video must not stop the others
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    return row


def compute_flow(prepared_dir: str | Path, method: str = "dis", *, short_side: int | None = None,
                 workers: int = 2, threads: int = 1, splits: Sequence[str] = ("train", "val", "test"),
                 raft_weights: str | Path = "auto", progress: str = "auto") -> dict[str, Any]:
    """Compute the flow of every listed video of ``prepared_dir`` with ``method``; returns the summary
    (also stored under ``"flow"`` in ``prepared.json``). See the module docstring."""
    prepared_dir = Path(prepared_dir)
    manifest = json.loads((prepared_dir / MANIFEST).read_text())
    estimator = estimator_name(method)
    check_raft_weights(estimator, raft_weights)
    lists = manifest.get("lists", {})
    decoded = manifest.get("decoded") or {}
    if lists.get("decoded") and manifest.get("decoded_root"):
        kind, root, side = "decoded", Path(manifest["decoded_root"]), int(decoded.get("short_side", 0))
        if short_side is not None and short_side != side:
            raise ValueError(f"{prepared_dir} has frames decoded at short side {side}; flow is computed on them "
                             f"(drop --short-side, or decode again with --short-side {short_side})")
        list_kind = "decoded"
    elif lists.get("video") and manifest.get("video_root"):
        kind, root, side, list_kind = "video", Path(manifest["video_root"]), short_side or DEFAULT_SHORT_SIDE, "video"
    else:
        raise ValueError(f"{prepared_dir} has neither decoded arrays nor video lists; `flow` needs one of them")
    root = root if root.is_absolute() else prepared_dir / root
    out_root = prepared_dir / flow_dir_name(method, side)
    remove_leftovers(out_root)
    jobs: dict[str, dict[str, Any]] = {}
    for split in splits:
        rel = lists[list_kind].get(split)
        if not rel:
            continue
        for r in read_list_file(prepared_dir / rel, "pan"):
            source = root / (f"{r.path}.npy" if kind == "decoded" else r.path)
            jobs[r.path] = {"video": r.path, "source": str(source), "target": str(out_root / f"{r.path}.npy"),
                            "kind": kind, "num_frames": r.num_frames, "short_side": side, "estimator": estimator,
                            "raft_weights": str(raft_weights), "threads": threads}
    rows = run_jobs(flow_one, list(jobs.values()), workers=workers, chunksize=1, progress=progress,
                    desc=f"optical flow ({estimator}, short side {side})")
    timing_path = timing_file(prepared_dir, method, side)
    earlier = {r["video"]: r for r in read_timing(timing_path) if r["status"] == "ok"}
    for r in rows:  # a kept video keeps the seconds measured when it was computed ("untimed" if unknown)
        old = earlier.get(r["video"]) if r["status"] == "kept" else None
        if old:
            r.update(seconds=old["seconds"], flow_seconds=old["flow_seconds"])
    write_timing(timing_path, [{**r, "status": ("ok" if r["video"] in earlier else "untimed")
                                if r["status"] == "kept" else r["status"]} for r in rows])
    failures = write_failures(failures_file(prepared_dir, method, side), rows, f"compute {method} flow of")
    done = [r for r in rows if r["status"] != "failed"]
    summary = {
        "method": method, "estimator": estimator, "short_side": side, "frames_from": kind, "bound_px": FLOW_BOUND,
        "encoding": "uint8 = round((clip(v, -20, 20) + 20) * 255 / 40), [F-1, H, W, 2] (x, y)",
        "root": portable_path(out_root, prepared_dir), "videos": len(rows), "failed": len(failures),
        "kept": sum(r["status"] == "kept" for r in rows), "workers": workers, "threads": threads,
        "seconds": round(sum(r["seconds"] for r in done), 3),
        "bytes": sum(Path(r["target"]).stat().st_size for r in done),
        "timing_file": timing_path.name, "failures_file": failures_file(prepared_dir, method, side).name,
        "fingerprint": f"{manifest.get('fingerprint', '')}+flow_{method}_s{side}",
        "tools": package_versions(("opencv-contrib-python-headless", "opencv-python-headless", "torch",
                                   "torchvision", "numpy")),
    }
    current = json.loads((prepared_dir / MANIFEST).read_text()).get("flow") or {}  # another method may have run
    update_manifest(prepared_dir, flow={**current, method: summary})
    log.info("%s flow of %d videos (%d kept, %d failed) in %s, %.1f s", method, len(rows), summary["kept"],
             len(failures), out_root, summary["seconds"])
    return summary
