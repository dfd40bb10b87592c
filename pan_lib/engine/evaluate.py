"""The official test protocol (`test_models.py`), with results that do not depend on the batch size
or on the number of processes.

::

    checkpoint k ──► its own dataset (new_length of its modality, test offsets, crops) ──► loader
        clip [B, V*T*m*3, S, S] ──view──► [B*V, T*m*3, S, S] ──chunks of <= K views──► model ──► [B*V, C]
        ──mean over V──► [B, C]
    ensemble: sum_k coeff_k * logits_k / K  (raw logits, equal weights by default: PAN_Full, PAN_En)
    metrics: top-1, top-5, per-class accuracy, confusion matrix; scores sorted by video id (.npz)

V = crops x clips: 1 crop (scale 256, centre crop), 3 (full-res left/centre/right), 5/10 (corners +
centre, +flips); clips = 2 with `twice_sample`, 10 with `dense_sample`; `full_res` makes the crop
256 x 256. Each video's views go through the network with no other video's, BatchNorm is in eval
mode and the last batch is not padded, so a video's score is the same for every `batch_size` (the
official script's results changed with it: temporal-shift-module#134).

Memory is bounded whatever the protocol: a loader batch holds at most `views_per_forward` views
(at least one whole video), and the network sees at most `views_per_forward` views per call; the
logits of a video's views are averaged after the last chunk.

Under torchrun every process joins the group (gloo on the CPU, NCCL on GPUs), runs on its own
device (LOCAL_RANK), scores the videos r, r + W, ... of the list, and the per-video scores are
gathered in video order: every video is scored exactly once (a rank may have none), and rank 0
writes the metrics and `scores.npz` of the whole set, equal to a one-process evaluation.
"""
from __future__ import annotations

