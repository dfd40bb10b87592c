"""Run records: the JSON file next to the checkpoints that result tables read (and nothing else).

A training run writes `<run_dir>/record.json` (`kind: "train"`), an evaluation
`<out_dir>/record.json` (`kind: "eval"`). Both are built by `build_record` and follow `SCHEMA`
(documented field by field in docs/ARCHITECTURE.md, "Run records"); they carry provenance
(`pan_lib.provenance.provenance`: git sha, package versions, device, config, data fingerprint), the
final metrics, timings and artefact paths relative to the record's folder. Records are rewritten
atomically, so a reader never sees half a file. `find_records` finds them by their own `kind` and
`status` fields.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

log = logging.getLogger(__name__)

SCHEMA = "pan-workbook/run-record/1"
RECORD_FILE = "record.json"          # the file name of every run record (train and eval)
KINDS = ("train", "eval")
STATUSES = ("running", "completed", "stopped", "failed")
REQUIRED_KEYS = ("schema", "kind", "name", "status", "provenance", "metrics")


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


def build_record(kind: str, *, name: str, status: str, message: str = "", model: str, modality: str,
                 dataset: str, backbone: str | None, seed: int | None, metrics: Mapping[str, Any], views: int,
                 protocol: Mapping[str, Any], gflops_per_view: float | None, params: int | None,
                 clips_per_s: float | None, speed: Mapping[str, Any], timing: Mapping[str, Any],
                 config: Mapping[str, Any], data: Mapping[str, Any], provenance: Mapping[str, Any],
                 artifacts: Mapping[str, Any], model_config: Mapping[str, Any] | None = None,
                 members: Sequence[Mapping[str, Any]] | None = None,
                 history: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """One run record in `SCHEMA` (docs/ARCHITECTURE.md, "Run records"), the only place one is assembled.

    `kind` "train" takes `model_config` (the network's `ModelConfig` as a dict) and `history`
    (per-epoch rows); "eval" takes `members` (one dict per checkpoint, with its `checkpoint_sha256`).
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}; valid: {', '.join(KINDS)}")
    if status not in STATUSES:
        raise ValueError(f"status={status!r}; valid: {', '.join(STATUSES)}")
    record: dict[str, Any] = {
        "schema": SCHEMA, "kind": kind, "name": name, "status": status, "message": message,
        "model": model, "modality": modality, "dataset": dataset, "backbone": backbone, "seed": seed,
        "metrics": dict(metrics), "views": views, "protocol": dict(protocol),
        "gflops_per_view": gflops_per_view, "params": params, "clips_per_s": clips_per_s,
        "speed": dict(speed), "timing": dict(timing),
    }
    if kind == "train":
        record["model_config"] = dict(model_config) if model_config is not None else None
    else:
        record["members"] = [dict(m) for m in members or []]
    record.update({"config": dict(config), "data": dict(data), "provenance": dict(provenance),
                   "artifacts": dict(artifacts)})
    if kind == "train":
        record["history"] = [dict(row) for row in history or []]
    return record


def write_record(path: Path | str, record: dict[str, Any]) -> Path:
    """Validate the minimal schema and write `record` atomically as JSON."""
    for key in REQUIRED_KEYS:
        if key not in record:
            raise ValueError(f"run record lacks required key {key!r}")
    atomic_write_text(path, json.dumps(_jsonable(record), indent=2, sort_keys=False, allow_nan=False) + "\n")
    return Path(path)


def load_record(path: Path | str) -> dict[str, Any]:
    """A record with `path` (absolute) and `dir` added; refuses files of another schema."""
    path = Path(path)
    record = json.loads(path.read_text())
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        found = record.get("schema") if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"{path}: schema {found!r} is not {SCHEMA!r}")
    record["path"] = str(path.resolve())
    record["dir"] = str(path.resolve().parent)
    return record


def find_records(roots: Iterable[Path | str] | Path | str, kind: str | None = None,
                 status: str | None = "completed") -> list[dict[str, Any]]:
    """Every record under `roots` (recursively) whose own `kind` / `status` fields match (None: any),
    sorted by path. Files of another schema are skipped; unreadable ones are logged and skipped."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind={kind!r}; valid: {', '.join(KINDS)} or None")
    if isinstance(roots, (str, Path)):
        roots = [roots]
    out = []
    for root in roots:
        for path in sorted(Path(root).rglob(RECORD_FILE)):
            try:
                rec = load_record(path)
            except (OSError, json.JSONDecodeError) as err:
                log.warning("skipping unreadable record %s: %s", path, err)
                continue
            except ValueError as err:  # another schema: not ours
                log.debug("skipping %s: %s", path, err)
                continue
            if (kind is None or rec.get("kind") == kind) and (status is None or rec.get("status") == status):
                out.append(rec)
    return sorted(out, key=lambda r: r["path"])
