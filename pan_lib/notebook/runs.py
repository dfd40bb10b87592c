"""Runs from a notebook: configs from the recipes, train or load, evaluate or load, summaries.

A notebook re-run loads what is finished instead of redoing it (the uvadlc idiom): a completed
training run returns at once, an interrupted one resumes, and an evaluation is reused only when
everything that decides it is unchanged -- the whole `EvalConfig`, the bytes of every checkpoint
and the data fingerprint (`evaluation_key`).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from pan_lib.data.registry import get_prepared
from pan_lib.engine import EvalConfig, RunResult, TrainConfig, evaluate, train
from pan_lib.engine.evaluate import evaluation_fingerprint
from pan_lib.engine.recipes import RECIPES, get_recipe
from pan_lib.notebook.datasets import resolve_data_root
from pan_lib.notebook.environment import repo_path, resolve_progress
from pan_lib.provenance import REPO_ROOT, file_sha256
from pan_lib.tables import DEFAULT_RUN_ROOT, protocol_label, record_model_name

log = logging.getLogger(__name__)

SMOKE_BUDGET = {"pretrained": False, "max_train_batches": 2, "max_val_batches": 1}  # small mode, real data
SMALL_EPOCHS = 1  # small (CI) mode: one epoch on the tiny embedded dataset


# ------------------------------------------------------------------------------------------ training
def train_configs(dataset: str, modalities: Iterable[str], seeds: Iterable[int], *, recipe: str = "auto",
                  data_root: str | os.PathLike | None = None, run_root: str | os.PathLike = DEFAULT_RUN_ROOT,
                  small: bool = False, progress: str = "auto", **overrides: Any) -> list[TrainConfig]:
    """One `TrainConfig` per (modality, seed): the recipe, then the notebook's non-None overrides.

    recipe: "auto" (embedded recipe on the embedded dataset, official scripts on real ones),
    "official" (real datasets only) or "embedded" (the small CPU recipe on any dataset).
    `overrides` are TrainConfig fields (backbone=, epochs=, batch_size=, lr=, device=, ...); None
    means "keep the recipe's value". Small mode trains one epoch; on a real dataset it is the smoke run of
    `make reproduce SMOKE=1` (the same official code path with a tiny budget: 2 train batches, 1 validation
    batch, no ImageNet download) unless the overrides say otherwise.
    """
    if recipe not in RECIPES:
        raise ValueError(f"recipe={recipe!r} is not valid; choose one of {', '.join(RECIPES)}")
    if recipe == "official" and dataset == "embedded":
        raise ValueError("recipe 'official' is for real datasets (sthv1, sthv2, ...); "
                         "the embedded dataset uses recipe 'embedded' (or 'auto')")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if small:
        changes.setdefault("epochs", SMALL_EPOCHS)
        if dataset != "embedded":
            for name, value in SMOKE_BUDGET.items():
                changes.setdefault(name, value)
            if changes["pretrained"] is False:
                log.warning("smoke run: no ImageNet initialisation (pretrained=False), %d train batches",
                            changes["max_train_batches"])
    root = resolve_data_root(dataset, data_root, small)
    out_root = repo_path(run_root)
    configs = []
    for modality in modalities:
        base = get_recipe("embedded" if recipe == "embedded" else dataset, modality)
        for seed in seeds:
            configs.append(TrainConfig.from_dict(
                base, **{**dict(dataset=dataset, data_root=str(root), seed=int(seed), out_root=str(out_root),
                                progress=resolve_progress(progress)), **changes}))
    return configs


def run_status(cfg: TrainConfig) -> str:
    """'completed' (a finished run: it will be loaded), 'resumable' (last.pt exists) or 'new'."""
    run_dir = cfg.resolved_run_dir
    record = run_dir / "record.json"
    if record.is_file():
        try:
            if json.loads(record.read_text()).get("status") == "completed":
                return "completed"
        except (OSError, ValueError):
            pass
    return "resumable" if (run_dir / "last.pt").is_file() else "new"


def train_or_load(configs: Iterable[TrainConfig], *, nproc_per_node: int = 1) -> list[RunResult]:
    """Train every config -- or load it when finished, or resume it when interrupted.

    With `nproc_per_node > 1` each run goes through torchrun (`torchrun_train`), the engine's DDP
    path, and the notebook only reads the run back from its record (`load_run`): nothing is trained
    in the kernel (a run that stopped on `max_minutes` stays stopped: re-running the cell resumes it
    through torchrun) and the kernel touches no GPU before the next torchrun starts.
    """
    results = []
    for cfg in configs:
        status = run_status(cfg)
        verb = {"completed": "loading finished run", "resumable": "resuming", "new": "training"}[status]
        log.info("%s %s -> %s", verb, cfg.run_name, cfg.resolved_run_dir)
        print(f"{verb:>21}: {cfg.run_name}", flush=True)
        if nproc_per_node > 1:
            if status != "completed":
                torchrun_train(cfg, nproc_per_node)
            result = load_run(cfg)
            if result.status != "completed":
                print(f"{cfg.run_name} {result.status}: {result.record.get('message') or 'not finished'}. "
                      f"Re-run this cell (or the torchrun command above) to resume from {result.last_checkpoint}.",
                      flush=True)
            results.append(result)
        else:
            results.append(train(cfg))  # a completed run returns at once (resume='auto')
    return results


def load_run(cfg: TrainConfig) -> RunResult:
    """A run as its record says it ended (`RunResult`, like `train` returns) -- without building a model
    or touching a device."""
    run_dir = cfg.resolved_run_dir
    record_path = run_dir / "record.json"
    if not record_path.is_file():
        raise FileNotFoundError(f"{cfg.run_name}: no {record_path} (the torchrun run wrote no record; see its log)")
    record = json.loads(record_path.read_text())
    best = run_dir / "best.pt"
    return RunResult(run_dir=run_dir, record_path=record_path, last_checkpoint=run_dir / "last.pt",
                     best_checkpoint=best if best.is_file() else None, metrics=list(record.get("history") or []),
                     status=record.get("status", "failed"))


# the launcher: `python -m torch.distributed.run` (= torchrun) of this interpreter
TORCHRUN = (sys.executable, "-m", "torch.distributed.run")
STOP_GRACE_SECONDS = 30.0  # after SIGTERM (training saves last.pt and stops), before SIGKILL


def torchrun_command(config_path: str | os.PathLike, nproc_per_node: int) -> list[str]:
    return [*TORCHRUN, "--standalone", f"--nproc-per-node={nproc_per_node}", "-m", "pan_lib.train",
            "--config", str(config_path)]


def torchrun_train(cfg: TrainConfig, nproc_per_node: int) -> None:
    """Run one config through torchrun (one process per GPU), streaming rank 0's log into the cell.

    torchrun and its workers run in their own process group (session): an interrupted cell or an
    error stops the whole group (`stop_process_group`: SIGTERM, then SIGKILL after
    `STOP_GRACE_SECONDS`), so no worker keeps the GPUs or writes `last.pt` after the cell ended.
    """
    run_dir = cfg.resolved_run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    yaml_path = run_dir / "run.yaml"
    cfg.to_yaml(yaml_path)
    cmd = torchrun_command(yaml_path, nproc_per_node)
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(REPO_ROOT),
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
        returncode = proc.wait()
    except BaseException:  # KeyboardInterrupt (the cell was interrupted), a broken pipe, ...
        print(f"stopping torchrun (process group {proc.pid})", flush=True)
        stop_process_group(proc)
        raise
    if returncode != 0:
        stop_process_group(proc)  # workers a failed launcher left behind
        raise RuntimeError(f"torchrun exited with {returncode} for {cfg.run_name}; see the log above")


def stop_process_group(proc: subprocess.Popen, grace_seconds: float | None = None) -> None:
    """SIGTERM to every process of `proc`'s group (it leads its own session), SIGKILL to what is left
    after `grace_seconds`; `proc` itself is reaped."""
    grace = STOP_GRACE_SECONDS if grace_seconds is None else grace_seconds
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(pgid):
        proc.poll()  # reap the launcher as soon as it exits
        time.sleep(0.1)
    if _group_alive(pgid):
        log.warning("process group %d still running %.0f s after SIGTERM: SIGKILL", pgid, grace)
        _signal_group(pgid, signal.SIGKILL)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log.warning("torchrun (pid %d) did not exit after SIGKILL", proc.pid)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies, exited but not yet reaped, do not count)."""
    if not Path("/proc/self/stat").exists():  # no procfs: ask the kernel (a zombie counts as alive there)
        try:
            os.killpg(pgid, 0)
            return True
        except ProcessLookupError:
            return False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group) == pgid and state not in ("Z", "X"):
            return True
    return False


