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


def setup_notebook(threads: int | None = None, level: int = logging.INFO) -> None:
    """Log INFO from pan_lib to the cell output, a fixed thread count on CPU, quiet matplotlib."""
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
