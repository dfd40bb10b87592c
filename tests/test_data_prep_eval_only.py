"""Evaluation-only downloads: SSv2 with labels + validation (+ test) JSON and Kinetics with only the val
(+ test) CSV prepare their val/test lists without a train file; training on them names the missing file."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import put_file
from data_prep.__main__ import main
from pan_lib.data import find_prepared
from pan_lib.data.lists import read_list_file
from pan_lib.data.prepared import DatasetNotPreparedError
from pan_lib.engine import TrainConfig, train

QUIET = dict(device="cpu", amp="off", num_workers=0, progress="off", tensorboard=False, count_flops=False,
             save_every_minutes=0.0, resume=False, threads=1)




def _cannot_train(dataset: str, out: Path, tmp_path: Path, needs: str) -> None:
    cfg = TrainConfig(dataset=dataset, data_root=str(out), modality="TSM", backbone="resnet_tiny", num_segments=2,
                      epochs=1, batch_size=1, input_size=32, scale_size=32, run_dir=str(tmp_path / "run"), **QUIET)
    with pytest.raises(DatasetNotPreparedError, match=f"training needs the {needs}"):
        train(cfg)


def test_sthv2_labels_and_validation_only(shared_dir, tmp_path, clip_bytes, capsys, caplog):
    src = shared_dir / "formats/sthv2"
    root = tmp_path / "ssv2"
    for a, b in [("something-something-v2-labels.json", "something-something-v2-labels.json"),
                 ("something-something-v2-validation.head10.json", "something-something-v2-validation.json"),
                 ("something-something-v2-test.head10.json", "something-something-v2-test.json")]:
        put_file(root / "labels" / b, (src / a).read_bytes())
    val_ids = [e["id"] for e in json.loads((src / "something-something-v2-validation.head10.json").read_text())]
    test_id = json.loads((src / "something-something-v2-test.head10.json").read_text())[0]["id"]
    for vid in (val_ids[0], val_ids[3], test_id):
        put_file(root / "20bn-something-something-v2" / f"{vid}.webm", clip_bytes)
    assert main(["sthv2", "--root", str(root), "--out", str(tmp_path / "out"), "--workers", "1",
                 "--progress", "off"]) == 0
    printed = capsys.readouterr().out
    assert "no train list: evaluation-only download: training needs the SSv2 train JSON" in printed
    assert any("training needs the SSv2 train JSON" in r.getMessage() for r in caplog.records)
    p = find_prepared("sthv2", tmp_path / "out")
    assert p.train_list is None and p.num_classes == 174
    val = read_list_file(p.val_list)
    assert [r.path for r in val] == [f"{val_ids[0]}.webm", f"{val_ids[3]}.webm"] and all(r.label >= 0 for r in val)
    assert [(r.path, r.label) for r in read_list_file(p.test_list)] == [(f"{test_id}.webm", -1)]
    manifest = json.loads((tmp_path / "out/prepared.json").read_text())
    assert manifest["options"]["evaluation_only"] and "train" in manifest["absent_splits"]
    with pytest.raises(DatasetNotPreparedError, match="something-something-v2-train.json"):
        p.list_for("train")
    _cannot_train("sthv2", tmp_path / "out", tmp_path, "SSv2 train JSON")


def test_kinetics_val_csv_only(shared_dir, tmp_path, clip_bytes, capsys):
    src = shared_dir / "formats/kinetics400"
    root = tmp_path / "k400"
    root.mkdir()
    shutil.copy(src / "kinetics_val.excerpt.csv", root / "kinetics_val.csv")
    shutil.copy(src / "kinetics_test.head10.csv", root / "kinetics_test.csv")
    put_file(root / "val/skiing_crosscountry/-JyH941Q89Q_000115_000125.mp4", clip_bytes)
    put_file(root / "test/--6bJUbfpnQ_000017_000027.mp4", clip_bytes)
    assert main(["kinetics400", "--root", str(root), "--out", str(tmp_path / "out"), "--label-map",
                 str(src / "label_map_k400.mmaction2.txt"), "--workers", "1", "--progress", "off"]) == 0
    assert "training needs the Kinetics train CSV" in capsys.readouterr().out
    p = find_prepared("kinetics400", tmp_path / "out")
    assert p.train_list is None and p.num_classes == 400
    (val,) = read_list_file(p.val_list)
    assert p.classes[val.label] == "skiing crosscountry" and val.num_frames == 20
    assert [r.label for r in read_list_file(p.test_list)] == [-1]
    _cannot_train("kinetics400", tmp_path / "out", tmp_path, "Kinetics train CSV")
    # without a label map the classes are the val CSV's labels, sorted
    assert main(["kinetics400", "--root", str(root), "--out", str(tmp_path / "sorted"), "--no-count-frames",
                 "--progress", "off"]) == 0
    q = find_prepared("kinetics400", tmp_path / "sorted")
    assert q.classes == sorted(q.classes) and "skiing crosscountry" in q.classes
