"""Progress bars that behave in a terminal, in JupyterLab and under papermill.

`progress="auto"` picks a tqdm widget bar in a live Jupyter front end, a console bar in a terminal,
and plain text lines otherwise (papermill/nbclient, CI logs, pipes) — the widget bar stalls under
papermill (nteract/papermill#617) and `\\r` bars turn into one line per update in logs (#765).
`"text"` forces the text lines, `"off"` prints nothing. The environment variable `PAN_PROGRESS`
overrides "auto".
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

from tqdm import tqdm

log = logging.getLogger(__name__)
T = TypeVar("T")

_LIVE_FRONTENDS = ("jupyter-lab", "jupyter-notebook", "jupyter_server", "jupyter-server", "jupyterlab",
                   "notebook", "voila", "vscode", "code", "colab", "pycharm")
_HEADLESS = ("papermill", "nbclient", "nbconvert", "nbmake", "pytest", "pan_lib.workbook")


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - any failure means "not a kernel"
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def _parent_cmdline() -> str:
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").lower()


def resolve_mode(mode: str = "auto") -> str:
    """'widget' | 'console' | 'text' | 'off' for a requested mode."""
    if mode not in ("auto", "text", "off"):
        raise ValueError(f"progress={mode!r}; valid: auto, text, off")
    if mode == "auto":
        mode = os.environ.get("PAN_PROGRESS", "auto")
    if mode in ("text", "off"):
        return mode
    if _in_kernel():
        parent = _parent_cmdline()
        if any(h in parent for h in _HEADLESS):
            return "text"
        return "widget" if any(f in parent for f in _LIVE_FRONTENDS) else "text"
    return "console" if sys.stderr.isatty() else "text"


class TextProgress:
    """A bar that writes a log line at most every `interval` seconds (and at the end)."""

    def __init__(self, iterable: Iterable[T] | None, total: int | None, desc: str, interval: float) -> None:
        self.iterable, self.desc, self.interval = iterable, desc, interval
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.n, self.start = 0, time.perf_counter()
        self.last_print = self.start
        self.postfix: dict[str, Any] = {}
        self._closed = False

    def __iter__(self) -> Iterator[T]:
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self.last_print >= self.interval:
            self.last_print = now
            self._emit()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = values

    def close(self) -> None:
        if self.n and not self._closed:
            self._emit(final=True)
        self._closed = True
        self.iterable = None

    def _emit(self, final: bool = False) -> None:
        elapsed = time.perf_counter() - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        total = f"/{self.total}" if self.total else ""
        eta = ""
        if self.total and rate > 0 and not final:
            eta = f" eta {_fmt_time((self.total - self.n) / rate)}"
        post = " ".join(f"{k}={v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {self.n}{total} [{_fmt_time(elapsed)}, {rate:.2f} it/s{eta}] {post}".rstrip(),
              file=sys.stdout, flush=True)


class _Off(TextProgress):
    def _emit(self, final: bool = False) -> None:  # noqa: D102 - silent
        pass


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             mode: str = "auto", interval: float = 15.0, leave: bool = True):
    """A progress bar over `iterable` with `.update()`, `.set_postfix()` and `.close()`."""
    kind = resolve_mode(mode)
    if kind == "off":
        return _Off(iterable, total, desc, interval)
    if kind == "text":
        return TextProgress(iterable, total, desc, interval)
    if kind == "widget":
        from tqdm.notebook import tqdm as tqdm_nb  # pulls in ipywidgets: only for a live notebook

        return tqdm_nb(iterable, total=total, desc=desc, leave=leave)
    return tqdm(iterable, total=total, desc=desc, leave=leave, dynamic_ncols=True)


def _fmt_time(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


@contextlib.contextmanager
def progress_bar(total: int, desc: str, mode: str = "auto") -> Iterator[Any]:
    """`progress(...)` as a context manager that closes the bar (the data-preparation tools use it)."""
    if mode not in ("auto", "text", "off"):
        raise ValueError(f"progress={mode!r}; valid: auto, text, off")
    bar = progress(total=total, desc=desc, mode=mode)
    try:
        yield bar
    finally:
        bar.close()
