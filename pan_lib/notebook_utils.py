"""Small helpers the notebooks share, so that no logic lives only in a notebook.

- `is_headless()` / `resolve_progress()`: papermill runs get plain-text progress (tqdm's widget bar
  stalls or floods the log under papermill, nteract/papermill#617 and #765).
- `repo_path()`: parameters hold paths relative to the repository, whichever folder the kernel
  started in (Jupyter starts it in notebooks/, papermill wherever `cwd` says).
- `as_seeds()`: `seeds` may arrive as a list, one int, or a string from `papermill -p seeds 0,1,2`.
- `require_dataset()`: the first thing a notebook does — an unknown name lists the valid ones, a real
  dataset that is not prepared stops with the exact command that prepares it.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable

from pan_lib.provenance import REPO_ROOT

log = logging.getLogger(__name__)

HEADLESS_ENV = "PAN_WORKBOOK_HEADLESS"


def is_headless() -> bool:
    """True under `pan_lib.workbook`/papermill (or PAN_WORKBOOK_HEADLESS=1), or outside any kernel."""
    if os.environ.get(HEADLESS_ENV, "") not in ("", "0"):
        return True
    if os.environ.get("PAPERMILL_INPUT_PATH") or os.environ.get("PAPERMILL_OUTPUT_PATH"):
        return True  # `papermill --inject-paths`
    return "ipykernel" not in sys.modules


def resolve_progress(progress: str = "auto") -> str:
    """'auto' -> 'text' when headless (papermill), else 'auto' (tqdm picks the widget bar)."""
    if progress not in ("auto", "text", "off"):
        raise ValueError(f"progress={progress!r} is not valid; choose 'auto', 'text' or 'off'")
    return "text" if progress == "auto" and is_headless() else progress


def repo_path(path: str | os.PathLike | None, default: str | os.PathLike | None = None) -> Path | None:
    """Absolute path; relative ones are taken from the repository root. '' or None -> `default`."""
    if path in (None, ""):
        if default in (None, ""):
            return None
        path = default
    p = Path(path).expanduser()
    return p if p.is_absolute() else (REPO_ROOT / p).resolve()


def as_seeds(seeds: Any) -> list[int]:
    """[0, 1, 2] | 3 -> [3] | "0,1,2" | "[0, 1]" -> a list of ints (at least one)."""
    if isinstance(seeds, (int, float)) and not isinstance(seeds, bool):
        out = [int(seeds)]
    elif isinstance(seeds, str):
        out = [int(s) for s in seeds.replace("[", " ").replace("]", " ").replace(",", " ").split()]
    elif isinstance(seeds, Iterable):
        out = [int(s) for s in seeds]
    else:
        raise ValueError(f"seeds={seeds!r}: give a list of ints, one int or '0,1,2'")
    if not out:
        raise ValueError("seeds is empty: give at least one seed")
    return out


def pick_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; anything else is returned unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def setup_notebook(threads: int | None = None, level: int = logging.INFO, dpi: int = 72) -> None:
    """Log INFO from pan_lib to the cell output, a fixed thread count on CPU, compact inline figures
    (executed notebooks are committed under results/, so their images should stay small)."""
    import matplotlib

    matplotlib.rcParams["figure.dpi"] = dpi
    handler_ok = any(getattr(h, "_pan_nb", False) for h in logging.getLogger("pan_lib").handlers)
    if not handler_ok:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._pan_nb = True  # type: ignore[attr-defined]
        logging.getLogger("pan_lib").addHandler(handler)
    logging.getLogger("pan_lib").setLevel(level)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    if threads:
        import torch

        torch.set_num_threads(threads)


def require_dataset(dataset: str, data_root: str | os.PathLike | None = None):
    """Check the name, then find the prepared data; raises with the preparation command if missing.

    Returns `pan_lib.data.registry.PreparedDataset`. An unknown name raises `ValueError` listing
    the valid ones; a dataset that is not prepared raises `DatasetNotPreparedError` whose message
    says exactly how to prepare it (the notebook stops in its first cells).
    """
    from pan_lib.data.registry import find_prepared, get_dataset_info

    get_dataset_info(dataset)  # ValueError listing the valid names
    root = repo_path(data_root) if data_root else None
    return find_prepared(dataset, root)


# ------------------------------------------------------------------------------ training and evaluation
RECIPES = ("auto", "embedded", "official")
SMALL_EPOCHS = 1  # small (CI) mode: one epoch on the tiny embedded dataset


def embedded_size(small: bool) -> str:
    """The embedded dataset's size preset: 'tiny' in small (CI) mode, else 'default'."""
    return "tiny" if small else "default"


