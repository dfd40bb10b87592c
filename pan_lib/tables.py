"""Result tables and plots generated from run records — never typed by hand.

::

    <run_root>/**/record.json ──► collect_records() ──► <out>/records/**/record.json  (committed copies,
                                                         │                          portable paths)
                                                  load_results() ──► [ResultRow]  (model × seed × split × protocol)
                                                         │
                       aggregate(): mean and 95 % t-interval over seeds per (dataset, model, protocol, split)
                                                         │
        ┌──────────────────────┬─────────────────────────┼──────────────────────┬─────────────────────┐
    embedded_rows()      ordering_report()         steps_report()          findings()        plot_embedded()
    7 models, intervals  paper's claims, paired    what each step adds,   sentences from    figures/*.png
                         per-seed differences      paired differences     the two reports

`write_motion_tables()` (notebook 06) builds the motion-input tables from the same records: PA, RGB
differences and optical flow (named by method: `PAN_Flow (dis)`) alone and fused with RGB, beside the
end-to-end cost per clip measured by `pan_lib.notebook.motion_inputs`.

Every claim is judged by the 95 % interval of the **paired** per-seed difference (same seed, same
data order): "holds" when it excludes 0, "reversed" when it excludes 0 the other way, "not shown"
otherwise (scipy's t interval; `mean_interval`). The embedded tables report the held-out **test**
split (choices were made on val); real datasets report val, as the paper does (`reported_split`).

The paper's numbers (`PAPER_RESULTS`) are reference data transcribed from the official code's README
(see `PAPER_SOURCE`); every other number comes from a `record.json` written by `pan_lib.engine`.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pan_lib.engine.records import RECORD_FILE, SCHEMA, find_records
from pan_lib.ensemble import model_name
from pan_lib.provenance import path_anchors, portable, provenance, save_figure, write_table

log = logging.getLogger(__name__)

# Row order of the embedded tables: each model adds one idea to one before it (MODEL_ROLES).
EMBEDDED_MODELS: tuple[str, ...] = ("TSN", "TSM", "PAN_RGB", "PAN_PA", "PAN_Lite", "PAN_Full", "PAN_En")
# The models the paper reports (rows of the real-datasets table).
PAPER_MODELS: tuple[str, ...] = ("TSN", "TSM", "PAN_Lite", "PAN_Full", "PAN_En")
MODEL_ROLES: dict[str, str] = {
    "TSN": "2D CNN per segment, segment logits averaged",
    "TSM": "TSN + temporal shift",
    "PAN_RGB": "TSM + VAP head (PAN's RGB stream, no PA)",
    "PAN_PA": "PA maps instead of RGB + VAP (PAN's PA stream)",
    "PAN_Lite": "RGB ++ PA in one 6-channel stem + VAP",
    "PAN_Full": "mean logits of PAN_RGB and PAN_PA",
    "PAN_En": "mean logits of PAN_Lite, PAN_RGB, PAN_PA; 2 clips, full resolution",
}
NOT_RUN = "not run"
CONFIDENCE = 0.95
RECORDS_FOLDER = "records"          # <out>/records: the committed copies of the records the tables read
DEFAULT_RUN_ROOT = "runs/results"   # where the main job's runs and checkpoints go (never committed)

# Protocol kinds (`protocol_kind`): the single-model protocol and PAN_En's.
SINGLE_VIEW = "1clip"               # 1 clip × 1 centre crop at the training input size
EN_PROTOCOL = "2clip-fullres"       # 2 clips (twice_sample) × 1 crop at full resolution

PAPER_SOURCE = ("zhang-can/PAN-PyTorch README + pretrained/models_urls.md (commit 2d96513), "
                "validation set; FLOPs are multiply-adds")


@dataclass(frozen=True)
class PaperResult:
    dataset: str
    model: str
    backbone: str
    flops_views: str
    top1: float
    top5: float


# Transcribed from docs of the official release (pan_official.md §11); reference data, not our runs.
PAPER_RESULTS: tuple[PaperResult, ...] = (
    PaperResult("sthv1", "PAN_Lite", "resnet50", "35.7G × 1", 48.0, 76.1),
    PaperResult("sthv1", "PAN_Full", "resnet50", "67.7G × 1", 50.5, 79.2),
    PaperResult("sthv1", "PAN_En", "resnet50", "(46.6G+88.4G) × 2", 53.4, 81.1),
    PaperResult("sthv1", "PAN_En", "resnet101", "(85.6G+166.1G) × 2", 55.3, 82.8),
    PaperResult("sthv2", "PAN_Lite", "resnet50", "35.7G × 1", 60.8, 86.7),
    PaperResult("sthv2", "PAN_Full", "resnet50", "67.7G × 1", 63.8, 88.6),
    PaperResult("sthv2", "PAN_En", "resnet50", "(46.6G+88.4G) × 2", 66.2, 90.1),
    PaperResult("sthv2", "PAN_En", "resnet101", "(85.6G+166.1G) × 2", 66.5, 90.6),
)


def reported_split(dataset: str, split: str = "auto") -> str:
    """The split the tables report: the embedded dataset's held-out test split (every choice was
    made on val), the validation split elsewhere (the paper's tables; SSv1/SSv2 test labels are not
    public). An explicit split is returned as is."""
    if split != "auto":
        return split
    return "test" if dataset == "embedded" else "val"


@dataclass
class ResultRow:
    """One evaluated model (single network or ensemble) for one seed, as read from a record."""

    dataset: str
    model: str                       # TSN | TSM | PAN_Lite | PAN_RGB | PAN_PA | PAN_Full | PAN_En
    backbone: str
    seed: int | None
    top1: float                      # percent
    top5: float                      # percent
    gflops_per_view: float | None    # multiply-adds (the paper's "FLOPs"), summed over ensemble members
    views: int                       # clips × crops at test time
    params_m: float | None           # millions, summed over ensemble members
    clips_per_s: float | None        # measured inference throughput (views included)
    source: str                      # path of the record
    protocol: str = ""               # e.g. '1crop×2clip@72 full-res'
    canonical: bool = True           # the paper's protocol for this model
    num_videos: int | None = None
    split: str = ""                  # the split evaluated: val | test (| train)
    kind: str = ""                   # SINGLE_VIEW | EN_PROTOCOL | "other"
    data_fingerprint: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Interval:
    """A mean and its two-sided t interval (`low`/`high` None below 2 values)."""

    n: int
    mean: float
    low: float | None
    high: float | None

    @property
    def shown(self) -> bool:
        return self.low is not None and self.high is not None


@dataclass
class Aggregate:
    """Mean and 95 % interval over seeds of one (dataset, model, backbone, protocol, split)."""

    dataset: str
    model: str
    backbone: str
    seeds: list[int | None]
    top1_mean: float
    top1_std: float
    top5_mean: float
    top5_std: float
    gflops_per_view: float | None
    views: int
    params_m: float | None
    clips_per_s: float | None
    sources: list[str]
    protocol: str = ""
    canonical: bool = True
    split: str = ""
    kind: str = ""
    top1_ci: Interval | None = None
    top5_ci: Interval | None = None
    per_seed_top1: dict[Any, float] = field(default_factory=dict)
    num_videos: int | None = None
    data_fingerprints: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.seeds)


# ----------------------------------------------------------------------------------------- reading
def protocol_label(record: Mapping[str, Any]) -> str:
    """'1crop×1clip@64' / '1crop×2clip@72 full-res' — the test protocol of an evaluation record."""
    p = record.get("protocol") or {}
    label = f"{p.get('crops', 1)}crop×{p.get('clips', 1)}clip@{p.get('input_size', '?')}"
    return label + (" full-res" if p.get("full_res") else "")


def protocol_kind(record: Mapping[str, Any]) -> str:
    """SINGLE_VIEW (1 clip × 1 centre crop), EN_PROTOCOL (2 clips × 1 crop, full resolution) or 'other'."""
    p = record.get("protocol") or {}
    crops, clips, full_res = p.get("crops", 1), p.get("clips", 1), bool(p.get("full_res"))
    if p.get("dense_sample") or crops != 1:
        return "other"
    if clips == 1 and not full_res:
        return SINGLE_VIEW
    if clips == 2 and full_res:
        return EN_PROTOCOL
    return "other"


def is_canonical(model: str, record: Mapping[str, Any]) -> bool:
    """The paper's protocol for this model: PAN_En = 2 clips × 1 crop at full resolution, others 1 × 1."""
    return protocol_kind(record) == (EN_PROTOCOL if model == "PAN_En" else SINGLE_VIEW)


