"""Provenance of every number we write: git sha, package versions, device, data fingerprint.

Used by run records (engine), benchmarks (`pan_lib.bench`) and result tables. Pure standard library
(torch is described when the process has imported it), so it is cheap to import.
"""
from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import importlib.metadata as _md
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

PACKAGES = ("torch", "torchvision", "numpy", "decord", "av", "opencv-contrib-python-headless",
            "pillow", "pandas", "matplotlib", "papermill", "tqdm")

REPO_ROOT = Path(__file__).resolve().parent.parent


# Generated outputs: a run that rewrites them (results/, the README's generated tables) does not make
# the code it runs "dirty" -- otherwise every record after the first table a run writes would say so.
GENERATED_PATHS = ("results", "README.md")


def git_sha(repo: Path | str = REPO_ROOT) -> str:
    """The current commit (with '-dirty' when tracked files other than the generated outputs
    `GENERATED_PATHS` have uncommitted changes), or 'unknown'."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        excluded = [f":(exclude){p}" for p in GENERATED_PATHS]
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *excluded],
                               cwd=repo, capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape our numbers ('missing' when absent)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            out[name] = "missing"
    return out


def device_info(device: str | None = None) -> dict[str, Any]:
    """Where the numbers were measured: CPU model and thread count, or the CUDA device name.

    Torch's settings are reported when this process uses torch (it is never imported here, so the
    data preparation CLI stays light).
    """
    info: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(),
                            "cpu_count": os.cpu_count(), "cpu": _cpu_model()}
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available() and (device is None or str(device).startswith("cuda")):
            info["cuda_device"] = torch.cuda.get_device_name(0)
            info["cuda_version"] = torch.version.cuda
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fingerprint_files(paths: Iterable[Path | str]) -> str:
    """A short sha256 over the names and bytes of files (list files, label maps, manifests)."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def file_sha256(path: Path | str, chunk_bytes: int = 1 << 20) -> str:
    """The full sha256 (hex) of one file's bytes: a checkpoint's content identity."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(config: Mapping[str, Any] | None = None, data_fingerprint: str | None = None,
               device: str | None = None) -> dict[str, Any]:
    """Everything a reader needs to trust (or redo) a number."""
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_sha": git_sha(),
        "packages": package_versions(),
        "device": device_info(device),
        "config": dict(config) if config is not None else None,
        "data_fingerprint": data_fingerprint,
    }


def write_table(rows: Sequence[Mapping[str, Any]], out_stem: Path | str, *, title: str,
                meta: Mapping[str, Any], command: str) -> list[Path]:
    """Write rows as `<stem>.csv`, `<stem>.md` (with provenance and command) and `<stem>.json`."""
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    csv_path, md_path, json_path = (out_stem.with_suffix(s) for s in (".csv", ".md", ".json"))
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"# {title}", "", f"Command: `{command}`", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    lines += ["", f"git {meta.get('git_sha', '?')} · " + ", ".join(
        f"{k} {v}" for k, v in (meta.get("packages") or {}).items() if k in ("python", "torch", "torchvision"))
        + f" · {(meta.get('device') or {}).get('cuda_device') or (meta.get('device') or {}).get('cpu', '?')}", ""]
    md_path.write_text("\n".join(lines))
    json_path.write_text(json.dumps({"title": title, "command": command, "rows": list(rows),
                                     "provenance": dict(meta)}, indent=2, default=str))
    return [csv_path, md_path, json_path]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


# ----------------------------------------------------------------------------- portable paths
ABSOLUTE_PATH_RE = re.compile(r"(?<![\w.:~<>/-])/(?:[\w.+-]+/)+[\w.+-]*")


def path_anchors(**named: str | os.PathLike | Iterable[str | os.PathLike] | None) -> dict[str, str]:
    """Absolute folders -> the label that replaces them in committed files, longest first.

    Named folders (`results=out_dir`, `data_root=[...]`) become `<name>`; the repository becomes a
    path relative to it, the Python installation `<python>`, the home folder `~`. Folders inside the
    repository are written relative to it whatever their name.
    """
    anchors: dict[str, str] = {}
    for name, folders in named.items():
        for folder in [folders] if isinstance(folders, (str, os.PathLike)) else (folders or []):
            if folder and Path(folder).expanduser().is_absolute():
                anchors[str(Path(folder).expanduser().resolve())] = f"<{name}>"
    repo = str(REPO_ROOT)
    anchors = {k: v for k, v in anchors.items() if not (k == repo or k.startswith(repo + os.sep))}
    anchors[repo] = ""
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        if not (prefix == repo or prefix.startswith(repo + os.sep)):
            anchors.setdefault(str(Path(prefix).resolve()), "<python>")
    anchors.setdefault(str(Path.home()), "~")
    return dict(sorted(anchors.items(), key=lambda kv: -len(kv[0])))


def portable_text(text: str, anchors: Mapping[str, str]) -> str:
    """`text` with every anchored absolute folder replaced by its label (`path_anchors`):
    '/repo/runs/results/x' -> 'runs/results/x', '/repo' -> '.', '/tmp/out/x' -> '<results>/x'."""
    for folder, label in anchors.items():
        if folder not in text:
            continue
        text = text.replace(folder + "/", f"{label}/" if label else "")
        text = re.sub(re.escape(folder) + r"(?![\w.+-])", label or ".", text)
    return text


def portable(value: Any, anchors: Mapping[str, str]) -> Any:
    """`portable_text` applied to every string inside a JSON-like value (dicts, lists, strings)."""
    if isinstance(value, str):
        return portable_text(value, anchors)
    if isinstance(value, Mapping):
        return {k: portable(v, anchors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v, anchors) for v in value]
    return value


# a base64 data URI, also when stored as JSON lines ('...\\\n",\n  "...') inside a notebook
DATA_URI_RE = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\\\s\",]*")


def absolute_paths(text: str) -> list[str]:
    """Absolute POSIX paths of two or more components found in `text` (what committed files must not
    hold); base64 data URIs (embedded images) are skipped."""
    return ABSOLUTE_PATH_RE.findall(DATA_URI_RE.sub("", text))


def absolute_paths_in_file(path: Path | str) -> list[str]:
    """`absolute_paths` of a text file; of a notebook, without its embedded images (base64 outputs)."""
    path = Path(path)
    text = path.read_text(errors="replace")
    if path.suffix == ".ipynb":
        nb = json.loads(text)
        for cell in nb.get("cells", []):
            for output in cell.get("outputs", []):
                data = output.get("data") or {}
                for key in [k for k in data if k.startswith("image/")]:
                    del data[key]
        text = json.dumps(nb, indent=1)
    return absolute_paths(text)


# ----------------------------------------------------------------------------- figures
def save_figure(fig, path: Path | str, *, footer: str | None = None, metadata: Mapping[str, str] | None = None,
                dpi: int = 110, close: bool = False) -> Path:
    """Save a matplotlib figure as PNG with its provenance: the git sha (and `metadata`) in the PNG's
    text chunks, and `footer` stamped in small print at the bottom when given. The one figure saver
    of the project (result tables and notebook figures)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"Source": f"PAN workbook, git {git_sha()}", **dict(metadata or {})}
    if footer:
        fig.text(0.01, 0.005, footer, fontsize=6, color="0.4")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=dpi, metadata=meta)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path