def resolve_data_root(dataset: str, data_root: str | os.PathLike | None, small: bool = False) -> Path:
    """'' -> data/<dataset> (data/embedded_tiny for the small embedded set); relative -> from the repo."""
    if data_root not in (None, ""):
        return repo_path(data_root)  # type: ignore[return-value]
    from pan_lib.data.registry import default_data_root

    root = default_data_root(dataset)
    return root.with_name("embedded_tiny") if dataset == "embedded" and small else root


def ensure_dataset(dataset: str, data_root: str | os.PathLike | None = None, *, small: bool = False,
                   seed: int = 0, progress: str = "auto"):
    """The prepared dataset; the embedded one is generated on first use (seconds), real ones never.

    A real dataset that is not prepared raises `DatasetNotPreparedError` with the exact
    `python -m data_prep ...` command; an unknown name raises `ValueError` listing the valid ones.
    """
    from pan_lib.data.registry import find_prepared, get_dataset_info, prepare_embedded

    get_dataset_info(dataset)
    root = resolve_data_root(dataset, data_root, small)
    if dataset == "embedded":
        return prepare_embedded(root, size=embedded_size(small), seed=seed, progress=resolve_progress(progress))
    return find_prepared(dataset, root)


def train_configs(dataset: str, modalities: Iterable[str], seeds: Iterable[int], *, recipe: str = "auto",
                  data_root: str | os.PathLike | None = None, run_root: str | os.PathLike = "results/runs",
                  small: bool = False, progress: str = "auto", **overrides: Any) -> list:
    """One `TrainConfig` per (modality, seed): the recipe, then the notebook's non-None overrides.

    recipe: "auto" (embedded recipe on the embedded dataset, official scripts on real ones),
    "official" (real datasets only) or "embedded" (the small CPU recipe on any dataset).
    `overrides` are TrainConfig fields (backbone=, epochs=, batch_size=, lr=, device=, ...); None
    means "keep the recipe's value". Small mode trains one epoch.
    """
    from pan_lib.engine.config import TrainConfig
    from pan_lib.engine.recipes import get_recipe

    if recipe not in RECIPES:
        raise ValueError(f"recipe={recipe!r} is not valid; choose one of {', '.join(RECIPES)}")
    if recipe == "official" and dataset == "embedded":
        raise ValueError("recipe 'official' is for real datasets (sthv1, sthv2, ...); "
                         "the embedded dataset uses recipe 'embedded' (or 'auto')")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if small:
        changes.setdefault("epochs", SMALL_EPOCHS)
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


def run_status(cfg) -> str:
    """'completed' (a finished run: it will be loaded), 'resumable' (last.pt exists) or 'new'."""
    import json

    run_dir = cfg.resolved_run_dir
    record = run_dir / "record.json"
    if record.is_file():
        try:
            if json.loads(record.read_text()).get("status") == "completed":
                return "completed"
        except (OSError, ValueError):
            pass
    return "resumable" if (run_dir / "last.pt").is_file() else "new"


