"""Run the notebook series headless with papermill: ``python -m pan_lib.workbook``.

::

    notebooks/01_data_prep.ipynb ──► 02_pa_visualisation ──► 03_train_lite ──► 03_train_full
                                                                               │
                                       05_result_tables ◄── 06_motion_inputs ◄── 04_ensemble_en
    results/notebooks/<name>.ipynb  ◄── executed copies
    results/notebooks/timings.*     ◄── wall time per notebook

05_result_tables runs last: it copies the records of every notebook before it into results/records
(06_motion_inputs writes its own motion_inputs tables first, and adds its records there).

Every notebook declares one ``parameters`` cell; this runner passes each notebook only the
parameters it declares (``dataset``, ``data_root``, ``recipe``, ``small``, ``seeds``, ``device``,
``progress`` ...), plus ``--set NAME=VALUE`` overrides. A failing notebook keeps its executed copy
(with the traceback in the failing cell) and stops the series, because later notebooks read what
earlier ones wrote.

Examples::

    python -m pan_lib.workbook                                   # embedded dataset, 3 seeds -> results/
    python -m pan_lib.workbook --small --out /tmp/wb             # CI smoke: tiny dataset, 1 epoch
    python -m pan_lib.workbook --dataset sthv2 --data-root /data/sthv2 --recipe official
    python -m pan_lib.workbook --only 03_train_lite --set epochs=2
    python -m pan_lib.workbook --list                            # the series and its parameters
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from pan_lib.data.registry import get_dataset_info
from pan_lib.engine.config import RENAMED_FIELDS
from pan_lib.engine.config import parse_override as parse_set_pair
from pan_lib.engine.recipes import RECIPES  # "auto": embedded recipe on the embedded dataset, official on real ones
from pan_lib.notebook.datasets import resolve_data_root
from pan_lib.notebook.environment import HEADLESS_ENV  # set for the kernel: notebooks know they run headless
from pan_lib.provenance import REPO_ROOT, path_anchors, portable, portable_text, provenance, write_table

log = logging.getLogger(__name__)

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
# Training seeds of `make workbook` (each model once per seed; the tables' intervals are over these).
# Estimated from the 3-seed run's results/notebooks/timings.md: ~290 s of a 2-core CPU per seed (five
# trainings, ten evaluations) plus ~80 s fixed, so 3 seeds fit the 20-minute budget and 5 need a
# faster epoch loop (~200 s per seed); check timings.md after changing it. 06_motion_inputs adds three
# trainings per seed (Flow on DIS and on Farneback, RGBDiff: ~45-55 s each for 10 epochs on a quiet
# 2-core CPU, measured at 2 epochs) plus ~50 s of flow extraction and timing.
DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2)
SERIES: tuple[str, ...] = (
    "01_data_prep",
    "02_pa_visualisation",
    "03_train_lite",
    "03_train_full",
    "04_ensemble_en",
    "06_motion_inputs",
    "05_result_tables",
)


def default_run_root(out_dir: Path) -> Path:
    """Where runs and checkpoints go when no run root is given: `runs/<out>` in the repository for an
    output folder inside it (`results` -> `runs/results`), else `<out>_runs` beside it. Never inside the
    output folder: run records and checkpoints hold the absolute paths that resuming and the evaluation
    cache need, and the output folder is what gets committed."""
    out_dir = Path(out_dir).resolve()
    try:
        return REPO_ROOT / "runs" / out_dir.relative_to(REPO_ROOT)
    except ValueError:
        return out_dir.parent / f"{out_dir.name}_runs"


@dataclass
class WorkbookConfig:
    """What `python -m pan_lib.workbook` runs. Field names mirror the notebooks' parameters."""

    dataset: str = "embedded"
    data_root: str = ""            # "" -> data/<dataset> in the repository
    recipe: str = "auto"           # "auto" | "embedded" (CPU tutorial sizes) | "official" (paper recipes, GPU)
    small: bool = False            # CI smoke mode: tiny dataset, 1 epoch
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    device: str = "auto"           # "auto" | "cpu" | "cuda" | "cuda:1" ...
    num_workers: int = -1          # -1 -> the notebooks' default for the device
    nproc_per_node: int = 1        # >1 -> training through torchrun (engine's DDP path)
    out: str = ""                  # "" -> results/ (small mode: .cache/workbook-small/, never committed)
    run_root: str = ""             # "" -> default_run_root(out): runs/<out> (checkpoints, never committed)
    only: tuple[str, ...] = ()     # subset of SERIES (names or unique prefixes); () -> all
    overrides: dict[str, Any] = field(default_factory=dict)   # --set NAME=VALUE
    keep_going: bool = False       # run later notebooks after a failure
    kernel: str = "python3"
    cell_timeout: int = -1         # seconds per cell; -1 -> no limit
    notebook_dir: str = ""         # "" -> notebooks/ of this checkout
    readme: bool = False           # 05_result_tables copies the tables into README.md

    def __post_init__(self) -> None:
        # unknown name -> ValueError listing the valid ones; a custom name is known through its prepared folder
        get_dataset_info(self.dataset, resolve_data_root(self.dataset, self.data_root or None, self.small))
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; valid: {', '.join(RECIPES)}")
        if self.recipe == "official" and self.dataset == "embedded":
            raise ValueError("recipe 'official' needs a real dataset (e.g. --dataset sthv2 --data-root ...); "
                             "the embedded dataset uses recipe 'embedded'")
        self.seeds = tuple(int(s) for s in self.seeds)
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        self.only = tuple(select_notebooks(self.only)) if self.only else ()

    @property
    def source_dir(self) -> Path:
        return _abs(self.notebook_dir) if self.notebook_dir else NOTEBOOK_DIR

    @property
    def out_dir(self) -> Path:
        if self.out:
            return _abs(self.out)
        return REPO_ROOT / (".cache/workbook-small" if self.small else "results")

    @property
    def notebooks_out(self) -> Path:
        return self.out_dir / "notebooks"

    def notebook_parameters(self) -> dict[str, Any]:
        """The parameters every notebook may declare (each gets the ones it declares)."""
        # one explicit data folder for every notebook (small mode: data/embedded_tiny, never data/embedded)
        data_root = _abs(self.data_root) if self.data_root else resolve_data_root(self.dataset, "", self.small)
        params: dict[str, Any] = {
            "dataset": self.dataset,
            "data_root": str(data_root),
            "recipe": self.recipe,
            "small": self.small,
            "seeds": list(self.seeds),   # training seeds (not the embedded generator's `seed`)
            "device": self.device,
            "progress": "text",
            "results_dir": str(self.out_dir),
            "run_root": str(_abs(self.run_root)) if self.run_root else str(default_run_root(self.out_dir)),
            "nproc_per_node": self.nproc_per_node,
            "update_readme": self.readme,
        }
        if self.num_workers >= 0:
            params["num_workers"] = self.num_workers
        return params


