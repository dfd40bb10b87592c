"""What we know about each dataset, and where a prepared copy lives.

* ``get_dataset_info(name)`` -> ``DatasetInfo`` (class count, horizontal flip allowed, frame naming, ...)
* ``find_prepared(name, data_root)`` -> ``PreparedDataset`` (list files, label map, source, fingerprint),
  or ``DatasetNotPreparedError`` whose message is the exact ``python -m data_prep ...`` command.
* ``prepare_embedded(out_dir, size=..., seed=...)`` generates the embedded motion dataset (once per
  parameter set; resumable) and prepares it with the Something-Something-V2 code.
* ``build_dataset(prepared, split, ...)`` -> ``VideoClipDataset`` with flip/templates from the registry.

A prepared folder (``python -m data_prep <name> --out OUT``) holds ``prepared.json`` (the manifest),
``classes.txt`` (line i = class i), video lists ``{train,val,test}_videos.txt`` and, after
``python -m data_prep extract-frames OUT``, frame lists ``{train,val,test}_frames.txt``; all lists
are ``<path> <num_frames> <label>`` (PAN/TSM format, ``-1`` = unlabeled).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MANIFEST = "prepared.json"
CLASSES_FILE = "classes.txt"
SPLITS = ("train", "val", "test")
SOURCES = ("decoded", "frames", "video")
REPO_ROOT = Path(__file__).resolve().parents[2]


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
    info = get_dataset_info(name)
    out = str(data_root) if data_root is not None else str(default_data_root(name))
    args = f" {info.prepare_args}" if info.prepare_args else ""
    return f"python -m data_prep {name}{args} --out {out}"


class DatasetNotPreparedError(FileNotFoundError):
    """The dataset has not been prepared in the given folder; the message holds the command."""


@dataclass
class PreparedDataset:
    name: str
    root: Path                         # the prepared folder (manifest, lists, classes)
    train_list: Path | None
    val_list: Path | None
    test_list: Path | None
    source: str                        # "frames" | "video"
    classes: list[str]
    fingerprint: str
    data_dir: Path                     # list paths are relative to this (video root or frame root)
    image_tmpl: str = "{:05d}.jpg"
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def media_dir(self) -> Path:
        """Where the listed videos / frame folders are, for people to look at (with decoded arrays as
        the training source: the original videos)."""
        if self.source != "decoded":
            return self.data_dir
        root = Path(self.manifest["video_root"])
        return root if root.is_absolute() else self.root / root

    @property
    def info(self) -> DatasetInfo:
        return get_dataset_info(self.name)

    def list_for(self, split: str) -> Path:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        path = {"train": self.train_list, "val": self.val_list, "test": self.test_list}[split]
        if path is None:
            raise FileNotFoundError(f"{self.name} ({self.root}) has no {split} list")
        return path


def _manifest_path(name: str, data_root: Path) -> Path | None:
    for candidate in (data_root / MANIFEST, data_root / name / MANIFEST):
        if candidate.is_file():
            return candidate
    return None


def find_prepared(name: str, data_root: str | Path | None = None, source: str = "auto") -> PreparedDataset:
    """The prepared copy of ``name`` in ``data_root`` (or ``data_root/<name>``).

    ``source``: "auto" (decoded arrays when ``data_prep decode`` ran, else frames when extracted,
    else videos), "decoded", "frames" or "video".
    """
    info = get_dataset_info(name)
    if source not in ("auto",) + SOURCES:
        raise ValueError(f"unknown source {source!r}; valid: auto, {', '.join(SOURCES)}")
    root = Path(data_root) if data_root is not None else default_data_root(name)
    path = _manifest_path(name, root)
    if path is None:
        hint = ("or call pan_lib.data.prepare_embedded(out_dir) " if name == "embedded" else "")
        raise DatasetNotPreparedError(
            f"{info.name} is not prepared in {root} (no {MANIFEST}). Prepare it with:\n"
            f"    {prepare_command(name, root)}\n{hint}(see README, section Datasets)")
    manifest = json.loads(path.read_text())
    if manifest.get("name") != name:
        raise DatasetNotPreparedError(f"{path} describes dataset {manifest.get('name')!r}, not {name!r}")
    prepared_root = path.parent.resolve()
    lists = manifest.get("lists", {})
    if source == "auto":
        source = "decoded" if lists.get("decoded") else "frames" if lists.get("frames") else "video"
    if not lists.get(source):
        cmd = {"frames": f"python -m data_prep extract-frames {prepared_root}",
               "decoded": f"python -m data_prep decode {prepared_root}"}.get(source, prepare_command(name, prepared_root))
        raise DatasetNotPreparedError(f"{prepared_root} has no {source} lists; create them with:\n    {cmd}")
    chosen = lists[source]
    data_dir = Path(manifest[{"frames": "frames_root", "decoded": "decoded_root"}.get(source, "video_root")])
    if not data_dir.is_absolute():
        data_dir = prepared_root / data_dir

    def _p(split: str) -> Path | None:
        rel = chosen.get(split)
        return prepared_root / rel if rel else None

    classes_file = prepared_root / manifest.get("classes_file", CLASSES_FILE)
    from pan_lib.data.lists import read_classes

    fingerprint = str(manifest.get("fingerprint", ""))
    if source == "frames" and manifest.get("extraction"):
        fingerprint = str(manifest["extraction"].get("fingerprint", ""))
    elif source == "decoded":  # the same videos, decoded at a fixed short side
        fingerprint = f"{fingerprint}+s{(manifest.get('decoded') or {}).get('short_side', '?')}"
    return PreparedDataset(name=name, root=prepared_root, train_list=_p("train"), val_list=_p("val"),
                           test_list=_p("test"), source=source, classes=read_classes(classes_file),
                           fingerprint=fingerprint, data_dir=data_dir,
                           image_tmpl=manifest.get("image_tmpl", info.image_tmpl), manifest=manifest)


def prepare_embedded(out_dir: str | Path | None = None, *, size: str = "default", seed: int = 0,
                     classes: str = "default", codec: str = "vp9", workers: int | None = None,
                     progress: str = "auto", count_frames: bool = True, decoded_short_side: int | None = 56,
                     **overrides: Any) -> PreparedDataset:
    """Generate (unless already generated with the same parameters) and prepare the embedded dataset.

    ``out_dir`` (default ``default_data_root("embedded")``) receives ``raw/`` (the SSv2-layout
    videos and JSON) and the prepared lists. ``size``: tiny | small | default | large; further
    ``SyntheticConfig`` fields (``num_frames``, ``resolution``, ``train_per_class``, ...) as keywords.
    ``decoded_short_side``: also decode every video once into uint8 arrays at this short side
    (``python -m data_prep decode``; loaders then read clips as array slices); ``None``: videos only.
    """
    from pan_lib.data.synthetic import SyntheticConfig, generate

    out = Path(out_dir) if out_dir is not None else default_data_root("embedded")
    cfg = SyntheticConfig(size=size, seed=seed, classes=classes, codec=codec, **overrides)
    manifest = out / MANIFEST
    meta = json.loads(manifest.read_text()) if manifest.is_file() else {}
    if meta.get("options", {}).get("generator_fingerprint") != cfg.fingerprint():
        import shutil

        for stale in out.glob("decoded_s*"):  # arrays of the previous videos
            shutil.rmtree(stale, ignore_errors=True)
        raw = generate(out / "raw", cfg, workers=workers, overwrite=True, progress=progress)
        from data_prep.datasets import prepare_sthv2

        meta = json.loads(prepare_sthv2(raw, out, name="embedded", count_frames=count_frames, progress=progress,
                                        extra_options={"generator_fingerprint": cfg.fingerprint(),
                                                       "generator": cfg.to_dict()}).read_text())
    decoded = meta.get("decoded") or {}
    if decoded_short_side is not None and (decoded.get("short_side") != decoded_short_side
                                           or not meta.get("lists", {}).get("decoded")):
        from data_prep.decode import decode_videos

        decode_videos(out, short_side=decoded_short_side, workers=workers or 2, progress=progress)
    return find_prepared("embedded", out)


def build_dataset(prepared: PreparedDataset, split: str, *, num_segments: int = 8, new_length: int = 1,
                  mode: str | None = None, input_size: int = 224, scale_size: int | None = None,
                  **kwargs: Any):
    """``VideoClipDataset`` for ``split`` of a prepared dataset; flip and frame naming come from the
    registry, ``mode`` defaults to "train" for the train split and "val" otherwise."""
    from pan_lib.data.dataset import VideoClipDataset

    mode = mode or ("train" if split == "train" else "val")
    kwargs.setdefault("flip", prepared.info.flip)
    kwargs.setdefault("list_format", "pan")
    if "dense_sample" in kwargs:  # the engine's / official name
        kwargs["dense"] = kwargs.pop("dense_sample")
    return VideoClipDataset(prepared.list_for(split), prepared.data_dir, num_segments=num_segments,
                            new_length=new_length, mode=mode, source=prepared.source,
                            image_tmpl=prepared.image_tmpl, input_size=input_size,
                            scale_size=scale_size, **kwargs)