def train_or_load(configs: Iterable, *, nproc_per_node: int = 1) -> list:
    """Train every config — or load it when finished, or resume it when interrupted (uvadlc idiom).

    With `nproc_per_node > 1` each run goes through torchrun (`python -m pan_lib.train --config`),
    the engine's DDP path; the notebook then reads the run back from its record.
    """
    from pan_lib.engine import train

    results = []
    for cfg in configs:
        status = run_status(cfg)
        verb = {"completed": "loading finished run", "resumable": "resuming", "new": "training"}[status]
        log.info("%s %s -> %s", verb, cfg.run_name, cfg.resolved_run_dir)
        print(f"{verb:>21}: {cfg.run_name}", flush=True)
        if nproc_per_node > 1 and status != "completed":
            _torchrun(cfg, nproc_per_node)
        results.append(train(cfg))  # a completed run returns at once (resume='auto')
    return results


def _torchrun(cfg, nproc_per_node: int) -> None:
    """Run one config through torchrun (one process per GPU), streaming rank 0's log into the cell."""
    import subprocess

    run_dir = cfg.resolved_run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    yaml_path = run_dir / "run.yaml"
    cfg.to_yaml(yaml_path)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc_per_node}",
           "-m", "pan_lib.train", "--config", str(yaml_path)]
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(REPO_ROOT))
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line, end="", flush=True)
    if proc.wait() != 0:
        raise RuntimeError(f"torchrun exited with {proc.returncode} for {cfg.run_name}; see the log above")


def evaluate_or_load(name: str, checkpoints: Iterable[str | os.PathLike], *, out_dir: str | os.PathLike,
                     **eval_fields: Any) -> dict[str, Any]:
    """Evaluate a checkpoint or an ensemble once; later calls load the record it wrote.

    Returns the evaluation record (docs/ARCHITECTURE.md, "Run records"). The record is reused only
    when it was written for the same checkpoints and protocol and none of them changed since.
    """
    import json

    from pan_lib.engine import EvalConfig, evaluate

    checkpoints = [str(Path(c)) for c in checkpoints]
    cfg = EvalConfig.from_dict(eval_fields, name=name, out_dir=str(out_dir))
    record_path = Path(out_dir) / "record.json"
    if record_path.is_file():
        try:
            record = json.loads(record_path.read_text())
            same = ([m.get("checkpoint") for m in record.get("members", [])] == checkpoints
                    and record.get("config", {}).get("crops") == cfg.crops
                    and record.get("config", {}).get("full_res") == cfg.full_res
                    and record.get("config", {}).get("twice_sample") == cfg.twice_sample
                    and record.get("status") == "completed"
                    and all(Path(c).stat().st_mtime <= record_path.stat().st_mtime for c in checkpoints))
        except (OSError, ValueError):
            same = False
        if same:
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
        rows.append({"model": r.get("model"), "seed": r.get("seed"), "protocol": _protocol(r),
                     "top1": m.get("top1"), "top5": m.get("top5"), "GFLOPs/view": r.get("gflops_per_view"),
                     "views": r.get("views"), "params (M)": (r.get("params") or 0) / 1e6,
                     "clips/s": r.get("clips_per_s")})
    return pd.DataFrame(rows)


def _protocol(record: dict[str, Any]) -> str:
    from pan_lib.tables import protocol_label

    return protocol_label(record)


# ----------------------------------------------------------------------------------- data statistics
def prepare_real(dataset: str, raw_root: str | os.PathLike, data_root: str | os.PathLike | None = None,
                 **kwargs: Any):
    """Prepare a real dataset from its downloaded files (what `python -m data_prep <name>` does)."""
    from data_prep.datasets import PREPARERS
    from pan_lib.data.registry import find_prepared

    if dataset not in PREPARERS or dataset == "embedded":
        raise ValueError(f"no preparer for {dataset!r}; valid: {', '.join(k for k in PREPARERS if k != 'embedded')}")
    out = resolve_data_root(dataset, data_root)
    PREPARERS[dataset](repo_path(raw_root), out, **kwargs)
    return find_prepared(dataset, out)


