"""Speed of PA against optical flow, in one run, on the same frames at 224x224, per content.

`python -m pan_lib.bench motion_cues [--quick]` -> results/bench/motion_cues.{csv,md,json,png}
`python -m pan_lib.bench.motion_cues --device cuda` -> the same table on a GPU (motion_cues_cuda.*)
`python -m pan_lib.bench.motion_cues --video my.mp4` -> timed on your video's frames only (motion_cues_my.*)

Contents: one clip = 8 segments x 4 consecutive frames = 32 frames, 24 frame pairs (one PAN_Lite
clip). The synthetic one is a fine texture under a slowly rotating/zooming camera with a disc moving
3 px/frame (deterministic); the real ones are clips from tests/fixtures/realclips (Kinetics demo,
UCF101, the 1080p NTU clip), sampled like the official test sampling and resized + centre-cropped to
the benchmark's frame size. Optical flow's cost depends on the content (TV-L1 stops early on easy
frames), PA's does not, so every method is timed on every content and the ratios ("x TV-L1") are
taken per content. Within a content every method sees the same 24 pairs. Inputs are prepared outside
the timed region, as a data loader would hand them over: ImageNet-normalised float tensors for PA,
grey uint8 for OpenCV, [-1, 1] tensors for RAFT.

Rows:
  PA   official-style loop (conv every frame, Python loop over pairs, NCHW fp32), 1 clip per call
  PA   ours (differences convolved first, channels-last) fp32 and bf16 autocast, 1 and 8 clips per call
  flow TV-L1, Farneback, DIS ultrafast and medium presets (OpenCV, CPU), RAFT small and large
       (torchvision, 12 updates; random weights when the trained ones are not cached: speed only)

Timing: one warm-up call per row, then `rounds` round-robin rounds over all rows of all contents (each row runs for
`round_seconds`, at least one call, per round), so load drift on a shared machine hits every row alike;
the median time per call gives frame pairs per second. Slow methods (TV-L1, RAFT) are timed on fewer pairs per
call (cost per pair does not depend on the pair). OpenCV and torch get the same thread budget.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from pan_lib.bench import host_memory_as_engine, with_overrides
from pan_lib.engine.speed import synchronize
from pan_lib.modules.pa import PA, pa_reference_loop
from pan_lib.data.video import VideoReadError
from pan_lib.motion import FLOW_METHODS, RaftWeightsUnavailable, make_flow_estimator, set_opencv_threads
from pan_lib.provenance import REPO_ROOT, provenance, write_table
from pan_lib.viz.figures import speed_figure
from pan_lib.viz.maps import normalise_frames
from pan_lib.viz.video import load_segments

log = logging.getLogger(__name__)

NAME = "motion_cues"
SIZE = 224
NUM_SEGMENTS, FRAMES_PER_SEGMENT = 8, 4
SYNTHETIC = "synthetic texture"  # the content label of bench_frames
REAL_CLIPS_DIR = REPO_ROOT / "tests" / "fixtures" / "realclips"
# real contents timed beside the synthetic one: camera-still close-up, outdoor camera motion, 1080p indoor
REAL_CLIPS = ("kinetics400/arm_wrestling__demo.mp4", "ucf101/v_Biking_g01_c01.mp4",
              "other/ntu_A001_drink_water_1080p.avi")


@dataclass
class MotionBenchConfig:
    quick: bool = False
    device: str = "cpu"  # PA and RAFT run here; OpenCV always runs on the CPU
    threads: int = 0  # 0: keep torch's current setting
    size: int = SIZE
    rounds: int = 5  # round-robin rounds over all rows (median over every call)
    round_seconds: float = 0.5  # time per row per round (at least one call)
    slow_pairs: int = 3  # pairs per call for TV-L1 and RAFT
    raft_weights: str = "auto"  # trained weights when cached, else random (labelled)
    video: str = ""  # time on this video's frames only (8 segments x 4 frames, centre crop)
    real_clips: tuple[str, ...] = REAL_CLIPS  # beside the synthetic frames: paths, or names under REAL_CLIPS_DIR
    flow_methods: tuple[str, ...] = ("tvl1", "farneback", "dis_ultrafast", "dis_medium", "raft_small", "raft_large")

    @classmethod
    def for_mode(cls, quick: bool, **overrides) -> "MotionBenchConfig":
        quick_cfg = cls(quick=True, rounds=1, round_seconds=0.1, slow_pairs=1, real_clips=REAL_CLIPS[:1])
        return with_overrides(quick_cfg if quick else cls(), overrides)


def bench_frames(num_frames: int = NUM_SEGMENTS * FRAMES_PER_SEGMENT, size: int = SIZE,
                 seed: int = 0) -> np.ndarray:
    """(F, size, size, 3) uint8: a fine random texture under a slowly rotating and zooming camera, plus
    a disc moving 3 px/frame. Flow methods with stopping criteria (TV-L1) run faster on simpler content
    (smooth texture, pure translation: ~2-3x here), so the texture is kept fine and the motion non-rigid."""
    import cv2

    rng = np.random.default_rng(seed)
    side = int(size * 1.5)
    big = cv2.GaussianBlur(rng.integers(0, 256, (side, side, 3), dtype=np.uint8), (0, 0), 1.0)
    off = (side - size) // 2
    yy, xx = np.mgrid[:size, :size]
    frames = []
    for i in range(num_frames):
        camera = cv2.getRotationMatrix2D((side / 2, side / 2), 0.5 * i, 1.0 + 0.005 * i)
        frame = cv2.warpAffine(big, camera, (side, side), flags=cv2.INTER_LINEAR)[off:off + size, off:off + size]
        cx, cy = size * 0.2 + 3 * i, size * 0.5
        frame[(xx - cx) ** 2 + (yy - cy) ** 2 < (size * 0.12) ** 2] = (230, 200, 40)
        frames.append(np.ascontiguousarray(frame))
    return np.stack(frames)


def video_frames(path: str | Path, size: int = SIZE) -> np.ndarray:
    """(32, size, size, 3) uint8: 8 segments x 4 frames of a video (official test sampling), resized
    (short side) and centre-cropped to `size`, whatever the video's resolution."""
    segments = load_segments(path, num_segments=NUM_SEGMENTS, frames_per_segment=FRAMES_PER_SEGMENT, size=size)
    return segments.reshape(-1, *segments.shape[2:])  # (T, m, H, W, 3) -> (T*m, H, W, 3)


