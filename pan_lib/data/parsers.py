"""Parsers for the annotation files of the six datasets, as they are downloaded (used by
``python -m data_prep`` and, for the SSv2 layout, by the embedded dataset's preparation).

Each parser returns plain Python data and raises ``AnnotationError`` (file + 1-based line) on a
malformed line. The traps they handle (see ../shared/formats/README.md):

* SSv1 / Jester: ``<id>;<label>`` split on the FIRST ``;`` only (labels contain commas/apostrophes);
  class index = rank in the **sorted** label list (PAN/TSM) or file order (mmaction2).
* SSv2: labels JSON maps the template without brackets to a STRING index; entries have string ids;
  the class of an entry = ``labels[template.replace('[', '').replace(']', '')]``.
* Kinetics: real CSV (quoted labels with spaces, parentheses, apostrophes); ids may start with ``-``;
  the test CSV has no label column.
* UCF101: CRLF everywhere; ``classInd.txt`` is 1-based; the class comes from the folder part of the
  path (file names say ``HandStandPushups``, the class is ``HandstandPushups``); test lists have no label.
* HMDB51: ``<video>.avi <0|1|2> `` with a trailing space; names may start with ``#`` and contain ``;``.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from pan_lib.data.lists import AnnotationError

LABEL_ORDERS = ("sorted", "file")


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, text without CR/LF) for non-empty lines; tolerates a BOM."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, None, f"not UTF-8 text ({exc})") from None
    return [(i, line.rstrip("\r")) for i, line in enumerate(text.split("\n"), start=1)
            if line.rstrip("\r").strip()]


# ----------------------------------------------------------------------------- SSv1 / Jester
def parse_label_lines(path: str | Path) -> list[str]:
    """A labels CSV with one label per line (SSv1, Jester); duplicates are an error."""
    path = Path(path)
    labels, seen = [], {}
    for lineno, line in _read_lines(path):
        label = line.strip()
        if ";" in label:
            raise AnnotationError(path, lineno, f"a labels file has one label per line, got {line!r}")
        if label in seen:
            raise AnnotationError(path, lineno, f"duplicate label {label!r} (first on line {seen[label]})")
        seen[label] = lineno
        labels.append(label)
    if not labels:
        raise AnnotationError(path, None, "no labels")
    return labels


def label_index(labels: Sequence[str], order: str = "sorted") -> list[str]:
    """Class list in index order: ``sorted`` (PAN/TSM ``gen_label_*``) or ``file`` (mmaction2)."""
    if order not in LABEL_ORDERS:
        raise ValueError(f"unknown label order {order!r}; valid: {', '.join(LABEL_ORDERS)}")
    return sorted(labels) if order == "sorted" else list(labels)


def parse_id_label_csv(path: str | Path, classes: Sequence[str] | None = None,
                       labeled: bool = True) -> list[tuple[str, int | str]]:
    """``<video_id>;<label>`` (or ``<video_id>`` when ``labeled=False``) -> [(id, class index)].

    With ``classes`` the label text is mapped to its index (unknown label -> error), else kept as text.
    """
    path = Path(path)
    index = {c: i for i, c in enumerate(classes)} if classes is not None else None
    rows: list[tuple[str, int | str]] = []
    for lineno, line in _read_lines(path):
        if labeled:
            if ";" not in line:
                raise AnnotationError(path, lineno, f"expected '<video_id>;<label>', got {line!r}")
            vid, label = line.split(";", 1)
            vid, label = vid.strip(), label.strip()
            if not vid or not label:
                raise AnnotationError(path, lineno, f"empty video id or label in {line!r}")
            if index is not None:
                if label not in index:
                    raise AnnotationError(path, lineno, f"label {label!r} is not in the labels file")
                rows.append((vid, index[label]))
            else:
                rows.append((vid, label))
        else:
            vid = line.strip()
            if not vid or ";" in vid or " " in vid:
                raise AnnotationError(path, lineno, f"expected '<video_id>' only, got {line!r}")
            rows.append((vid, -1))
    return rows


# ----------------------------------------------------------------------------- SSv2
def strip_brackets(template: str) -> str:
    """SSv2 rule: the class name is the template with ``[`` and ``]`` removed."""
    return template.replace("[", "").replace("]", "")


def parse_sthv2_labels(path: str | Path) -> list[str]:
    """``{"<name>": "<idx>", ...}`` -> class list in index order (indices must be 0..N-1)."""
    path = Path(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise AnnotationError(path, None, "expected a JSON object mapping label -> index")
    classes: list[str | None] = [None] * len(data)
    for name, idx in data.items():
        try:
            i = int(idx)
        except (TypeError, ValueError):
            raise AnnotationError(path, _find_line(path, name), f"index of {name!r} is not an integer: {idx!r}") from None
        if not 0 <= i < len(data) or classes[i] is not None:
            raise AnnotationError(path, _find_line(path, name), f"index {i} of {name!r} is out of range or repeated")
        classes[i] = name
    return [c for c in classes if c is not None]


def _find_line(path: Path, needle: str) -> int | None:
    for lineno, line in _read_lines(path):
        if needle in line:
            return lineno
    return None


def _json_entries(path: Path) -> list[tuple[int | None, dict]]:
    """Entries of a JSON array with their line numbers (one object per line, as SSv2 ships it);
    falls back to a whole-file parse (line numbers then unknown) for pretty-printed files."""
    entries: list[tuple[int | None, dict]] = []
    try:
        for lineno, line in _read_lines(path):
            s = line.strip()
            if s in ("[", "]", "[]"):
                continue
            s = s.lstrip("[").rstrip("]").rstrip(",").strip()
            if s:
                entries.append((lineno, json.loads(s)))
        return entries
    except json.JSONDecodeError:
        pass
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, list):
        raise AnnotationError(path, None, "expected a JSON array of entries")
    return [(None, e) for e in data]


@dataclass
class SthV2Entry:
    id: str
    label: int            # -1 for test entries without an answer
    template: str = ""
    placeholders: tuple[str, ...] = ()


def parse_sthv2_entries(path: str | Path, classes: Sequence[str] | None) -> list[SthV2Entry]:
    """train/validation (``classes`` given) or test (``classes=None``: ids only) JSON."""
    path = Path(path)
    index = {c: i for i, c in enumerate(classes)} if classes is not None else None
    out = []
    for n, (lineno, e) in enumerate(_json_entries(path), start=1):
        where = lineno if lineno is not None else None
        if not isinstance(e, dict) or "id" not in e:
            raise AnnotationError(path, where, f"entry {n}: expected an object with an 'id', got {e!r}")
        vid = str(e["id"])
        if index is None:
            out.append(SthV2Entry(vid, -1))
            continue
        if "template" not in e:
            raise AnnotationError(path, where, f"entry {n} (id {vid}): no 'template'")
        name = strip_brackets(e["template"])
        if name not in index:
            raise AnnotationError(path, where, f"entry {n} (id {vid}): template {e['template']!r} "
                                               f"-> {name!r} is not in the labels file")
        out.append(SthV2Entry(vid, index[name], e["template"], tuple(e.get("placeholders", ()))))
    return out


# ----------------------------------------------------------------------------- Kinetics
@dataclass
class KineticsRow:
    youtube_id: str
    time_start: int
    time_end: int
    split: str
    label: str | None      # raw label text (None in the test CSV)

    @property
    def key(self) -> str:
        """The crawler's clip name without extension: ``<id>_<start:06d>_<end:06d>``."""
        return f"{self.youtube_id}_{self.time_start:06d}_{self.time_end:06d}"


