"""Progress bars for data tools: the engine's `progress` ("auto" | "text" | "off"), as a context manager."""
from __future__ import annotations

import contextlib
import logging
from typing import Iterator

log = logging.getLogger(__name__)


class _Quiet:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


@contextlib.contextmanager
def progress_bar(total: int, desc: str, mode: str = "auto") -> Iterator[object]:
    if mode not in ("auto", "text", "off"):
        raise ValueError(f"progress={mode!r}; valid: auto, text, off")
    try:
        from pan_lib.engine.progress import progress
        bar = progress(total=total, desc=desc, mode=mode)
    except ImportError:  # engine not available: stay quiet
        bar = _Quiet()
    try:
        yield bar
    finally:
        bar.close()