def flow_methods_of(record: Mapping[str, Any]) -> list[str]:
    """The flow methods the Flow members of an evaluation read (`members[].flow_method`), in order."""
    return list(dict.fromkeys(str(m["flow_method"]) for m in record.get("members") or [] if m.get("flow_method")))


def record_model_name(record: Mapping[str, Any]) -> str:
    """The model an evaluation record scored, as the tables name it: the record's display name, with the
    flow method when a member reads optical flow (`PAN_Flow (dis)`, `TwoStream_Flow (farneback)`), so
    runs on different flow are separate rows."""
    model = str(record.get("model") or model_name(str(record.get("modality", "?"))))
    methods = flow_methods_of(record)
    return f"{model} ({', '.join(methods)})" if methods else model


def row_from_record(record: Mapping[str, Any], source: str = "",
                    kinds: Sequence[str] = ("eval",)) -> ResultRow | None:
    """One completed evaluation record -> ResultRow; None for other kinds, unfinished or metric-less records.

    Only `kind: "eval"` records count by default: they follow the official test protocol, while a
    training record's metrics are the last validation pass during training.
    """
    if record.get("schema") != SCHEMA or record.get("kind") not in kinds:
        return None
    if record.get("status") != "completed":
        return None
    metrics = record.get("metrics") or {}
    if metrics.get("top1") is None or metrics.get("top5") is None:
        return None
    params = record.get("params")
    data = record.get("data") or {}
    model = record_model_name(record)
    return ResultRow(
        dataset=str(record.get("dataset", "?")),
        model=model,
        backbone=str(record.get("backbone", "?")),
        seed=record.get("seed"),
        top1=float(metrics["top1"]),
        top5=float(metrics["top5"]),
        gflops_per_view=None if record.get("gflops_per_view") is None else float(record["gflops_per_view"]),
        views=int(record.get("views") or 1),
        params_m=None if params is None else float(params) / 1e6,
        clips_per_s=None if record.get("clips_per_s") is None else float(record["clips_per_s"]),
        source=source,
        protocol=protocol_label(record),
        canonical=is_canonical(model, record),
        num_videos=metrics.get("num_videos"),
        split=str(data.get("split") or (record.get("config") or {}).get("split") or ""),
        kind=protocol_kind(record),
        data_fingerprint=data.get("fingerprint"),
        provenance=dict(record.get("provenance") or {}),
    )


def load_results(root: Path | str, kinds: Sequence[str] = ("eval",)) -> list[ResultRow]:
    """Every completed record of `kinds` under `root` (`pan_lib.engine.records.find_records`), sorted by
    path; unreadable records are logged and skipped."""
    records = sorted((rec for kind in kinds for rec in find_records(root, kind=kind)), key=lambda r: r["path"])
    rows = [row_from_record(rec, rec["path"], kinds) for rec in records]
    return [row for row in rows if row is not None]


# ------------------------------------------------------------------------------- committed records
def _evaluated_run_dirs(record: Mapping[str, Any], record_dir: Path) -> list[Path]:
    """The training runs an evaluation record scored: each member's checkpoint folder."""
    dirs = []
    for member in record.get("members") or []:
        ckpt = member.get("checkpoint")
        if ckpt:
            path = Path(ckpt) if Path(ckpt).is_absolute() else record_dir / ckpt
            dirs.append(path.parent)
    return dirs


def collect_records(run_root: Path | str, records_dir: Path | str, *, split: str | None = None,
                    dataset: str | None = None, anchors: Mapping[str, str] | None = None,
                    mirror: bool = True) -> list[Path]:
    """Copy the records the tables read into `records_dir` (mirrored: what was there is replaced;
    `mirror=False` adds and overwrites copies only, for a notebook that writes its tables before
    `05_result_tables` mirrors the whole set).

    Copied: every completed evaluation record under `run_root` (of `split` when given; with `dataset`
    too, the split applies to that dataset's records only) and the
    training record of every run those evaluations scored, at the same relative path, with absolute
    paths made portable (`pan_lib.provenance.portable`: inside the repository -> relative to it;
    elsewhere `<results>`, `<run_root>`, `<data_root>`, `~` by default).
    Checkpoints and score files are not copied. Returns the written paths.
    """
    run_root, records_dir = Path(run_root), Path(records_dir)
    evals = [r for r in find_records(run_root, kind="eval")
             if split is None or (dataset is not None and r.get("dataset") != dataset)
             or (r.get("data") or {}).get("split") == split]
    if anchors is None:
        data_roots = {str((r.get("config") or {}).get("data_root") or "") for r in evals} - {""}
        anchors = path_anchors(results=records_dir.parent, run_root=run_root, data_root=sorted(data_roots))
    wanted: dict[Path, dict[str, Any]] = {}
    for rec in evals:
        wanted[Path(rec["path"])] = rec
        for run_dir in _evaluated_run_dirs(rec, Path(rec["dir"])):
            train_path = run_dir / RECORD_FILE
            if train_path.is_file() and train_path not in wanted:
                try:
                    wanted[train_path] = json.loads(train_path.read_text())
                except (OSError, ValueError) as err:
                    log.warning("skipping unreadable training record %s: %s", train_path, err)
    if mirror and records_dir.is_dir():
        shutil.rmtree(records_dir)
    written = []
    for path, rec in sorted(wanted.items()):
        try:
            rel = path.resolve().relative_to(run_root.resolve())
        except ValueError:  # a member trained elsewhere: keep it under its run folder's name
            rel = Path("external") / path.parent.name / path.name
        rec = {k: v for k, v in rec.items() if k not in ("path", "dir")}
        out = records_dir / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(portable(rec, anchors), indent=1) + "\n")
        written.append(out)
    log.info("copied %d records from %s to %s", len(written), run_root, records_dir)
    return written


# ------------------------------------------------------------------------------------- statistics
def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean and its two-sided Student-t interval (scipy.stats.t.interval); no interval below 2 values,
    a zero-width one when all values are equal."""
    from scipy import stats

    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return Interval(0, math.nan, None, None)
    mean = statistics.fmean(values)
    if n < 2:
        return Interval(n, mean, None, None)
    if statistics.stdev(values) == 0:
        return Interval(n, mean, mean, mean)
    low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=stats.sem(values))
    return Interval(n, mean, float(low), float(high))


def paired_difference(lower: Aggregate, upper: Aggregate, confidence: float = CONFIDENCE) -> Interval:
    """`upper - lower` top-1, paired by seed (same seed = same initialisation and data order), with the
    t interval of the per-seed differences; only seeds both have (not None) count."""
    seeds = sorted(s for s in set(lower.per_seed_top1) & set(upper.per_seed_top1) if s is not None)
    return mean_interval([upper.per_seed_top1[s] - lower.per_seed_top1[s] for s in seeds], confidence)


def verdict(interval: Interval, words: tuple[str, str, str] = ("holds", "reversed", "not shown")) -> str:
    """words[0] when the interval of `upper - lower` excludes 0 upwards, words[1] downwards, else words[2]."""
    if interval.shown and interval.low > 0:
        return words[0]
    if interval.shown and interval.high < 0:
        return words[1]
    return words[2]


# ------------------------------------------------------------------------------------- aggregating
def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def _median_or_none(values: Iterable[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def aggregate(rows: Sequence[ResultRow]) -> list[Aggregate]:
    """Group by (dataset, model, backbone, protocol, split); one row per seed (the later record wins)."""
    groups: dict[tuple[str, str, str, str, str], dict[Any, ResultRow]] = {}
    for row in rows:
        per_seed = groups.setdefault((row.dataset, row.model, row.backbone, row.protocol, row.split), {})
        per_seed[row.seed] = row  # sorted paths: later records replace earlier ones for a seed
    out = []
    for (dataset, model, backbone, protocol, split), per_seed in groups.items():
        members = list(per_seed.values())
        t1, s1 = _mean_std([r.top1 for r in members])
        t5, s5 = _mean_std([r.top5 for r in members])
        out.append(Aggregate(
            dataset, model, backbone, seeds=sorted(per_seed, key=lambda s: (s is None, s if s is not None else 0)),
            top1_mean=t1, top1_std=s1, top5_mean=t5, top5_std=s5,
            gflops_per_view=_median_or_none(r.gflops_per_view for r in members),
            views=max(r.views for r in members),
            params_m=_median_or_none(r.params_m for r in members),
            clips_per_s=_median_or_none(r.clips_per_s for r in members),
            sources=[r.source for r in members], protocol=protocol,
            canonical=all(r.canonical for r in members), split=split, kind=members[0].kind,
            top1_ci=mean_interval([r.top1 for r in members]), top5_ci=mean_interval([r.top5 for r in members]),
            per_seed_top1={s: r.top1 for s, r in per_seed.items()},
            num_videos=max((r.num_videos for r in members if r.num_videos is not None), default=None),
            data_fingerprints=sorted({r.data_fingerprint for r in members if r.data_fingerprint})))
    order = {m: i for i, m in enumerate(EMBEDDED_MODELS)}
    return sorted(out, key=lambda a: (a.dataset, order.get(a.model, 99), a.model, a.backbone, a.split, a.protocol))


def pick(aggregates: Sequence[Aggregate], dataset: str, model: str, backbone: str | None = None, *,
         split: str | None = None, kind: str | None = None) -> Aggregate | None:
    """The table's entry for a model: of `split` and protocol `kind` when given (None: any), the
    paper's protocol first, then the most seeds."""
    cands = [a for a in aggregates if a.dataset == dataset and a.model == model
             and (backbone is None or a.backbone == backbone) and (split is None or a.split == split)
             and (kind is None or a.kind == kind)]
    return max(cands, key=lambda a: (a.canonical, a.n), default=None)


