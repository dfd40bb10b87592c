"""What we know about each dataset: ``DATASETS`` / ``get_dataset_info(name)`` (class count, horizontal
flip allowed, frame naming, ...), where its prepared copy lives by default and the command that
prepares it."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pan_lib.provenance import REPO_ROOT


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


def get_dataset_info(name: str) -> DatasetInfo:
    """Facts about ``name``; an unknown name raises ``ValueError`` listing the valid ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}") from None


def default_data_root(name: str) -> Path:
    """``$PAN_DATA_ROOT/<name>`` if set, else ``<repo>/data/<name>``."""
    get_dataset_info(name)
    base = os.environ.get("PAN_DATA_ROOT")
    return (Path(base) if base else REPO_ROOT / "data") / name


def prepare_command(name: str, data_root: str | Path | None = None) -> str:
    """The ``python -m data_prep ...`` command that prepares ``name`` into ``data_root``."""
    info = get_dataset_info(name)
    out = str(data_root) if data_root is not None else str(default_data_root(name))
    args = f" {info.prepare_args}" if info.prepare_args else ""
    return f"python -m data_prep {name}{args} --out {out}"
