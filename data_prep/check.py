"""``check-videos``: find unreadable, empty and truncated video files; never crashes.

A truncated file often decodes "successfully" but short. Each file is decoded completely with PyAV
and the decoded frame count is compared with what the container header promises (its frame count,
else duration x fps); fewer than ``expected - tolerance`` frames is reported as truncated.
"""
from __future__ import annotations

import csv
import json
import logging
import multiprocessing as mp
import os
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Sequence

from pan_lib.progress import progress_bar
from pan_lib.data.video import VIDEO_EXTENSIONS, VideoReadError, probe

log = logging.getLogger(__name__)
STATUSES = ("ok", "empty", "unreadable", "truncated", "no_frames")


@dataclass
class VideoCheck:
    path: str
    status: str            # ok | empty | unreadable | truncated | no_frames
    expected_frames: int   # from the header (0 = unknown)
    decoded_frames: int
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def check_video(path: str | Path, tolerance: float = 0.05) -> VideoCheck:
    """Decode ``path`` completely and classify it (see module docstring)."""
    path = str(path)
    try:
        if os.path.getsize(path) == 0:
            return VideoCheck(path, "empty", 0, 0, "0 bytes")
        info = probe(path, count=True)
    except VideoReadError as exc:
        return VideoCheck(path, "unreadable", 0, 0, str(exc))
    except Exception as exc:  # noqa: BLE001 - a checker reports, it never crashes
        return VideoCheck(path, "unreadable", 0, 0, f"{type(exc).__name__}: {exc}")
    expected, decoded = info.expected_frames, info.decoded_frames
    if decoded <= 0:
        return VideoCheck(path, "no_frames", expected, decoded, "no decodable frame")
    if expected > 0 and decoded < expected - max(2, int(tolerance * expected)):
        return VideoCheck(path, "truncated", expected, decoded,
                          f"header promises {expected} frames, only {decoded} decodable")
    return VideoCheck(path, "ok", expected, decoded)


def find_videos(folder: str | Path, recursive: bool = True) -> list[Path]:
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def check_videos(paths: str | Path | Sequence[str | Path], *, workers: int = 2, tolerance: float = 0.05,
                 progress: str = "auto") -> list[VideoCheck]:
    """Check every video under a folder (or a list of files) with a bounded process pool."""
    files = find_videos(paths) if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    results: list[VideoCheck] = []
    with progress_bar(total=len(files), desc="checking videos", mode=progress) as bar:
        if workers > 1 and len(files) > 1:
            with mp.get_context("spawn").Pool(workers) as pool:
                for r in pool.imap(partial(check_video, tolerance=tolerance), [str(f) for f in files], chunksize=4):
                    results.append(r)
                    bar.update(1)
        else:
            for f in files:
                results.append(check_video(f, tolerance))
                bar.update(1)
    return results


def write_report(results: Sequence[VideoCheck], path: str | Path) -> Path:
    """CSV (``.csv``) or JSON (any other suffix) of every checked file."""
    path = Path(path)
    rows = [asdict(r) for r in results]
    if path.suffix == ".csv":
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(VideoCheck.__dataclass_fields__))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text(json.dumps(rows, indent=1))
    return path
