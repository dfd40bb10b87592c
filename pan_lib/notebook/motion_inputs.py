"""Notebook 06's measurements: PA against RGB differences and optical flow as network inputs.

::

    flow_plan(prepared, methods)                       which flow methods to compute and train on
    compute_flows(prepared, ["dis", "farneback"])      flow of every video, once per method (data_prep flow)
    extraction_costs(prepared, ...)                    seconds per clip: the timing files of the methods
                                                       computed, a timed sample for the cost-only ones
    network_costs({name: checkpoint}, input_size)      multiply-adds and measured forward ms per clip
    motion_configs(...)                                Flow (per method) and RGBDiff runs, embedded recipe
    evaluate_motion_inputs(runs, ...)                  each stream alone and fused with RGB, per seed
    pa_flow_cues(prepared, pa_checkpoint, methods)     the learned PA beside each method's flow, same frames

The tables built from these (accuracy against end-to-end cost, paired verdicts, sentences) are
`pan_lib.tables.write_motion_tables`'s.
"""
from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from data_prep.flow import DEFAULT_SHORT_SIDE, check_raft_weights, compute_flow, estimator_name, flow_one
from pan_lib.data.flow import decode_flow, flow_root, flow_timing, open_flow
from pan_lib.data.lists import read_list_file
from pan_lib.data.prepared import PreparedDataset, find_prepared
from pan_lib.engine import RunResult, TrainConfig
from pan_lib.engine.evaluate import input_channels_per_segment, load_member, model_gmacs_per_view
from pan_lib.ensemble import ensemble_name, model_name
from pan_lib.notebook.runs import evaluate_or_load, train_configs
from pan_lib.viz.maps import MotionCues, MotionRow, learned_pa, pa_maps

log = logging.getLogger(__name__)

ACCURACY_FLOW_METHODS = ("dis", "farneback")   # computed for every video and trained on in the main job
COST_ONLY_FLOW_METHODS = ("tvl1", "raft")      # timed on a sample only (TV-L1: ~1.5 h for the whole set)
WORKERS_OF_THE_BUDGET = 2                      # the 2-core CPU `make workbook` is budgeted on


# ------------------------------------------------------------------------------------ optical flow
def compute_flows(prepared: PreparedDataset, methods: Iterable[str], *, workers: int = 2,
                  progress: str = "off") -> PreparedDataset:
    """`python -m data_prep flow <prepared> --method m` for each method (resumable: videos already
    done are kept with their timing); returns the dataset read again, its manifest listing the flow."""
    for method in methods:
        start = time.perf_counter()
        summary = compute_flow(prepared.root, method, workers=workers, progress=progress)
        print(f"{method:>10}: flow of {summary['videos']} videos ({summary['kept']} kept, {summary['failed']} failed) "
              f"in {time.perf_counter() - start:.1f} s", flush=True)
    return find_prepared(prepared.name, prepared.root, source=prepared.source)


def flow_plan(prepared: PreparedDataset, methods: Sequence[str], compute: bool | str = "auto") -> list[str]:
    """The flow methods notebook 06 trains on: all of `methods` when it may compute flow (`compute`
    True, or "auto" on the embedded dataset, where it takes seconds), else only those already computed
    (on a real dataset flow takes hours: the command for each missing method is printed)."""
    if compute is True or (compute == "auto" and prepared.name == "embedded"):
        return list(methods)
    have = (prepared.manifest.get("flow") or {})
    for method in methods:
        if method not in have:
            print(f"skipping {method}: no stored flow; compute it with: python -m data_prep flow {prepared.root} "
                  f"--method {method}", flush=True)
    return [m for m in methods if m in have]


