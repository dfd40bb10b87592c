"""`train(cfg) -> RunResult`: the official recipe, fast on a GPU, DDP through torchrun, never losing work.

::

    TrainConfig ──► data (EpochSeeded, EpochShuffleSampler) ──► model (build_model) ──► SGD, official groups
         │                                                                   │
         └── per epoch: lr schedule ─► micro-batches (autocast, accumulate, clip 20) ─► validate (1 clip)
                         │  NaN/inf loss: stop, keep the last good checkpoint
                         └─ last.pt (atomic, mid-epoch every `save_every_*`), best.pt, metrics.csv/json,
                            TensorBoard, record.json (provenance)

The same function runs alone or as one process of `torchrun`: only rank 0 logs, writes metrics
and checkpoints; every rank reads its shard of each epoch's permutation.

The hot loop never waits for the device without need: clips cross as uint8 and are normalised on
the device (`engine.inputs`), loss / accuracy / the non-finite count stay on the device
(`engine.meters`) and are read every `CHECK_EVERY` micro-batches, before every save and at the epoch
end; phase timings synchronise sampled steps only (`engine.speed`); save/stop decisions need no
collective in a single process and one host-side (gloo) all-reduce every `DECIDE_EVERY` optimiser
steps under torchrun. SIGTERM / SIGUSR1 save last.pt at the next step boundary and stop the run
("stopped", resumable; `engine.signals`).
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pan_lib.engine import distributed as D
from pan_lib.engine.checkpointing import (FORMAT, atomic_save, capture_rng_state, load_train_checkpoint,
                                          remove_stale_temporaries, restore_rng_state)
from pan_lib.engine.config import ConfigError, TrainConfig
from pan_lib.engine.data import EpochSeeded, train_val_splits, unpack_batch
from pan_lib.engine.evaluate import classification_metrics, gather_predictions, model_gmacs_per_view, predict
from pan_lib.engine.export import export_official
from pan_lib.engine.inputs import DeviceInput
from pan_lib.engine.host_memory import keep_freed_memory
from pan_lib.engine.loader import VAL_CACHE_MB, CachedBatches, SharedEpochSeeded, loader_options
from pan_lib.engine.meters import EpochMeter, MeterReading
from pan_lib.engine.optim import build_optimizer, lr_factor, set_lr
from pan_lib.progress import progress as progress_bar
from pan_lib.engine.records import RECORD_FILE, atomic_write_text, build_record, load_record, write_record
from pan_lib.engine.signals import StopSignals
from pan_lib.engine.sync_batchnorm import convert_sync_batchnorm
from pan_lib.engine.speed import SpeedMonitor
from pan_lib.ensemble import model_name
from pan_lib.models import build_model, rename_fields
from pan_lib.provenance import provenance

log = logging.getLogger(__name__)
# config fields that may change when a run is resumed (they do not change the maths)
RUNTIME_FIELDS = {"progress", "num_workers", "resume", "device", "max_minutes", "save_every_minutes",
                  "save_every_steps", "tensorboard", "threads", "count_flops", "export_official", "data_root",
                  "out_root", "run_dir", "cudnn_benchmark", "max_val_batches", "eval_every", "epochs", "source",
                  "name"}
CHECK_EVERY = 20          # micro-batches between host reads of the loss statistics (finite check, progress bar)
DECIDE_EVERY = 10         # optimiser steps between save/stop decisions under torchrun (one gloo all-reduce)
TIMING_SAMPLE_EVERY = 20  # steps between synchronised (timed) steps of the speed monitor


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


@dataclass
class RunResult:
    run_dir: Path
    record_path: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    status: str = "completed"

    @property
    def record(self) -> dict[str, Any]:
        return load_record(self.record_path)

    @property
    def best_top1(self) -> float | None:
        vals = [m["val_top1"] for m in self.metrics if m.get("val_top1") is not None]
        return max(vals) if vals else None

    @property
    def final_top1(self) -> float | None:
        vals = [m["val_top1"] for m in self.metrics if m.get("val_top1") is not None]
        return vals[-1] if vals else None


# ------------------------------------------------------------------------------------ machine set-up
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------ metrics
def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of samples whose target is among the top-k logits, for each k (k clipped to C)."""
    maxk = min(max(ks), logits.shape[1])
    pred = logits.topk(maxk, dim=1).indices  # (B, maxk)
    hit = pred.eq(target.view(-1, 1))  # (B, maxk)
    return [int(hit[:, :min(k, maxk)].any(dim=1).sum()) for k in ks]


