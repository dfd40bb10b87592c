"""Demo on any video: a model's top-5 classes over time, with a sliding window, on the CPU.

    python -m pan_lib.demo VIDEO --checkpoint CKPT [--window 64] [--stride 16] [--labels classes.txt]
                                                  [--out results/demo/VIDEO.png] [--csv ...]

    video ──► windows of `window` frames every `stride` frames
                 │ each window: official test sampling (T segment centres x m consecutive frames),
                 │ scale short side + centre crop, ImageNet normalisation
                 ▼
              model (any checkpoint: official layout or a pan-workbook training checkpoint)
                 ▼
              softmax per window ──► top-5 table per window + plot of the 5 classes that score highest
                                      on average, probability over time (with thumbnails)

Class names come from `--labels` (one name per line, or an SSv2-style JSON {name: index}), else from
`--dataset` (a prepared dataset's classes), else from the checkpoint (its stored class names or the
dataset its training config names), else "class <i>". An unreadable video or checkpoint stops with a message naming the file.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pan_lib.data.registry import find_prepared
from pan_lib.data.sampling import clip_frame_indices, segment_offsets
from pan_lib.data.transforms import build_transform
from pan_lib.data.video import VideoReadError, count_frames, probe, read_video_frames
from pan_lib.engine.distributed import resolve_device
from pan_lib.engine.evaluate import load_member
from pan_lib.viz.video import resize_crop

log = logging.getLogger(__name__)


class DemoError(RuntimeError):
    """A clear, user-facing reason why the demo cannot run (bad video, bad checkpoint, bad option)."""


@dataclass
class DemoConfig:
    """Options of `python -m pan_lib.demo` (the same names as the CLI flags)."""

    video: str
    checkpoint: str
    window: int = 0            # frames per window; 0 -> segments x frames per segment (at most the video)
    stride: int = 0            # frames between window starts; 0 -> window // 4
    top_k: int = 5
    labels: str = ""           # class-name file; "" -> dataset / checkpoint / "class <i>"
    dataset: str = ""          # a prepared dataset whose class names to use
    data_root: str = ""
    input_size: int = 0        # 0 -> the checkpoint's training input size, else 224
    device: str = "cpu"       # cpu | cuda | cuda:1 | auto (pan_lib.engine.distributed.resolve_device)
    batch_size: int = 4        # windows per forward pass
    backend: str = "auto"      # video decoder: auto | decord | pyav
    out: str = ""              # plot path; "" -> no file (the CLI defaults to results/demo/<video>.png)
    csv: str = ""              # per-window top-k table path; "" -> none

    def __post_init__(self) -> None:
        for name in ("window", "stride", "input_size"):
            if getattr(self, name) < 0:
                raise DemoError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.top_k < 1 or self.batch_size < 1:
            raise DemoError(f"top_k and batch_size must be >= 1, got {self.top_k}, {self.batch_size}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "DemoConfig":
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise DemoError(f"unknown demo option(s) {unknown}; valid: {', '.join(valid)}")
        return cls(**values)


@dataclass
class Timeline:
    """Class probabilities of every window of a video."""

    video: str
    times: np.ndarray              # (W,) window centres in seconds (frame index / fps)
    frame_ranges: list[tuple[int, int]]  # (W,) [start, stop) frame of each window
    probs: np.ndarray              # (W, C) softmax probabilities
    class_names: list[str]
    thumbnails: np.ndarray         # (W, h, w, 3) uint8, the middle frame of each window
    fps: float
    info: dict[str, Any] = field(default_factory=dict)

    def top_classes(self, k: int = 5) -> list[int]:
        """The k classes with the highest mean probability over the video."""
        return [int(i) for i in np.argsort(-self.probs.mean(axis=0))[:k]]

    def top_table(self, k: int = 5):
        """pandas DataFrame: one row per window with its top-k classes and probabilities."""
        import pandas as pd

        rows = []
        for w, (start, stop) in enumerate(self.frame_ranges):
            order = np.argsort(-self.probs[w])[:k]
            row: dict[str, Any] = {"time_s": round(float(self.times[w]), 2), "frames": f"{start}-{stop - 1}"}
            for rank, c in enumerate(order, start=1):
                row[f"top{rank}"] = self.class_names[c]
                row[f"p{rank}"] = round(float(self.probs[w, c]), 3)
            rows.append(row)
        return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# loading

def load_any_checkpoint(path: str | Path, device: str | torch.device = "cpu"):
    """A model from an official-layout checkpoint or a pan-workbook training checkpoint (`last.pt`,
    `best.pt`), via the evaluation engine's loader. Returns (model in eval mode, info dict with
    modality, num_segments, new_length, num_classes, dataset, classes, input_size, scale_size)."""
    path = Path(path)
    if not path.is_file():
        raise DemoError(f"checkpoint {path} not found")
    try:
        model, meta = load_member(path)
    except Exception as exc:  # unpickling errors, key mismatches, garbage files
        raise DemoError(f"checkpoint {path} could not be loaded ({type(exc).__name__}: {exc})") from exc
    config = meta.get("config") or {}
    info = {"checkpoint": str(path), "modality": model.modality, "num_segments": model.num_segments,
            "new_length": model.new_length, "num_classes": model.num_classes,
            "dataset": meta.get("dataset") or config.get("dataset") or "", "classes": meta.get("classes"),
            "input_size": config.get("input_size"), "scale_size": config.get("scale_size")}
    return model.eval().to(device), info


def class_names_for(cfg: DemoConfig, num_classes: int, info: dict[str, Any]) -> list[str]:
    """Names from --labels, --dataset, the checkpoint's dataset, or 'class <i>'."""
    names: list[str] = []
    if cfg.labels:
        path = Path(cfg.labels)
        if not path.is_file():
            raise DemoError(f"labels file {path} not found")
        text = path.read_text()
        if path.suffix == ".json":
            data = json.loads(text)
            names = ([k for k, _ in sorted(data.items(), key=lambda kv: int(kv[1]))] if isinstance(data, dict)
                     else [str(x) for x in data])
        else:
            names = [line.strip() for line in text.splitlines() if line.strip()]
    elif info.get("classes") and not cfg.dataset:
        names = [str(c) for c in info["classes"]]
    else:
        dataset = cfg.dataset or info.get("dataset") or ""
        if dataset:
            try:
                names = list(find_prepared(dataset, Path(cfg.data_root) if cfg.data_root else None).classes or [])
            except Exception as exc:  # names are a nicety: fall back to indices
                log.warning("class names of dataset %r unavailable (%s); using indices", dataset, exc)
    if names and len(names) != num_classes:
        if cfg.labels:
            raise DemoError(f"labels file {cfg.labels} has {len(names)} names but the model has {num_classes} classes")
        log.warning("dataset has %d class names but the model %d classes; using indices", len(names), num_classes)
        names = []
    return names or [f"class {i}" for i in range(num_classes)]