def _sample_jobs(prepared: PreparedDataset, method: str, clips: int, split: str, target_dir: Path,
                 raft_weights: str) -> list[dict[str, Any]]:
    """`data_prep.flow.flow_one` jobs for the first `clips` videos of `split` (written to `target_dir`)."""
    records = read_list_file(prepared.list_for(split), "pan")[:clips]
    decoded = prepared.source == "decoded"
    side = int((prepared.manifest.get("decoded") or {}).get("short_side", 0)) if decoded else DEFAULT_SHORT_SIDE
    return [{"video": r.path, "target": str(target_dir / f"{k}.npy"), "kind": "decoded" if decoded else "video",
             "source": str(prepared.data_dir / (f"{r.path}.npy" if decoded else r.path)),
             "num_frames": r.num_frames, "short_side": side, "estimator": estimator_name(method),
             "raft_weights": raft_weights, "threads": 1} for k, r in enumerate(records)]


def time_flow_sample(prepared: PreparedDataset, method: str, *, clips: int = 4, split: str = "test",
                     raft_weights: str = "auto") -> dict[str, Any]:
    """Time `data_prep flow`'s per-video work (frames in, flow, encode, write; 1 thread, like one pool
    worker) on the first `clips` videos of `split`, in a temporary folder. RAFT without its trained
    weights gives a row saying so (`available` False)."""
    try:
        check_raft_weights(estimator_name(method), raft_weights)
    except FileNotFoundError as err:
        log.info("%s not timed: %s", method, err)
        return {"method": method, "estimator": estimator_name(method), "available": False,
                "why": "its trained weights are not in torch hub's cache (python -m data_prep flow --help)"}
    threads = torch.get_num_threads()
    try:
        with tempfile.TemporaryDirectory(prefix="pan_flow_sample_") as tmp:
            rows = [flow_one(job) for job in _sample_jobs(prepared, method, clips, split, Path(tmp), raft_weights)]
    finally:
        torch.set_num_threads(threads)  # flow_one gives its estimator 1 thread (torch and OpenCV)
        _restore_opencv_threads()
    ok = [r for r in rows if r["status"] == "ok" and r["pairs"]]
    if not ok:
        return {"method": method, "estimator": estimator_name(method), "available": False,
                "why": next((r["error"] for r in rows if r["error"]), "no clip computed")}
    return {"method": method, "estimator": estimator_name(method), "available": True, "videos": len(ok),
            "seconds_per_clip": statistics.fmean(r["seconds"] for r in ok),
            "flow_seconds_per_clip": statistics.fmean(r["flow_seconds"] for r in ok),
            "pairs_per_clip": statistics.fmean(r["pairs"] for r in ok)}


def _restore_opencv_threads() -> None:
    import cv2

    cv2.setNumThreads(-1)  # OpenCV's default (all cores)


def extraction_costs(prepared: PreparedDataset, methods: Sequence[str], *, accuracy_methods: Sequence[str],
                     sample_clips: int = 4, raft_weights: str = "auto") -> list[dict[str, Any]]:
    """One row per flow method: seconds per clip, measured. Methods computed for the whole set (their
    timing file: every video, single-core seconds) give its mean; the others a timed sample of
    `sample_clips` test clips, with the whole set's extraction time on 2 cores estimated from it.
    `accuracy_run` says whether Flow networks are trained on the method here."""
    timing = flow_timing(prepared)
    total_videos = sum(len(read_list_file(prepared.list_for(s), "pan")) for s in ("train", "val", "test"))
    rows = []
    for method in methods:
        t = timing.get(method) or {}
        if t.get("videos") and t.get("seconds_per_clip") is not None:
            row = {"method": method, "estimator": t.get("estimator") or estimator_name(method), "available": True,
                   "videos": t["videos"], "seconds_per_clip": t["seconds_per_clip"],
                   "flow_seconds_per_clip": t["flow_seconds_per_clip"], "pairs_per_clip": t["pairs_per_clip"],
                   "timed_on": f"all {t['videos']} videos (data_prep flow timing file)"}
        else:
            row = time_flow_sample(prepared, method, clips=sample_clips, raft_weights=raft_weights)
            row["timed_on"] = (f"a sample of {row['videos']} test clips" if row.get("available") else "not timed")
        minutes = (row["seconds_per_clip"] * total_videos / WORKERS_OF_THE_BUDGET / 60
                   if row.get("seconds_per_clip") is not None else None)
        row.update(accuracy_run=method in accuracy_methods, whole_set_videos=total_videos,
                   whole_set_minutes_on_2_cores=round(minutes, 1) if minutes is not None else None)
        row["note"] = extraction_note(row, sample_clips)
        rows.append({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()})
    return rows