import copy
import csv
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from pan_lib.checkpoints import load_checkpoint, read_checkpoint
from pan_lib.engine import distributed as D
from pan_lib.engine.checkpointing import FORMAT
from pan_lib.engine.config import EvalConfig
from pan_lib.data.prepared import PreparedDataset
from pan_lib.engine.data import _video_ids, build_split, merge_fingerprints, split_fingerprint, unpack_batch
from pan_lib.engine.inputs import DeviceInput
from pan_lib.engine.host_memory import keep_freed_memory
from pan_lib.progress import progress as progress_bar
from pan_lib.engine.records import RECORD_FILE, build_record, load_record, write_record
from pan_lib.engine.speed import peak_memory_mb, reset_peak_memory
from pan_lib.ensemble import ensemble_name, model_name
from pan_lib.flops import count_flops
from pan_lib.models import ModelConfig, build_model
from pan_lib.provenance import file_sha256, provenance

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------- maths
def view_mean_logits(model: nn.Module, clips: torch.Tensor, views: int, *, chunk: int | None = None,
                     prepare: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Clips with `views` views each, `[B, V*T*m*3, S, S]` -> logits averaged over views `[B, C]`.

    The `B*V` views go through `model` in chunks of at most `chunk` (all at once when None);
    `prepare` turns a chunk into the network's input (device copy, normalisation, memory format).
    """
    b, _, h, w = clips.shape
    per_view = clips.reshape(b * views, -1, h, w)  # (B, V*T*m*3, S, S) -> (B*V, T*m*3, S, S)
    chunks = per_view.split(chunk) if chunk else (per_view,)
    logits = torch.cat([model(prepare(c) if prepare else c).float() for c in chunks])  # (B*V, C)
    return logits.view(b, views, -1).mean(dim=1)  # (B*V, C) -> (B, V, C) -> (B, C)


def videos_per_batch(batch_size: int, views: int, views_per_forward: int) -> int:
    """Loader batch (videos) that holds at most `views_per_forward` views, and at least one video."""
    return max(1, min(batch_size, views_per_forward // views))


def combine_members(member_logits: Sequence[torch.Tensor], coeffs: Sequence[float] | None = None) -> torch.Tensor:
    """Official ensemble: `sum_k coeff_k * logits_k / K` over aligned `[N, C]` score matrices."""
    coeffs = list(coeffs) if coeffs is not None else [1.0] * len(member_logits)
    if len(coeffs) != len(member_logits):
        raise ValueError(f"{len(coeffs)} coefficients for {len(member_logits)} members")
    total = sum(c * s.double() for c, s in zip(coeffs, member_logits))
    return (total / len(member_logits)).float()


def classification_metrics(scores: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, Any]:
    """top-1/top-5 (percent), per-class accuracy, mean class accuracy and the confusion matrix.

    Rows of the confusion matrix are true classes, columns predictions. Classes absent from
    `labels` have per-class accuracy None and do not enter the mean (the official code divides by
    zero there). Unlabeled rows (label < 0) are ignored; with none labeled all metrics are None.
    """
    labels = labels.long()
    keep = labels >= 0
    scores, labels = scores[keep], labels[keep]
    n = int(labels.numel())
    if n == 0:
        return {"top1": None, "top5": None, "mean_class_acc": None, "per_class": [], "confusion": None,
                "num_videos": 0}
    k5 = min(5, scores.shape[1])
    top = scores.topk(k5, dim=1).indices  # (N, k)
    hit = top.eq(labels.view(-1, 1))  # (N, k)
    pred = top[:, 0]
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    confusion.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    counts = confusion.sum(dim=1)
    per_class = [float(100.0 * confusion[c, c] / counts[c]) if counts[c] > 0 else None for c in range(num_classes)]
    present = [a for a in per_class if a is not None]
    return {"top1": float(100.0 * hit[:, 0].float().mean()), "top5": float(100.0 * hit.any(dim=1).float().mean()),
            "mean_class_acc": float(np.mean(present)) if present else None, "per_class": per_class,
            "confusion": confusion, "num_videos": n}


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, *, device: torch.device | str = "cpu",
            amp_dtype: torch.dtype | None = None, views: int | None = None, max_batches: int | None = None,
            progress: str = "off", desc: str = "evaluate",
            views_per_forward: int | None = None,
            normalize: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """View-averaged logits for every item of `loader`: {'logits' [N, C], 'labels' [N], 'indices' [N]}.

    `views=None` infers V from the clip's channel count and the model's `num_segments` and
    `input_channels` (channels per segment: 3 per RGB frame, 2 per flow field; PANNet attributes). Views go to `device` and through the network at most
    `views_per_forward` at a time (None: a whole batch). `normalize` turns a clip chunk on the device
    into the network's input when the loader yields uint8 clips (float clips pass as they are). An
    empty loader (a rank without videos) gives `[0, C]` logits, C = the model's `num_classes`.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    logits_all, labels_all, index_all = [], [], []
    per_view_channels = None
    if views is None:
        per_view_channels = getattr(model, "num_segments") * input_channels_per_segment(model)

    def prepare(chunk: torch.Tensor) -> torch.Tensor:
        chunk = chunk.to(device, non_blocking=True)
        if chunk.dtype == torch.uint8:
            if normalize is None:
                raise ValueError("uint8 clips need `normalize` (pan_lib.data.transforms.normalize_clip)")
            chunk = normalize(chunk)
        # the clip stays in plain memory: a channels-last [B, T*m*C, H, W] clip interleaves all frames per
        # pixel, which is no frame's channels-last layout (the stem converts its frames itself) and makes
        # PA's frame differences a strided gather (`python -m pan_lib.bench pa_models`)
        return chunk

    bar = progress_bar(total=len(loader) if max_batches is None else min(len(loader), max_batches), desc=desc,
                       mode=progress)
    offset = 0
    for b, batch in enumerate(loader):
        if max_batches is not None and b >= max_batches:
            break
        clips, labels, index = unpack_batch(batch)
        if index is None:
            index = torch.arange(offset, offset + len(labels))
        offset += len(labels)
        v = views if views is not None else clips.shape[1] // per_view_channels
        with D.autocast_context(device, amp_dtype):
            out = view_mean_logits(model, clips, v, chunk=views_per_forward, prepare=prepare)
        logits_all.append(out.float().cpu())
        labels_all.append(torch.as_tensor(labels).long().cpu())
        index_all.append(torch.as_tensor(index).long().cpu())
        bar.update(1)
    bar.close()
    model.train(was_training)
    if not logits_all:
        return {"logits": torch.zeros(0, int(getattr(model, "num_classes", 0) or 0)),
                "labels": torch.zeros(0, dtype=torch.long), "indices": torch.zeros(0, dtype=torch.long)}
    return {"logits": torch.cat(logits_all), "labels": torch.cat(labels_all), "indices": torch.cat(index_all)}


def gather_predictions(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every process's `predict` output joined and sorted by dataset index (all of it on every rank).

    Shards are disjoint (`ShardSampler`), so each video appears once; ranks without videos add
    nothing. A single process gets its own output back, sorted.
    """
    parts = [p for p in D.all_gather_objects(out) if p["indices"].numel() > 0]
    if not parts:
        return out
    index = torch.cat([p["indices"] for p in parts])
    order = index.argsort()
    return {"logits": torch.cat([p["logits"] for p in parts])[order],
            "labels": torch.cat([p["labels"] for p in parts])[order], "indices": index[order]}


def input_channels_per_segment(model: nn.Module) -> int:
    """Channels of one segment of the model's input clip: `input_channels` (Flow: 5 fields x 2 = 10,
    RGBDiff: 6 frames x 3), else 3 per frame x `new_length` for models without it."""
    channels = getattr(model, "input_channels", None)
    return int(channels) if channels is not None else 3 * int(getattr(model, "new_length", 1))


def model_gmacs_per_view(model: nn.Module, input_size: int) -> float:
    """Multiply-adds (G, the paper's "FLOPs") of one view (one clip of T segments) at `input_size`.

    Uses `pan_lib.flops.count_flops` (official PA convention, on a meta copy) for PAN networks and
    `FlopCounterMode` on a CPU copy for anything else; the model itself is never touched.
    """
    if hasattr(model, "num_segments") and hasattr(model, "new_length"):
        try:
            return float(count_flops(model, input_size)["gmacs"])
        except (TypeError, ValueError, RuntimeError, NotImplementedError) as err:
            log.debug("count_flops failed (%s); counting on a CPU copy", err)
    bare = copy.deepcopy(model).float().eval().to("cpu")
    t = getattr(bare, "num_segments", 8)
    clip = torch.zeros(1, t * input_channels_per_segment(bare), input_size, input_size)  # one view
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        bare(clip)
    return counter.get_total_flops() / 2 / 1e9  # FlopCounterMode counts 2 per multiply-add


# --------------------------------------------------------------------------------- checkpoints
def load_member(checkpoint: str | Path | nn.Module) -> tuple[nn.Module, dict[str, Any]]:
    """A model in eval mode and its metadata from a pan-workbook training checkpoint, an official
    checkpoint (via `pan_lib.checkpoints.load_checkpoint`) or an `nn.Module` (used as is).

    The network is rebuilt from the stored `ModelConfig` (old checkpoints' names map through
    `pan_lib.models.RENAMED_FIELDS`); `meta["model_config"]` is its dict, `meta["checkpoint_sha256"]`
    the file's content hash (None for a module).
    """
    if isinstance(checkpoint, nn.Module):
        model_config = getattr(checkpoint, "model_config", None)
        meta = {"modality": getattr(checkpoint, "modality", "RGB"), "checkpoint": None, "checkpoint_sha256": None,
                "num_segments": getattr(checkpoint, "num_segments", None),
                "new_length": getattr(checkpoint, "new_length", 1),
                "backbone": getattr(checkpoint, "backbone_name", "?"),
                "num_classes": getattr(checkpoint, "num_classes", None), "config": {},
                "model_config": model_config.to_dict() if isinstance(model_config, ModelConfig) else None}
        return checkpoint.eval(), meta
    path = Path(checkpoint)
    raw = read_checkpoint(path)  # weights_only, with a clear refusal of unsafe pickles
    if isinstance(raw, dict) and raw.get("format") == FORMAT:
        meta = dict(raw["model_meta"])
        # the weights come from the file: never download ImageNet weights for a stored pretrained=True
        model_config = ModelConfig.from_dict({**meta, "pretrained": False}, ignore_unknown=True)
        model = build_model(model_config)
        model.load_state_dict(raw["model"])
        cfg = raw.get("config") or {}
        meta.update({"checkpoint": str(path), "config": cfg, "classes": raw.get("classes"),
                     "seed": cfg.get("seed"), "dataset": cfg.get("dataset")})
    else:  # official layout (.pth.tar), our official export, or a bare state dict
        model = load_checkpoint(path).model
        meta = {"modality": model.modality, "num_segments": model.num_segments, "new_length": model.new_length,
                "backbone": model.backbone_name, "num_classes": model.num_classes,
                "checkpoint": str(path), "config": {}}
    meta.update(model_config=model.config(), checkpoint_sha256=file_sha256(path))
    return model.eval(), meta


@dataclass
class EvalResult:
    top1: float | None
    top5: float | None
    mean_class_acc: float | None
    per_class: list[float | None]
    confusion: np.ndarray | None
    scores: np.ndarray                  # [N, C] combined logits, sorted by video id
    labels: np.ndarray                  # [N]
    video_ids: list[str]
    members: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""
    views: int = 1
    out_dir: Path | None = None
    record_path: Path | None = None
    clips_per_s: float | None = None

    @property
    def record(self) -> dict[str, Any]:
        return load_record(self.record_path) if self.record_path else {}


def evaluate(checkpoints: Sequence[str | Path | nn.Module] | str | Path | nn.Module, cfg: EvalConfig | None = None,
             *, datasets: Sequence[Dataset] | None = None, num_classes: int | None = None,
             classes: Sequence[str] | None = None, data_fingerprint: str | None = None, write: bool = True,
             **overrides: Any) -> EvalResult:
    """Evaluate one checkpoint or an ensemble under the official test protocol of `cfg`.

    `datasets` (one per member, items `(clip, label, index)` with the member's views) replace the
    prepared data set of `cfg.dataset` (tests, custom data). Writes `scores.npz` (scores, labels,
    video_ids, sorted by video id), `confusion.npy`, `per_class.csv` and `record.json` to
    `cfg.out_dir` unless `write=False` (rank 0 only under torchrun; every rank returns the whole
    result). Under torchrun the process group is joined here and left up: the caller shuts it down
    (`pan_lib.engine.distributed.shutdown_distributed`).
    """
    cfg = (cfg or EvalConfig()).replace(**overrides) if overrides else (cfg or EvalConfig())
    if isinstance(checkpoints, (str, Path, nn.Module)):
        checkpoints = [checkpoints]
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    env = D.env_from_os()
    device = D.resolve_device(cfg.device, env.local_rank, env.world_size)
    if device.type == "cpu":
        keep_freed_memory()  # engine.host_memory
    env = D.init_distributed(device.type)  # torchrun: join the group; one process: nothing
    amp_dtype = D.resolve_amp(cfg.amp, device)
    channels_last = D.resolve_channels_last(cfg.channels_last, device)
    coeffs = list(cfg.coeffs) if cfg.coeffs is not None else [1.0] * len(checkpoints)
    if len(coeffs) != len(checkpoints):
        raise ValueError(f"coeffs has {len(coeffs)} values for {len(checkpoints)} checkpoints")
    if datasets is not None and len(datasets) != len(checkpoints):
        raise ValueError(f"{len(datasets)} datasets for {len(checkpoints)} checkpoints")
    start = time.perf_counter()
    reset_peak_memory(device)
    member_outputs, members, ids_ref, fingerprints = [], [], None, []
    for k, ckpt in enumerate(checkpoints):
        model, meta = load_member(ckpt)
        model = model.to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        train_cfg = meta.get("config") or {}
        input_size = cfg.input_size or meta.get("input_size") or train_cfg.get("input_size") or 224
        scale_size = cfg.scale_size or meta.get("scale_size") or train_cfg.get("scale_size") or 256
        eval_size = scale_size if cfg.full_res else input_size
        flow_method = member_flow_method(meta, cfg)
        if datasets is not None:
            dataset = datasets[k]
            n_cls = num_classes or meta.get("num_classes")
            fingerprints.append(data_fingerprint)
        else:
            bundle = build_split(cfg.dataset, cfg.data_root, cfg.split, modality=meta["modality"],
                                 num_segments=meta["num_segments"], input_size=input_size, scale_size=scale_size,
                                 source=cfg.source, test_crops=cfg.crops, full_res=cfg.full_res,
                                 twice_sample=cfg.twice_sample, dense_sample=cfg.dense_sample, mode="test",
                                 flow_method=flow_method)
            # uint8 clips: a quarter of the bytes through the workers and the copy; normalised on the device
            dataset, n_cls = bundle.dataset.with_output("uint8"), bundle.num_classes
            fingerprints.append(bundle.fingerprint)
            classes = classes or bundle.classes
        if cfg.max_videos is not None:
            dataset = torch.utils.data.Subset(dataset, range(min(cfg.max_videos, len(dataset))))
        sampler = D.ShardSampler(len(dataset), env.rank, env.world_size)
        loader = DataLoader(dataset, batch_size=videos_per_batch(cfg.batch_size, cfg.views, cfg.views_per_forward),
                            sampler=sampler, num_workers=cfg.num_workers, pin_memory=device.type == "cuda")
        t0 = time.perf_counter()
        out = predict(model, loader, device=device, amp_dtype=amp_dtype, views=cfg.views,
                      progress=cfg.progress if env.is_main else "off",
                      desc=f"{model_name(meta['modality'])} ({k + 1}/{len(checkpoints)})",
                      views_per_forward=cfg.views_per_forward,
                      normalize=DeviceInput(meta["modality"], device).normalize)
        seconds = time.perf_counter() - t0
        gathered = gather_predictions(out)
        logits, labels, index = gathered["logits"], gathered["labels"], gathered["indices"]
        if ids_ref is None:
            ids_ref, labels_ref = index, labels
        elif not torch.equal(ids_ref, index) or not torch.equal(labels_ref, labels):
            raise ValueError(f"member {k + 1} was evaluated on different videos/labels than member 1")
        n_cls = n_cls or logits.shape[1]
        m = classification_metrics(logits, labels, n_cls)
        members.append({"checkpoint": meta.get("checkpoint"), "checkpoint_sha256": meta.get("checkpoint_sha256"),
                        "model": model_name(meta["modality"]), "modality": meta["modality"], "backbone": meta.get("backbone"),
                        "new_length": meta.get("new_length"), "num_segments": meta.get("num_segments"),
                        "coeff": coeffs[k], "seed": meta.get("seed"), "top1": m["top1"], "top5": m["top5"],
                        "gflops_per_view": _safe_gmacs(model, eval_size), "params": sum(p.numel() for p in model.parameters()),
                        "seconds": round(seconds, 3), "run_record": _run_record_of(meta.get("checkpoint")),
                        "input_size": eval_size, "model_config": meta.get("model_config"),
                        **({"flow_method": flow_method} if meta["modality"] == "Flow" else {})})
        member_outputs.append(logits)
        del model
    scores = combine_members(member_outputs, coeffs)
    if cfg.softmax:
        scores = F.softmax(scores, dim=1)
    n_cls = num_classes or scores.shape[1]
    metrics = classification_metrics(scores, labels_ref, n_cls)
    seconds = time.perf_counter() - start
    # sort by video id like the official npz (names when the dataset has them, else list index)
    base = datasets[0] if datasets is not None else dataset
    names = _video_ids(base.dataset if isinstance(base, torch.utils.data.Subset) else base)
    video_ids = [names[int(i)] if names is not None else str(int(i)) for i in ids_ref]
    order = sorted(range(len(video_ids)), key=lambda i: (video_ids[i] if names is not None else int(video_ids[i])))
    scores_np = scores.numpy()[order]
    labels_np = labels_ref.numpy()[order]
    video_ids = [video_ids[i] for i in order]
    name, modality_label = ensemble_name([m["modality"] for m in members])
    seeds = {m["seed"] for m in members}
    n_videos = len(video_ids)
    result = EvalResult(top1=metrics["top1"], top5=metrics["top5"], mean_class_acc=metrics["mean_class_acc"],
                        per_class=metrics["per_class"],
                        confusion=metrics["confusion"].numpy() if metrics["confusion"] is not None else None,
                        scores=scores_np, labels=labels_np, video_ids=video_ids, members=members, model=name,
                        views=cfg.views, clips_per_s=n_videos * cfg.views / seconds if seconds > 0 else None)
    if write and env.is_main:
        first_ckpt = next((m["checkpoint"] for m in members if m["checkpoint"]), None)
        eval_name = cfg.name or f"{name}_{cfg.split}_{cfg.protocol_name()}"
        out_dir = Path(cfg.out_dir) if cfg.out_dir else (
            Path(first_ckpt).parent / "eval" / eval_name if first_ckpt else Path("runs") / "eval" / eval_name)
        _write_outputs(result, out_dir, cfg, eval_name, modality_label, seeds, classes,
                       merge_fingerprints(fingerprints), device,
                       {"wall_seconds": round(seconds, 3)}, n_cls)
    return result


def member_flow_method(meta: dict[str, Any], cfg: EvalConfig) -> str | None:
    """The stored flow a Flow member reads: `cfg.flow_method`, else the one it was trained on (its run's
    config), else None (`build_split`: "dis"); None for other modalities."""
    if meta.get("modality") != "Flow":
        return None
    return cfg.flow_method or (meta.get("config") or {}).get("flow_method")


def evaluation_fingerprint(prepared: PreparedDataset, checkpoints: Sequence[str | Path], cfg: EvalConfig) -> str | None:
    """The data fingerprint `evaluate(checkpoints, cfg)` records on `prepared`: its own, with each Flow
    member's flow method when flow was computed for it (`merge_fingerprints`). Checkpoints are read only
    when the data has stored flow (otherwise no member can be a Flow network)."""
    if not (getattr(prepared, "manifest", None) or {}).get("flow"):
        return prepared.fingerprint
    metas = [load_member(c)[1] for c in checkpoints]
    return merge_fingerprints([split_fingerprint(prepared, m["modality"], member_flow_method(m, cfg)) for m in metas])


def _safe_gmacs(model: nn.Module, size: int) -> float | None:
    try:
        return model_gmacs_per_view(model, size)
    except Exception as err:  # noqa: BLE001 - FLOPs never fail an evaluation
        log.warning("FLOPs not counted: %s", err)
        return None


def _run_record_of(checkpoint: str | None) -> str | None:
    if not checkpoint:
        return None
    rec = Path(checkpoint).parent / RECORD_FILE
    return str(rec) if rec.exists() else None


def _write_outputs(result: EvalResult, out_dir: Path, cfg: EvalConfig, eval_name: str, modality_label: str,
                   seeds: set, classes: Sequence[str] | None, fingerprint: str | None, device: torch.device,
                   timing: dict[str, Any], num_classes: int) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / "scores.npz", scores=result.scores, labels=result.labels, video_ids=np.array(result.video_ids))
    artifacts = {"scores": "scores.npz"}
    if result.confusion is not None:
        np.save(out_dir / "confusion.npy", result.confusion)
        with (out_dir / "per_class.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["class_index", "class", "videos", "top1"])
            counts = result.confusion.sum(axis=1)
            for c, acc in enumerate(result.per_class):
                writer.writerow([c, classes[c] if classes and c < len(classes) else "", int(counts[c]),
                                 "" if acc is None else f"{acc:.4f}"])
        artifacts.update(confusion="confusion.npy", per_class="per_class.csv")
    members = result.members
    first = members[0]
    record = build_record(
        "eval", name=eval_name, status="completed", model=result.model, modality=modality_label,
        dataset=cfg.dataset,
        backbone=first.get("backbone") if len({m.get("backbone") for m in members}) == 1 else
        "+".join(str(m.get("backbone")) for m in members),
        seed=next(iter(seeds)) if len(seeds) == 1 else None,
        metrics={"top1": result.top1, "top5": result.top5, "mean_class_acc": result.mean_class_acc,
                 "num_videos": len(result.video_ids)},
        views=cfg.views,
        protocol={"crops": cfg.crops, "clips": cfg.clips, "full_res": cfg.full_res,
                  "twice_sample": cfg.twice_sample, "dense_sample": cfg.dense_sample,
                  "input_size": first.get("input_size"), "scale_size": cfg.scale_size, "softmax": cfg.softmax},
        gflops_per_view=(sum(m["gflops_per_view"] for m in members)
                         if all(m["gflops_per_view"] is not None for m in members) else None),
        params=sum(m["params"] for m in members),
        clips_per_s=result.clips_per_s,
        speed={"clips_per_s": result.clips_per_s, "peak_memory_mb": round(peak_memory_mb(device), 1),
               "device": str(device), "batch_size": cfg.batch_size},
        timing=timing,
        members=members,
        config=cfg.to_dict(),
        data={"dataset": cfg.dataset, "split": cfg.split, "fingerprint": fingerprint,
              "num_videos": len(result.video_ids), "num_classes": num_classes,
              "classes": list(classes) if classes else None},
        provenance=provenance(cfg.to_dict(), fingerprint, str(device)),
        artifacts=artifacts,
    )
    result.out_dir = out_dir
    result.record_path = write_record(out_dir / RECORD_FILE, record)
    log.info("%s on %s (%s): top-1 %s top-5 %s -> %s", result.model, cfg.dataset, cfg.protocol_name(),
             _pct(result.top1), _pct(result.top5), out_dir)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}%"


def load_scores(path: str | Path) -> dict[str, Any]:
    """Read a `scores.npz` written by `evaluate` (scores, labels, video_ids)."""
    with np.load(path, allow_pickle=False) as data:
        return {"scores": data["scores"], "labels": data["labels"], "video_ids": [str(v) for v in data["video_ids"]]}


__all__ = ["EvalResult", "evaluate", "predict", "gather_predictions", "videos_per_batch", "classification_metrics", "combine_members", "view_mean_logits",
           "model_gmacs_per_view", "input_channels_per_segment", "load_member", "load_scores", "member_flow_method",
           "evaluation_fingerprint"]
