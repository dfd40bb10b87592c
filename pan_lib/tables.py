"""Result tables and plots generated from run records — never typed by hand.

::

    <run_root>/**/record.json ──► load_results() ──► [ResultRow]   (one per model × seed × dataset)
                                                        │
                       aggregate(): mean ± spread over seeds per (dataset, model, backbone)
                                                        │
            ┌───────────────────────────────────────────┼──────────────────────────────┐
    embedded_table()  -> tables/embedded.{csv,md,json}   real_datasets_table()   plot_embedded()
    TSN, TSM, PAN_Lite, PAN_Full, PAN_En                 paper beside ours       figures/*.png

The paper's numbers (`PAPER_RESULTS`) are reference data transcribed from the official code's README
(see `PAPER_SOURCE`); every other number comes from a `record.json` written by `pan_lib.engine`.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pan_lib.engine.records import SCHEMA, find_records
from pan_lib.ensemble import model_name
from pan_lib.provenance import provenance, write_table

log = logging.getLogger(__name__)

# Row order of the embedded table and the names used everywhere in results/.
EMBEDDED_MODELS: tuple[str, ...] = ("TSN", "TSM", "PAN_Lite", "PAN_Full", "PAN_En")
NOT_RUN = "not run"

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
    provenance: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Aggregate:
    """Mean and spread over seeds of one (dataset, model, backbone)."""

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

    @property
    def n(self) -> int:
        return len(self.seeds)


# ----------------------------------------------------------------------------------------- reading
def protocol_label(record: Mapping[str, Any]) -> str:
    """'1crop×1clip@64' / '1crop×2clip@72 full-res' — the test protocol of an evaluation record."""
    p = record.get("protocol") or {}
    label = f"{p.get('crops', 1)}crop×{p.get('clips', 1)}clip@{p.get('input_size', '?')}"
    return label + (" full-res" if p.get("full_res") else "")


def is_canonical(model: str, record: Mapping[str, Any]) -> bool:
    """The paper's protocol for this model: PAN_En = 2 clips × 1 crop at full resolution, others 1 × 1."""
    p = record.get("protocol") or {}
    if model == "PAN_En":
        return bool(p.get("full_res")) and p.get("clips", 1) == 2 and p.get("crops", 1) == 1
    return not p.get("full_res") and p.get("clips", 1) == 1 and p.get("crops", 1) == 1


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
    return ResultRow(
        dataset=str(record.get("dataset", "?")),
        model=str(record.get("model") or model_name(str(record.get("modality", "?")))),
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
        canonical=is_canonical(str(record.get("model")), record),
        num_videos=metrics.get("num_videos"),
        provenance=dict(record.get("provenance") or {}),
    )


def load_results(root: Path | str, kinds: Sequence[str] = ("eval",)) -> list[ResultRow]:
    """Every completed record of `kinds` under `root` (`pan_lib.engine.records.find_records`), sorted by
    path; unreadable records are logged and skipped."""
    records = sorted((rec for kind in kinds for rec in find_records(root, kind=kind)), key=lambda r: r["path"])
    rows = [row_from_record(rec, rec["path"], kinds) for rec in records]
    return [row for row in rows if row is not None]


# ------------------------------------------------------------------------------------- aggregating
def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def _median_or_none(values: Iterable[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def aggregate(rows: Sequence[ResultRow]) -> list[Aggregate]:
    """Group by (dataset, model, backbone, protocol); one row per seed (the later record wins)."""
    groups: dict[tuple[str, str, str, str], dict[Any, ResultRow]] = {}
    for row in rows:
        per_seed = groups.setdefault((row.dataset, row.model, row.backbone, row.protocol), {})
        per_seed[row.seed] = row  # sorted paths: later records replace earlier ones for a seed
    out = []
    for (dataset, model, backbone, protocol), per_seed in groups.items():
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
            canonical=all(r.canonical for r in members)))
    order = {m: i for i, m in enumerate(EMBEDDED_MODELS)}
    return sorted(out, key=lambda a: (a.dataset, order.get(a.model, 99), a.model, a.backbone, a.protocol))


