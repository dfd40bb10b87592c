"""Own videos (`python -m data_prep folders`): both layouts, the seeded stratified split, the catalog
taking the prepared folder's manifest for a custom name, and training / the demo / the recipes on it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_prep.__main__ import main
from pan_lib.data import find_prepared, get_dataset_info, get_prepared
from pan_lib.data.catalog import prepare_command
from pan_lib.data.lists import read_list_file
from pan_lib.data.video import write_video
from pan_lib.demo import DemoConfig, class_names_for
from pan_lib.engine import TrainConfig, train
from pan_lib.engine.data import build_split
from pan_lib.engine.recipes import get_recipe
from pan_lib.train import main as train_main

CLASSES = ("clap", "jump", "wave")


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory) -> dict[str, bytes]:
    """Two small generated videos per container (.mp4 and .avi): a square moving right / down."""
    root = tmp_path_factory.mktemp("clips")
    out = {}
    for i, ext in enumerate((".mp4", ".avi")):
        frames = np.full((12, 32, 48, 3), 30, np.uint8)
        for t in range(12):
            y, x = (8, 2 + 2 * t) if i == 0 else (2 + t, 16)
            frames[t, y:y + 8, x:x + 8] = (230, 200, 40)
        out[ext] = write_video(root / f"c{ext}", frames, fps=12, codec="mpeg4").read_bytes()
    return out


def _tree(root: Path, clip_bytes: dict[str, bytes], per_class: dict[str, int]) -> Path:
    for cls, n in per_class.items():
        for k in range(n):
            ext = ".mp4" if k % 2 == 0 else ".avi"
            path = root / cls / ("nested" if k == 3 else "") / f"{cls}_{k}{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(clip_bytes[ext])
    return root


def _prepare(root: Path, out: Path, *extra: str, name: str = "mine") -> int:
    return main(["folders", "--root", str(root), "--out", str(out), "--name", name, "--workers", "1",
                 "--progress", "off", *extra])


def test_class_folders_give_a_seeded_stratified_split(tmp_path, clip_bytes):
    root = _tree(tmp_path / "videos", clip_bytes, {c: 5 for c in CLASSES})
    assert _prepare(root, tmp_path / "out", "--test-fraction", "0.2") == 0
    p = find_prepared("mine", tmp_path / "out")
    assert p.classes == list(CLASSES) and p.source == "video"
    splits = {s: read_list_file(p.list_for(s)) for s in ("train", "val", "test")}
    for split, n in (("train", 3), ("val", 1), ("test", 1)):  # round(5 * 0.2) = 1 per class
        assert sorted(r.label for r in splits[split]) == sorted([0, 1, 2] * n), split
    every = [r.path for recs in splits.values() for r in recs]
    assert len(every) == len(set(every)) == 15 and "wave/nested/wave_3.avi" in every
    assert all(r.num_frames == 12 for recs in splits.values() for r in recs)
    assert all(r.path.split("/")[0] == p.classes[r.label] for recs in splits.values() for r in recs)
    manifest = json.loads((tmp_path / "out/prepared.json").read_text())
    assert manifest["options"]["split_fractions"] == {"val": 0.2, "test": 0.2}
    assert manifest["custom"]["flip"] is True and manifest["options"]["layout"] == "class"
    # the same seed gives the same lists; the info comes from the manifest
    assert _prepare(root, tmp_path / "again", "--test-fraction", "0.2") == 0
    assert (tmp_path / "again/val_videos.txt").read_text() == (tmp_path / "out/val_videos.txt").read_text()
    info = get_dataset_info("mine", tmp_path / "out")
    assert info.custom and info.num_classes == 3 and info.flip and info.image_tmpl == "img_{:05d}.jpg"
    assert prepare_command("mine", tmp_path / "out").startswith("python -m data_prep folders --root ")


def test_split_folders_are_used_as_they_are(tmp_path, clip_bytes):
    root = tmp_path / "videos"
    _tree(root / "train", clip_bytes, {"clap": 2, "wave": 2})
    _tree(root / "val", clip_bytes, {"clap": 1, "wave": 1})
    assert _prepare(root, tmp_path / "out", "--no-flip") == 0
    p = get_prepared("mine", tmp_path / "out")
    assert [r.path for r in read_list_file(p.val_list)] == ["val/clap/clap_0.mp4", "val/wave/wave_0.mp4"]
    assert len(read_list_file(p.train_list)) == 4 and p.test_list is None
    assert p.info.flip is False and p.manifest["options"]["layout"] == "split"
    # a split layout without val/: val is carved out of train
    _tree(tmp_path / "only_train" / "train", clip_bytes, {"clap": 3, "wave": 3})
    assert _prepare(tmp_path / "only_train", tmp_path / "out2") == 0
    q = find_prepared("mine", tmp_path / "out2")
    assert sorted(r.label for r in read_list_file(q.val_list)) == [0, 1]


def test_too_few_videos_and_bad_names_are_clear(tmp_path, clip_bytes, capsys):
    root = _tree(tmp_path / "videos", clip_bytes, {"clap": 3, "wave": 1})
    assert _prepare(root, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "class 'wave' has 1 video(s)" in err and "needs at least 2 (1 train + 1 val)" in err
    assert _prepare(root, tmp_path / "out", name="ucf101") == 2
    assert "give your own videos another --name" in capsys.readouterr().err
    assert _prepare(tmp_path / "nothing", tmp_path / "out") == 2
    # an unknown name without a prepared folder still lists the valid ones
    with pytest.raises(ValueError, match="unknown dataset 'mine'; valid: embedded, sthv1, sthv2"):
        get_prepared("mine", tmp_path / "out")


@pytest.fixture(scope="module")
def prepared_mine(tmp_path_factory, clip_bytes) -> Path:
    base = tmp_path_factory.mktemp("mine")
    root = _tree(base / "videos", clip_bytes, {c: 3 for c in CLASSES})
    assert _prepare(root, base / "out") == 0
    return base / "out"


def test_recipe_and_cli_resolve_a_custom_dataset(prepared_mine, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    cpu = get_recipe("mine", "Lite")
    assert cpu["backbone"] == "resnet_tiny" and not cpu["pretrained"] and cpu["dataset"] == "mine"
    assert TrainConfig.from_recipe("mine", "Lite", data_root=str(prepared_mine)).input_size == 112
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    gpu = get_recipe("mine", "Lite")
    assert gpu["backbone"] == "resnet50" and gpu["pretrained"] and gpu["epochs"] == 80
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert train_main(["--recipe", "mine/TSM", "--set", f"data_root={prepared_mine}", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "dataset: mine" in out and "backbone: resnet_tiny" in out


def test_train_one_step_on_videos_and_decoded_arrays(prepared_mine, tmp_path):
    bundle = build_split("mine", str(prepared_mine), "train", modality="Lite", num_segments=2, input_size=32,
                         scale_size=32)
    clip, label, _ = bundle.dataset[0]
    assert bundle.num_classes == 3 and tuple(clip.shape) == (2 * 4 * 3, 32, 32) and 0 <= label < 3
    quiet = dict(device="cpu", amp="off", num_workers=0, progress="off", tensorboard=False, count_flops=False,
                 save_every_minutes=0.0, resume=False, threads=1)
    cfg = TrainConfig.from_recipe("mine", "TSM", data_root=str(prepared_mine), backbone="resnet_tiny",
                                  pretrained=False, num_segments=2, epochs=1, batch_size=2, input_size=32,
                                  scale_size=32, run_dir=str(tmp_path / "run"), **quiet)
    res = train(cfg)
    assert res.status == "completed" and res.metrics[0]["train_clips_per_s"] > 0
    record = json.loads(res.record_path.read_text())
    assert record["dataset"] == "mine" and record["data"]["classes"] == list(CLASSES)
    # the one-time resize-and-decode: training then reads array slices
    assert main(["decode", str(prepared_mine), "--short-side", "32", "--workers", "1", "--progress", "off"]) == 0
    assert get_prepared("mine", prepared_mine).source == "decoded"
    res = train(cfg.replace(run_dir=str(tmp_path / "run_decoded")))
    assert res.status == "completed"


def test_demo_takes_class_names_from_the_prepared_folder(prepared_mine, tmp_path):
    cfg = DemoConfig(video="v.mp4", checkpoint="c.pt", dataset="mine", data_root=str(prepared_mine))
    assert class_names_for(cfg, 3, {}) == list(CLASSES)
