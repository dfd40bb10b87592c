"""Where a notebook runs: headless or in Jupyter, which device, which folder, which seeds.

- `is_headless()` / `resolve_progress()`: papermill runs get plain-text progress (tqdm's widget bar
  stalls or floods the log under papermill, nteract/papermill#617 and #765).
- `repo_path()`: parameters hold paths relative to the repository, whichever folder the kernel
  started in (Jupyter starts it in notebooks/, papermill wherever `cwd` says).
- `as_seeds()`: `seeds` may arrive as a list, one int, or a string from `papermill -p seeds 0,1,2`.
- `pick_device()`: the engine's device resolution (`pan_lib.engine.distributed.resolve_device`) as a string.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable

import torch

from pan_lib.engine.distributed import resolve_device
from pan_lib.provenance import REPO_ROOT

HEADLESS_ENV = "PAN_WORKBOOK_HEADLESS"
PROGRESS_CHOICES = ("auto", "text", "off")


def is_headless() -> bool:
    """True under `pan_lib.workbook`/papermill (or PAN_WORKBOOK_HEADLESS=1), or outside any kernel."""
    if os.environ.get(HEADLESS_ENV, "") not in ("", "0"):
        return True
    if os.environ.get("PAPERMILL_INPUT_PATH") or os.environ.get("PAPERMILL_OUTPUT_PATH"):
        return True  # `papermill --inject-paths`
    return "ipykernel" not in sys.modules


def resolve_progress(progress: str = "auto") -> str:
    """'auto' -> 'text' when headless (papermill), else 'auto' (tqdm picks the widget bar)."""
    if progress not in PROGRESS_CHOICES:
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
    """The device as a string: 'auto' -> 'cuda:0' when a GPU is visible, else 'cpu' (the engine's rule)."""
    return str(resolve_device(device))


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
        torch.set_num_threads(threads)
