"""Reading frames: frame folders (JPEG) and video files (decord first, PyAV as the fallback).

All readers take **0-based** frame indices (the dataset converts the 1-based sampler output) and
return ``uint8`` RGB arrays ``[F, H, W, 3]`` in the order requested (duplicates allowed).

Decoders are opened per call, i.e. inside the DataLoader worker that asks for the clip (decord can
deadlock when a reader opened in the parent is used after ``fork``). Any failure raises
``VideoReadError`` naming the file; the dataset turns it into its bad-input policy.

* ``probe(path)``     -> ``VideoInfo`` (header frame count, decodable count if asked, fps, size, codec)
* ``read_video_frames(path, indices, backend="auto")``  decord, then PyAV when decord is missing or fails
* ``read_frame_folder(folder, indices, image_tmpl)``    JPEGs named ``image_tmpl.format(i + 1)``
"""
from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("auto", "decord", "pyav")
VIDEO_EXTENSIONS = (".webm", ".mp4", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".ogv")


class VideoReadError(RuntimeError):
    """A video or frame folder could not be read (corrupt, truncated, empty, missing frames)."""


def _decord():
    """The decord module, loaded after PyAV's libraries. decord bundles its own FFmpeg; when its
    libraries load first, PyAV's VP9 encoder fails to open (``avcodec_open2("libvpx-vp9") returned 22``,
    seen on an Intel Xeon, not on an AMD EPYC), so PyAV, when installed, is loaded before it."""
    try:
        import av  # noqa: F401
    except ImportError:
        pass
    import decord

    return decord


def decord_available() -> bool:
    try:
        _decord()
    except ImportError:
        return False
    return True


@dataclass
class VideoInfo:
    path: str
    header_frames: int        # frame count the container claims (0 when it stores none, e.g. webm)
    duration_frames: int      # duration * fps from the header (0 when unknown)
    fps: float
    width: int
    height: int
    codec: str
    decoded_frames: int = -1  # frames actually decodable (-1 when not counted)

    @property
    def expected_frames(self) -> int:
        """What the header promises: its frame count, else duration x fps."""
        return self.header_frames or self.duration_frames


def probe(path: str | Path, count: bool = False) -> VideoInfo:
    """Header facts with PyAV; ``count=True`` also decodes every frame to count them."""
    import av

    path = str(path)
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0.0)
            duration = 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000.0
            info = VideoInfo(path=path, header_frames=int(stream.frames or 0),
                             duration_frames=int(round(duration * fps)) if fps else 0, fps=fps,
                             width=stream.codec_context.width, height=stream.codec_context.height,
                             codec=stream.codec_context.name)
            if count:
                stream.thread_type = "AUTO"
                info.decoded_frames = sum(1 for _ in container.decode(stream))
    except VideoReadError:
        raise
    except Exception as exc:  # av.error.* and OSError: report, never crash the caller
        raise VideoReadError(f"{path}: {type(exc).__name__}: {exc}") from exc
    return info


def count_frames(path: str | Path, backend: str = "auto") -> int:
    """Number of frames: decord's count (from its index) or, with PyAV, a full decode.

    Containers that store no frame count (re-encoded UCF101 ``.mp4`` files report 0 frames and no
    duration; decord refuses them) are counted by decoding: with ``backend="auto"`` a decord
    failure or a count of 0 falls back to PyAV.
    """
    if backend in ("auto", "decord") and decord_available():
        try:
            n = _decord_len(str(path))
        except Exception as exc:
            if backend == "decord":
                raise VideoReadError(f"{path}: decord: {exc}") from exc
            log.debug("decord cannot count %s (%s); counting by decoding", path, exc)
        else:
            if n > 0 or backend == "decord":
                return n
    info = probe(path, count=True)
    return info.decoded_frames


def _decord_len(path: str) -> int:
    return len(_decord().VideoReader(path, num_threads=1))


def _read_decord(path: str, indices: np.ndarray) -> np.ndarray:
    vr = _decord().VideoReader(path, num_threads=1)
    n = len(vr)
    if n == 0:
        raise VideoReadError(f"{path}: decord found no frames")
    if indices.max() >= n:
        raise VideoReadError(f"{path}: frame {int(indices.max())} requested, decord reports {n} frames")
    unique, inverse = np.unique(indices, return_inverse=True)
    batch = vr.get_batch(unique.tolist()).asnumpy()  # (U, H, W, 3)
    if batch.shape[0] != len(unique):
        raise VideoReadError(f"{path}: decord returned {batch.shape[0]} of {len(unique)} frames")
    return batch[inverse]  # (U, H, W, 3) -> (F, H, W, 3)