def _window_plan(num_frames: int, window: int, stride: int) -> list[tuple[int, int]]:
    """[start, stop) of each window; the last window ends at the last frame."""
    window = min(window, num_frames)
    starts = list(range(0, num_frames - window + 1, max(stride, 1)))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return [(s, s + window) for s in starts]


def predict_timeline(cfg: DemoConfig, model=None, info: dict[str, Any] | None = None) -> Timeline:
    """Run the model over sliding windows of `cfg.video` (pass `model`+`info` to skip loading)."""
    video = Path(cfg.video)
    if not video.is_file():
        raise DemoError(f"video {video} not found")
    try:
        device = resolve_device(cfg.device)
    except RuntimeError as exc:  # CUDA asked for but absent, or not a device name
        raise DemoError(f"device {cfg.device!r}: {exc}") from exc
    if model is None:
        model, info = load_any_checkpoint(cfg.checkpoint, device)
    info = dict(info or {})
    T, m = model.num_segments, model.new_length
    try:
        header = probe(video)
        num_frames = count_frames(video, backend=cfg.backend)
    except VideoReadError as exc:
        raise DemoError(f"cannot read video {video}: {exc}") from exc
    except Exception as exc:
        raise DemoError(f"cannot read video {video}: {type(exc).__name__}: {exc}") from exc
    if num_frames < 1:
        raise DemoError(f"cannot read video {video}: no decodable frames")
    fps = header.fps or 25.0
    window = cfg.window or T * m
    stride = cfg.stride or max(1, min(window, num_frames) // 4)
    plan = _window_plan(num_frames, window, stride)

    # frames each window needs (official test-time offsets inside the window), decoded once
    per_window = []
    for start, stop in plan:
        offsets = segment_offsets(stop - start, T, m, mode="val")  # 1-based inside the window
        per_window.append(clip_frame_indices(offsets, m, stop - start) - 1 + start)  # (T*m,) 0-based in the video
    middles = [(start + stop - 1) // 2 for start, stop in plan]
    wanted = np.unique(np.concatenate(per_window + [np.asarray(middles)]))
    try:
        decoded = read_video_frames(video, wanted, backend=cfg.backend)  # (U, H, W, 3)
    except VideoReadError as exc:
        raise DemoError(f"cannot read video {video}: {exc}") from exc
    lookup = {int(f): i for i, f in enumerate(wanted)}

    input_size = cfg.input_size or int(info.get("input_size") or 224)
    transform = build_transform("val", input_size=input_size,
                                scale_size=info.get("scale_size") or None)
    probs = []
    with torch.inference_mode():
        for b in range(0, len(plan), cfg.batch_size):
            clips = [transform(decoded[[lookup[int(f)] for f in idx]]) for idx in per_window[b:b + cfg.batch_size]]
            logits = model(torch.stack(clips).to(device))  # (B, T*m*3, S, S) -> (B, C)
            probs.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
    thumbs = resize_crop(decoded[[lookup[i] for i in middles]], 64)
    names = class_names_for(cfg, model.num_classes, info)
    times = np.array([(s + e - 1) / 2 / fps for s, e in plan])
    info.update(num_frames=num_frames, fps=fps, window=min(window, num_frames), stride=stride, input_size=input_size)
    return Timeline(str(video), times, plan, np.concatenate(probs), names, thumbs, fps, info)


# ----------------------------------------------------------------------------------------------
# plotting

def plot_timeline(timeline: Timeline, k: int = 5, title: str | None = None):
    """Probability over time of the k classes with the highest mean, with window thumbnails on top."""
    import matplotlib.pyplot as plt

    top = timeline.top_classes(k)
    n_thumbs = min(len(timeline.times), 8)
    fig = plt.figure(figsize=(8, 4.6), layout="constrained")
    grid = fig.add_gridspec(2, max(n_thumbs, 1), height_ratios=[1, 3])
    for j, w in enumerate(np.linspace(0, len(timeline.times) - 1, n_thumbs).round().astype(int)):
        ax = fig.add_subplot(grid[0, j])
        ax.imshow(timeline.thumbnails[w])
        ax.set_title(f"{timeline.times[w]:.1f}s", fontsize=7)
        ax.axis("off")
    ax = fig.add_subplot(grid[1, :])
    for c in top:
        ax.plot(timeline.times, timeline.probs[:, c], marker="o", markersize=3, label=timeline.class_names[c])
    ax.set_xlabel("time (s, window centre)")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    info = timeline.info
    fig.suptitle(title or (f"{Path(timeline.video).name}: top-{k} classes over time "
                           f"({info.get('modality', '?')}, window {info.get('window')} frames, "
                           f"stride {info.get('stride')})"), fontsize=9)
    return fig


# ----------------------------------------------------------------------------------------------
# CLI

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pan_lib.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", help="any video file (mp4, webm, avi, ...)")
    parser.add_argument("--checkpoint", required=True, help="official-layout or pan-workbook checkpoint")
    parser.add_argument("--window", type=int, default=0, help="frames per window (0: segments x frames per segment)")
    parser.add_argument("--stride", type=int, default=0, help="frames between windows (0: window/4)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--labels", default="", help="class names: one per line, or SSv2-style JSON")
    parser.add_argument("--dataset", default="", help="take class names from this prepared dataset")
    parser.add_argument("--data-root", default="")
    parser.add_argument("--input-size", type=int, default=0, help="0: the checkpoint's, else 224")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:1 | auto (the GPU when there is one)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--backend", default="auto", choices=["auto", "decord", "pyav"])
    parser.add_argument("--out", default=None, help="plot file (default results/demo/<video>.png; '' for none)")
    parser.add_argument("--csv", default="", help="also write the per-window top-k table here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = args.out if args.out is not None else str(Path("results/demo") / f"{Path(args.video).stem}.png")
    values = {k: v for k, v in vars(args).items() if k != "out"}
    try:
        cfg = DemoConfig.from_dict(dict(values, out=out))
        timeline = predict_timeline(cfg)
    except DemoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = timeline.top_table(cfg.top_k)
    print(f"{timeline.video}: {timeline.info['num_frames']} frames at {timeline.fps:.3g} fps, "
          f"{len(timeline.times)} windows of {timeline.info['window']} frames "
          f"({timeline.info['modality']}, {timeline.info['num_segments']} segments)")
    print(table.to_string(index=False))
    overall = ", ".join(f"{timeline.class_names[c]} {timeline.probs[:, c].mean():.3f}"
                        for c in timeline.top_classes(cfg.top_k))
    print(f"mean over the video: {overall}")
    if cfg.csv:
        Path(cfg.csv).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(cfg.csv, index=False)
        print(f"wrote {cfg.csv}")
    if cfg.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = plot_timeline(timeline, cfg.top_k)
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(cfg.out, dpi=100)
        plt.close(fig)
        print(f"wrote {cfg.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
