"""Where each segment of a clip starts: the official TSN/TSM/PAN formulas, 1-based.

A video of ``num_frames`` frames is split into ``num_segments`` (T) equal segments; from each
segment the loader reads ``new_length`` (L) consecutive frames (1 for RGB/TSN/TSM, 4 for PA/Lite)::

    frames  1 ........................................... num_frames
    segs    |---- 1 ----|---- 2 ----| ... |---- T ----|
    train   random start inside each segment  (GroupMultiScaleCrop clips)
    val     centre of each segment
    test    centre of each segment (+ segment starts with twice_sample = 2 clips)

``segment_offsets`` reproduces ``ops/dataset.py`` of PAN/TSM exactly, short-video cases included:

* train: ``avg = (nf - L + 1) // T``; ``avg > 0`` -> ``arange(T) * avg + randint(avg)``;
  elif ``nf > T`` -> ``sort(randint(nf - L + 1, size=T))``; else zeros.
* val: ``nf > T + L - 1`` -> ``int(tick / 2 + tick * x)`` with ``tick = (nf - L + 1) / T``; else zeros.
* test: the same centres without the short-video guard; ``twice_sample`` appends ``int(tick * x)``.

The official code can return starts outside ``[1, nf]`` for test clips shorter than ``L`` (e.g. 0 for
a 1-frame video with L = 4); the maths is kept here and the loader clamps every frame index to
``[1, nf]`` (``clip_frame_indices``), which also repeats the last frame like the official loader.

Dense sampling (``dense_offsets``, TSM's ``--dense_sample``, unused by PAN's scripts): a 64-frame
window with stride ``64 // T``, one random start for train/val, ``num_clips`` (10) evenly spaced
starts for test; indices wrap modulo ``nf``.
"""
from __future__ import annotations

import numpy as np

MODES = ("train", "val", "test")


def _check(num_frames: int, num_segments: int, new_length: int, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; valid: {', '.join(MODES)}")
    if num_segments < 1 or new_length < 1:
        raise ValueError(f"num_segments and new_length must be >= 1, got {num_segments}, {new_length}")
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")


def segment_offsets(num_frames: int, num_segments: int, new_length: int = 1, mode: str = "train",
                    twice_sample: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
    """1-based start frame of each segment (official formulas); shape ``[T]`` (``[2T]`` with
    ``twice_sample`` in test mode), dtype int64.

    ``rng`` (a ``numpy.random.Generator``) drives the train-mode random shift; passing a seeded
    generator makes it deterministic. Without one a fresh unseeded generator is used.
    """
    _check(num_frames, num_segments, new_length, mode)
    nf, T, L = int(num_frames), int(num_segments), int(new_length)
    if mode == "train":
        rng = rng if rng is not None else np.random.default_rng()
        avg = (nf - L + 1) // T
        if avg > 0:
            offsets = np.arange(T) * avg + rng.integers(avg, size=T)
        elif nf > T:
            offsets = np.sort(rng.integers(max(nf - L + 1, 1), size=T))
        else:
            offsets = np.zeros(T, dtype=np.int64)
    elif mode == "val":
        if nf > T + L - 1:
            tick = (nf - L + 1) / float(T)
            offsets = np.array([int(tick / 2.0 + tick * x) for x in range(T)])
        else:
            offsets = np.zeros(T, dtype=np.int64)
    else:  # test: no short-video guard (official)
        tick = (nf - L + 1) / float(T)
        starts = [int(tick / 2.0 + tick * x) for x in range(T)]
        if twice_sample:
            starts += [int(tick * x) for x in range(T)]
        offsets = np.array(starts)
    return offsets.astype(np.int64) + 1


def dense_offsets(num_frames: int, num_segments: int, mode: str = "train",
                  rng: np.random.Generator | None = None, window: int = 64,
                  num_clips: int = 10) -> np.ndarray:
    """TSM-style dense sampling, 1-based: ``[T]`` (train/val) or ``[num_clips * T]`` (test).

    ``window`` frames with stride ``window // T`` from a start drawn at random (train, val: as in the
    official code; pass a seeded ``rng`` for reproducible validation) or ``num_clips`` evenly spaced
    starts (test). Indices wrap modulo ``num_frames``.
    """
    _check(num_frames, num_segments, 1, mode)
    nf, T = max(int(num_frames), 1), int(num_segments)
    sample_pos = max(1, 1 + nf - window)
    t_stride = max(window // T, 1)
    if mode == "test":
        starts = np.linspace(0, sample_pos - 1, num=num_clips, dtype=int).tolist()
    else:
        rng = rng if rng is not None else np.random.default_rng()
        starts = [0 if sample_pos == 1 else int(rng.integers(0, sample_pos - 1))]
    offsets = [(idx * t_stride + s) % nf for s in starts for idx in range(T)]
    return np.asarray(offsets, dtype=np.int64) + 1


def clip_frame_indices(offsets: np.ndarray, new_length: int, num_frames: int) -> np.ndarray:
    """1-based frame indices ``[len(offsets) * L]`` read for each start: ``p, p+1, ...`` advancing
    only while ``p < num_frames`` (the official clamp: the last frame repeats), and never below 1.
    """
    nf = max(int(num_frames), 1)
    starts = np.minimum(np.maximum(np.asarray(offsets, dtype=np.int64), 1), nf)  # (S,) (np.clip: 3x the time)
    steps = np.arange(int(new_length), dtype=np.int64)  # (L,)
    idx = np.minimum(starts[:, None] + steps[None, :], nf)  # (S, L)
    return idx.reshape(-1)  # (S, L) -> (S*L,) segment-major then frame
