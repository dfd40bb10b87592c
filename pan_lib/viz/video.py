"""Frames for pictures: segments of a video file or frame folder, and a few videos of a dataset.

    load_segments(path, num_segments=8, frames_per_segment=4, size=112)
        -> (S, m, size, size, 3) uint8 RGB: S segments of m consecutive frames, sampled with the
           official test-time offsets (segment centres), short side scaled to `size`, centre crop.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pan_lib.data.lists import read_list_file
from pan_lib.data.registry import PreparedDataset, get_prepared
from pan_lib.data.sampling import clip_frame_indices, segment_offsets
from pan_lib.data.video import VideoReadError, count_frames, read_frame_folder, read_video_frames

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def _frame_folder_template(folder: Path) -> tuple[str, int]:
    """('{:05d}.jpg', n) for a folder of numbered images; raises when there are none."""
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise ValueError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    first = images[0]
    digits = len(first.stem)
    prefix = first.stem.rstrip("0123456789")
    return f"{prefix}{{:0{digits - len(prefix)}d}}{first.suffix}", len(images)


def resize_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """(F, H, W, 3) -> (F, size, size, 3): short side scaled to `size`, then the centre square."""
    import cv2

    h, w = frames.shape[1:3]
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    x0, y0 = (new_w - size) // 2, (new_h - size) // 2
    out = [cv2.resize(f, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
           [y0:y0 + size, x0:x0 + size] for f in frames]
    return np.stack(out)


def load_segments(path: str | Path, *, num_segments: int = 8, frames_per_segment: int = 4,
                  size: int | None = 112, backend: str = "auto") -> np.ndarray:
    """(S, m, H, W, 3) uint8 segments of a video file or a folder of numbered frames.

    Raises `pan_lib.data.video.VideoReadError` (naming the file) when it cannot be decoded.
    """
    path = Path(path)
    if not path.exists():
        raise VideoReadError(f"{path}: file not found")
    if path.is_dir():
        template, num_frames = _frame_folder_template(path)
    else:
        try:
            num_frames = count_frames(path, backend=backend)
        except VideoReadError:
            raise
        except Exception as exc:  # decoders raise their own error types on garbage input: name the file
            raise VideoReadError(f"{path}: not a readable video ({type(exc).__name__}: {exc})") from exc
        if num_frames <= 0:
            raise VideoReadError(f"{path}: no decodable frames")
    offsets = segment_offsets(num_frames, num_segments, frames_per_segment, mode="val")  # 1-based starts
    index = clip_frame_indices(offsets, frames_per_segment, num_frames) - 1  # (S*m,) 0-based
    if path.is_dir():
        frames = read_frame_folder(path, index, template)
    else:
        frames = read_video_frames(path, index, backend=backend)  # (S*m, H, W, 3)
    if size:
        frames = resize_crop(frames, size)
    return frames.reshape(num_segments, frames_per_segment, *frames.shape[1:])  # (S*m,H,W,3)->(S,m,H,W,3)


def dataset_videos(dataset: str | PreparedDataset = "embedded", data_root: str | Path | None = None, *,
                   split: str = "val", limit: int = 4, small: bool = False) -> dict[str, Path]:
    """Up to `limit` videos (or frame folders) of a prepared dataset, one per class first:
    {"<class> (<video id>)": path}. `dataset` is a PreparedDataset or a name, found through
    `pan_lib.data.registry.get_prepared` (`data/<name>`, `data/embedded_tiny` when `small`; a missing
    embedded dataset is generated, a missing real one raises `DatasetNotPreparedError`)."""
    prepared = (get_prepared(dataset, data_root, size="tiny" if small else "default")
                if isinstance(dataset, str) else dataset)
    records = read_list_file(prepared.list_for(split))
    # one video per class first (in class order), then the rest in list order
    by_class: dict[int, object] = {}
    for rec in records:
        by_class.setdefault(rec.label, rec)
    firsts = [by_class[k] for k in sorted(by_class)]
    ordered = firsts + [r for r in records if all(r is not f for f in firsts)]
    out: dict[str, Path] = {}
    for rec in ordered[:limit]:
        name = prepared.classes[rec.label] if 0 <= rec.label < len(prepared.classes) else f"label {rec.label}"
        out[f"{name} ({Path(rec.path).stem})"] = Path(prepared.media_dir) / rec.path
    if not out:
        raise FileNotFoundError(f"{prepared.list_for(split)} lists no videos")
    return out
