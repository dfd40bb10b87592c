"""List files: one video per line, read and written.

Formats (``read_list_file(path, fmt="auto")``):

* ``"pan"`` — TSN/TSM/PAN: ``<path> <num_frames> <label>`` (0-based label; ``-1`` = unlabeled; a
  ``num_frames`` of ``-1`` means "count at load time"). We split from the right, so paths that
  contain spaces (Kinetics folders named by raw label) still parse; the official reader cannot.
* ``"mmaction2-rawframes"`` — ``<dir> <total_frames> <label> [<label> ...]`` (a missing label -> -1;
  multi-label rows keep all labels in ``labels``, ``label`` is the first).
* ``"mmaction2-rawframes-offset"`` — ``<dir> <offset> <total_frames> <label> ...``.
* ``"mmaction2-videos"`` — ``<path> <label> [<label> ...]`` (frame count unknown -> -1).

Malformed lines raise ``AnnotationError`` naming the file and the 1-based line number.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

LIST_FORMATS = ("pan", "mmaction2-rawframes", "mmaction2-rawframes-offset", "mmaction2-videos")


class AnnotationError(ValueError):
    """A malformed annotation or list line; the message names the file and line."""

    def __init__(self, path: str | Path, line: int | None, message: str):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line = str(path), line


@dataclass
class VideoRecord:
    path: str                     # relative to the list's root (frame folder or video file)
    num_frames: int               # -1: unknown (counted when loaded)
    label: int                    # -1: unlabeled
    labels: tuple[int, ...] = ()  # all labels of a multi-label row
    offset: int = 0               # first frame offset (mmaction2 "with_offset" lists)
    line: int = 0                 # 1-based line in the list file


def _int(path: Path, lineno: int, token: str, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise AnnotationError(path, lineno, f"{what} must be an integer, got {token!r}") from None


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n")
            if line.strip():
                yield lineno, line


def sniff_format(path: str | Path) -> str:
    """Guess the list format from the first line: 2 fields -> mmaction2 videos, 3 -> pan, 4+ integer
    fields after the path -> mmaction2 rawframes (multi-label), else a pan line whose path has spaces."""
    path = Path(path)
    for _, line in _lines(path):
        parts = line.split()
        if len(parts) == 2:
            return "mmaction2-videos"
        if len(parts) == 3:
            return "pan"
        if len(parts) >= 4:
            if all(t.lstrip("-").isdigit() for t in parts[1:]):
                return "mmaction2-rawframes"
            return "pan"  # a path with spaces

        break
    return "pan"


def read_list_file(path: str | Path, fmt: str = "auto") -> list[VideoRecord]:
    """Records of a list file (see the module docstring for ``fmt``)."""
    path = Path(path)
    if fmt == "auto":
        fmt = sniff_format(path)
    if fmt not in LIST_FORMATS:
        raise ValueError(f"unknown list format {fmt!r}; valid: auto, {', '.join(LIST_FORMATS)}")
    records = []
    for lineno, line in _lines(path):
        if fmt == "pan":
            parts = line.strip().rsplit(" ", 2)
            if len(parts) != 3 or not parts[0]:
                raise AnnotationError(path, lineno, f"expected '<path> <num_frames> <label>', got {line!r}")
            nf = _int(path, lineno, parts[1], "num_frames")
            label = _int(path, lineno, parts[2], "label")
            records.append(VideoRecord(parts[0], nf, label, (label,) if label >= 0 else (), line=lineno))
            continue
        parts = line.split()
        if fmt == "mmaction2-videos":
            labels = tuple(_int(path, lineno, t, "label") for t in parts[1:])
            records.append(VideoRecord(parts[0], -1, labels[0] if labels else -1, labels, line=lineno))
        else:
            with_offset = fmt == "mmaction2-rawframes-offset"
            need = 3 if with_offset else 2
            if len(parts) < need:
                raise AnnotationError(path, lineno, f"expected at least {need} fields, got {line!r}")
            offset = _int(path, lineno, parts[1], "offset") if with_offset else 0
            nf = _int(path, lineno, parts[need - 1], "total_frames")
            labels = tuple(_int(path, lineno, t, "label") for t in parts[need:])
            records.append(VideoRecord(parts[0], nf, labels[0] if labels else -1, labels, offset, lineno))
    return records


def write_list_file(path: str | Path, records: Sequence[VideoRecord], trailing_newline: bool = True) -> Path:
    """``<path> <num_frames> <label>`` lines (the official generators omit the final newline;
    both are read identically). Written atomically."""
    path = Path(path)
    text = "\n".join(f"{r.path} {r.num_frames} {r.label}" for r in records)
    if trailing_newline and records:
        text += "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def read_classes(path: str | Path) -> list[str]:
    """A label map: one class name per line, line i = class index i."""
    return [line for _, line in _lines(Path(path))]


def write_classes(path: str | Path, classes: Sequence[str]) -> Path:
    path = Path(path)
    path.write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
    return path