def pick(aggregates: Sequence[Aggregate], dataset: str, model: str, backbone: str | None = None) -> Aggregate | None:
    """The table's entry for a model: the paper's protocol first, then the most seeds."""
    cands = [a for a in aggregates if a.dataset == dataset and a.model == model
             and (backbone is None or a.backbone == backbone)]
    return max(cands, key=lambda a: (a.canonical, a.n), default=None)


# -------------------------------------------------------------------------------------- formatting
def fmt_mean_std(mean: float, std: float, n: int) -> str:
    return f"{mean:.1f} ± {std:.1f}" if n > 1 else f"{mean:.1f}"


def fmt_flops(gflops: float | None, views: int) -> str:
    if gflops is None:
        return "?"
    digits = 2 if gflops < 10 else 1
    return f"{gflops:.{digits}f}G × {views}"


def _num(value: float | None, digits: int) -> float | str:
    return "" if value is None else round(float(value), digits)


def embedded_rows(aggregates: Sequence[Aggregate], dataset: str = "embedded") -> list[dict[str, Any]]:
    """The embedded table: TSN, TSM, PAN_Lite, PAN_Full, PAN_En ('not run' rows where missing)."""
    rows = []
    for model in EMBEDDED_MODELS:
        a = pick(aggregates, dataset, model)
        if a is None:
            rows.append({"model": model, "backbone": "", "seeds": 0, "top1_%": NOT_RUN, "top5_%": NOT_RUN,
                         "flops_x_views": "", "params_M": "", "clips_per_s": "", "protocol": "",
                         "top1_mean": "", "top1_std": "", "top5_mean": "", "top5_std": ""})
            continue
        rows.append({
            "model": model, "backbone": a.backbone, "seeds": a.n,
            "top1_%": fmt_mean_std(a.top1_mean, a.top1_std, a.n),
            "top5_%": fmt_mean_std(a.top5_mean, a.top5_std, a.n),
            "flops_x_views": fmt_flops(a.gflops_per_view, a.views),
            "params_M": _num(a.params_m, 3), "clips_per_s": _num(a.clips_per_s, 1), "protocol": a.protocol,
            "top1_mean": round(a.top1_mean, 2), "top1_std": round(a.top1_std, 2),
            "top5_mean": round(a.top5_mean, 2), "top5_std": round(a.top5_std, 2),
        })
    return rows


def real_dataset_rows(aggregates: Sequence[Aggregate]) -> list[dict[str, Any]]:
    """The paper's numbers beside ours for SSv1/SSv2 (and any other real dataset we ran)."""
    rows, used = [], set()
    for p in PAPER_RESULTS:
        a = pick(aggregates, p.dataset, p.model, p.backbone)
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
            "paper_source": PAPER_SOURCE,
        })
    for a in aggregates:
        if a.dataset == "embedded" or id(a) in used or a.model not in EMBEDDED_MODELS:
            continue  # single streams (PAN_RGB, PAN_PA) are parts of Full/En, not rows of their own
        if a is not pick(aggregates, a.dataset, a.model, a.backbone):
            continue
        rows.append({
            "dataset": a.dataset, "model": a.model, "backbone": a.backbone, "paper_flops_x_views": "",
            "paper_top1": "", "paper_top5": "",
            "our_top1": fmt_mean_std(a.top1_mean, a.top1_std, a.n),
            "our_top5": fmt_mean_std(a.top5_mean, a.top5_std, a.n), "our_seeds": a.n,
            "our_flops_x_views": fmt_flops(a.gflops_per_view, a.views), "our_protocol": a.protocol,
            "paper_source": "no number in the official release",
        })
    return rows


PAPER_ORDER = (("TSN", "<", "TSM"), ("TSM", "<", "PAN_Lite"), ("PAN_Lite", "<=", "PAN_Full"),
               ("PAN_Full", "<=", "PAN_En"))