def dataset_statistics(prepared) -> list[dict[str, Any]]:
    """Per split: videos, labelled videos, classes present, frames per video (min/median/max)."""
    import statistics as st

    from pan_lib.data.lists import read_list_file

    rows = []
    for split in ("train", "val", "test"):
        try:
            records = read_list_file(prepared.list_for(split))
        except FileNotFoundError:
            continue
        frames = [r.num_frames for r in records if r.num_frames >= 0]
        labels = [r.label for r in records if r.label >= 0]
        rows.append({"dataset": prepared.name, "split": split, "videos": len(records), "labelled": len(labels),
                     "classes_present": len(set(labels)), "num_classes": prepared.num_classes,
                     "frames_min": min(frames) if frames else "", "frames_median": st.median(frames) if frames else "",
                     "frames_max": max(frames) if frames else "", "source": prepared.source,
                     "fingerprint": prepared.fingerprint})
    return rows


def class_counts(prepared, split: str = "train") -> list[int]:
    """Videos per class in one split (index = class index)."""
    from pan_lib.data.lists import read_list_file

    counts = [0] * prepared.num_classes
    for r in read_list_file(prepared.list_for(split)):
        if 0 <= r.label < len(counts):
            counts[r.label] += 1
    return counts


def sampling_figure(num_frames: int = 32, num_segments: int = 8, new_length: int = 4, seed: int = 0):
    """Which frames TSN/TSM (m=1) and PA/Lite (m=4) read from one video, in train and val mode."""
    import matplotlib.pyplot as plt
    import numpy as np

    from pan_lib.data.sampling import clip_frame_indices, segment_offsets

    rng = np.random.default_rng(seed)
    rows = [(f"{mode}, m={m}", clip_frame_indices(segment_offsets(num_frames, num_segments, m, mode, rng=rng),
                                                  m, num_frames))
            for m in (1, new_length) for mode in ("train", "val")]
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(rows)))
    for y, (label, idx) in enumerate(rows):
        ax.scatter(np.asarray(idx), [y] * len(idx), s=18, marker="s")
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.set_xlim(0.5, num_frames + 0.5)
    ax.set_xlabel(f"frame (1-based) of a {num_frames}-frame video, {num_segments} segments")
    ax.grid(axis="x", alpha=0.3)
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def history_figure(results: Iterable, key: str = "val_top1", title: str = "validation top-1 during training"):
    """Per-epoch curves of the runs (one line per run, colour per model)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    colours: dict[str, str] = {}
    for res in results:
        hist = [h for h in res.metrics if h.get(key) is not None]
        if not hist:
            continue
        name = res.run_dir.name.split("_")[0]  # <modality>_<dataset>_... -> modality
        first = name not in colours
        colour = colours.setdefault(name, f"C{len(colours)}")
        ax.plot([h["epoch"] for h in hist], [h[key] for h in hist], "-o", ms=3, color=colour,
                label=name if first else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key.replace("_", " ") + (" (%)" if "top" in key else ""))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if colours:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig, results_dir: str | os.PathLike, name: str, dpi: int = 100) -> Path:
    """results/figures/<name>.png (with the git sha in the PNG metadata)."""
    from pan_lib.provenance import git_sha

    out = repo_path(results_dir) / "figures" / f"{name}.png"  # type: ignore[operator]
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, metadata={"Source": f"PAN workbook, git {git_sha()}"})
    return out


def sample_videos(prepared, split: str = "train", limit: int = 4) -> dict[str, Path]:
    """Up to `limit` videos (or frame folders) of a prepared dataset, one per class first, in class
    order: {"<class> (<video id>)": path} (`pan_lib.viz.video.dataset_videos`)."""
    from pan_lib.viz.video import dataset_videos

    return dataset_videos(prepared, split=split, limit=limit)