# ---------------------------------------------------------------------------------------- evaluation
def evaluation_key(checkpoints: Iterable[str | os.PathLike], cfg: EvalConfig) -> dict[str, Any]:
    """Everything that decides an evaluation: the whole config, each checkpoint's bytes, the data (the
    videos, and the flow a Flow member reads: `pan_lib.engine.evaluate.evaluation_fingerprint`)."""
    checkpoints = list(checkpoints)
    prepared = get_prepared(cfg.dataset, cfg.data_root, source=cfg.source)
    return {"config": json.loads(json.dumps(cfg.to_dict())),
            "checkpoints": [{"checkpoint": str(c), "sha256": file_sha256(c)} for c in checkpoints],
            "data_fingerprint": evaluation_fingerprint(prepared, checkpoints, cfg)}


def _config_with_defaults(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """A recorded `EvalConfig` dict with the fields added since it was written at their defaults (a
    record from before `flow_method` existed keys like one with `flow_method: None`)."""
    if not isinstance(config, dict):
        return config
    try:
        return json.loads(json.dumps(EvalConfig.from_dict(config).to_dict()))
    except (ValueError, TypeError):  # a config this version cannot read: compare it as written
        return config


def recorded_key(record: dict[str, Any]) -> dict[str, Any]:
    """The same key as `evaluation_key`, read back from an evaluation record."""
    return {"config": _config_with_defaults(record.get("config")),
            "checkpoints": [{"checkpoint": m.get("checkpoint"), "sha256": m.get("checkpoint_sha256")}
                            for m in record.get("members", [])],
            "data_fingerprint": (record.get("data") or {}).get("fingerprint")}


def evaluate_or_load(name: str, checkpoints: Iterable[str | os.PathLike], *, out_dir: str | os.PathLike,
                     **eval_fields: Any) -> dict[str, Any]:
    """Evaluate a checkpoint or an ensemble once; later calls load the record it wrote.

    Returns the evaluation record (docs/ARCHITECTURE.md, "Run records"). The record is reused only
    when it completed and its `recorded_key` equals today's `evaluation_key`: any change of an
    `EvalConfig` field, of a checkpoint's bytes or of the data evaluates again.
    """
    checkpoints = [str(Path(c)) for c in checkpoints]
    cfg = EvalConfig.from_dict(eval_fields, name=name, out_dir=str(out_dir))
    record_path = Path(out_dir) / "record.json"
    if record_path.is_file():
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            record = {}
        if record.get("status") == "completed" and recorded_key(record) == evaluation_key(checkpoints, cfg):
            print(f"loading evaluation: {name}", flush=True)
            return record
    print(f"evaluating: {name}", flush=True)
    result = evaluate(checkpoints, cfg)
    return json.loads(Path(result.record_path).read_text())


def record_summary(records: Iterable[dict[str, Any]]):
    """A small pandas table of evaluation/training records (model, seed, top-1/5, cost, speed)."""
    import pandas as pd

    rows = []
    for r in records:
        m = r.get("metrics") or {}
        rows.append({"model": record_model_name(r) if r.get("kind") == "eval" else r.get("model"), "seed": r.get("seed"), "protocol": protocol_label(r),
                     "top1": m.get("top1"), "top5": m.get("top5"), "GFLOPs/view": r.get("gflops_per_view"),
                     "views": r.get("views"), "params (M)": (r.get("params") or 0) / 1e6,
                     "clips/s": r.get("clips_per_s")})
    return pd.DataFrame(rows)