def ordering_report(aggregates: Sequence[Aggregate], dataset: str = "embedded") -> list[dict[str, Any]]:
    """Does the paper's ordering TSN < TSM < Lite <= Full <= En hold here, and is each gap larger
    than the noise? A gap counts as 'clear' when it exceeds the two models' sample stds combined
    (sqrt(s1^2 + s2^2)); with 3 seeds this is a rough guide, not a significance test."""
    out = []
    for left, op, right in PAPER_ORDER:
        a, b = pick(aggregates, dataset, left), pick(aggregates, dataset, right)
        if a is None or b is None:
            out.append({"claim": f"{left} {op} {right}", "gap_top1": "", "noise": "", "verdict": NOT_RUN})
            continue
        gap = b.top1_mean - a.top1_mean
        noise = math.hypot(a.top1_std, b.top1_std)
        if gap > noise and gap > 0:
            verdict = "holds (clear)"
        elif gap > 0 or (op == "<=" and gap == 0):
            verdict = "holds (within noise)"
        elif -gap <= noise:
            verdict = "reversed (within noise)"
        else:
            verdict = "reversed (clear)"
        out.append({"claim": f"{left} {op} {right}", "gap_top1": round(gap, 2), "noise": round(noise, 2),
                    "verdict": verdict})
    return out


# ----------------------------------------------------------------------------------------- writing
def _table_meta(rows: Sequence[ResultRow], root: Path) -> dict[str, Any]:
    """Provenance of a table: this process, plus the git shas / devices of the records it reads."""
    meta = provenance(config={"run_root": str(root)})
    meta["records"] = sorted({r.source for r in rows})
    meta["record_git_shas"] = sorted({str(r.provenance.get("git_sha", "?")) for r in rows})
    meta["record_devices"] = sorted({str((r.provenance.get("device") or {}).get("cuda_device")
                                         or (r.provenance.get("device") or {}).get("cpu", "?")) for r in rows})
    return meta


MD_HIDDEN = ("top1_mean", "top1_std", "top5_mean", "top5_std")  # in CSV/JSON for plotting, not in Markdown


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


def write_tables(run_root: Path | str, out_dir: Path | str, *, command: str,
                 dataset: str = "embedded") -> dict[str, list[Path]]:
    """Read every record under `run_root`; write tables (csv/md/json) and figures (png) to `out_dir`."""
    run_root, out_dir = Path(run_root), Path(out_dir)
    rows = load_results(run_root)
    aggregates = aggregate(rows)
    meta = _table_meta(rows, run_root)
    written: dict[str, list[Path]] = {}
    seeds = sorted({s for a in aggregates if a.dataset == dataset for s in a.seeds}, key=str)
    written["embedded"] = _write(
        embedded_rows(aggregates, dataset), out_dir / "tables" / dataset,
        title=f"{dataset} dataset: top-1/top-5 (%) mean ± sample std over seeds {seeds}; "
              "FLOPs = multiply-adds per view × views; clips/s measured at inference",
        meta=meta, command=command)
    written["real_datasets"] = _write(
        real_dataset_rows(aggregates), out_dir / "tables" / "real_datasets",
        title="Real datasets: the paper's numbers beside ours ('not run' where we have not run them)",
        meta=meta, command=command)
    written["per_seed"] = _write(
        [{k: v for k, v in asdict(r).items() if k != "provenance"} for r in rows] or [{"records": NOT_RUN}],
        out_dir / "tables" / "per_seed", title="Every evaluation the tables are built from (one row per record)",
        meta=meta, command=command)
    written["ordering"] = write_table(
        ordering_report(aggregates, dataset), out_dir / "tables" / f"{dataset}_ordering",
        title=f"{dataset}: does the paper's ordering TSN < TSM < PAN_Lite <= PAN_Full <= PAN_En hold? "
              "(gap = difference of mean top-1; noise = sqrt(std1^2 + std2^2) over seeds)",
        meta=meta, command=command)
    figures = plot_embedded(aggregates, rows, out_dir / "figures", dataset=dataset, meta=meta, command=command)
    written["figures"] = figures
    return written


def _save_figure(fig, path: Path, footer: str, png_meta: Mapping[str, str]) -> Path:
    """Stamp the provenance footer, save as PNG with the same provenance in its metadata, close."""
    import matplotlib.pyplot as plt

    fig.text(0.01, 0.005, footer, fontsize=6, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110, metadata=dict(png_meta))
    plt.close(fig)
    return path