def extraction_note(row: Mapping[str, Any], sample_clips: int) -> str:
    """What the table says about a flow method whose accuracy was not measured here."""
    if row.get("accuracy_run"):
        return ""
    if not row.get("available"):
        return f"not run: {row.get('why', 'unavailable')}"
    minutes = float(row["whole_set_minutes_on_2_cores"])
    return (f"accuracy: not run in the main job ({minutes:.{1 if minutes < 10 else 0}f} minutes of extraction "
            f"for the {row['whole_set_videos']} videos on 2 cores; set flow_methods to run it); cost measured on "
            f"{row.get('videos', sample_clips)} clips")


# ------------------------------------------------------------------------------------- networks
def network_costs(checkpoints: Mapping[str, str | Path], input_size: int, *, repeats: int = 20,
                  warmup: int = 3) -> list[dict[str, Any]]:
    """Per network (display name -> checkpoint): multiply-adds of one view (`count_flops`) and the
    measured forward time of one clip (batch 1, fp32, eval mode, this CPU's current torch threads), the
    networks timed interleaved (one forward each per round, median over `repeats` rounds) so a busy
    machine slows them alike."""
    models, clips = {}, {}
    for name, ckpt in checkpoints.items():
        model, _ = load_member(ckpt)
        models[name] = model.eval()
        channels = model.num_segments * input_channels_per_segment(model)
        clips[name] = torch.randn(1, channels, input_size, input_size)  # (1, T*C, H, W): one clip
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for round_ in range(warmup + repeats):
            for name, model in models.items():
                start = time.perf_counter()
                model(clips[name])
                if round_ >= warmup:
                    times[name].append(time.perf_counter() - start)
    return [{"model": name, "modality": models[name].modality, "input_size": input_size,
             "gmacs_per_view": round(model_gmacs_per_view(models[name], input_size), 5),
             "ms_per_clip": round(1e3 * statistics.median(times[name]), 3), "repeats": repeats,
             "threads": torch.get_num_threads(), "precision": "fp32", "batch": 1} for name in models]


# ---------------------------------------------------------------------------------------- runs
def motion_configs(dataset: str, seeds: Iterable[int], flow_methods: Sequence[str], **kwargs: Any) -> list[TrainConfig]:
    """The runs notebook 06 adds: Flow on each flow method and RGBDiff, per seed (`train_configs`'
    keywords: recipe, data_root, run_root, small, overrides ...)."""
    seeds = list(seeds)
    configs = []
    for method in flow_methods:
        configs += train_configs(dataset, ["Flow"], seeds, flow_method=method, **kwargs)
    return configs + train_configs(dataset, ["RGBDiff"], seeds, **kwargs)


def stream_key(cfg: TrainConfig) -> str:
    """"Flow:dis", "Flow:farneback" for Flow runs, the modality otherwise: runs are keyed (stream, seed)."""
    return f"{cfg.modality}:{cfg.flow_method}" if cfg.flow_method else cfg.modality