# -------------------------------------------------------------------------------------- formatting
def fmt_mean_std(mean: float, std: float, n: int) -> str:
    return f"{mean:.1f} ± {std:.1f}" if n > 1 else f"{mean:.1f}"


def fmt_interval(interval: Interval | None, digits: int = 1, signed: bool = False) -> str:
    """'61.9 [58.1, 65.7]' (mean [95 % interval]); '61.9 (1 seed)' without an interval."""
    if interval is None or interval.n == 0:
        return NOT_RUN
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    if not interval.shown:
        return f"{f.format(interval.mean)} ({interval.n} seed{'s' if interval.n != 1 else ''})"
    return f"{f.format(interval.mean)} [{f.format(interval.low)}, {f.format(interval.high)}]"


def fmt_flops(gflops: float | None, views: int) -> str:
    if gflops is None:
        return "?"
    digits = 2 if gflops < 10 else 1
    return f"{gflops:.{digits}f}G × {views}"


def _num(value: float | None, digits: int) -> float | str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), digits)


def embedded_rows(aggregates: Sequence[Aggregate], dataset: str = "embedded",
                  split: str | None = "test") -> list[dict[str, Any]]:
    """The embedded table: TSN, TSM, PAN_RGB, PAN_PA, PAN_Lite, PAN_Full, PAN_En on `split`, each under
    its paper protocol: mean [95 % interval] over seeds ('not run' rows where missing)."""
    rows = []
    for model in EMBEDDED_MODELS:
        a = pick(aggregates, dataset, model, split=split)
        if a is None:
            rows.append({"model": model, "what_it_is": MODEL_ROLES[model], "backbone": "", "seeds": 0,
                         "split": split or "", "videos": "", "top1_%": NOT_RUN, "top5_%": NOT_RUN,
                         "flops_x_views": "", "params_M": "", "clips_per_s": "", "protocol": "",
                         "top1_mean": "", "top1_low": "", "top1_high": "", "top1_std": "",
                         "top5_mean": "", "top5_low": "", "top5_high": "", "top5_std": ""})
            continue
        t1, t5 = a.top1_ci, a.top5_ci
        rows.append({
            "model": model, "what_it_is": MODEL_ROLES[model], "backbone": a.backbone, "seeds": a.n,
            "split": a.split, "videos": a.num_videos if a.num_videos is not None else "",
            "top1_%": fmt_interval(t1), "top5_%": fmt_interval(t5),
            "flops_x_views": fmt_flops(a.gflops_per_view, a.views),
            "params_M": _num(a.params_m, 3), "clips_per_s": _num(a.clips_per_s, 1), "protocol": a.protocol,
            "top1_mean": round(a.top1_mean, 2), "top1_low": _num(t1.low, 2), "top1_high": _num(t1.high, 2),
            "top1_std": round(a.top1_std, 2),
            "top5_mean": round(a.top5_mean, 2), "top5_low": _num(t5.low, 2), "top5_high": _num(t5.high, 2),
            "top5_std": round(a.top5_std, 2),
        })
    return rows


SMOKE_NOTE = "smoke run: {clips} real train clips, {steps} steps, {videos} val videos; not comparable to the paper"


def _json_or_empty(path: str | os.PathLike | None) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text()) if path else {}
    except (OSError, ValueError):
        return {}


def smoke_note(aggregate: Aggregate) -> str:
    """'' for full runs; for a smoke run (training capped by `max_train_batches`/`max_minutes`, or
    evaluation capped by `max_videos`) what it ran, read from its evaluation records and the training
    records of their members ('smoke run: N real train clips, K steps, V val videos; not comparable
    to the paper')."""
    capped, clips, steps, videos = False, set(), set(), set()
    for source in aggregate.sources:
        record = _json_or_empty(source)
        capped |= (record.get("config") or {}).get("max_videos") is not None
        videos.add((record.get("metrics") or {}).get("num_videos"))
        for member in record.get("members") or []:
            run = _member_training_record(member, Path(source).parent)
            config = run.get("config") or {}
            capped |= any(config.get(k) is not None for k in ("max_train_batches", "max_minutes"))
            clips.add((run.get("data") or {}).get("num_train"))
            steps.add(max((row.get("global_step", 0) for row in run.get("history") or []), default=None))
    if not capped:
        return ""
    return SMOKE_NOTE.format(clips=_joined(clips), steps=_joined(steps), videos=_joined(videos))


def _member_training_record(member: Mapping[str, Any], eval_dir: Path) -> dict[str, Any]:
    """The training record of an evaluated member: its `run_record` path, else (records copied by
    `collect_records`, paths made portable) the nearest folder named like the member's run, at or
    beside the evaluation's folder or one of its parents; {} when there is none."""
    record = _json_or_empty(member.get("run_record"))
    if record.get("kind") == "train":
        return record
    run_name = Path(str(member.get("checkpoint") or "")).parent.name
    if not run_name:
        return {}
    for folder in (eval_dir, *eval_dir.parents):
        record = _json_or_empty(folder / RECORD_FILE if folder.name == run_name else folder / run_name / RECORD_FILE)
        if record.get("kind") == "train":
            return record
    return {}


def _joined(values: set) -> str:
    """{7} -> '7', {1, 4} -> '1/4', {None} -> '?' (a count that differs between seeds or members)."""
    return "/".join(str(v) for v in sorted(values - {None})) or "?"


def real_dataset_rows(aggregates: Sequence[Aggregate]) -> list[dict[str, Any]]:
    """The paper's numbers beside ours for SSv1/SSv2 (and any other real dataset we ran). Smoke runs
    (`smoke_note`) never fill a paper row: they get rows of their own whose `note` says what they ran."""
    notes = {id(a): smoke_note(a) for a in aggregates if a.dataset != "embedded"}
    full = [a for a in aggregates if not notes.get(id(a))]
    rows, used = [], set()
    for p in PAPER_RESULTS:
        a = pick(full, p.dataset, p.model, p.backbone)
        if a is not None:
            used.add(id(a))
        rows.append({
            "dataset": p.dataset, "model": p.model, "backbone": p.backbone,
            "paper_flops_x_views": p.flops_views, "paper_top1": p.top1, "paper_top5": p.top5,
            "our_top1": NOT_RUN if a is None else fmt_mean_std(a.top1_mean, a.top1_std, a.n),
            "our_top5": NOT_RUN if a is None else fmt_mean_std(a.top5_mean, a.top5_std, a.n),
            "our_seeds": 0 if a is None else a.n,
            "our_flops_x_views": "" if a is None else fmt_flops(a.gflops_per_view, a.views),
            "our_protocol": "" if a is None else a.protocol,
            "paper_source": PAPER_SOURCE, "note": "",
        })
    for a in aggregates:
        if a.dataset == "embedded" or id(a) in used or a.model not in EMBEDDED_MODELS:
            continue  # single streams (PAN_RGB, PAN_PA) are parts of Full/En, not rows of their own
        note = notes.get(id(a), "")  # a smoke run shows every protocol it ran: checking them is its point
        if not note and a is not pick(full, a.dataset, a.model, a.backbone):
            continue
        rows.append({
            "dataset": a.dataset, "model": a.model, "backbone": a.backbone, "paper_flops_x_views": "",
            "paper_top1": "", "paper_top5": "",
            "our_top1": fmt_mean_std(a.top1_mean, a.top1_std, a.n),
            "our_top5": fmt_mean_std(a.top5_mean, a.top5_std, a.n), "our_seeds": a.n,
            "our_flops_x_views": fmt_flops(a.gflops_per_view, a.views), "our_protocol": a.protocol,
            "paper_source": "no number in the official release", "note": note,
        })
    return rows


