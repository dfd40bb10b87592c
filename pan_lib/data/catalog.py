"""What we know about each dataset: ``DATASETS`` / ``get_dataset_info(name, data_root=None)`` (class
count, horizontal flip allowed, frame naming, ...), where its prepared copy lives by default and the
command that prepares it.

The datasets the workbook knows are listed in ``DATASETS``. Any other name is a *custom* dataset
(``python -m data_prep folders --name NAME``, your own videos): its prepared folder's manifest is the
authority for it (name, classes, frame template, flip), so a custom name is known wherever its
prepared folder is given (``data_root``) or sits at its default place (``default_data_root(name)``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pan_lib.provenance import REPO_ROOT

MANIFEST = "prepared.json"      # the manifest of a prepared folder (format: pan_lib.data.prepared)
CUSTOM_KEY = "custom"           # manifest key holding a custom dataset's DatasetInfo fields


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    flip: bool                 # horizontal flip in training (off where left/right defines a class)
    image_tmpl: str            # frame file names, 1-based (official dataset_config.py)
    video_ext: str             # extension of the downloaded videos
    frame_scale: int           # short side of extracted frames (official extraction scripts)
    description: str
    prepare_args: str          # what `python -m data_prep <name>` needs besides --out
    custom: bool = False       # own videos (`python -m data_prep folders`), described by its manifest

    @property
    def prepare_subcommand(self) -> str:
        """The ``python -m data_prep`` command that prepares it: its name, or ``folders`` for own videos."""
        return "folders" if self.custom else self.name


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    DatasetInfo("embedded", 12, False, "{:06d}.jpg", ".webm", 64,
                "embedded synthetic motion dataset (time-reversal class pairs, SSv2 layout)", ""),
    DatasetInfo("sthv1", 174, False, "{:05d}.jpg", "", 100,
                "Something-Something V1 (JPEG frames as distributed)",
                "--root <folder with 20bn-something-something-v1/ and something-something-v1-*.csv>"),
    DatasetInfo("sthv2", 174, False, "{:06d}.jpg", ".webm", 256,
                "Something-Something V2 (VP9 .webm)",
                "--root <folder with 20bn-something-something-v2/ and something-something-v2-*.json>"),
    DatasetInfo("kinetics400", 400, True, "img_{:05d}.jpg", ".mp4", 331,
                "Kinetics-400 (crawler clips <youtube_id>_<start>_<end>.mp4 in class folders)",
                "--root <folder with train/ val/ [test/] clip folders and kinetics_{train,val,test}.csv>"),
    DatasetInfo("ucf101", 101, True, "img_{:05d}.jpg", ".avi", 256,
                "UCF101 (.avi in class folders + ucfTrainTestlist)",
                "--root <folder with UCF-101/ and ucfTrainTestlist/> --split 1"),
    DatasetInfo("hmdb51", 51, True, "img_{:05d}.jpg", ".avi", 256,
                "HMDB51 (.avi in class folders + testTrainMulti_7030_splits)",
                "--root <folder with hmdb51_org/ and testTrainMulti_7030_splits/> --split 1"),
    DatasetInfo("jester", 27, False, "{:05d}.jpg", "", 100,
                "20BN Jester V1 (JPEG frames as distributed)",
                "--root <folder with 20bn-jester-v1/ and jester-v1-*.csv>"),
)}


def custom_dataset_info(manifest: dict[str, Any]) -> DatasetInfo:
    """The ``DatasetInfo`` a custom dataset's manifest declares (written by ``data_prep folders``)."""
    fields = manifest[CUSTOM_KEY]
    return DatasetInfo(name=manifest["name"], num_classes=int(manifest["num_classes"]), flip=bool(fields["flip"]),
                       image_tmpl=fields["image_tmpl"], video_ext=fields.get("video_ext", ""),
                       frame_scale=int(fields["frame_scale"]), description=fields.get("description", "own videos"),
                       prepare_args=fields.get("prepare_args", ""), custom=True)


def _custom_manifest(name: str, data_root: str | Path | None) -> dict[str, Any] | None:
    """The manifest declaring custom dataset ``name`` in ``data_root`` (or ``data_root/<name>``), else
    at the default place; None when there is none."""
    roots = [Path(data_root)] if data_root not in (None, "") else []
    roots.append(_default_root(name))
    for root in roots:
        for candidate in (root / MANIFEST, root / name / MANIFEST):
            if candidate.is_file():
                try:
                    manifest = json.loads(candidate.read_text())
                except (OSError, ValueError):
                    continue
                if manifest.get("name") == name and manifest.get(CUSTOM_KEY):
                    return manifest
    return None


def get_dataset_info(name: str, data_root: str | Path | None = None) -> DatasetInfo:
    """Facts about ``name``: a dataset of ``DATASETS``, or a custom one whose prepared folder is
    ``data_root`` (or sits at ``default_data_root(name)``). An unknown name raises ``ValueError``
    listing the valid ones."""
    if name in DATASETS:
        return DATASETS[name]
    manifest = _custom_manifest(name, data_root)
    if manifest is not None:
        return custom_dataset_info(manifest)
    where = f" in {data_root}" if data_root not in (None, "") else ""
    raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)} -- or your own videos prepared "
                     f"with `python -m data_prep folders --name {name} --root DIR --out OUT` (no such folder "
                     f"found{where}; pass its data_root)")


def _default_root(name: str) -> Path:
    base = os.environ.get("PAN_DATA_ROOT")
    return (Path(base) if base else REPO_ROOT / "data") / name


def default_data_root(name: str) -> Path:
    """``$PAN_DATA_ROOT/<name>`` if set, else ``<repo>/data/<name>``."""
    get_dataset_info(name)
    return _default_root(name)


def prepare_command(name: str, data_root: str | Path | None = None) -> str:
    """The ``python -m data_prep ...`` command that prepares ``name`` into ``data_root``."""
    info = get_dataset_info(name, data_root)
    out = str(data_root) if data_root is not None else str(default_data_root(name))
    args = f" {info.prepare_args}" if info.prepare_args else ""
    return f"python -m data_prep {info.prepare_subcommand}{args} --out {out}"