def _read_pyav(path: str, indices: np.ndarray) -> np.ndarray:
    """Sequential decode up to the last index (robust for every container; short clips)."""
    import av

    wanted = set(int(i) for i in indices)
    last = max(wanted)
    got: dict[int, np.ndarray] = {}
    decoded = 0
    with av.open(path) as container:
        if not container.streams.video:
            raise VideoReadError(f"{path}: no video stream")
        stream = container.streams.video[0]
        for i, frame in enumerate(container.decode(stream)):
            decoded = i + 1
            if i in wanted:
                got[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
    if len(got) < len(wanted):
        raise VideoReadError(f"{path}: truncated or corrupt, frame {last} requested but only "
                             f"{decoded} frame(s) decodable")
    return np.stack([got[int(i)] for i in indices])  # (F, H, W, 3)


def read_video_frames(path: str | Path, indices: Sequence[int] | np.ndarray,
                      backend: str = "auto") -> np.ndarray:
    """Frames at 0-based ``indices`` as uint8 ``[F, H, W, 3]``.

    ``backend="auto"``: decord, and PyAV when decord is not installed or fails on this file.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; valid: {', '.join(BACKENDS)}")
    path = str(path)
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0:
        raise ValueError("no frame indices requested")
    if idx.min() < 0:
        raise ValueError(f"negative frame index {int(idx.min())}")
    if not Path(path).is_file():
        raise VideoReadError(f"{path}: file not found")
    if Path(path).stat().st_size == 0:
        raise VideoReadError(f"{path}: empty file (0 bytes)")
    errors = []
    if backend in ("auto", "decord") and decord_available():
        try:
            return _read_decord(path, idx)
        except Exception as exc:  # decord raises DECORDError / RuntimeError on bad files
            errors.append(f"decord: {exc}".strip())
            if backend == "decord":
                raise VideoReadError(f"{path}: {errors[-1]}") from exc
            log.debug("decord failed on %s (%s); trying PyAV", path, exc)
    elif backend == "decord":
        raise VideoReadError("decord is not installed; use backend='pyav' or 'auto'")
    try:
        return _read_pyav(path, idx)
    except VideoReadError as exc:
        raise VideoReadError("; ".join(errors + [str(exc)])) from exc
    except Exception as exc:
        raise VideoReadError("; ".join(errors + [f"{path}: pyav: {type(exc).__name__}: {exc}"])) from exc


@functools.lru_cache(maxsize=8192)
def _mapped(path: str, mtime_ns: int) -> np.ndarray:
    """The memory-mapped array of a decoded file (cached per process; a rewritten file has a new mtime)."""
    return np.load(path, mmap_mode="r").view(np.ndarray)  # plain view: indexing skips memmap's overhead


def open_uint8_array(path: str | Path, channels: int, missing: str) -> np.ndarray:
    """A stored uint8 ``[F, H, W, channels]`` array (memory-mapped, cached per process), or
    ``VideoReadError``: ``missing`` says why a file may be absent (decoded frames, stored flow)."""
    try:
        array = _mapped(str(path), os.stat(path).st_mtime_ns)
    except FileNotFoundError:
        raise VideoReadError(f"{path}: {missing}") from None
    except (ValueError, OSError) as exc:
        raise VideoReadError(f"{path}: unreadable array ({exc})") from exc
    if array.ndim != 4 or array.shape[-1] != channels or array.dtype != np.uint8:
        raise VideoReadError(f"{path}: expected uint8 [F, H, W, {channels}], got {array.dtype} {array.shape}")
    return array


def _open_decoded(path: str | Path) -> np.ndarray:
    """The whole decoded array ``[F, H, W, 3]`` of ``path`` (memory-mapped), or ``VideoReadError``."""
    return open_uint8_array(path, 3, "not in the decoded cache (decoding failed or `data_prep decode` did not "
                                     "finish; see decode_failures.txt)")


def count_decoded_frames(path: str | Path) -> int:
    """Frames in a decoded ``.npy`` array (its header; nothing is read)."""
    return int(_open_decoded(path).shape[0])


def read_decoded(path: str | Path, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Frames at 0-based ``indices`` of a decoded ``.npy`` array ``[F, H, W, 3]`` (memory-mapped)."""
    idx = np.asarray(indices, dtype=np.int64)
    frames = _open_decoded(path)
    if idx.size and (idx.min() < 0 or idx.max() >= frames.shape[0]):
        raise VideoReadError(f"{path}: frame {int(idx.max())} requested but the array holds {frames.shape[0]}")
    return np.ascontiguousarray(frames[idx])  # (F, H, W, 3)


def read_frame_folder(folder: str | Path, indices: Sequence[int] | np.ndarray,
                      image_tmpl: str = "{:05d}.jpg") -> np.ndarray:
    """JPEG frames ``folder / image_tmpl.format(i + 1)`` for 0-based ``indices`` -> ``[F, H, W, 3]``."""
    import cv2

    folder = Path(folder)
    idx = np.asarray(indices, dtype=np.int64)
    unique, inverse = np.unique(idx, return_inverse=True)
    frames = []
    for i in unique:
        path = folder / image_tmpl.format(int(i) + 1)
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            reason = "missing" if not path.exists() else "unreadable"
            raise VideoReadError(f"{path}: frame {reason}")
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise VideoReadError(f"{folder}: frames of different sizes {sorted(shapes)}")
    return np.stack(frames)[inverse]  # (U, H, W, 3) -> (F, H, W, 3)


def write_video(path: str | Path, frames: np.ndarray | Sequence[np.ndarray], fps: float = 12.0,
                codec: str = "libvpx-vp9", options: dict[str, str] | None = None) -> Path:
    """Encode uint8 RGB frames ``[F, H, W, 3]`` (H, W even) with PyAV; returns the path."""
    import av

    path = Path(path)
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to write")
    h, w = frames[0].shape[:2]
    defaults = {"libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "crf": "24", "b": "0"},
                "libx264": {"preset": "veryfast", "crf": "18"},
                "mpeg4": {"qscale": "3"}}
    opts = dict(defaults.get(codec, {}), **(options or {}))
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), options=opts)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.thread_count = 1
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