# The paper's ordering, then the two streams against each other and against PAN_Lite.
PAPER_ORDER = (("TSN", "<", "TSM"), ("TSM", "<", "PAN_Lite"), ("PAN_Lite", "<=", "PAN_Full"),
               ("PAN_Full", "<=", "PAN_En"))
STREAM_CLAIMS = (("PAN_RGB", "<", "PAN_PA"), ("PAN_RGB", "<", "PAN_Lite"), ("PAN_PA", "<", "PAN_Lite"))


def _claim_row(a: Aggregate | None, b: Aggregate | None, **head: Any) -> dict[str, Any]:
    """One compared pair: paired seeds, mean difference b - a and its interval, verdict."""
    if a is None or b is None:
        return {**head, "paired_seeds": 0, "diff_top1": "", "ci_low": "", "ci_high": "", "verdict": NOT_RUN}
    d = paired_difference(a, b)
    return {**head, "paired_seeds": d.n, "diff_top1": _num(d.mean, 2), "ci_low": _num(d.low, 2),
            "ci_high": _num(d.high, 2), "verdict": verdict(d) if d.n else NOT_RUN}


def ordering_report(aggregates: Sequence[Aggregate], dataset: str = "embedded",
                    split: str | None = "test") -> list[dict[str, Any]]:
    """Does the paper's ordering TSN < TSM < PAN_Lite <= PAN_Full <= PAN_En hold here, and how do the
    RGB stream, the PA stream and PAN_Lite compare? Each claim 'A < B' is judged by the 95 % interval
    of the paired per-seed difference B - A (`paired_difference`): 'holds' when it lies above 0,
    'reversed' when below, 'not shown' when it contains 0 (or fewer than 2 paired seeds)."""
    out = []
    for group, claims in (("paper", PAPER_ORDER), ("streams", STREAM_CLAIMS)):
        for left, op, right in claims:
            out.append(_claim_row(pick(aggregates, dataset, left, split=split),
                                  pick(aggregates, dataset, right, split=split),
                                  claim=f"{left} {op} {right}", group=group))
    return out


@dataclass(frozen=True)
class Step:
    """One row of the 'what each step adds' table: `upper` (protocol kind) minus `lower`."""

    step: str
    upper: str
    lower: str                      # a model name, or "best stream" (the better of PAN_RGB / PAN_PA)
    upper_kind: str = SINGLE_VIEW
    lower_kind: str = SINGLE_VIEW


STEPS: tuple[Step, ...] = (
    Step("temporal shift", "TSM", "TSN"),
    Step("VAP head", "PAN_RGB", "TSM"),
    Step("PA instead of RGB", "PAN_PA", "PAN_RGB"),
    Step("PA fused with RGB in one network (Lite)", "PAN_Lite", "PAN_RGB"),
    Step("averaging two streams (Full) over the better stream", "PAN_Full", "best stream"),
    Step("averaging two streams (Full) over the RGB stream", "PAN_Full", "PAN_RGB"),
    Step("PAN_En as reported over PAN_Full (member + protocol)", "PAN_En", "PAN_Full", EN_PROTOCOL, SINGLE_VIEW),
    Step("En's extra member (Lite), both 1 clip centre crop", "PAN_En", "PAN_Full", SINGLE_VIEW, SINGLE_VIEW),
    Step("En's extra member (Lite), both 2 clips full-res", "PAN_En", "PAN_Full", EN_PROTOCOL, EN_PROTOCOL),
    Step("En's protocol (2nd clip + full res) on PAN_Full", "PAN_Full", "PAN_Full", EN_PROTOCOL, SINGLE_VIEW),
    Step("En's protocol (2nd clip + full res) on PAN_En", "PAN_En", "PAN_En", EN_PROTOCOL, SINGLE_VIEW),
)
STEP_WORDS = ("gain", "loss", "not shown")


def steps_report(aggregates: Sequence[Aggregate], dataset: str = "embedded",
                 split: str | None = "test") -> list[dict[str, Any]]:
    """What each step adds: paired per-seed top-1 differences with 95 % intervals ('gain' / 'loss' when
    the interval excludes 0, 'not shown' otherwise). The PAN_En rows separate the extra member from
    the test protocol by comparing the same models under both protocols."""
    out = []
    for s in STEPS:
        upper = pick(aggregates, dataset, s.upper, split=split, kind=s.upper_kind)
        if s.lower == "best stream":
            streams = [a for a in (pick(aggregates, dataset, m, split=split, kind=s.lower_kind)
                                   for m in ("PAN_RGB", "PAN_PA")) if a is not None]
            lower = max(streams, key=lambda a: a.top1_mean, default=None)
        else:
            lower = pick(aggregates, dataset, s.lower, split=split, kind=s.lower_kind)
        comparison = f"{s.upper} − {lower.model if lower is not None else s.lower}"
        protocols = (f"{upper.protocol if upper else s.upper_kind} vs "
                     f"{lower.protocol if lower else s.lower_kind}")
        row = _claim_row(lower, upper, step=s.step, comparison=comparison, protocols=protocols)
        if row["verdict"] != NOT_RUN:
            row["verdict"] = verdict(paired_difference(lower, upper), STEP_WORDS)
        out.append(row)
    return out


def _diff_text(row: Mapping[str, Any], split: str) -> str:
    if row["ci_low"] == "":
        return f"{row['diff_top1']:+.1f} points of top-1 on the {split} split ({row['paired_seeds']} paired seed)"
    return (f"{row['diff_top1']:+.1f} points of top-1 on the {split} split, 95 % interval "
            f"[{row['ci_low']:+.1f}, {row['ci_high']:+.1f}] over {row['paired_seeds']} paired seeds")


def findings(ordering: Sequence[Mapping[str, Any]], steps: Sequence[Mapping[str, Any]],
             split: str = "test") -> list[str]:
    """Plain sentences generated from the two reports (so they stay true whichever way the numbers fall)."""
    by_step = {r["step"]: r for r in steps}
    out = []
    for row in steps:
        if row["verdict"] == NOT_RUN:
            continue
        meaning = {"gain": "the seeds resolve a gain", "loss": "the seeds resolve a loss",
                   "not shown": "not distinguishable from no change with these seeds"}[row["verdict"]]
        out.append(f"{row['step'][0].upper()}{row['step'][1:]} ({row['comparison']}): {_diff_text(row, split)} — {meaning}.")
    pa = by_step.get("PA instead of RGB")
    if pa and pa["verdict"] != NOT_RUN:
        out.append({"gain": "Here the PA stream beats the RGB stream: on this data the PA motion cue carries more than "
                            "appearance frames with temporal shift and VAP.",
                    "loss": "Here the PA stream is worse than the RGB stream: PA adds nothing over RGB frames with "
                            "temporal shift and VAP on this data.",
                    "not shown": "Here PA is not shown to add anything over RGB: the PA stream and the RGB stream "
                                 "(both with temporal shift and VAP) are not distinguishable with these seeds."}[pa["verdict"]])
    vap, fused = by_step.get("VAP head"), by_step.get("PA fused with RGB in one network (Lite)")
    if vap and fused and vap["verdict"] != NOT_RUN and fused["verdict"] != NOT_RUN:
        out.append(f"From TSM to PAN_Lite ({vap['diff_top1'] + fused['diff_top1']:+.1f} points), the VAP head "
                   f"(TSM → PAN_RGB) accounts for {vap['diff_top1']:+.1f} ({vap['verdict']}) and fusing PA into the "
                   f"RGB network (PAN_RGB → PAN_Lite) for {fused['diff_top1']:+.1f} ({fused['verdict']}).")
    held = [r["claim"] for r in ordering if r["verdict"] == "holds"]
    reversed_ = [r["claim"] for r in ordering if r["verdict"] == "reversed"]
    open_ = [r["claim"] for r in ordering if r["verdict"] == "not shown"]
    if held or reversed_ or open_:
        parts = [f"holds: {', '.join(held) or 'none'}", f"reversed: {', '.join(reversed_) or 'none'}",
                 f"not shown: {', '.join(open_) or 'none'}"]
        out.append("Claims judged by the 95 % interval of the paired per-seed difference — " + "; ".join(parts) + ".")
    return out