def clip_frames(cfg: MotionBenchConfig) -> np.ndarray:
    """The frames of the first content: `cfg.video`'s (official test sampling) or `bench_frames`."""
    return video_frames(cfg.video, cfg.size) if cfg.video else bench_frames(size=cfg.size)


def real_clip_path(name: str) -> Path:
    """A real clip's file: `name` as a path, else relative to REAL_CLIPS_DIR."""
    path = Path(name)
    return path if path.is_file() else REAL_CLIPS_DIR / name


def content_label(name: str) -> str:
    """The table's `content` value of a real clip: dataset folder/file stem, e.g. kinetics400/arm_wrestling__demo."""
    path = real_clip_path(name)
    try:
        return path.resolve().relative_to(REAL_CLIPS_DIR.resolve()).with_suffix("").as_posix()
    except ValueError:
        return path.stem


def contents(cfg: MotionBenchConfig) -> list[tuple[str, np.ndarray]]:
    """[(content label, (32, H, W, 3) uint8 frames)]: `cfg.video` alone, or the synthetic frames then the
    real clips. A real clip that is missing or unreadable (e.g. an installed package without tests/) is
    skipped with a warning; the synthetic content is always there."""
    if cfg.video:
        return [(Path(cfg.video).stem, clip_frames(cfg))]
    out = [(SYNTHETIC, bench_frames(size=cfg.size))]
    for name in cfg.real_clips:
        try:
            out.append((content_label(name), video_frames(real_clip_path(name), cfg.size)))
        except VideoReadError as exc:
            log.warning("real clip skipped: %s", exc)
    return out


@dataclass
class _Case:
    """One row to time: its table fields, the call, pairs per call, and the collected call times."""

    row: dict
    call: Callable[[], object]
    pairs: int
    sync: Callable[[], None]
    times: list[float] = field(default_factory=list)


