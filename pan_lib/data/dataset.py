"""VideoClipDataset: TSN-style clips from frame folders or video files, with a bad-input policy.

    list row  ->  segment_offsets (T starts)  ->  L consecutive frames each (clamped at the end)
              ->  read (JPEG folder | decord | PyAV)  ->  group transform  ->  clip [V*T*L*3, S, S]

Items are ``(clip, label, index)``: ``clip`` float32 ImageNet-normalised, segment-major then frame
(``V`` test views crop-major in front); ``label`` int (-1 unlabeled); ``index`` the row in the list.
With ``output="uint8"`` the clip is the same uint8 pixels before normalisation (crop/resize/flip
done): what the engine copies to the device and normalises there (``transforms.normalize_clip``).

Bad input never kills an epoch. A corrupt, truncated or empty video, or a folder with missing
frames, is handled by ``bad_input``:

* ``"resample"`` - return another, randomly chosen (seeded) video of the list instead (train default);
* ``"zeros"``    - return an all-zero clip (uint8 output: black) with the row's own label and index (val/test default, so
                   every row is scored once and the failure costs accuracy instead of hiding);
* ``"raise"``    - raise ``VideoReadError`` naming the file.

Every failure is appended as one JSON line to ``<report_dir>/bad_inputs.<pid>.jsonl`` (open-append-
close per event, so it works from any number of DataLoader worker processes, forked or spawned).
The training loop calls ``dataset.collect_bad_inputs()`` at the end of each epoch: it returns a
``BadInputReport`` (count, files, reasons) and clears the events it has read.

Randomness: train clips draw offsets, crops and flips from a ``numpy.random.Generator`` seeded with
``(seed, epoch, index)`` once ``set_epoch(epoch)`` has been called (independent of the number of
workers), otherwise from a draw of torch's RNG (deterministic under ``torch.manual_seed`` for a
fixed number of workers, like any DataLoader); a wrapper may also call ``set_clip_seed(s)`` right
before an item. val/test clips are the same every time.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from pan_lib.data.flow import count_flow_fields, read_flow
from pan_lib.data.lists import VideoRecord, read_list_file
from pan_lib.data.prepared import SOURCES
from pan_lib.data.sampling import clip_frame_indices, dense_offsets, segment_offsets
from pan_lib.data.transforms import ClipTransform, build_transform
from pan_lib.data.video import (VideoReadError, count_decoded_frames, count_frames, read_decoded, read_frame_folder,
                                read_video_frames)
from pan_lib.models import channels_per_frame

log = logging.getLogger(__name__)

POLICIES = ("auto", "resample", "zeros", "raise")


@dataclass
class BadInputReport:
    """Failures collected since the last ``collect_bad_inputs()``."""
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.events)

    @property
    def files(self) -> list[str]:
        return sorted({e["path"] for e in self.events})

    def __bool__(self) -> bool:
        return bool(self.events)

    def summary(self, max_files: int = 10) -> str:
        if not self.events:
            return "no bad inputs"
        by_file = Counter(e["path"] for e in self.events)
        lines = [f"{self.count} bad input(s) in {len(by_file)} file(s), handled by policy "
                 f"{sorted({e['policy'] for e in self.events})}:"]
        for path, n in by_file.most_common(max_files):
            reason = next(e["error"] for e in self.events if e["path"] == path)
            lines.append(f"  {path} (x{n}): {reason}")
        if len(by_file) > max_files:
            lines.append(f"  ... and {len(by_file) - max_files} more files")
        return "\n".join(lines)


class VideoClipDataset(Dataset):
    """Clips of ``num_segments`` x ``new_length`` frames from a list file (see module docstring).

    Args:
        records_or_list_file: a list file (PAN/TSM or mmaction2 format) or a sequence of ``VideoRecord``.
        root: folder the list paths are relative to (frame folders or video files).
        mode: "train" (random shift + multi-scale crop + flip), "val" (centres + centre crop),
            "test" (centres, ``twice_sample``, ``test_crops``, ``full_res``).
        source: "frames" (JPEG folders named by ``image_tmpl``), "video" (decord, PyAV fallback) or
            "decoded" (``<path>.npy`` uint8 arrays written by ``python -m data_prep decode``).
        dense_sample: TSM dense sampling instead of segments (``dense`` is a deprecated alias).
        drop_short: drop rows with fewer than 3 frames in train/val (official); ``None`` = official.
        bad_input: "auto" (= "resample" in train, "zeros" otherwise), "resample", "zeros", "raise".
        output: "float" (normalised, the default) or "uint8" (not normalised; see the module docstring).
            A given ``transform`` is switched to it.
        modality: the network the clips are for: its normalisation (``transforms.CLIP_STATS``) and, for
            "Flow", stored flow ``[F-1, H, W, 2]`` read from ``flow_root`` (``python -m data_prep flow``;
            ``pan_lib.data.flow.flow_dataset_kwargs`` gives both keywords) with ``new_length`` flow fields
            per segment and flips that invert x.
    """

    def __init__(self, records_or_list_file: str | Path | Sequence[VideoRecord], root: str | Path, *,
                 num_segments: int = 8, new_length: int = 1, mode: str = "train", source: str = "frames",
                 image_tmpl: str = "{:05d}.jpg", transform: ClipTransform | None = None, input_size: int = 224,
                 scale_size: int | None = None, flip: bool = True, twice_sample: bool = False,
                 dense_sample: bool = False, test_crops: int = 1, full_res: bool = False, seed: int = 0,
                 bad_input: str = "auto", report_dir: str | Path | None = None, backend: str = "auto",
                 drop_short: bool | None = None, max_retries: int = 10, list_format: str = "auto",
                 dense: bool | None = None, output: str = "float", modality: str = "RGB",
                 flow_root: str | Path | None = None) -> None:
        if mode not in ("train", "val", "test"):
            raise ValueError(f"unknown mode {mode!r}; valid: train, val, test")
        if dense is not None:  # the old keyword
            log.warning("VideoClipDataset(dense=...) is deprecated; use dense_sample=...")
            dense_sample = dense_sample or dense
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; valid: {', '.join(SOURCES)}")
        if bad_input not in POLICIES:
            raise ValueError(f"unknown bad_input policy {bad_input!r}; valid: {', '.join(POLICIES)}")
        if isinstance(records_or_list_file, (str, Path)):
            self.list_file: Path | None = Path(records_or_list_file)
            records = read_list_file(self.list_file, list_format)
        else:
            self.list_file, records = None, list(records_or_list_file)
        drop_short = (mode != "test") if drop_short is None else drop_short
        if drop_short:
            kept = [r for r in records if r.num_frames < 0 or r.num_frames >= 3]
            if len(kept) < len(records):
                log.info("dropped %d rows with < 3 frames (official rule for %s)", len(records) - len(kept), mode)
            records = kept
        self.records: list[VideoRecord] = records
        self.root = Path(root)
        self.num_segments, self.new_length, self.mode, self.source = num_segments, new_length, mode, source
        self.image_tmpl, self.twice_sample, self.dense_sample = image_tmpl, twice_sample, dense_sample
        self.seed, self.backend, self.max_retries = seed, backend, max_retries
        self.modality, self.channels_per_frame = modality, channels_per_frame(modality)
        if modality == "Flow" and flow_root is None:
            raise ValueError("modality 'Flow' reads stored optical flow: pass flow_root "
                             "(pan_lib.data.flow.flow_dataset_kwargs(prepared, 'Flow'))")
        self.flow_root = Path(flow_root) if modality == "Flow" else None
        self.transform = (replace(transform, output=output) if transform is not None else
                          build_transform(mode, input_size=input_size, scale_size=scale_size, flip=flip,
                                          test_crops=test_crops, full_res=full_res, output=output,
                                          modality=modality))
        self.policy = ({"train": "resample"}.get(mode, "zeros") if bad_input == "auto" else bad_input)
        self.report_dir = Path(report_dir) if report_dir else Path(tempfile.mkdtemp(prefix="pan_bad_inputs_"))
        self.report_dir.mkdir(parents=True, exist_ok=True)
        self.epoch: int | None = None
        self._clip_seed: int | None = None
        self._frame_counts: dict[int, int] = {}

    # ------------------------------------------------------------------ public
    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Seed train-time randomness with ``(seed, epoch, index)`` (call before each epoch)."""
        self.epoch = int(epoch)

    def set_clip_seed(self, seed: int) -> None:
        """Seed the NEXT item's randomness in this process (for wrappers that seed per item)."""
        self._clip_seed = int(seed)

    @property
    def output(self) -> str:
        """"float" (normalised clips) or "uint8" (0..255, normalised later by the engine)."""
        return self.transform.output

    def with_output(self, output: str) -> "VideoClipDataset":
        """A copy of this dataset (same rows, report folder and seed) whose clips are `output`."""
        other = copy.copy(self)
        other.transform = replace(self.transform, output=output)
        other._frame_counts = self._frame_counts
        return other

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.records]

    @property
    def clips_per_item(self) -> int:
        """Clips (temporal views) per item: 2 with twice_sample, 10 with dense test sampling."""
        if self.mode != "test":
            return 1
        return 10 if self.dense_sample else (2 if self.twice_sample else 1)

    @property
    def clip_shape(self) -> tuple[int, int, int]:
        frames = self.clips_per_item * self.num_segments * self.new_length * self.transform.num_views
        size = self.transform.output_size
        return (frames * self.channels_per_frame, size, size)

    def path_of(self, index: int) -> Path:
        path = self.records[index].path
        if self.flow_root is not None:
            return self.flow_root / f"{path}.npy"
        return self.root / (f"{path}.npy" if self.source == "decoded" else path)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        rng = self._rng(index)
        record = self.records[index]
        try:
            return self._load(index, rng), record.label, index
        except Exception as exc:  # noqa: BLE001 - any failure of one file must not end the epoch
            self._report(index, exc, attempt=0)
            if self.policy == "raise":
                raise exc if isinstance(exc, VideoReadError) else VideoReadError(f"{self.path_of(index)}: {exc}") from exc
            if self.policy == "zeros" or len(self) < 2:
                return self._zeros(), record.label, index
        for attempt in range(1, self.max_retries + 1):  # resample
            other = int(rng.integers(len(self)))
            if other == index:
                continue
            try:
                return self._load(other, self._rng(other)), self.records[other].label, other
            except Exception as exc:  # noqa: BLE001
                self._report(other, exc, attempt=attempt)
        log.error("no readable replacement after %d tries; returning zeros for row %d", self.max_retries, index)
        return self._zeros(), record.label, index

    def collect_bad_inputs(self) -> BadInputReport:
        """Events written since the last call (from every worker); they are removed once read."""
        events: list[dict[str, Any]] = []
        for f in sorted(self.report_dir.glob("bad_inputs.*.jsonl")):
            taken = f.with_suffix(".collected")
            try:
                os.replace(f, taken)  # later events go to a fresh file
            except FileNotFoundError:
                continue
            for line in taken.read_text().splitlines():
                if line.strip():
                    events.append(json.loads(line))
            taken.unlink()
        events.sort(key=lambda e: (e.get("time", 0), e["path"]))
        return BadInputReport(events)

    # ------------------------------------------------------------------ internals
    def _zeros(self) -> torch.Tensor:
        return torch.zeros(self.clip_shape, dtype=torch.uint8 if self.output == "uint8" else torch.float32)

    def _rng(self, index: int) -> np.random.Generator:
        if self.mode != "train":
            return np.random.default_rng([self.seed, index])
        if self._clip_seed is not None:
            seed, self._clip_seed = self._clip_seed, None
            return np.random.default_rng([self.seed, seed, index])
        if self.epoch is not None:
            return np.random.default_rng([self.seed, self.epoch, index])
        draw = int(torch.randint(0, 2**62, ()).item())
        return np.random.default_rng([self.seed, draw, index])

    def _num_frames(self, index: int) -> int:
        record = self.records[index]
        if self.flow_root is not None:  # F frames -> F-1 flow fields
            return record.num_frames - 1 if record.num_frames > 0 else count_flow_fields(self.path_of(index))
        if record.num_frames >= 0:
            return record.num_frames
        if index not in self._frame_counts:  # unknown in the list: count once per process
            path = self.path_of(index)
            self._frame_counts[index] = (count_decoded_frames(path) if self.source == "decoded"
                                         else count_frames(path, self.backend))
        return self._frame_counts[index]

    def frame_indices(self, index: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """1-based frame numbers the item reads, ``[clips * T * L]``."""
        nf = self._num_frames(index)
        if nf <= 0:
            raise VideoReadError(f"{self.path_of(index)}: no frames")
        rng = rng if rng is not None else self._rng(index)
        if self.dense_sample:
            offsets = dense_offsets(nf, self.num_segments, self.mode, rng=rng)
        else:
            offsets = segment_offsets(nf, self.num_segments, self.new_length, self.mode,
                                      twice_sample=self.twice_sample and self.mode == "test", rng=rng)
        return clip_frame_indices(offsets, self.new_length, nf) + self.records[index].offset

    def _load(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        idx1 = self.frame_indices(index, rng)
        path = self.path_of(index)
        if self.flow_root is not None:
            frames = read_flow(path, idx1 - 1)  # (F, H, W, 2) uint8 flow fields
        elif self.source == "frames":
            frames = read_frame_folder(path, idx1 - 1, self.image_tmpl)
        elif self.source == "decoded":
            frames = read_decoded(path, idx1 - 1)
        else:
            frames = read_video_frames(path, idx1 - 1, self.backend)
        return self.transform(frames, rng)

    def _report(self, index: int, exc: BaseException, attempt: int) -> None:
        event = {"path": str(self.path_of(index)), "index": index, "error": f"{type(exc).__name__}: {exc}",
                 "policy": self.policy, "mode": self.mode, "epoch": self.epoch, "attempt": attempt,
                 "pid": os.getpid(), "time": time.time()}
        log.warning("bad input %s: %s (policy %s)", event["path"], event["error"], self.policy)
        try:
            with open(self.report_dir / f"bad_inputs.{os.getpid()}.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(event) + "\n")
        except OSError as err:  # reporting must never end the epoch either
            log.error("could not record bad input in %s: %s", self.report_dir, err)