# ----------------------------------------------------------------------------------------- writing
def _short_device(r: ResultRow) -> str:
    device = r.provenance.get("device") or {}
    return str(device.get("cuda_device") or device.get("cpu", "?"))


def _table_meta(rows: Sequence[ResultRow], root: Path, out_dir: Path) -> dict[str, Any]:
    """Provenance of a table: this process, plus the git shas / devices / data of the records it reads."""
    fingerprints = sorted({r.data_fingerprint for r in rows if r.data_fingerprint})
    meta = provenance(config={"records": _rel(root, out_dir)},
                      data_fingerprint=fingerprints[0] if len(fingerprints) == 1 else None)
    if len(fingerprints) > 1:
        meta["data_fingerprint"] = fingerprints
        log.warning("the records read hold %d different data fingerprints: %s", len(fingerprints), fingerprints)
    meta["records"] = sorted({_rel(r.source, out_dir) for r in rows})
    meta["record_git_shas"] = sorted({str(r.provenance.get("git_sha", "?")) for r in rows})
    meta["record_devices"] = sorted({_short_device(r) for r in rows})
    return meta


def _rel(path: Path | str, base: Path) -> str:
    """`path` relative to `base` when inside it (the tables' `source` column), else as given."""
    try:
        return Path(path).resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


MD_HIDDEN = ("top1_mean", "top1_low", "top1_high", "top1_std", "top5_mean", "top5_low", "top5_high",
             "top5_std")  # in CSV/JSON for plotting, not in Markdown


def _write(rows: Sequence[Mapping[str, Any]], stem: Path, *, title: str, meta: Mapping[str, Any],
           command: str) -> list[Path]:
    """write_table(), with the numeric helper columns left out of the Markdown version."""
    paths = write_table(rows, stem, title=title, meta=meta, command=command)
    if any(k in MD_HIDDEN for row in rows for k in row):
        tmp = stem.with_name("_md_" + stem.name)
        tmp_paths = write_table([{k: v for k, v in r.items() if k not in MD_HIDDEN} for r in rows], tmp,
                                title=title, meta=meta, command=command)
        os.replace(tmp.with_suffix(".md"), stem.with_suffix(".md"))
        for extra in tmp_paths:
            extra.unlink(missing_ok=True)
    return paths


def _write_findings(sentences: Sequence[str], stem: Path, *, title: str, meta: Mapping[str, Any],
                    command: str) -> list[Path]:
    """The generated sentences as a Markdown list (same header and footer as the tables) and JSON."""
    paths = write_table([{"finding": s} for s in sentences] or [{"finding": NOT_RUN}], stem, title=title,
                        meta=meta, command=command)
    md = stem.with_suffix(".md")
    lines = md.read_text().splitlines()
    footer = [line for line in lines if line.startswith("git ")]
    body = [f"- {s}" for s in sentences] or [f"- {NOT_RUN}"]
    md.write_text("\n".join([f"# {title}", "", f"Command: `{command}`", "", *body, "", *footer, ""]))
    stem.with_suffix(".csv").unlink(missing_ok=True)
    return [p for p in paths if p.suffix != ".csv"]


def write_tables(run_root: Path | str, out_dir: Path | str, *, command: str, dataset: str = "embedded",
                 split: str = "auto", copy_records: bool = True) -> dict[str, list[Path]]:
    """Copy the records under `run_root` into `<out_dir>/records` (`collect_records`), read them there and
    write tables (csv/md/json) and figures (png) to `out_dir`. With `copy_records=False` (or when
    `run_root` is that folder already: regenerating from the committed copies) nothing is copied."""
    run_root, out_dir = Path(run_root), Path(out_dir)
    split = reported_split(dataset, split)
    records_dir = out_dir / RECORDS_FOLDER
    written: dict[str, list[Path]] = {}
    if copy_records and run_root.resolve() != records_dir.resolve():
        written["records"] = collect_records(run_root, records_dir, split=split, dataset=dataset)
        source_root = records_dir
    else:
        source_root = run_root
    rows = load_results(source_root)
    aggregates = aggregate(rows)
    meta = _table_meta(rows, source_root, out_dir)
    seeds = sorted({s for a in aggregates if a.dataset == dataset and a.split == split for s in a.seeds}, key=str)
    ordering, steps = ordering_report(aggregates, dataset, split), steps_report(aggregates, dataset, split)
    written["embedded"] = _write(
        embedded_rows(aggregates, dataset, split), out_dir / "tables" / dataset,
        title=f"{dataset} dataset, {split} split: top-1/top-5 (%) mean [95 % t interval] over seeds {seeds}, "
              "last-epoch checkpoints; FLOPs = multiply-adds per view × views; clips/s measured at inference",
        meta=meta, command=command)
    written["real_datasets"] = _write(
        real_dataset_rows(aggregates), out_dir / "tables" / "real_datasets",
        title="Real datasets: the paper's numbers beside ours ('not run' where we have not run them)",
        meta=meta, command=command)
    written["per_seed"] = _write(
        [{**{k: v for k, v in asdict(r).items() if k != "provenance"}, "source": _rel(r.source, out_dir)}
         for r in rows] or [{"records": NOT_RUN}],
        out_dir / "tables" / "per_seed",
        title="Every evaluation the tables are built from (one row per record; source = the committed record "
              "under results/)", meta=meta, command=command)
    written["ordering"] = write_table(
        ordering, out_dir / "tables" / f"{dataset}_ordering",
        title=f"{dataset}, {split} split: does the paper's ordering TSN < TSM < PAN_Lite <= PAN_Full <= PAN_En "
              "hold, and how do the streams compare? diff = B − A top-1 paired by seed, with its 95 % t interval; "
              "holds / reversed when the interval excludes 0, not shown otherwise",
        meta=meta, command=command)
    written["steps"] = write_table(
        steps, out_dir / "tables" / f"{dataset}_steps",
        title=f"{dataset}, {split} split: what each step adds (top-1 points, paired per-seed difference, 95 % t "
              "interval; gain / loss when it excludes 0)", meta=meta, command=command)
    written["findings"] = _write_findings(
        findings(ordering, steps, split), out_dir / "tables" / f"{dataset}_findings",
        title=f"{dataset}: what the runs show (sentences generated from the ordering and steps tables)",
        meta=meta, command=command)
    written["figures"] = plot_embedded(aggregates, rows, out_dir / "figures", dataset=dataset, split=split,
                                       steps=steps, meta=meta, command=command)
    return written


