"""Run records: the JSON file next to the checkpoints that result tables read (and nothing else).

A training run writes `<run_dir>/record.json`, an evaluation `<out_dir>/eval_record.json`. Both
follow `SCHEMA` (documented field by field in docs/ARCHITECTURE.md, "Run records"); they carry
provenance (`pan_lib.provenance.provenance`: git sha, package versions, device, config, data
fingerprint), the final metrics, timings and artefact paths relative to the record's folder.
Records are rewritten atomically, so a reader never sees half a file.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

SCHEMA = "pan-workbook/run-record/1"
TRAIN_RECORD = "record.json"
EVAL_RECORD = "eval_record.json"


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write `text` to a temporary file beside `path`, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return _jsonable(value.item())
    return value


def write_record(path: Path | str, record: dict[str, Any]) -> Path:
    """Validate the minimal schema and write `record` atomically as JSON."""
    for key in ("schema", "kind", "name", "status", "provenance", "metrics"):
        if key not in record:
            raise ValueError(f"run record lacks required key {key!r}")
    atomic_write_text(path, json.dumps(_jsonable(record), indent=2, sort_keys=False, allow_nan=False) + "\n")
    return Path(path)


def load_record(path: Path | str) -> dict[str, Any]:
    """A record with `path` (absolute) and `dir` added; refuses files of another schema."""
    path = Path(path)
    record = json.loads(path.read_text())
    if record.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {record.get('schema')!r} is not {SCHEMA!r}")
    record["path"] = str(path.resolve())
    record["dir"] = str(path.resolve().parent)
    return record


def find_records(roots: Iterable[Path | str] | Path | str, kind: str | None = None,
                 status: str | None = "completed") -> list[dict[str, Any]]:
    """All records under `roots` (recursively), optionally of one kind/status, sorted by path."""
    if isinstance(roots, (str, Path)):
        roots = [roots]
    names = {"train": [TRAIN_RECORD], "eval": [EVAL_RECORD], None: [TRAIN_RECORD, EVAL_RECORD]}[kind]
    out = []
    for root in roots:
        for name in names:
            for path in sorted(Path(root).rglob(name)):
                try:
                    rec = load_record(path)
                except (ValueError, json.JSONDecodeError):
                    continue
                if status is None or rec.get("status") == status:
                    out.append(rec)
    return sorted(out, key=lambda r: r["path"])