def _pa_cases(frames: np.ndarray, cfg: MotionBenchConfig, content: str = SYNTHETIC) -> list[_Case]:
    sync = partial(synchronize, cfg.device)
    pa = PA(n_length=FRAMES_PER_SEGMENT).to(cfg.device).eval()
    weight, bias = pa.shallow_conv.weight, pa.shallow_conv.bias
    clip = normalise_frames(frames).to(cfg.device)  # (T*m, 3, H, W) fp32 NCHW
    pairs_per_clip = NUM_SEGMENTS * (FRAMES_PER_SEGMENT - 1)
    autocast_device = "cuda" if cfg.device.startswith("cuda") else "cpu"
    variants = [
        ("PA, official-style loop", "conv every frame, loop over pairs", "fp32", "NCHW", 1, "reference"),
        ("PA, ours", "differences convolved first", "fp32", "channels_last", 1, "fast"),
        ("PA, ours", "differences convolved first", "fp32", "channels_last", 8, "fast"),
        ("PA, ours", "differences convolved first", "bf16 autocast", "channels_last", 1, "fast"),
        ("PA, ours", "differences convolved first", "bf16 autocast", "channels_last", 8, "fast"),
    ]
    cases = []
    for method, impl, precision, layout, clips, kind in variants:
        x = clip.repeat(clips, 1, 1, 1)  # (clips*T*m, 3, H, W)
        if layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        bf16 = precision.startswith("bf16")

        def call(x=x, kind=kind, bf16=bf16):
            with torch.inference_mode(), torch.autocast(autocast_device, dtype=torch.bfloat16, enabled=bf16):
                if kind == "reference":
                    return pa_reference_loop(x, weight, bias, FRAMES_PER_SEGMENT)
                return pa(x)

        label = f"{method} {precision.split()[0]}, {clips} clip{'s' if clips > 1 else ''}/call"
        row = dict(method=label, content=content, kind="PA", implementation=impl, precision=precision, layout=layout,
                   clips_per_call=clips, device=cfg.device, pairs_per_call=pairs_per_clip * clips, note="")
        cases.append(_Case(row, call, pairs_per_clip * clips, sync))
    return cases