@dataclass
class NotebookRun:
    """One executed notebook: where its copy is, how long it took, and how it ended."""

    name: str
    output: Path
    seconds: float
    status: str                    # "ok" | "failed" | "skipped"
    parameters: dict[str, Any]
    error: str = ""


class WorkbookError(RuntimeError):
    """A notebook of the series failed; the message names it, its failing cell and the kept copy."""


def _abs(path: str | Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (Path.cwd() / p).resolve()


def notebook_path(name: str, folder: Path = NOTEBOOK_DIR) -> Path:
    return folder / f"{name}.ipynb"


def select_notebooks(names: Sequence[str]) -> list[str]:
    """Resolve names or unique prefixes ('03_train_l', '05') to series names, in series order."""
    chosen: set[str] = set()
    for name in names:
        name = Path(name).stem  # accept 'notebooks/03_train_lite.ipynb'
        hits = [s for s in SERIES if s == name] or [s for s in SERIES if s.startswith(name)]
        if len(hits) != 1:
            why = "matches several" if hits else "matches none"
            raise ValueError(f"notebook {name!r} {why} of the series; valid: {', '.join(SERIES)}")
        chosen.add(hits[0])
    return [s for s in SERIES if s in chosen]


def declared_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """The parameters a notebook declares in its `parameters` cell (papermill's own parser)."""
    import papermill as pm

    return pm.inspect_notebook(str(path))


def spellings(name: str) -> set[str]:
    """A parameter's names: itself, its canonical name and the old spellings of that
    (`pan_lib.engine.config.RENAMED_FIELDS`): 'segments' <-> 'num_segments'."""
    canonical = RENAMED_FIELDS.get(name, name)
    return {name, canonical} | {old for old, new in RENAMED_FIELDS.items() if new == canonical}


def parameters_for(path: Path, cfg: WorkbookConfig) -> dict[str, Any]:
    """The common parameters this notebook declares, plus the --set overrides it declares (under
    any spelling of the name: `--set segments=4` reaches a notebook that declares `num_segments`)."""
    declared = declared_parameters(path)
    params = {k: v for k, v in cfg.notebook_parameters().items() if k in declared}
    for key, value in cfg.overrides.items():
        params.update({name: value for name in spellings(key) if name in declared})
    return params


def check_overrides(cfg: WorkbookConfig, names: Sequence[str]) -> None:
    """Every --set NAME must be declared (under some spelling) by at least one notebook that runs
    (else list the valid ones)."""
    declared: set[str] = set()
    for name in names:
        path = notebook_path(name, cfg.source_dir)
        if path.is_file():
            declared |= set(declared_parameters(path))
    unknown = sorted(k for k in cfg.overrides if not spellings(k) & declared)
    if unknown:
        raise ValueError(f"unknown notebook parameter(s) {', '.join(unknown)}; the notebooks that run "
                         f"declare: {', '.join(sorted(declared))}")


def parse_override(text: str) -> tuple[str, Any]:
    """'epochs=3' -> ('epochs', 3): the `--set` reader shared with the CLIs (`engine.config.parse_override`:
    Python literals, YAML with only true/false as booleans, otherwise strings such as 'off')."""
    try:
        return parse_set_pair(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _short_error(exc: BaseException) -> str:
    """One paragraph for a papermill failure: cell number, exception and message."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return f"cell In [{exc.exec_count}] raised {exc.ename}: {exc.evalue}"
    return f"{type(exc).__name__}: {exc}"


def run_notebook(name: str, cfg: WorkbookConfig) -> NotebookRun:
    """Execute one notebook of the series with papermill; the executed copy is kept even on failure."""
    import papermill as pm

    src = notebook_path(name, cfg.source_dir)
    out = cfg.notebooks_out / f"{name}.ipynb"
    if not src.is_file():
        return NotebookRun(name, out, 0.0, "failed", {}, f"{src} is missing from the checkout")
    out.parent.mkdir(parents=True, exist_ok=True)
    params = parameters_for(src, cfg)
    log.info("running %s with %s", name, params)
    start = time.perf_counter()
    status, error = "ok", ""
    old_env = os.environ.get(HEADLESS_ENV)
    os.environ[HEADLESS_ENV] = "1"  # inherited by the kernel process papermill starts
    try:
        pm.execute_notebook(
            str(src), str(out), parameters=params, kernel_name=cfg.kernel, cwd=str(src.parent),
            progress_bar=False, log_output=False,
            execution_timeout=None if cfg.cell_timeout < 0 else cfg.cell_timeout,
        )
    except Exception as exc:  # papermill has written `out` with the traceback in the failing cell
        status, error = "failed", _short_error(exc)
    finally:
        if old_env is None:
            os.environ.pop(HEADLESS_ENV, None)
        else:
            os.environ[HEADLESS_ENV] = old_env
    seconds = time.perf_counter() - start
    if out.is_file():
        _trim_notebook(out, anchors=committed_path_anchors(cfg))
    return NotebookRun(name, out, seconds, status, params, error)


def committed_path_anchors(cfg: WorkbookConfig) -> dict[str, str]:
    """How absolute folders are written in the series' outputs (`pan_lib.provenance.path_anchors`):
    relative to the repository, else `<results>`, `<run_root>`, `<data_root>`, `<python>`, `~`."""
    params = cfg.notebook_parameters()
    return path_anchors(results=cfg.out_dir, run_root=params["run_root"], data_root=params["data_root"],
                        notebooks=cfg.source_dir)


def _trim_notebook(path: Path, max_text: int = 20_000, anchors: dict[str, str] | None = None) -> None:
    """Keep executed copies small and portable: drop widget state, truncate very long text outputs,
    and write absolute paths in sources and outputs as `anchors` say (`committed_path_anchors`)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    nb.metadata.pop("widgets", None)
    if anchors:
        nb.metadata = portable(nb.metadata, anchors)
    for cell in nb.cells:
        if anchors:
            cell.source = portable_text(cell.source, anchors)
            for output in cell.get("outputs", []):
                for key in ("text", "data", "evalue", "traceback"):
                    if key in output:
                        output[key] = portable(output[key], anchors)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and len(output.get("text", "")) > max_text:
                text = output["text"]
                output["text"] = (text[: max_text // 2] + f"\n... [{len(text) - max_text} characters "
                                  "trimmed by pan_lib.workbook] ...\n" + text[-max_text // 2:])
    nbformat.write(nb, str(path))


def run_workbook(cfg: WorkbookConfig) -> list[NotebookRun]:
    """Run the series (or `cfg.only`) in order; write timings with provenance; raise on failure."""
    names = list(cfg.only or SERIES)
    check_overrides(cfg, names)
    runs: list[NotebookRun] = []
    failed: NotebookRun | None = None
    for name in names:
        if failed is not None and not cfg.keep_going:
            runs.append(NotebookRun(name, cfg.notebooks_out / f"{name}.ipynb", 0.0, "skipped", {},
                                    f"not run: {failed.name} failed"))
            continue
        run = run_notebook(name, cfg)
        log.info("%s: %s in %.1f s", name, run.status, run.seconds)
        print(f"[workbook] {name:<22} {run.status:<7} {run.seconds:7.1f} s  -> {run.output}", flush=True)
        runs.append(run)
        if run.status == "failed" and failed is None:
            failed = run
            print(f"[workbook] {name} failed: {run.error}\n[workbook] the executed copy with the "
                  f"traceback is kept at {run.output}", file=sys.stderr, flush=True)
    write_timings(runs, cfg)
    if failed is not None:
        raise WorkbookError(f"{failed.name} failed ({failed.error}); executed copy kept at {failed.output}")
    return runs


def write_timings(runs: Sequence[NotebookRun], cfg: WorkbookConfig) -> list[Path]:
    """results/notebooks/timings.{csv,md,json}: wall time per notebook and in total."""
    anchors = committed_path_anchors(cfg)
    rows = [{"notebook": r.name, "status": r.status, "seconds": round(r.seconds, 1),
             "output": os.path.relpath(r.output, cfg.out_dir), "error": portable_text(r.error, anchors)} for r in runs]
    rows.append({"notebook": "TOTAL", "status": "ok" if all(r.status == "ok" for r in runs) else "failed",
                 "seconds": round(sum(r.seconds for r in runs), 1), "output": "", "error": ""})
    config = portable(dataclasses.asdict(cfg), anchors)
    meta = provenance(config=config, device=None if cfg.device == "auto" else cfg.device)
    return write_table(rows, cfg.notebooks_out / "timings", title="Notebook series: wall time per notebook",
                       meta=meta, command=portable_text(command_line(), anchors))


def command_line() -> str:
    # our own arguments only (`python -m pan_lib.workbook ...`), not those of a host such as pytest
    ours = Path(sys.argv[0]).name == "workbook.py" or Path(sys.argv[0]).parent.name == "pan_lib"
    argv = sys.argv[1:] if ours else []
    return "python -m pan_lib.workbook" + "".join(f" {a}" for a in argv)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pan_lib.workbook",
                                description="Run the PAN notebook series headless (papermill).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = WorkbookConfig()
    p.add_argument("--dataset", default=d.dataset, help="embedded | sthv1 | sthv2 | kinetics400 | ucf101 | hmdb51 | jester")
    p.add_argument("--data-root", default=d.data_root, help="prepared dataset folder ('' -> data/<dataset>)")
    p.add_argument("--recipe", default=d.recipe, choices=RECIPES)
    p.add_argument("--small", action=argparse.BooleanOptionalAction, default=d.small,
                   help="CI smoke mode: tiny dataset, 1 epoch")
    p.add_argument("--seeds", type=int, nargs="+", default=list(d.seeds))
    p.add_argument("--device", default=d.device)
    p.add_argument("--num-workers", type=int, default=d.num_workers)
    p.add_argument("--nproc-per-node", type=int, default=d.nproc_per_node,
                   help="GPUs per node; >1 trains through torchrun (DDP)")
    p.add_argument("--out", default=d.out, help="results folder ('' -> results/, small: .cache/workbook-small/)")
    p.add_argument("--run-root", default=d.run_root, help="where runs/checkpoints go ('' -> runs/<out>)")
    p.add_argument("--only", nargs="+", default=[], metavar="NOTEBOOK", help="run only these (names or prefixes)")
    p.add_argument("--set", dest="overrides", type=parse_override, action="append", default=[],
                   metavar="NAME=VALUE", help="override a notebook parameter (Python literal)")
    p.add_argument("--keep-going", action=argparse.BooleanOptionalAction, default=d.keep_going)
    p.add_argument("--readme", action=argparse.BooleanOptionalAction, default=d.readme,
                   help="copy the generated tables into README.md (section Results)")
    p.add_argument("--kernel", default=d.kernel)
    p.add_argument("--cell-timeout", type=int, default=d.cell_timeout)
    p.add_argument("--list", action="store_true", help="print the series and each notebook's parameters, then exit")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.list:
        for name in SERIES:
            params = declared_parameters(notebook_path(name))
            print(f"{name}: " + ", ".join(f"{k}={v['default']}" for k, v in params.items()))
        return 0
    try:
        cfg = WorkbookConfig(dataset=args.dataset, data_root=args.data_root, recipe=args.recipe,
                             small=args.small, seeds=tuple(args.seeds), device=args.device,
                             num_workers=args.num_workers, nproc_per_node=args.nproc_per_node,
                             out=args.out, run_root=args.run_root, only=tuple(args.only),
                             overrides=dict(args.overrides), keep_going=args.keep_going,
                             kernel=args.kernel, cell_timeout=args.cell_timeout, readme=args.readme)
        start = time.perf_counter()
        runs = run_workbook(cfg)
    except (ValueError, FileNotFoundError, WorkbookError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"[workbook] {len(runs)} notebooks in {time.perf_counter() - start:.1f} s; "
          f"executed copies in {cfg.notebooks_out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