def plot_embedded(aggregates: Sequence[Aggregate], rows: Sequence[ResultRow], out_dir: Path | str, *,
                  dataset: str, meta: Mapping[str, Any], command: str, split: str | None = "test",
                  steps: Sequence[Mapping[str, Any]] = ()) -> list[Path]:
    """Three PNGs: top-1 per model (mean with 95 % interval, seeds as dots), top-1 against FLOPs and
    clips/s, and what each step adds (paired differences with their intervals)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    found = [a for a in (pick(aggregates, dataset, m, split=split) for m in EMBEDDED_MODELS) if a is not None]
    footer = (f"{command} · git {meta.get('git_sha', '?')} · torch {meta.get('packages', {}).get('torch', '?')}"
              f" · {(meta.get('device') or {}).get('cpu', '?')}")
    png_meta = {"Title": f"PAN workbook results ({dataset}, {split} split)", "Source": footer,
                "Description": json.dumps({"records": meta.get("records", [])})[:4000]}

    def err(a: Aggregate) -> tuple[float, float]:
        ci = a.top1_ci
        return (0.0, 0.0) if ci is None or not ci.shown else (a.top1_mean - ci.low, ci.high - a.top1_mean)

    paths = []
    fig, ax = plt.subplots(figsize=(8.4, 3.9))
    if found:
        x = range(len(found))
        ax.bar(x, [a.top1_mean for a in found], yerr=list(zip(*[err(a) for a in found])), capsize=4,
               color="#8fb3d9", edgecolor="#33507a")
        for i, a in enumerate(found):
            ys = [r.top1 for r in rows if r.source in a.sources]
            ax.plot([i] * len(ys), ys, "o", color="#1b2f4d", ms=3.5, zorder=3)
        ax.set_xticks(list(x), [f"{a.model}\n(n={a.n})" for a in found], fontsize=8)
    else:
        ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel(f"top-1 on {split} (%)")
    ax.set_title(f"{dataset}: top-1 per model, mean with 95 % interval over seeds (dots = seeds)", fontsize=10)
    paths.append(save_figure(fig, out_dir / f"{dataset}_top1.png", footer=footer, metadata=png_meta, close=True))

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, attr, label in ((axes[0], "gflops_total", "GFLOPs × views (multiply-adds)"),
                            (axes[1], "clips_per_s", "measured clips/s (inference)")):
        for a in found:
            value = (a.gflops_per_view * a.views if a.gflops_per_view is not None else None) \
                if attr == "gflops_total" else a.clips_per_s
            if value is None or not math.isfinite(value):
                continue
            ax.errorbar(value, a.top1_mean, yerr=[[err(a)[0]], [err(a)[1]]], fmt="o", capsize=3)
            ax.annotate(a.model, (value, a.top1_mean), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"top-1 on {split} (%)")
    fig.suptitle(f"{dataset}: accuracy against cost (bars: 95 % interval over seeds)", fontsize=10)
    paths.append(save_figure(fig, out_dir / f"{dataset}_accuracy_vs_cost.png", footer=footer, metadata=png_meta,
                             close=True))

    shown = [r for r in steps if r.get("diff_top1") not in ("", None)]
    fig, ax = plt.subplots(figsize=(8.4, 0.9 + 0.36 * max(len(shown), 1)))
    for y, r in enumerate(shown):
        lo = r["ci_low"] if r["ci_low"] != "" else r["diff_top1"]
        hi = r["ci_high"] if r["ci_high"] != "" else r["diff_top1"]
        colour = {"gain": "#2a7a3b", "loss": "#a8322d"}.get(r["verdict"], "0.45")
        ax.errorbar(r["diff_top1"], y, xerr=[[r["diff_top1"] - lo], [hi - r["diff_top1"]]], fmt="o",
                    color=colour, capsize=3)
    ax.axvline(0, color="0.2", lw=0.8)
    ax.set_yticks(range(len(shown)), [f"{r['step']} ({r['comparison']})" for r in shown], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"top-1 difference on {split} (points), paired by seed, 95 % interval")
    ax.set_title(f"{dataset}: what each step adds", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    paths.append(save_figure(fig, out_dir / f"{dataset}_steps.png", footer=footer, metadata=png_meta, close=True))
    return paths


# ------------------------------------------------------------------------------------ motion inputs
# Notebook 06: PA against RGB differences and optical flow as network inputs, alone and fused with RGB,
# on accuracy and end-to-end cost per clip (motion extraction outside the network + the network).
@dataclass(frozen=True)
class MotionInput:
    """One kind of motion input: its stream's model, the RGB + stream ensemble, what it is, where it is made."""

    modality: str
    alone: str                      # the single network's display name
    fused: str | None               # the RGB + stream ensemble's display name (None: RGB itself)
    what: str
    outside_network: bool           # extracted before the network (optical flow), or inside it (PA, RGBDiff)


MOTION_INPUTS: tuple[MotionInput, ...] = (
    MotionInput("RGB", "PAN_RGB", None, "RGB frames only (no motion input)", False),
    MotionInput("PA", "PAN_PA", "PAN_Full", "PA: learned, computed inside the network", False),
    MotionInput("RGBDiff", "PAN_RGBDiff", "TwoStream_RGBDiff", "RGB differences, computed inside the network", False),
    MotionInput("Flow", "PAN_Flow", "TwoStream_Flow", "optical flow ({method}), extracted before the network", True),
)
MOTION_WORDS = ("PA higher", "PA lower", "not shown")


def _flow_name(name: str, method: str | None) -> str:
    """`PAN_Flow` + "dis" -> `PAN_Flow (dis)` (`record_model_name`'s naming)."""
    return f"{name} ({method})" if method else name


def _ratio(value: float | None, reference: float | None) -> float | None:
    return value / reference if value is not None and reference else None


def fmt_ratio(ratio: float | None) -> str:
    """1.37 -> '1.4×', 1234.5 -> '1,235×'."""
    if ratio is None or not math.isfinite(ratio):
        return "?"
    return f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:.1f}×"


def motion_input_rows(aggregates: Sequence[Aggregate], extraction: Mapping[str, Mapping[str, Any]],
                      network: Mapping[str, Mapping[str, Any]], *, flow_methods: Sequence[str],
                      dataset: str = "embedded", split: str | None = "test") -> list[dict[str, Any]]:
    """The accuracy-against-cost table: every motion input alone and fused with RGB, each with top-1
    (mean [95 % interval] over seeds, 1 clip x centre crop) and its end-to-end cost per clip =
    extraction outside the network (flow: measured seconds per clip; PA, RGBDiff: 0, they are computed
    inside the network) + the network (multiply-adds and measured ms per clip).

    `extraction`: {flow method: {"seconds_per_clip", "clips_timed", "accuracy_run", "note", ...}};
    `network`: {single-network display name: {"gmacs_per_view", "ms_per_clip"}} (ensembles = sums of
    their two networks); `flow_methods`: the flow rows, in order (methods without evaluations get a
    cost-only row saying why)."""
    rows = []
    for mi in MOTION_INPUTS:
        methods = list(flow_methods) if mi.outside_network else [None]
        for method in methods:
            ext = extraction.get(method, {}) if method else {}
            extract_ms = 1e3 * float(ext["seconds_per_clip"]) if ext.get("seconds_per_clip") is not None \
                else (None if method else 0.0)
            variants = [(mi.alone, [mi.alone], "alone")]
            if mi.fused:
                variants.append((mi.fused, ["PAN_RGB", mi.alone], "+ RGB (mean logits)"))
            for display, nets, fusion in variants:
                name = _flow_name(display, method)
                a = pick(aggregates, dataset, name, split=split, kind=SINGLE_VIEW)
                costs = [network.get(n) or {} for n in nets]
                gmacs = sum(c["gmacs_per_view"] for c in costs) if all(c.get("gmacs_per_view") is not None
                                                                        for c in costs) else None
                net_ms = sum(c["ms_per_clip"] for c in costs) if all(c.get("ms_per_clip") is not None
                                                                     for c in costs) else None
                total = extract_ms + net_ms if extract_ms is not None and net_ms is not None else None
                ci = a.top1_ci if a is not None else None
                note = "" if a is not None else (ext.get("note") or NOT_RUN)
                rows.append({
                    "input": mi.what.format(method=method), "model": name, "with": fusion,
                    "seeds": a.n if a else 0, "split": (a.split if a else split) or "",
                    "top1_%": fmt_interval(ci), "extraction_ms_per_clip": _num(extract_ms, 2),
                    "network_gmacs": _num(gmacs, 4), "network_ms_per_clip": _num(net_ms, 2),
                    "end_to_end_ms_per_clip": _num(total, 2), "note": note,
                    "top1_mean": _num(a.top1_mean, 2) if a else "", "top1_low": _num(ci.low, 2) if ci else "",
                    "top1_high": _num(ci.high, 2) if ci else "", "flow_method": method or "",
                    "motion": mi.modality, "fused": fusion != "alone",
                })
    return rows