def _flow_cases(frames: np.ndarray, cfg: MotionBenchConfig, content: str = SYNTHETIC) -> list[_Case]:
    missing = {"tvl1", "dis_ultrafast"} - set(cfg.flow_methods)
    if missing:
        raise ValueError(f"flow_methods must include {sorted(missing)} (the ratios are taken against them)")
    # the same 24 pairs PA sees: consecutive frames inside each 4-frame segment
    segments = frames.reshape(NUM_SEGMENTS, FRAMES_PER_SEGMENT, *frames.shape[1:])  # (F,H,W,3)->(T,m,H,W,3)
    cases = []
    for method in cfg.flow_methods:
        is_raft = method.startswith("raft")
        device = cfg.device if is_raft else "cpu"
        try:
            estimator = make_flow_estimator(method, device=device, raft_weights=cfg.raft_weights)
        except RaftWeightsUnavailable:
            estimator = make_flow_estimator(method, device=device, raft_weights="random")
        slow = method == "tvl1" or is_raft
        n_segments = max(1, -(-cfg.slow_pairs // (FRAMES_PER_SEGMENT - 1))) if slow else NUM_SEGMENTS
        prepared = [estimator.prepare(seg) for seg in segments[:n_segments]]
        pairs = n_segments * (FRAMES_PER_SEGMENT - 1)

        def call(prepared=prepared, estimator=estimator):
            return [estimator.flow_prepared(p) for p in prepared]

        note = "" if estimator.trained is not False else "random weights: speed only, not flow quality"
        row = dict(method=FLOW_METHODS[method], content=content, kind="flow", implementation=method, precision="fp32",
                   layout="grey uint8" if not is_raft else "NCHW", clips_per_call=1, device=device,
                   pairs_per_call=pairs, note=note)
        cases.append(_Case(row, call, pairs, partial(synchronize, device)))
    return cases


def _time_round_robin(cases: list[_Case], cfg: MotionBenchConfig) -> None:
    """Warm up every case, then `rounds` rounds; in each, every case runs for >= round_seconds (>= 1
    call). Load changes on a shared machine then hit all rows alike, which keeps the ratios honest."""
    for case in cases:
        log.info("warm-up %s [%s]", case.row["method"], case.row["content"])
        case.call()
        case.sync()
    for r in range(cfg.rounds):
        log.info("round %d/%d", r + 1, cfg.rounds)
        for case in cases:
            start_round = time.perf_counter()
            while True:
                start = time.perf_counter()
                case.call()
                case.sync()
                case.times.append(time.perf_counter() - start)
                if time.perf_counter() - start_round >= cfg.round_seconds:
                    break


def measure(cfg: MotionBenchConfig) -> list[dict]:
    """All rows of the speed table (every method on every content), with ratios to TV-L1 and DIS
    ultrafast on the same content from this same run."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    set_opencv_threads(torch.get_num_threads())
    cases = []
    for content, frames in contents(cfg):
        cases += _pa_cases(frames, cfg, content) + _flow_cases(frames, cfg, content)
    _time_round_robin(cases, cfg)
    rows = []
    for case in cases:
        seconds = statistics.median(case.times)
        rows.append(dict(case.row, calls=len(case.times), ms_per_pair=seconds / case.pairs * 1e3,
                         pairs_per_s=case.pairs / seconds))
    by_impl = {(r["content"], r["implementation"]): r["pairs_per_s"] for r in rows if r["kind"] == "flow"}
    for row in rows:
        row["x_vs_tvl1"] = row["pairs_per_s"] / by_impl[row["content"], "tvl1"]
        row["x_vs_dis_ultrafast"] = row["pairs_per_s"] / by_impl[row["content"], "dis_ultrafast"]
    return rows


def _content(row: dict) -> str:
    """A row's content; tables written before contents existed were all synthetic."""
    value = row.get("content")
    return value if isinstance(value, str) and value else SYNTHETIC


def content_table(rows: list[dict]) -> list[str]:
    """Markdown: one row per method, one column per content, cells "pairs/s (x TV-L1)" -- the
    "x TV-L1" figure read per content."""
    names = list(dict.fromkeys(_content(r) for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], _content(r)): r for r in rows}

    def fmt(r: dict | None) -> str:
        if r is None:
            return ""
        speed = f"{r['pairs_per_s']:,.0f}" if r["pairs_per_s"] >= 100 else f"{r['pairs_per_s']:.3g}"
        ratio = f"{r['x_vs_tvl1']:,.0f}x" if r["x_vs_tvl1"] >= 10 else f"{r['x_vs_tvl1']:.2g}x"
        return f"{speed} ({ratio})"

    lines = ["| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {m} | " + " | ".join(fmt(cell.get((m, c))) for c in names) + " |" for m in methods]
    return lines


def summary_lines(rows: list[dict]) -> list[str]:
    """Plain sentences with the ratios the issue asks about (all from this run): the detailed ones on
    the first content (the synthetic frames unless --video), then the fastest PA's "x TV-L1" and "x DIS
    ultrafast" on every content."""
    first = _content(rows[0])
    per_content = _per_content_line(rows)
    rows = [r for r in rows if _content(r) == first]
    pa = [r for r in rows if r["kind"] == "PA" and r["method"].startswith("PA, ours")]
    best = max(pa, key=lambda r: r["pairs_per_s"])
    naive = next(r for r in rows if r["implementation"].startswith("conv every frame"))
    dis = next(r for r in rows if r["implementation"] == "dis_ultrafast")
    target = "met" if best["x_vs_tvl1"] >= 1000 else "not met"
    flows = [r for r in rows if r["kind"] == "flow"]

    def times(x: float) -> str:
        return f"{x:,.0f}x" if x >= 10 else f"{x:.2g}x"

    def names(selected: list[dict]) -> str:
        return ", ".join(f"{r['method']} ({times(best['pairs_per_s'] / r['pairs_per_s'])})" for r in selected) or "none"

    lines = [
        f"- Fastest PA on {first}: ours, {best['precision']}, {best['clips_per_call']} clip(s) per call: "
        f"{best['pairs_per_s']:,.0f} pairs/s = **{best['x_vs_tvl1']:,.0f}x TV-L1** "
        f"(target >= 1000x on a 2-core CPU: {target}); the official-style loop is "
        f"{naive['x_vs_tvl1']:,.0f}x TV-L1; ours is {best['pairs_per_s'] / naive['pairs_per_s']:.1f}x the loop.",
        f"- Against the fastest classical flow, DIS ultrafast ({dis['pairs_per_s']:,.0f} pairs/s on "
        f"{dis['device']}): PA runs at **{best['x_vs_dis_ultrafast']:.2f}x** its speed.",
        f"- PA is >= 1000x faster than: {names([r for r in flows if best['pairs_per_s'] >= 1000 * r['pairs_per_s']])}; "
        f"10-1000x: {names([r for r in flows if 10 * r['pairs_per_s'] <= best['pairs_per_s'] < 1000 * r['pairs_per_s']])}; "
        f"less than 10x: {names([r for r in flows if best['pairs_per_s'] < 10 * r['pairs_per_s']])}. "
        "So \"over 1000x faster than optical flow\" depends on which flow method it is compared with.",
    ]
    raft = [r for r in rows if r["implementation"].startswith("raft")]
    if raft:
        lines.append("- RAFT: " + "; ".join(f"{r['method']} {r['pairs_per_s']:.3g} pairs/s"
                                              + (f" ({r['note']})" if isinstance(r["note"], str) and r["note"] else "")
                                              for r in raft) + ".")
    lines.append("- Speed only: PA is a learned motion *cue*, not a flow field (no direction, no pixel units); "
                 "see the pictures in notebooks/02_pa_visualisation.ipynb. Flow speed depends on content "
                 "(TV-L1 stops early on easy frames), PA's does not.")
    return lines + per_content


def _per_content_line(rows: list[dict]) -> list[str]:
    """One sentence: per content, TV-L1's pairs/s and the fastest PA's ratios (empty for one content)."""
    names = list(dict.fromkeys(_content(r) for r in rows))
    if len(names) < 2:
        return []
    parts = []
    for name in names:
        selected = [r for r in rows if _content(r) == name]
        best = max((r for r in selected if r["kind"] == "PA" and r["method"].startswith("PA, ours")),
                   key=lambda r: r["pairs_per_s"])
        tvl1 = next(r for r in selected if r["implementation"] == "tvl1")
        parts.append(f"{name}: TV-L1 {tvl1['pairs_per_s']:.3g} pairs/s, PA {best['pairs_per_s']:,.0f} pairs/s = "
                     f"**{best['x_vs_tvl1']:,.0f}x TV-L1**, {best['x_vs_dis_ultrafast']:.2f}x DIS ultrafast")
    return ["- Per content (same run; flow's cost depends on the frames, PA's does not): " + "; ".join(parts) + "."]


def run(out_dir: Path, quick: bool = False, device: str = "cpu", **overrides) -> list[Path]:
    """Measure and write `<out_dir>/motion_cues[_cuda].{csv,md,json,png}` with provenance."""
    host = host_memory_as_engine()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = MotionBenchConfig.for_mode(quick, device=device, **overrides)
    load_start = os.getloadavg()[0]
    rows = measure(cfg)
    meta = provenance(config={**asdict(cfg), **host}, device=cfg.device)
    meta["load_average_1min"] = {"start": load_start, "end": os.getloadavg()[0], "cpu_count": os.cpu_count()}
    meta["frames"] = (f"{NUM_SEGMENTS}x{FRAMES_PER_SEGMENT} frames at {cfg.size}x{cfg.size} per content, " + (
        f"from {cfg.video}" if cfg.video else
        "synthetic rotating/zooming texture + moving disc (pan_lib.bench.motion_cues.bench_frames), then "
        f"the real clips {', '.join(cfg.real_clips) or 'none'} (under tests/fixtures/realclips, resized + centre-cropped)"))
    meta["contents"] = list(dict.fromkeys(r["content"] for r in rows))
    stem = Path(out_dir) / (NAME + ("_cuda" if cfg.device.startswith("cuda") else "")
                            + (f"_{Path(cfg.video).stem}" if cfg.video else "")
                            + (f"_threads{cfg.threads}" if cfg.threads else ""))
    command = "python -m pan_lib.bench motion_cues" + (" --quick" if quick else "")
    if cfg.device != "cpu" or cfg.video or cfg.threads:
        command = ("python -m pan_lib.bench.motion_cues" + (f" --device {cfg.device}" if cfg.device != "cpu" else "")
                   + (f" --video {cfg.video}" if cfg.video else "") + (f" --threads {cfg.threads}" if cfg.threads else "")
                   + (" --quick" if quick else ""))
    where = meta["device"].get("cuda_device") if cfg.device.startswith("cuda") else meta["device"].get("cpu")
    title = (f"Motion cues: frame pairs per second at {cfg.size}x{cfg.size} on {where} "
             f"({meta['device'].get('torch_threads')} threads)" + (" [quick]" if quick else ""))
    paths = write_table(rows, stem, title=title, meta=meta, command=command)
    md = paths[1]
    load = meta["load_average_1min"]
    by_content = (["", "Pairs/s (x TV-L1 on the same content) per content:", ""] + content_table(rows) + [""]
                  if len(meta["contents"]) > 1 else [])
    md.write_text(md.read_text() + "\n".join(by_content) + "\n" + "\n".join(summary_lines(rows)) + "\n"
                  + f"- Machine load (1-min load average) at start/end: {load['start']:.1f}/{load['end']:.1f} on "
                  f"{load['cpu_count']} CPUs. Other jobs inflate absolute times (multi-threaded torch more than "
                  "OpenCV); rows are timed round-robin so ratios within this run stay comparable.\n")
    fig = speed_figure(rows, title=title)
    png = stem.with_suffix(".png")
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return paths + [png]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pan_lib.bench.motion_cues", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short repeat per row (smoke run)")
    parser.add_argument("--device", default="cpu", help="device for PA and RAFT: cpu, cuda, cuda:1 ...")
    parser.add_argument("--threads", type=int, default=0, help="torch/OpenCV threads (0: torch's default)")
    parser.add_argument("--video", default="", help="time on this video's frames only "
                        "(default: generated frames + the real clips in tests/fixtures/realclips)")
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for path in run(args.out, quick=args.quick, device=args.device, threads=args.threads, video=args.video):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