def evaluate_motion_inputs(runs: Mapping[tuple[str, int], RunResult], seeds: Iterable[int],
                           flow_methods: Sequence[str], **eval_fields: Any) -> list[dict[str, Any]]:
    """Every stream alone and every RGB + stream ensemble, per seed, 1 clip x centre crop (`eval_fields`:
    `EvalConfig` fields, the split among them; `evaluate_or_load`: what notebooks 03 evaluated -- PAN_RGB, PAN_PA, PAN_Full -- under the same names
    and folders is loaded, not recomputed). Returns the evaluation records."""
    records = []
    protocol = f"{eval_fields.get('split', 'val')}_1crop_1clip"  # EvalConfig's split (default val)
    streams = ["RGB", "PA", "RGBDiff", *(f"Flow:{m}" for m in flow_methods)]
    for seed in seeds:
        for stream in streams:
            run = runs.get((stream, seed))
            if run is None:
                continue
            name = f"{model_name(stream.split(':')[0])}_{protocol}"
            records.append(evaluate_or_load(name, [run.last_checkpoint], out_dir=run.run_dir / "eval" / name,
                                            **eval_fields))
            rgb = runs.get(("RGB", seed))
            if stream == "RGB" or rgb is None:
                continue
            fused = "PAN_Full" if stream == "PA" else ensemble_name(["RGB", stream.split(":")[0]])[0]
            method = stream.split(":")[1] if ":" in stream else None
            name = f"{fused}_{method}_{protocol}" if method else f"{fused}_{protocol}"
            records.append(evaluate_or_load(name, [rgb.last_checkpoint, run.last_checkpoint],
                                            out_dir=rgb.run_dir / "eval" / name, **eval_fields))
    return records


# -------------------------------------------------------------------------------- PA beside flow
def pa_flow_cues(prepared: PreparedDataset, pa_checkpoint: str | Path, methods: Sequence[str], *,
                 split: str = "test", video: int = 0, max_frames: int = 9) -> MotionCues:
    """The first `max_frames` frames of one decoded video of `split`, the learned PA of a PA (or Lite) checkpoint
    on them, and each method's stored flow of the same frame pairs (decoded from uint8: what the Flow
    network reads, clipped to +-20 px)."""
    record = read_list_file(prepared.list_for(split), "pan")[video]
    if prepared.source != "decoded":
        raise ValueError(f"{prepared.root}: the figure reads the decoded frames (python -m data_prep decode)")
    frames = np.load(prepared.data_dir / f"{record.path}.npy")[:max_frames]  # (F, H, W, 3) uint8
    pairs = frames.shape[0] - 1
    cues = MotionCues(frames)
    start = time.perf_counter()
    cues.rows.append(MotionRow("PA (learned)", "pa", pa_maps(frames, learned_pa(pa_checkpoint)),
                               (time.perf_counter() - start) / pairs))
    for method in methods:
        stored = open_flow(flow_root(prepared, method) / f"{record.path}.npy")[:pairs]  # (P, H, W, 2) uint8
        cues.rows.append(MotionRow(f"flow: {method}", "flow", decode_flow(stored), note="stored, uint8"))
    return cues


def flow_xy_figure(cues: MotionCues, pair: int = 0):
    """One frame pair and, per flow row, its x and y components as the Flow network reads them (grey,
    mid-grey = 0 px, black/white = -20/+20 px), beside the learned PA map."""
    import matplotlib.pyplot as plt

    flows = [r for r in cues.rows if r.kind == "flow"]
    pa = [r for r in cues.rows if r.kind == "pa"]
    cols = 2 + len(pa) + 2 * len(flows)
    fig, axes = plt.subplots(1, cols, figsize=(1.5 * cols, 1.9), layout="constrained")
    panels = [(cues.frames[pair], f"frame {pair}", None), (cues.frames[pair + 1], f"frame {pair + 1}", None)]
    panels += [(r.values[pair], r.name, "magma") for r in pa]
    for r in flows:
        panels += [(r.values[pair, ..., 0], f"{r.name}\nx", "gray"), (r.values[pair, ..., 1], f"{r.name}\ny", "gray")]
    for ax, (image, title, cmap) in zip(axes, panels):
        if cmap == "gray":
            ax.imshow(image, cmap=cmap, vmin=-20, vmax=20)
        else:
            ax.imshow(image, cmap=cmap)
        ax.set_title(title, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