def _row_by_model(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {r["model"]: r for r in rows}


def motion_comparisons(aggregates: Sequence[Aggregate], rows: Sequence[Mapping[str, Any]], *,
                       dataset: str = "embedded", split: str | None = "test") -> list[dict[str, Any]]:
    """PA against each other motion input, alone (PAN_PA vs PAN_RGBDiff, PAN_Flow (m)) and fused with RGB
    (PAN_Full vs TwoStream_RGBDiff, TwoStream_Flow (m)): the paired per-seed top-1 difference PA − other
    with its 95 % interval ("PA higher" / "PA lower" when it excludes 0, "not shown" otherwise) and the
    end-to-end cost of the other per clip as a multiple of PA's (`cost_x_pa`)."""
    by_model = _row_by_model(rows)
    out = []
    for fused, pa_name in ((False, "PAN_PA"), (True, "PAN_Full")):
        pa = pick(aggregates, dataset, pa_name, split=split, kind=SINGLE_VIEW)
        pa_cost = (by_model.get(pa_name) or {}).get("end_to_end_ms_per_clip")
        for row in rows:
            if row["fused"] != fused or row["motion"] in ("RGB", "PA"):
                continue
            other = pick(aggregates, dataset, row["model"], split=split, kind=SINGLE_VIEW)
            claim = _claim_row(other, pa, comparison=f"{pa_name} − {row['model']}",
                               group="fused with RGB" if fused else "alone")
            if claim["verdict"] != NOT_RUN:
                claim["verdict"] = verdict(paired_difference(other, pa), MOTION_WORDS)
            cost = row.get("end_to_end_ms_per_clip")
            ratio = _ratio(cost if cost != "" else None, pa_cost if pa_cost != "" else None)
            out.append({**claim, "pa": pa_name, "other": row["model"], "pa_ms_per_clip": pa_cost,
                        "other_ms_per_clip": cost, "cost_x_pa": _num(ratio, 2)})
    return out


def motion_findings(rows: Sequence[Mapping[str, Any]], comparisons: Sequence[Mapping[str, Any]],
                    extraction: Mapping[str, Mapping[str, Any]], split: str = "test") -> list[str]:
    """Sentences generated from the table and the comparisons: how many times cheaper PA is end to end
    than each other input, and whether the accuracies differ (so "N× cheaper at equal accuracy" is
    said only when the seeds cannot tell the accuracies apart, and then as exactly that)."""
    by_model = _row_by_model(rows)
    out = []
    for c in comparisons:
        ratio, other = c["cost_x_pa"], c["other"]
        extract = (by_model.get(other) or {}).get("extraction_ms_per_clip")
        cost = (f"{other} costs {c['other_ms_per_clip']:.1f} ms per clip end to end"
                + (f" ({extract:.1f} ms of it extracting the flow outside the network)" if extract else "")
                + f" against {c['pa_ms_per_clip']:.1f} ms for {c['pa']}" if ratio != "" else
                f"the end-to-end cost of {other} was not measured")
        cheaper = (f"{c['pa']} is {fmt_ratio(ratio)} cheaper" if ratio != "" and ratio >= 1 else
                   f"{c['pa']} is {fmt_ratio(1 / ratio)} more expensive" if ratio != "" else "")
        if c["verdict"] == NOT_RUN:
            accuracy = f"the accuracy of {other} was not measured here"
        else:
            diff = _diff_text(c, split)
            accuracy = {"not shown": f"accuracy {c['pa']} − {other}: {diff}, not distinguishable with these seeds "
                                     "(equal accuracy is not ruled out, nor shown)",
                        "PA higher": f"{c['pa']} is more accurate: {diff}",
                        "PA lower": f"{other} is more accurate: {diff}, so the accuracies are not equal"}[c["verdict"]]
        group = c["group"][0].upper() + c["group"][1:]
        out.append(f"{group}: {cost}; {cheaper}; {accuracy}." if cheaper else f"{group}: {cost}; {accuracy}.")
    for method, ext in extraction.items():
        if ext.get("accuracy_run") or ext.get("seconds_per_clip") is None:
            continue
        pa = (by_model.get("PAN_PA") or {}).get("end_to_end_ms_per_clip")
        ratio = _ratio(1e3 * float(ext["seconds_per_clip"]), pa if pa != "" else None)
        out.append(f"{method}: extracting the flow alone costs {float(ext['seconds_per_clip']):.3g} s per clip "
                   f"({ext.get('note') or 'cost only'})"
                   + (f", {fmt_ratio(ratio)} PA's whole network per clip" if ratio else "") + ".")
    return out


def plot_motion_inputs(rows: Sequence[Mapping[str, Any]], path: Path | str, *, meta: Mapping[str, Any],
                       command: str, split: str = "test", dataset: str = "embedded") -> Path:
    """Top-1 (mean, 95 % interval) against end-to-end ms per clip (log scale): o alone, s fused with
    RGB; flow methods timed but not trained are vertical dotted lines at their cost."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    colours = {"RGB": "0.35", "PA": "#c0392b", "RGBDiff": "#2874a6", "Flow": "#239b56"}
    fig, ax = plt.subplots(figsize=(7.6, 4.2))
    for r in rows:
        x = r["end_to_end_ms_per_clip"]
        if x in ("", None) or x <= 0:
            continue
        colour = colours.get(r["motion"], "0.5")
        if r["top1_mean"] == "":
            if not r["fused"]:
                ax.axvline(x, color=colour, ls=":", lw=1)
                ax.annotate(f"{r['model']}: cost only", (x, 0.02), xycoords=("data", "axes fraction"),
                            rotation=90, fontsize=7, color=colour, xytext=(3, 0), textcoords="offset points")
            continue
        low = r["top1_low"] if r["top1_low"] != "" else r["top1_mean"]
        high = r["top1_high"] if r["top1_high"] != "" else r["top1_mean"]
        ax.errorbar(x, r["top1_mean"], yerr=[[r["top1_mean"] - low], [high - r["top1_mean"]]],
                    fmt="s" if r["fused"] else "o", color=colour, capsize=3, ms=6)
        ax.annotate(r["model"], (x, r["top1_mean"]), textcoords="offset points", xytext=(5, 3), fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # decades only: minor labels overlap
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, 0.0), min(high, 100.0))  # intervals of very few seeds reach past 0-100 %
    ax.set_xlabel("end-to-end cost per clip (ms, log): motion extraction outside the network + network forward")
    ax.set_ylabel(f"top-1 on {split} (%)")
    ax.set_title(f"{dataset}: motion inputs, accuracy against cost (o alone, s with RGB; bars: 95 % interval)",
                 fontsize=9)
    ax.grid(alpha=0.3, which="both")
    footer = (f"{command} · git {meta.get('git_sha', '?')} · torch {meta.get('packages', {}).get('torch', '?')}"
              f" · {(meta.get('device') or {}).get('cpu', '?')}")
    return save_figure(fig, path, footer=footer, close=True,
                       metadata={"Title": f"PAN workbook: motion inputs ({dataset}, {split} split)", "Source": footer,
                                 "Description": json.dumps({"records": meta.get("records", [])})[:4000]})


def write_motion_tables(run_root: Path | str, out_dir: Path | str, *, extraction: Sequence[Mapping[str, Any]],
                        network: Sequence[Mapping[str, Any]], flow_methods: Sequence[str], command: str,
                        cost_meta: Mapping[str, Any] | None = None, dataset: str = "embedded",
                        split: str = "auto") -> dict[str, list[Path]]:
    """Notebook 06's tables and figure, from records and measured costs.

    Copies the evaluation records under `run_root` into `<out_dir>/records` (added, not mirrored:
    `05_result_tables` mirrors the whole set afterwards), reads the copies, and writes to `out_dir`:
    `tables/motion_inputs_extraction.*` and `motion_inputs_network.*` (the measured costs, as given:
    `extraction` rows with "method", `network` rows with "model"), `motion_inputs.*` (accuracy against
    end-to-end cost), `motion_inputs_comparisons.*` (paired verdicts), `motion_inputs_findings.*`
    (sentences) and `figures/motion_inputs_accuracy_vs_cost.png`."""
    run_root, out_dir = Path(run_root), Path(out_dir)
    split = reported_split(dataset, split)
    records_dir = out_dir / RECORDS_FOLDER
    written: dict[str, list[Path]] = {}
    if run_root.resolve() != records_dir.resolve():
        written["records"] = collect_records(run_root, records_dir, split=split, dataset=dataset, mirror=False)
    motion_models = {_flow_name(name, m) for mi in MOTION_INPUTS for name in (mi.alone, mi.fused) if name
                     for m in (flow_methods if mi.outside_network else [None])}
    rows = [r for r in load_results(records_dir if records_dir.is_dir() else run_root)
            if r.dataset == dataset and r.split == split and r.model in motion_models]
    aggregates = aggregate(rows)
    meta = {**_table_meta(rows, records_dir, out_dir), "costs": dict(cost_meta or {})}
    ext = {str(e["method"]): e for e in extraction}
    net = {str(n["model"]): n for n in network}
    table = motion_input_rows(aggregates, ext, net, flow_methods=flow_methods, dataset=dataset, split=split)
    comparisons = motion_comparisons(aggregates, table, dataset=dataset, split=split)
    seeds = sorted({s for a in aggregates for s in a.seeds}, key=str)
    tables_dir = out_dir / "tables"
    written["extraction"] = write_table(
        list(extraction), tables_dir / "motion_inputs_extraction", meta=meta, command=command,
        title=f"{dataset}: optical-flow extraction cost per clip, measured (python -m data_prep flow timing files; "
              "a timed sample for methods not run on the whole set)")
    written["network"] = write_table(
        list(network), tables_dir / "motion_inputs_network", meta=meta, command=command,
        title=f"{dataset}: network cost per clip (one view), multiply-adds (count_flops) and measured forward ms")
    written["table"] = _write(
        table, tables_dir / "motion_inputs", meta=meta, command=command,
        title=f"{dataset}, {split} split: motion inputs alone and fused with RGB, top-1 (%) mean [95 % t interval] "
              f"over seeds {seeds} (1 clip × centre crop) against end-to-end cost per clip = extraction outside the "
              "network + network")
    written["comparisons"] = write_table(
        comparisons or [{"comparison": NOT_RUN}], tables_dir / "motion_inputs_comparisons", meta=meta, command=command,
        title=f"{dataset}, {split} split: PA against the other motion inputs, top-1 difference PA − other paired by "
              "seed with its 95 % t interval (PA higher / lower when it excludes 0, not shown otherwise); "
              "cost_x_pa = the other's end-to-end cost per clip / PA's")
    written["findings"] = _write_findings(
        motion_findings(table, comparisons, ext, split), tables_dir / "motion_inputs_findings", meta=meta,
        command=command, title=f"{dataset}: PA against optical flow and RGB differences (sentences generated from "
                               "the motion-input tables)")
    written["figures"] = [plot_motion_inputs(table, out_dir / "figures" / "motion_inputs_accuracy_vs_cost.png",
                                             meta=meta, command=command, split=split, dataset=dataset)]
    return written


README_BEGIN = "<!-- tables:begin (generated by python -m pan_lib.tables --readme README.md) -->"
README_END = "<!-- tables:end -->"
README_TABLES = ("{dataset}", "{dataset}_steps", "{dataset}_ordering", "{dataset}_findings", "real_datasets")


def readme_block(out_dir: Path | str, dataset: str = "embedded", relative_to: Path | str = ".") -> str:
    """The Markdown that goes into README: the generated tables and figures of `out_dir`, verbatim."""
    out_dir = Path(out_dir)
    parts = []
    for stem in (s.format(dataset=dataset) for s in README_TABLES):
        md = out_dir / "tables" / f"{stem}.md"
        if md.is_file():
            text = md.read_text().strip().splitlines()
            if text and text[0].startswith("# "):
                text[0] = "#### " + text[0][2:]  # nest under the README's Results heading
            parts.append("\n".join(text))
    for png in sorted((out_dir / "figures").glob(f"{dataset}_*.png")):
        rel = Path(os.path.relpath(png.resolve(), Path(relative_to).resolve())).as_posix()
        parts.append(f"![{png.stem}]({rel})")
    return "\n\n".join(parts) if parts else "(no tables yet: run `make workbook`)"


def update_readme(readme: Path | str, out_dir: Path | str, dataset: str = "embedded") -> bool:
    """Replace the text between README_BEGIN and README_END in `readme`; True when it changed."""
    readme = Path(readme)
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{readme} has no generated-tables markers ({README_BEGIN} ... {README_END})")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_BEGIN}\n{readme_block(out_dir, dataset, readme.parent)}\n{README_END}{tail}"
    if new != text:
        readme.write_text(new)
    return new != text


# ------------------------------------------------------------------------------- across machines
def cross_machine_rows(reference_root: Path | str, other_root: Path | str, *,
                       split: str = "test") -> list[dict[str, Any]]:
    """The same runs (model, seed, protocol kind, `split`) recorded on two machines: one row per model with
    each machine's per-seed top-1, the per-seed differences (other - reference) and their largest size,
    and the mean with its 95 % interval on both; then an "all models" row. Runs only one side has are
    left out. The CPUs and commits of both sides go in each row, so a reader sees what else differed."""
    sides = {}
    for name, root in (("reference", reference_root), ("other", other_root)):
        sides[name] = {(r.model, r.seed): r for r in load_results(root)
                       if r.split == split and r.canonical and r.seed is not None}  # each model's own protocol
    keys = sorted(set(sides["reference"]) & set(sides["other"]))
    out, all_diffs = [], []
    for model in sorted({m for m, _ in keys}):
        seeds = [s for m, s in keys if m == model]
        ref = [sides["reference"][(model, s)] for s in seeds]
        oth = [sides["other"][(model, s)] for s in seeds]
        diffs = [o.top1 - r.top1 for r, o in zip(ref, oth)]
        all_diffs += diffs
        a, b = mean_interval([r.top1 for r in ref]), mean_interval([o.top1 for o in oth])
        out.append({"model": model, "seeds": " ".join(str(s) for s in seeds),
                    "reference top-1": " / ".join(f"{r.top1:.1f}" for r in ref),
                    "other top-1": " / ".join(f"{o.top1:.1f}" for o in oth),
                    "differences": " / ".join(f"{d:+.1f}" for d in diffs),
                    "largest |difference|": round(max(abs(d) for d in diffs), 1),
                    "identical seeds": sum(d == 0 for d in diffs),
                    "reference mean [95% CI]": fmt_interval(a), "other mean [95% CI]": fmt_interval(b),
                    "reference": f"{_short_device(ref[0])} @ {str(ref[0].provenance.get('git_sha', '?'))[:7]}",
                    "other": f"{_short_device(oth[0])} @ {str(oth[0].provenance.get('git_sha', '?'))[:7]}"})
    if all_diffs:
        out.append({"model": "all models", "seeds": "", "reference top-1": "", "other top-1": "",
                    "differences": f"mean |difference| {statistics.fmean(abs(d) for d in all_diffs):.1f}",
                    "largest |difference|": round(max(abs(d) for d in all_diffs), 1),
                    "identical seeds": sum(d == 0 for d in all_diffs), "reference mean [95% CI]": "",
                    "other mean [95% CI]": "", "reference": "", "other": ""})
    return out


def write_cross_machine(reference_root: Path | str, out_dir: Path | str, *, command: str,
                        split: str = "test") -> list[Path]:
    """`cross_machine_rows(reference_root, <out_dir>/records)` -> `<out_dir>/tables/cross_machine.*`."""
    out_dir = Path(out_dir)
    rows = cross_machine_rows(reference_root, out_dir / RECORDS_FOLDER, split=split)
    meta = provenance(config={"reference records": _rel(Path(reference_root), out_dir),
                              "other records": RECORDS_FOLDER, "split": split})
    return write_table(rows or [{"model": NOT_RUN}], out_dir / "tables" / "cross_machine",
                       title=f"The same runs on two machines: {split}-split top-1 (%) per seed", meta=meta,
                       command=command)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pan_lib.tables [RUN_ROOT] [OUT_DIR]`: copy the records under RUN_ROOT into
    OUT_DIR/records and regenerate tables and figures from them (RUN_ROOT = OUT_DIR/records:
    regenerate from the committed records alone)."""
    p = argparse.ArgumentParser(prog="python -m pan_lib.tables", description=main.__doc__)
    p.add_argument("run_root", nargs="?", default=DEFAULT_RUN_ROOT)
    p.add_argument("out_dir", nargs="?", default="results")
    p.add_argument("--dataset", default="embedded")
    p.add_argument("--split", default="auto", help="split the tables report (auto: test on embedded, else val)")
    p.add_argument("--readme", default="", help="also copy the generated tables into this README")
    p.add_argument("--readme-only", action="store_true", help="only copy existing tables into --readme")
    p.add_argument("--compare-with", default="", metavar="RECORDS",
                   help="records of the same runs from another machine: only write OUT_DIR/tables/cross_machine.* "
                        "comparing them with OUT_DIR/records (RUN_ROOT is not read)")
    args = p.parse_args(argv)
    if args.compare_with:
        command = f"python -m pan_lib.tables {args.run_root} {args.out_dir} --compare-with {args.compare_with}"
        split = reported_split(args.dataset, args.split)
        print(" ".join(str(p) for p in write_cross_machine(args.compare_with, args.out_dir, command=command,
                                                             split=split)))
        return 0
    if not args.readme_only:
        command = f"python -m pan_lib.tables {args.run_root} {args.out_dir} --dataset {args.dataset}"
        for kind, paths in write_tables(args.run_root, args.out_dir, command=command, dataset=args.dataset,
                                        split=args.split).items():
            print(kind, len(paths) if kind == "records" else " ".join(str(p) for p in paths))
    if args.readme:
        changed = update_readme(args.readme, args.out_dir, args.dataset)
        print(f"{args.readme}: {'updated' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