def _write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    tmp = run_dir / ".metrics.csv.tmp"
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, run_dir / "metrics.csv")
    atomic_write_text(run_dir / "metrics.json", json.dumps(history, indent=1) + "\n")


# ------------------------------------------------------------------------------------------- train
class _Trainer:
    """State and steps of one run; `train()` below is the public entry point."""

    def __init__(self, cfg: TrainConfig, model: nn.Module | None, train_set: Dataset | None,
                 val_set: Dataset | None, num_classes: int | None, data_fingerprint: str | None) -> None:
        self.cfg = cfg
        self.wall_start = time.perf_counter()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        device_type = "cuda" if (cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())) else "cpu"
        self.env = D.init_distributed(device_type)
        self.device = D.resolve_device(cfg.device, self.env.local_rank, self.env.world_size)
        self.amp_dtype = D.resolve_amp(cfg.amp, self.device)
        self.channels_last = D.resolve_channels_last(cfg.channels_last, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
        else:
            keep_freed_memory()  # the step's tensors stay mapped from step to step (engine.host_memory)
        if cfg.batch_size % self.env.world_size:
            raise ConfigError(f"batch_size={cfg.batch_size} must be divisible by the {self.env.world_size} processes")
        self.per_rank_batch = cfg.batch_size // self.env.world_size
        self.run_dir = cfg.resolved_run_dir
        self.is_main = self.env.is_main

        # -- data
        self.classes: list[str] | None = None
        self.data_source = None
        if train_set is None:
            tr, va = train_val_splits(cfg)  # the run's data (a Flow run: the flow of its flow_method)
            # uint8 clips: a quarter of the bytes through workers, pinned memory and the copy; normalised on the device
            train_set, num_classes, data_fingerprint = tr.dataset.with_output("uint8"), tr.num_classes, tr.fingerprint
            self.classes, self.data_source = tr.classes, tr.source
            if val_set is None:
                val_set = va.dataset.with_output("uint8")
        if num_classes is None:
            raise ConfigError("num_classes is required when passing datasets directly")
        self.num_classes = num_classes
        self.data_fingerprint = data_fingerprint
        self.train_set = SharedEpochSeeded(train_set, cfg.seed)  # persistent workers follow set_epoch
        # validation clips are fixed (seeded per index, same every epoch): comparable across epochs
        self.val_set = EpochSeeded(val_set, cfg.seed + 1) if val_set is not None else None
        self.input = DeviceInput(cfg.modality, self.device)
        self.val_loader: DataLoader | CachedBatches | None = None

        # -- model (same initialisation on every rank; DDP also broadcasts rank 0's weights)
        seed_everything(cfg.seed)
        if model is None:
            model = build_model(cfg.model_config(num_classes))
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if cfg.sync_bn and self.env.distributed:
            self.model = convert_sync_batchnorm(self.model, self.device)  # SyncBatchNorm on CUDA, gloo-capable on the CPU
        self.base_lr = cfg.resolved_lr()
        self.optimizer = build_optimizer(self.model, lr=self.base_lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay, modality=cfg.modality, fc_lr5=cfg.fc_lr5,
                                         kind=cfg.optimizer, group_lr=cfg.group_lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

        # -- counters (restored on resume)
        self.epoch = 0                  # epochs completed
        self.batches_done = 0           # micro-batches done in the current epoch
        self.global_step = 0            # optimiser steps
        self.best_top1 = -math.inf
        self.best_epoch = 0
        self.history: list[dict[str, Any]] = []
        self.epoch_stats = [0.0, 0.0, 0.0]  # loss sum, correct, clips of a resumed epoch (this rank)
        self.meter = EpochMeter(self.device)  # the live statistics of the current epoch, on the device
        self.signals = StopSignals()
        self.stop_reason = ""
        self.elapsed_before = 0.0       # training seconds of earlier (interrupted) sessions
        self.rng_per_rank: list | None = None
        self.last_path = self.run_dir / "last.pt"
        self.best_path = self.run_dir / "best.pt"
        self.last_val: dict[str, Any] = {}
        self.speed_summary: dict[str, Any] = {}
        self.writer = None

    # ------------------------------------------------------------------------------- resume
    def prepare_run_dir(self) -> str:
        """Decide fresh start vs resume (rank 0 decides, every rank follows). Returns 'fresh'|'resume'|'done'."""
        cfg = self.cfg
        decision, path = "fresh", None
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.run_dir)
            if isinstance(cfg.resume, (str, os.PathLike)) and cfg.resume != "auto":
                path = Path(cfg.resume)
                if not path.is_file():
                    raise FileNotFoundError(f"resume={cfg.resume!r}: no such checkpoint")
                decision = "resume"
            elif self.last_path.is_file() and cfg.resume in ("auto", True):
                path, decision = self.last_path, "resume"
            elif cfg.resume is True:
                raise FileNotFoundError(f"resume=True but {self.last_path} does not exist")
            elif self.last_path.is_file() and cfg.resume is False:
                stamp = time.strftime("%Y%m%d-%H%M%S")
                aside = self.run_dir.with_name(f"{self.run_dir.name}.old-{stamp}")
                log.warning("resume=False: moving the earlier run %s to %s (nothing is deleted)", self.run_dir, aside)
                self.run_dir.rename(aside)
                self.run_dir.mkdir(parents=True)
        decision, path = D.broadcast_object((decision, str(path) if path else None))
        if decision == "resume":
            self.load(Path(path))
            if self.epoch >= cfg.epochs and self.batches_done == 0:
                return "done"
        return decision

    def load(self, path: Path) -> None:
        ckpt = load_train_checkpoint(path, map_location="cpu")
        self._check_compatible(ckpt.get("config") or {}, path)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler") is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.batches_done = int(ckpt["epoch"]), int(ckpt["step_in_epoch"])
        self.global_step = int(ckpt["global_step"])
        self.best_top1 = float(ckpt["best_top1"]) if ckpt.get("best_top1") is not None else -math.inf
        self.best_epoch = int(ckpt.get("best_epoch", 0))
        self.history = list(ckpt.get("history", []))
        self.epoch_stats = list(ckpt.get("epoch_stats", [0.0, 0.0, 0.0]))
        self.elapsed_before = float(ckpt.get("elapsed_seconds", 0.0))
        rngs = ckpt.get("rng_per_rank") or []
        if len(rngs) == self.env.world_size:
            self.rng_per_rank = rngs
            self.epoch_stats = list(ckpt.get("epoch_stats_per_rank", [self.epoch_stats])[self.env.rank])
        elif self.batches_done:
            log.warning("resuming mid-epoch with %d processes from a checkpoint written by %d: the run "
                        "continues correctly but not bitwise like an uninterrupted one", self.env.world_size, len(rngs))
        if self.is_main:
            log.info("resumed %s: %d epochs done, %d batches into epoch %d, best top-1 %.2f",
                     path, self.epoch, self.batches_done, self.epoch + 1, self.best_top1)

    def _check_compatible(self, saved: dict[str, Any], path: Path) -> None:
        mine = self.cfg.to_dict()
        saved = rename_fields(saved, f"config of {path}")  # checkpoints written before a field was renamed
        diffs = {k: (saved.get(k), mine.get(k)) for k in mine
                 if k not in RUNTIME_FIELDS and k in saved and saved.get(k) != mine.get(k)}
        if diffs:
            listing = "; ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in sorted(diffs.items()))
            raise ConfigError(f"cannot resume {path}: the configuration differs ({listing}). Use another "
                              "run_dir/name for a new run, or resume=False to start over (the old run is kept).")
        if saved.get("epochs") not in (None, mine["epochs"]):
            log.warning("resuming with epochs=%s (checkpoint was trained for %s)", mine["epochs"], saved.get("epochs"))

    # -------------------------------------------------------------------------------- save
    def checkpoint_dict(self, rng_per_rank: list, epoch_stats_per_rank: list) -> dict[str, Any]:
        bare = self.bare_model
        meta = bare.config() if hasattr(bare, "config") and callable(bare.config) else {}
        meta = {**meta, "new_length": getattr(bare, "new_length", 1), "input_size": self.cfg.input_size,
                "scale_size": self.cfg.scale_size, "num_classes": self.num_classes}
        return {
            "format": FORMAT,
            "model": bare.state_dict(),
            "model_meta": meta,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": self.epoch,
            "step_in_epoch": self.batches_done,
            "global_step": self.global_step,
            "best_top1": None if self.best_top1 == -math.inf else self.best_top1,
            "best_epoch": self.best_epoch,
            "epoch_stats": list(epoch_stats_per_rank[self.env.rank]),
            "epoch_stats_per_rank": epoch_stats_per_rank,
            "rng_per_rank": rng_per_rank,
            "history": self.history,
            "config": self.cfg.to_dict(),
            "classes": self.classes,
            "elapsed_seconds": self.elapsed_before + (time.perf_counter() - self.session_start),
        }

    def save_last(self) -> None:
        """Collective: every rank hands its RNG state; rank 0 writes last.pt atomically.

        The loss is checked first: a checkpoint never holds weights a NaN/inf loss has touched."""
        reading = self._check_finite()
        rngs = D.all_gather_objects(capture_rng_state())
        stats = D.all_gather_objects(reading.stats)
        if self.is_main:
            atomic_save(self.checkpoint_dict(rngs, stats), self.last_path)
        self.last_save_time = time.perf_counter()

    def copy_to_best(self) -> None:
        if self.is_main:
            tmp = self.best_path.with_name(f"{self.best_path.name}.tmp-{os.getpid()}")
            shutil.copyfile(self.last_path, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.best_path)

    @property
    def bare_model(self) -> nn.Module:
        return self.model.module if isinstance(self.model, nn.parallel.DistributedDataParallel) else self.model

    # -------------------------------------------------------------------------------- loop
    def run(self) -> RunResult:
        cfg = self.cfg
        self.session_start = time.perf_counter()
        self.last_save_time = self.session_start
        decision = self.prepare_run_dir()
        if decision == "done":
            if self.is_main:
                log.info("%s is complete (%d epochs); nothing to train", self.run_dir, self.epoch)
            return self.result("completed")
        if self.env.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if self.is_main:
            (self.run_dir / "config.yaml").write_text(cfg.to_yaml())
            if cfg.tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=self.global_step or None)
                except ImportError:  # pragma: no cover - tensorboard is a dependency
                    log.warning("tensorboard is not installed; no event files")
            log.info("training %s on %s: %d clips/step (%d per process x %d processes x %d accumulation), "
                     "lr %.4g, amp %s, channels_last %s -> %s", cfg.modality, self.device, cfg.effective_batch(),
                     self.per_rank_batch, self.env.world_size, cfg.accumulate, self.base_lr,
                     self.amp_dtype, self.channels_last, self.run_dir)
        sampler = D.EpochShuffleSampler(
            len(self.train_set), seed=cfg.seed, rank=self.env.rank, world_size=self.env.world_size,
            global_batch=cfg.batch_size)
        if sampler.per_rank < self.per_rank_batch:
            raise ConfigError(f"the training set has {len(self.train_set)} clips, fewer than one batch of "
                              f"{cfg.batch_size}; lower batch_size")
        # a private generator: the loader never draws from the global RNG (dropout's stream)
        train_loader = DataLoader(self.train_set, batch_size=self.per_rank_batch, sampler=sampler, drop_last=True,
                                  generator=torch.Generator().manual_seed(cfg.seed),
                                  **loader_options(cfg.num_workers, self.device))
        status, message = "completed", ""
        try:
            with self.signals:
                while self.epoch < cfg.epochs:
                    stopped = self.train_epoch(train_loader, sampler)
                    if stopped:
                        status = "stopped"
                        message = f"{self.stop_reason} in epoch {self.epoch + 1}; run again to resume"
                        break
                    self.end_epoch()
        except NonFiniteLossError as err:
            if self.is_main:
                self.write_record("failed", str(err))
            raise
        finally:
            if self.writer is not None:
                self.writer.close()
        if self.is_main and status == "completed" and cfg.export_official:
            self.export_official()
        result = self.result(status, message)
        return result

    def current_lr(self) -> float:
        """The base lr (before group multipliers) of the last optimiser step."""
        group = self.optimizer.param_groups[-1]
        return group["lr"] / group.get("lr_mult", 1)

    def lr_at(self, epoch: int, fraction: float = 1.0) -> float:
        cfg = self.cfg
        return self.base_lr * lr_factor(epoch, epochs=cfg.epochs, lr_type=cfg.lr_type, lr_steps=cfg.lr_steps,
                                        warmup_epochs=cfg.warmup_epochs, fraction=fraction)

    def train_epoch(self, loader: DataLoader, sampler) -> bool:
        """One epoch (or its remainder after a resume). Returns True when the time guard stopped it."""
        cfg = self.cfg
        epoch = self.epoch
        sampler.set_epoch(epoch)
        self.train_set.set_epoch(epoch)
        full_batches = sampler.per_rank // self.per_rank_batch
        if cfg.max_train_batches:
            full_batches = min(full_batches, cfg.max_train_batches)
        start_batch = self.batches_done
        if start_batch == 0:
            self.epoch_stats = [0.0, 0.0, 0.0]
        self.meter.reset(self.epoch_stats)
        sampler.skip(start_batch * self.per_rank_batch)
        data_iter = iter(loader)  # (before the RNG below: creating workers must not shift the stream)
        if self.rng_per_rank is not None and start_batch > 0:
            restore_rng_state(self.rng_per_rank[self.env.rank])  # exactly where the saved run was
        else:
            # dropout etc.: a stream that depends only on (seed, epoch, rank)
            torch.manual_seed((cfg.seed * 1000003 + epoch * 101 + self.env.rank) % 2**63)
        self.rng_per_rank = None
        self.model.train()
        monitor = SpeedMonitor(self.device, warmup=min(2, max(0, full_batches - start_batch - 1)),
                               sample_every=TIMING_SAMPLE_EVERY)
        bar = progress_bar(total=full_batches, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                           mode=cfg.progress if self.is_main else "off")
        if start_batch:
            bar.update(start_batch)
        acc = cfg.accumulate
        n_groups_full = full_batches // acc
        epoch_start = time.perf_counter()
        stopped = False
        self.optimizer.zero_grad(set_to_none=True)
        for i in range(start_batch, full_batches):
            with monitor.phase("data"):
                batch = next(data_iter)
                clips, target, _ = unpack_batch(batch)
                clips = self.input(clips)  # uint8 -> normalised float on the device
                target = target.to(self.device, non_blocking=True)
            group = i // acc
            group_size = acc if group < n_groups_full else full_batches - n_groups_full * acc
            last_in_group = (i + 1) % acc == 0 or i + 1 == full_batches
            if i % acc == 0:  # first micro-batch of an optimiser step: set the schedule
                set_lr(self.optimizer, self.lr_at(epoch, min(i + acc, full_batches) / full_batches),
                       cfg.weight_decay)
            sync_ctx = (self.model.no_sync() if (self.env.distributed and not last_in_group) else nullcontext())
            with sync_ctx:
                with monitor.phase("forward"):
                    with D.autocast_context(self.device, self.amp_dtype):
                        logits = self.model(clips)
                    loss = F.cross_entropy(logits.float(), target, label_smoothing=cfg.label_smoothing)
                with monitor.phase("backward"):
                    self.scaler.scale(loss / group_size).backward()
                    if last_in_group:
                        if cfg.clip_grad:
                            self.scaler.unscale_(self.optimizer)
                            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad)
                        self.scaler.step(self.optimizer)
                        self.scaler.update()
                        self.optimizer.zero_grad(set_to_none=True)
            self.meter.add(loss, logits, target)  # on the device: no synchronisation
            monitor.step(target.shape[0] * self.env.world_size)
            self.batches_done = i + 1
            bar.update(1)
            if (i + 1) % CHECK_EVERY == 0:
                reading = self._check_finite()
                bar.set_postfix(loss=f"{reading.loss_sum / max(reading.clips, 1):.3f}", lr=f"{self.current_lr():.3g}")
                if self.writer is not None:
                    self.writer.add_scalar("train/loss_step", reading.last_loss, self.global_step)
            if last_in_group:
                self.global_step += 1
                save_due, stop_due = self._save_or_stop_due(i + 1 < full_batches)
                if save_due or stop_due:
                    self.save_last()
                if stop_due:
                    stopped = True
                    break
        bar.close()
        self.epoch_seconds = time.perf_counter() - epoch_start
        self.speed_summary = {**monitor.summary(), "world_size": self.env.world_size}
        if not stopped:  # (a stop has just saved, which checked)
            self._check_finite()
        if stopped and self.is_main:
            self.write_record("stopped", f"{self.stop_reason}; resume to continue")
        return stopped

    def _check_finite(self) -> MeterReading:
        """Read the epoch statistics (one host sync) and stop the run if a loss since the last check was
        NaN/inf. Every rank calls it at the same micro-batches; under torchrun the verdict is shared."""
        reading = self.meter.read()
        bad = reading.nonfinite
        if self.env.distributed:
            bad = int(D.all_reduce_sum([float(bad)]).sum().item())
        if bad:
            kept = (f"the last good checkpoint {self.last_path} is kept (epoch {self.epoch}, "
                    f"{self.batches_done} batches into the next, as of that save)" if self.last_path.is_file()
                    else "no checkpoint had been written yet")
            lr = self.current_lr()
            raise NonFiniteLossError(
                f"non-finite loss (last {reading.last_loss}; {bad} micro-batch(es)) at epoch {self.epoch + 1}, "
                f"found at batch {self.batches_done} (the loss is checked every {CHECK_EVERY} batches, before "
                f"saves and at epoch ends): training stopped; {kept}. Usual causes: a learning rate too high "
                f"for this batch size (lr now {lr:.4g}), fp16 overflow (try amp='bf16' or 'off'), or broken "
                "input clips.")
        return reading

    def _save_or_stop_due(self, mid_epoch: bool) -> tuple[bool, bool]:
        """Save / stop after this optimiser step? Step-based saves are known everywhere; the clock
        (rank 0's) and signals (any rank's) are host values: free in one process, shared under
        torchrun through one host-side all-reduce every DECIDE_EVERY steps (no device sync)."""
        cfg = self.cfg
        save = bool(mid_epoch and cfg.save_every_steps and self.global_step % cfg.save_every_steps == 0)
        if self.env.distributed and self.global_step % DECIDE_EVERY:
            return save, False
        now = time.perf_counter()
        save_clock = bool(mid_epoch and cfg.save_every_minutes
                          and now - self.last_save_time >= 60 * cfg.save_every_minutes)
        stop_clock = bool(cfg.max_minutes) and (now - self.session_start) >= 60 * cfg.max_minutes
        signalled = self.signals.received is not None
        if self.env.distributed:
            flags = D.all_reduce_sum([float(save_clock and self.is_main), float(stop_clock and self.is_main),
                                      float(signalled)]).tolist()
            save_clock, stop_clock, signalled = (f > 0 for f in flags)
        if stop_clock:
            self.stop_reason = f"time guard max_minutes={cfg.max_minutes} reached"
        elif signalled:
            self.stop_reason = f"stopped by {self.signals.received or 'a signal to another process'}"
        return save or save_clock, stop_clock or signalled

    def end_epoch(self) -> None:
        cfg = self.cfg
        stats = self.meter.read().stats
        loss_sum, correct, clips = D.all_reduce_sum(stats).tolist() if self.env.distributed else stats
        self.epoch += 1
        self.batches_done = 0
        self.rng_per_rank = None
        row: dict[str, Any] = {"epoch": self.epoch, "global_step": self.global_step,
                               "lr": self.current_lr(),
                               "train_loss": loss_sum / max(clips, 1), "train_top1": 100.0 * correct / max(clips, 1),
                               "epoch_seconds": round(self.epoch_seconds, 3)}
        row.update({f"train_{k}" if not k.startswith(("peak", "world")) else k: v
                    for k, v in self.speed_summary.items() if k not in ("measured_steps", "sampled_steps")})
        bad = self._collect_bad_inputs()
        if bad is not None:
            row["bad_inputs"] = bad
        evaluate_now = self.val_set is not None and (self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs)
        if evaluate_now:
            self.last_val = self.validate()
            row.update({f"val_{k}": v for k, v in self.last_val.items() if k not in ("per_class",)})
        improved = evaluate_now and self.last_val.get("top1", -math.inf) > self.best_top1
        if improved:
            self.best_top1, self.best_epoch = self.last_val["top1"], self.epoch
        elif self.val_set is None:
            self.best_epoch = self.epoch
        self.history.append(row)
        self.epoch_stats = [0.0, 0.0, 0.0]
        self.meter.reset()
        self.save_last()
        if self.is_main:
            if improved or self.val_set is None:
                self.copy_to_best()
            _write_metrics(self.run_dir, self.history)
            if self.writer is not None:
                for k, v in row.items():
                    if k != "epoch" and isinstance(v, (int, float)) and math.isfinite(v):
                        self.writer.add_scalar(k.replace("_", "/", 1), v, self.epoch)
                self.writer.flush()
            log.info("epoch %d/%d: train loss %.4f top-1 %.1f%%%s", self.epoch, cfg.epochs, row["train_loss"],
                     row["train_top1"], f", val top-1 {row['val_top1']:.1f}% top-5 {row['val_top5']:.1f}%"
                     if evaluate_now else "")
            status = "completed" if self.epoch >= cfg.epochs else "running"
            self.write_record(status, "")

    def _collect_bad_inputs(self) -> int | None:
        """Unreadable clips met this epoch (VideoClipDataset's report), logged with their files."""
        inner = self.train_set.dataset
        collect = getattr(inner, "collect_bad_inputs", None)
        if collect is None:
            return None
        report = collect()
        count = int(D.all_reduce_sum([float(report.count)]).sum().item()) if self.env.distributed else report.count
        if report and self.is_main:
            log.warning("epoch %d: %s", self.epoch, report.summary())
        return count

    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        """The official in-training validation: 1 clip, centre crop; sharded over ranks, no duplicates."""
        cfg = self.cfg
        if self.val_loader is None:  # made once: its workers persist across epochs
            sampler = D.ShardSampler(len(self.val_set), self.env.rank, self.env.world_size)
            self.val_loader = DataLoader(self.val_set, batch_size=self.per_rank_batch, sampler=sampler,
                                         generator=torch.Generator().manual_seed(cfg.seed),
                                         **loader_options(cfg.num_workers, self.device))
            if self.device.type == "cpu" and getattr(self.val_set, "mode", None) in ("val", "test"):
                # the same clips every epoch: read and normalise them once (when they fit VAL_CACHE_MB)
                self.val_loader = CachedBatches(self.val_loader, self.input, VAL_CACHE_MB)
        start = time.perf_counter()
        out = predict(self.bare_model, self.val_loader, device=self.device, amp_dtype=self.amp_dtype, views=1,
                      max_batches=cfg.max_val_batches, progress="off" if not self.is_main else cfg.progress,
                      desc=f"validate {self.epoch}", normalize=self.input.normalize)
        seconds = time.perf_counter() - start
        joined = gather_predictions(out)  # every rank's shard, in dataset order
        logits, labels = joined["logits"], joined["labels"]
        metrics = classification_metrics(logits, labels, self.num_classes)
        metrics["loss"] = float(F.cross_entropy(logits.float(), labels)) if len(labels) else float("nan")
        metrics["clips_per_s"] = len(labels) / seconds if seconds > 0 else None
        metrics["seconds"] = round(seconds, 3)
        metrics.pop("confusion", None)
        return metrics

    # -------------------------------------------------------------------------------- outputs
    def _model_cost(self) -> dict[str, Any]:
        bare = self.bare_model
        out: dict[str, Any] = {"params": sum(p.numel() for p in bare.parameters())}
        if not self.cfg.count_flops:
            return out
        try:
            out["gflops_per_view"] = model_gmacs_per_view(bare, self.cfg.input_size)
        except Exception as err:  # noqa: BLE001 - FLOPs are a nicety; never fail a run for them
            log.warning("FLOPs not counted: %s", err)
        return out

    def write_record(self, status: str, message: str) -> Path:
        cfg = self.cfg
        cost = self._cost if hasattr(self, "_cost") else self._model_cost()
        self._cost = cost
        last = self.history[-1] if self.history else {}
        val = self.last_val
        seconds = self.elapsed_before + (time.perf_counter() - self.session_start)
        bare = self.bare_model
        record = build_record(
            "train", name=cfg.run_name, status=status, message=message,
            model=model_name(cfg.modality), modality=cfg.modality, dataset=cfg.dataset,
            backbone=cfg.backbone, seed=cfg.seed,
            metrics={"top1": val.get("top1"), "top5": val.get("top5"), "mean_class_acc": val.get("mean_class_acc"),
                     "loss": val.get("loss"), "num_videos": val.get("num_videos"),
                     "best_top1": None if self.best_top1 == -math.inf else self.best_top1,
                     "best_epoch": self.best_epoch, "epochs_completed": self.epoch,
                     "train_loss": last.get("train_loss"), "train_top1": last.get("train_top1")},
            views=1,
            protocol={"crops": 1, "clips": 1, "full_res": False, "twice_sample": False, "dense_sample": False,
                      "input_size": cfg.input_size, "scale_size": cfg.scale_size},
            gflops_per_view=cost.get("gflops_per_view"), params=cost.get("params"),
            clips_per_s=val.get("clips_per_s"),
            speed={"train_clips_per_s": self.speed_summary.get("clips_per_s"),
                   **{k: v for k, v in self.speed_summary.items() if k.endswith("_clips_per_s")},
                   "peak_memory_mb": self.speed_summary.get("peak_memory_mb"),
                   "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off",
                   "channels_last": self.channels_last, "device": str(self.device),
                   "world_size": self.env.world_size},
            timing={"wall_seconds": round(time.perf_counter() - self.wall_start, 3),
                    "train_seconds": round(seconds, 3)},
            model_config=bare.config() if callable(getattr(bare, "config", None)) else None,
            config=cfg.to_dict(),
            data={"dataset": cfg.dataset, "split": "val", "fingerprint": self.data_fingerprint,
                  "num_train": len(self.train_set),
                  "num_videos": len(self.val_set) if self.val_set is not None else None,
                  "num_classes": self.num_classes, "classes": self.classes, "source": self.data_source},
            provenance=provenance(cfg.to_dict(), self.data_fingerprint, str(self.device)),
            artifacts={"last": "last.pt", "best": "best.pt" if self.best_path.exists() else None,
                       "metrics_csv": "metrics.csv", "metrics_json": "metrics.json",
                       "tensorboard": "tb" if cfg.tensorboard else None,
                       "official": getattr(self, "official_name", None)},
            history=self.history,
        )
        return write_record(self.run_dir / RECORD_FILE, record)

    def export_official(self) -> None:
        src = self.best_path if self.best_path.exists() else self.last_path
        path = export_official(src, self.run_dir)
        self.official_name = path.name
        self.write_record("completed", "")

    def result(self, status: str, message: str = "") -> RunResult:
        if self.is_main and status == "completed" and not (self.run_dir / RECORD_FILE).exists():
            self.write_record(status, message)
        D.barrier()
        return RunResult(run_dir=self.run_dir, record_path=self.run_dir / RECORD_FILE,
                         last_checkpoint=self.last_path,
                         best_checkpoint=self.best_path if self.best_path.exists() else None,
                         metrics=list(self.history), status=status)


def train(cfg: TrainConfig | dict[str, Any], *, model: nn.Module | None = None, train_set: Dataset | None = None,
          val_set: Dataset | None = None, num_classes: int | None = None,
          data_fingerprint: str | None = None) -> RunResult:
    """Train (or resume) one run described by `cfg`; see the module docstring.

    `model`, `train_set`, `val_set`, `num_classes` replace what `cfg` would build (tests, custom
    data); datasets yield `(clip, label, index)` like `pan_lib.data.VideoClipDataset`.
    Raises `NonFiniteLossError` when the loss becomes NaN/inf (the last good checkpoint is kept).
    """
    if isinstance(cfg, dict):
        cfg = TrainConfig.from_dict(cfg)
    trainer = _Trainer(cfg, model, train_set, val_set, num_classes, data_fingerprint)
    return trainer.run()