def plot_embedded(aggregates: Sequence[Aggregate], rows: Sequence[ResultRow], out_dir: Path | str, *,
                  dataset: str, meta: Mapping[str, Any], command: str) -> list[Path]:
    """Two PNGs: top-1 per model (mean ± std, seeds as dots) and top-1 against FLOPs and clips/s."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    found = [a for a in (pick(aggregates, dataset, m) for m in EMBEDDED_MODELS) if a is not None]
    footer = (f"{command} · git {meta.get('git_sha', '?')} · torch {meta.get('packages', {}).get('torch', '?')}"
              f" · {(meta.get('device') or {}).get('cpu', '?')}")
    png_meta = {"Title": f"PAN workbook results ({dataset})", "Source": footer,
                "Description": json.dumps({"records": meta.get("records", [])})[:4000]}
    paths = []

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    if found:
        x = range(len(found))
        ax.bar(x, [a.top1_mean for a in found], yerr=[a.top1_std for a in found], capsize=4,
               color="#8fb3d9", edgecolor="#33507a")
        for i, a in enumerate(found):
            ys = [r.top1 for r in rows if r.source in a.sources]
            ax.plot([i] * len(ys), ys, "o", color="#1b2f4d", ms=3.5, zorder=3)
        ax.set_xticks(list(x), [f"{a.model}\n(n={a.n})" for a in found])
    else:
        ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("top-1 (%)")
    ax.set_title(f"{dataset}: top-1 per model, mean ± std over seeds (dots = seeds)", fontsize=10)
    paths.append(_save_figure(fig, out_dir / f"{dataset}_top1.png", footer, png_meta))

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, attr, label in ((axes[0], "gflops_total", "GFLOPs × views (multiply-adds)"),
                            (axes[1], "clips_per_s", "measured clips/s (inference)")):
        for a in found:
            value = (a.gflops_per_view * a.views if a.gflops_per_view is not None else None) \
                if attr == "gflops_total" else a.clips_per_s
            if value is None or not math.isfinite(value):
                continue
            ax.errorbar(value, a.top1_mean, yerr=a.top1_std, fmt="o", capsize=3)
            ax.annotate(a.model, (value, a.top1_mean), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 (%)")
    fig.suptitle(f"{dataset}: accuracy against cost", fontsize=10)
    paths.append(_save_figure(fig, out_dir / f"{dataset}_accuracy_vs_cost.png", footer, png_meta))
    return paths


README_BEGIN = "<!-- tables:begin (generated by python -m pan_lib.tables --readme README.md) -->"
README_END = "<!-- tables:end -->"


def readme_block(out_dir: Path | str, dataset: str = "embedded", relative_to: Path | str = ".") -> str:
    """The Markdown that goes into README: the generated tables and figures of `out_dir`, verbatim."""
    out_dir = Path(out_dir)
    parts = []
    for stem in (dataset, f"{dataset}_ordering", "real_datasets"):
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


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pan_lib.tables [RUN_ROOT] [OUT_DIR]`: regenerate tables and figures from records."""
    p = argparse.ArgumentParser(prog="python -m pan_lib.tables", description=main.__doc__)
    p.add_argument("run_root", nargs="?", default="results/runs")
    p.add_argument("out_dir", nargs="?", default="results")
    p.add_argument("--dataset", default="embedded")
    p.add_argument("--readme", default="", help="also copy the generated tables into this README")
    p.add_argument("--readme-only", action="store_true", help="only copy existing tables into --readme")
    args = p.parse_args(argv)
    if not args.readme_only:
        command = f"python -m pan_lib.tables {args.run_root} {args.out_dir} --dataset {args.dataset}"
        for kind, paths in write_tables(args.run_root, args.out_dir, command=command, dataset=args.dataset).items():
            print(kind, *[str(p) for p in paths])
    if args.readme:
        changed = update_readme(args.readme, args.out_dir, args.dataset)
        print(f"{args.readme}: {'updated' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
