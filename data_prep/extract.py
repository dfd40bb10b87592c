"""Optional frame extraction: videos of a prepared dataset -> JPEG folders + frame lists.

    python -m data_prep extract-frames OUT [--scale 256] [--workers 2]

* Names follow the official templates of the dataset (``{:06d}.jpg`` for SSv2, ``img_{:05d}.jpg``
  for Kinetics/UCF101/HMDB51, 1-based) at the native frame rate; the short side is scaled to
  ``scale`` (official: 256 for SSv2, 331 for Kinetics; ``0`` keeps the size).
* Parallel with a bounded process pool; resumable: each video is written into ``<folder>.part`` and
  renamed when complete, so an interrupted run continues and a half-written folder is never
  counted; leftovers of an interrupted run are removed on restart.
* Writes ``{split}_frames.txt`` (frame counts from the folders), ``extraction.json`` (tool versions,
  scale, quality, template, counts, fingerprint) and ``extraction_videos.tsv`` (per video: frames,
  fps, size), and records the frame lists in ``prepared.json``; videos that fail are listed in
  ``extract_failures.txt`` and left out of the frame lists (the video lists keep them).
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pan_lib.progress import progress_bar
from pan_lib.data.catalog import get_dataset_info
from pan_lib.data.lists import VideoRecord, read_list_file, write_list_file
from pan_lib.data.prepared import MANIFEST, portable_path, update_manifest
from pan_lib.provenance import fingerprint_files, package_versions

log = logging.getLogger(__name__)


def frame_folder_name(video_path: str) -> str:
    """Relative frame folder of a video: the path without extension, spaces -> ``_``."""
    p = Path(video_path)
    return p.with_suffix("").as_posix().replace(" ", "_")


def extract_one(args: tuple[str, str, str, int, int]) -> dict[str, Any]:
    video, target, image_tmpl, scale, quality = args
    import av
    import cv2

    cv2.setNumThreads(1)
    final = Path(target)
    if final.is_dir():
        n = sum(1 for _ in final.iterdir())
        return {"video": video, "folder": target, "frames": n, "fps": None, "status": "done before"}
    part = final.with_name(final.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    n, fps, size = 0, 0.0, (0, 0)
    try:
        with av.open(video) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 0.0)
            for frame in container.decode(stream):
                img = frame.to_ndarray(format="bgr24")
                h, w = img.shape[:2]
                if scale and min(h, w) != scale:
                    f = scale / min(h, w)
                    img = cv2.resize(img, (max(int(round(w * f)), 1), max(int(round(h * f)), 1)),
                                     interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
                n += 1
                size = img.shape[1], img.shape[0]
                if not cv2.imwrite(str(part / image_tmpl.format(n)), img, [cv2.IMWRITE_JPEG_QUALITY, quality]):
                    raise OSError(f"could not write {part / image_tmpl.format(n)}")
        if n == 0:
            raise ValueError("no decodable frames")
        os.replace(part, final)  # complete folders appear atomically
        return {"video": video, "folder": target, "frames": n, "fps": fps, "width": size[0], "height": size[1],
                "status": "ok"}
    except Exception as exc:  # noqa: BLE001 - reported, never fatal
        shutil.rmtree(part, ignore_errors=True)
        return {"video": video, "folder": target, "frames": 0, "fps": fps, "status": "failed",
                "error": f"{type(exc).__name__}: {exc}"}


def extract_frames(prepared_dir: str | Path, *, frames_dir: str | Path | None = None, scale: int | None = None,
                   quality: int = 95, workers: int = 2, splits: Sequence[str] = ("train", "val", "test"),
                   progress: str = "auto") -> dict[str, Any]:
    """Extract the videos listed in a prepared folder; returns the extraction summary."""
    prepared_dir = Path(prepared_dir)
    manifest = json.loads((prepared_dir / MANIFEST).read_text())
    info = get_dataset_info(manifest["name"], prepared_dir)  # a custom name: its own manifest
    if not manifest.get("video_root") or not manifest.get("lists", {}).get("video"):
        raise ValueError(f"{prepared_dir} has no video lists (frame datasets are already extracted)")
    video_root = Path(manifest["video_root"])
    if not video_root.is_absolute():
        video_root = prepared_dir / video_root
    frames_root = Path(frames_dir) if frames_dir else prepared_dir / "frames"
    frames_root.mkdir(parents=True, exist_ok=True)
    scale = info.frame_scale if scale is None else scale
    tmpl = manifest.get("image_tmpl", info.image_tmpl)
    for leftover in frames_root.rglob("*.part"):  # an interrupted run: start these videos again
        shutil.rmtree(leftover, ignore_errors=True)
    records: dict[str, list[VideoRecord]] = {}
    for split in splits:
        rel = manifest["lists"]["video"].get(split)
        if rel:
            records[split] = read_list_file(prepared_dir / rel, "pan")
    jobs = {r.path: (str(video_root / r.path), str(frames_root / frame_folder_name(r.path)), tmpl, scale, quality)
            for recs in records.values() for r in recs}
    results: dict[str, dict[str, Any]] = {}
    with progress_bar(total=len(jobs), desc="extracting frames", mode=progress) as bar:
        if workers > 1:
            with mp.get_context("spawn").Pool(workers) as pool:
                for path, res in zip(jobs, pool.imap(extract_one, list(jobs.values()), chunksize=1)):
                    results[path] = res
                    bar.update(1)
        else:
            for path, args in jobs.items():
                results[path] = extract_one(args)
                bar.update(1)
    lists_written, frame_lists = [], {}
    for split, recs in records.items():
        out = [VideoRecord(frame_folder_name(r.path), results[r.path]["frames"], r.label)
               for r in recs if results[r.path]["status"] != "failed"]
        name = f"{split}_frames.txt"
        lists_written.append(write_list_file(prepared_dir / name, out))
        frame_lists[split] = name
    failures = [r for r in results.values() if r["status"] == "failed"]
    (prepared_dir / "extract_failures.txt").write_text("".join(f"{r['video']}\t{r['error']}\n" for r in failures))
    with (prepared_dir / "extraction_videos.tsv").open("w") as f:
        f.write("video\tframes\tfps\twidth\theight\tstatus\n")
        for r in results.values():
            f.write(f"{r['video']}\t{r['frames']}\t{r.get('fps')}\t{r.get('width', '')}\t{r.get('height', '')}\t"
                    f"{r['status']}\n")
    counts = np.array([r["frames"] for r in results.values() if r["status"] != "failed"] or [0])
    fps = sorted({round(r["fps"], 3) for r in results.values() if r.get("fps")})
    summary = {"scale_short_side": scale, "jpeg_quality": quality, "image_tmpl": tmpl, "decoder": "PyAV",
               "resize": "OpenCV INTER_AREA (down) / INTER_LINEAR (up)", "videos": len(jobs),
               "failed": len(failures), "frames_total": int(counts.sum()), "frames_min": int(counts.min()),
               "frames_max": int(counts.max()), "fps_values": fps[:20],
               "tools": package_versions(("av", "opencv-contrib-python-headless", "numpy")),
               "fingerprint": fingerprint_files(lists_written)}
    (prepared_dir / "extraction.json").write_text(json.dumps(summary, indent=1))
    update_manifest(prepared_dir, lists=dict(manifest.get("lists", {}), frames=frame_lists),
                    frames_root=portable_path(frames_root, prepared_dir), extraction=summary)
    if failures:
        log.warning("%d videos could not be extracted (see %s)", len(failures), prepared_dir / "extract_failures.txt")
    return summary