def parse_kinetics_csv(path: str | Path) -> list[KineticsRow]:
    """``label,youtube_id,time_start,time_end,split[,is_cc]`` or (test) ``youtube_id,time_start,time_end,split``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise AnnotationError(path, None, "empty file") from None
    need = {"youtube_id", "time_start", "time_end"}
    if not need <= set(header):
        raise AnnotationError(path, 1, f"header must name {sorted(need)} (and label for train/val), got {header}")
    col = {h: i for i, h in enumerate(header)}
    rows = []
    for fields in reader:
        lineno = reader.line_num
        if not fields or not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise AnnotationError(path, lineno, f"expected {len(header)} fields ({','.join(header)}), got {len(fields)}")
        yid = fields[col["youtube_id"]].strip()
        if len(yid) != 11:
            raise AnnotationError(path, lineno, f"youtube_id must be 11 characters, got {yid!r}")
        try:
            start, end = int(float(fields[col["time_start"]])), int(float(fields[col["time_end"]]))
        except ValueError:
            raise AnnotationError(path, lineno, "time_start/time_end must be numbers") from None
        label = fields[col["label"]].strip() if "label" in col else None
        if label is not None and not label:
            raise AnnotationError(path, lineno, "empty label")
        split = fields[col["split"]].strip() if "split" in col else ""
        rows.append(KineticsRow(yid, start, end, split, label))
    return rows


def kinetics_pan_name(label: str) -> str:
    """PAN ``gen_label_kinetics.py`` normalisation (spaces -> _, quotes/parentheses/apostrophes dropped)."""
    return (label.strip().replace(" ", "_").replace('"', "").replace("(", "").replace(")", "")
            .replace("'", ""))


# ----------------------------------------------------------------------------- UCF101
def parse_ucf_classind(path: str | Path) -> list[str]:
    """``<1-based idx> <ClassName>`` (CRLF) -> class list, index 0 = idx 1; indices must be 1..N."""
    path = Path(path)
    classes = []
    for lineno, line in _read_lines(path):
        parts = line.strip().split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise AnnotationError(path, lineno, f"expected '<index> <ClassName>', got {line!r}")
        if int(parts[0]) != len(classes) + 1:
            raise AnnotationError(path, lineno, f"index {parts[0]} out of order (expected {len(classes) + 1})")
        classes.append(parts[1])
    return classes


def parse_ucf_split(path: str | Path, classes: Sequence[str]) -> list[tuple[str, int]]:
    """train/test list -> [(relative path, 0-based class)]; the class comes from the folder part; a
    label column (train lists, 1-based) must agree with it."""
    path = Path(path)
    index = {c: i for i, c in enumerate(classes)}
    rows = []
    for lineno, line in _read_lines(path):
        parts = line.strip().split()
        if len(parts) not in (1, 2) or "/" not in parts[0]:
            raise AnnotationError(path, lineno, f"expected '<Class>/<file>.avi [<1-based index>]', got {line!r}")
        folder = parts[0].split("/", 1)[0]
        if folder not in index:
            raise AnnotationError(path, lineno, f"class folder {folder!r} is not in classInd.txt")
        if len(parts) == 2:
            if not parts[1].isdigit():
                raise AnnotationError(path, lineno, f"label must be an integer, got {parts[1]!r}")
            if int(parts[1]) - 1 != index[folder]:
                raise AnnotationError(path, lineno, f"label {parts[1]} disagrees with folder {folder!r} "
                                                    f"(classInd index {index[folder] + 1})")
        rows.append((parts[0], index[folder]))
    return rows


# ----------------------------------------------------------------------------- HMDB51
HMDB_SPLIT_RE = re.compile(r"^(?P<cls>.+)_test_split(?P<split>[123])\.txt$")


def parse_hmdb_split_file(path: str | Path) -> tuple[str, int, list[tuple[str, int]]]:
    """``<class>_test_split<n>.txt`` -> (class, split, [(video name, 0|1|2)]); 1 = train, 2 = test."""
    path = Path(path)
    m = HMDB_SPLIT_RE.match(path.name)
    if not m:
        raise AnnotationError(path, None, "file name must be '<class>_test_split<1|2|3>.txt'")
    rows = []
    for lineno, line in _read_lines(path):
        parts = line.rstrip().rsplit(" ", 1)  # names may contain '#', ';', '&' ... but no spaces
        if len(parts) != 2 or parts[1] not in ("0", "1", "2") or not parts[0].strip():
            raise AnnotationError(path, lineno, f"expected '<video>.avi <0|1|2>', got {line!r}")
        rows.append((parts[0].strip(), int(parts[1])))
    return m["cls"], int(m["split"]), rows
