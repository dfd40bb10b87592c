"""End-to-end preparation of each real dataset from a fake download built from the format samples."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import put_file
from data_prep.__main__ import main
from data_prep.datasets import prepare_hmdb51, prepare_jester, prepare_kinetics400, prepare_sthv1, prepare_ucf101
from pan_lib.data import find_prepared
from pan_lib.data.lists import read_list_file
from pan_lib.data.preparation import prepare_sthv2




def test_sthv2(shared_dir, tmp_path, clip_bytes):
    src = shared_dir / "formats/sthv2"
    root = tmp_path / "ssv2"
    for a, b in [("something-something-v2-labels.json", "something-something-v2-labels.json"),
                 ("something-something-v2-train.excerpt.json", "something-something-v2-train.json"),
                 ("something-something-v2-validation.head10.json", "something-something-v2-validation.json"),
                 ("something-something-v2-test.head10.json", "something-something-v2-test.json")]:
        put_file(root / "labels" / b, (src / a).read_bytes())
    for vid in ("78687", "42326", "74225", "1420"):
        put_file(root / "20bn-something-something-v2" / f"{vid}.webm", clip_bytes)
    prepare_sthv2(root, tmp_path / "out", workers=1, progress="off")
    p = find_prepared("sthv2", tmp_path / "out")
    assert p.source == "video" and p.num_classes == 174
    train = read_list_file(p.train_list)
    assert [(r.path, r.num_frames) for r in train] == [("78687.webm", 20), ("42326.webm", 20)]
    assert train[0].label == p.classes.index("Holding something next to something")
    assert (tmp_path / "out/missing_train.txt").read_text().split() == ["145274", "131791"]
    assert [r.label for r in read_list_file(p.test_list)] == [-1]  # no answers given
    manifest = json.loads((tmp_path / "out/prepared.json").read_text())
    assert manifest["counts"]["missing/val"] == 9 and manifest["provenance"]["git_sha"]


def _frames(folder: Path, n: int, tmpl: str, done_file: bool = False) -> None:
    folder.mkdir(parents=True)
    for i in range(1, n + 1):
        (folder / tmpl.format(i)).write_bytes(b"jpg")
    if done_file:
        (folder / "DONE").write_bytes(b"")


@pytest.mark.parametrize("order", ["sorted", "file"])
def test_sthv1_frames_and_label_order(shared_dir, tmp_path, order):
    src = shared_dir / "formats/sthv1"
    root = tmp_path / "ssv1"
    root.mkdir()
    for kind in ("labels", "train", "validation", "test"):
        name = f"something-something-v1-{kind}.csv"
        shutil.copy(src / (name if kind == "labels" else name.replace(".csv", ".head20.csv")), root / name)
    _frames(root / "20bn-something-something-v1/100218", 37, "{:05d}.jpg", done_file=True)
    _frames(root / "20bn-something-something-v1/85", 30, "{:05d}.jpg")
    prepare_sthv1(root, tmp_path / "out", label_order=order)
    p = find_prepared("sthv1", tmp_path / "out")
    assert p.source == "frames" and p.image_tmpl == "{:05d}.jpg"
    (train,) = read_list_file(p.train_list)
    assert (train.path, train.num_frames) == ("100218", 37)  # the DONE file is not a frame
    assert p.classes[train.label] == "Something falling like a feather or paper"
    assert (p.classes.index("Pretending to pick something up") == 68) == (order == "sorted")


def test_jester(shared_dir, tmp_path):
    src = shared_dir / "formats/jester"
    root = tmp_path / "jester"
    root.mkdir()
    shutil.copy(src / "jester-v1-labels.csv", root)
    for kind in ("train", "validation", "test"):
        shutil.copy(src / f"jester-v1-{kind}.head20.csv", root / f"jester-v1-{kind}.csv")
    _frames(root / "20bn-jester-v1/34870", 36, "{:05d}.jpg")
    prepare_jester(root, tmp_path / "out")
    p = find_prepared("jester", tmp_path / "out")
    (rec,) = read_list_file(p.train_list)
    assert p.classes[rec.label] == "Drumming Fingers" and p.num_classes == 27 and not p.info.flip


def test_kinetics(shared_dir, tmp_path, clip_bytes):
    src = shared_dir / "formats/kinetics400"
    root = tmp_path / "k400"
    root.mkdir()
    shutil.copy(src / "kinetics_val.excerpt.csv", root / "kinetics_train.csv")
    shutil.copy(src / "kinetics_val.excerpt.csv", root / "kinetics_val.csv")
    shutil.copy(src / "kinetics_test.head10.csv", root / "kinetics_test.csv")
    put_file(root / "train/air drumming/--nQbRBEz2s_000104_000114.mp4", clip_bytes)
    put_file(root / "val/skiing_crosscountry/-JyH941Q89Q_000115_000125.mp4", clip_bytes)
    put_file(root / "test/--6bJUbfpnQ_000017_000027.mp4", clip_bytes)
    prepare_kinetics400(root, tmp_path / "out", label_map=src / "label_map_k400.mmaction2.txt", workers=1,
                        progress="off")
    p = find_prepared("kinetics400", tmp_path / "out")
    by_path = {r.path: r for split in ("train", "val", "test") for r in read_list_file(p.list_for(split))}
    rec = by_path["train/air drumming/--nQbRBEz2s_000104_000114.mp4"]  # path with a space survives
    assert p.classes[rec.label] == "air drumming" and rec.num_frames == 20
    assert p.classes[by_path["val/skiing_crosscountry/-JyH941Q89Q_000115_000125.mp4"].label] == "skiing crosscountry"
    assert by_path["test/--6bJUbfpnQ_000017_000027.mp4"].label == -1
    # --label-order pan swaps the two skiing classes relative to the raw sort
    assert main(["kinetics400", "--root", str(root), "--out", str(tmp_path / "pan"), "--label-order", "pan",
                 "--no-count-frames", "--progress", "off"]) == 0
    pan = find_prepared("kinetics400", tmp_path / "pan")
    raw = sorted(pan.classes)
    assert pan.classes.index("skiing crosscountry") < pan.classes.index("skiing (not slalom or crosscountry)")
    assert raw.index("skiing crosscountry") > raw.index("skiing (not slalom or crosscountry)")
    assert {r.num_frames for r in read_list_file(pan.train_list)} == {-1}


def test_ucf101(shared_dir, tmp_path, clip_bytes):
    src = shared_dir / "formats/ucf101"
    root = tmp_path / "ucf"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    shutil.copy(src / "classInd.txt", lists)
    shutil.copy(src / "trainlist01.excerpt.txt", lists / "trainlist01.txt")
    shutil.copy(src / "testlist01.excerpt.txt", lists / "testlist01.txt")
    hs = next(line.split()[0] for line in (src / "trainlist01.excerpt.txt").read_text().splitlines()
              if "HandStandPushups" in line)
    put_file(root / "UCF-101" / hs, clip_bytes)
    put_file(root / "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", clip_bytes)
    prepare_ucf101(root, tmp_path / "out", split=1, workers=1, progress="off")
    p = find_prepared("ucf101", tmp_path / "out")
    (train,) = read_list_file(p.train_list)
    assert train.path == hs and p.classes[train.label] == "HandstandPushups"
    (val,) = read_list_file(p.val_list)
    assert val.label == 0 and p.test_list is None


def test_hmdb51(shared_dir, tmp_path, clip_bytes):
    src = shared_dir / "formats/hmdb51"
    root = tmp_path / "hmdb"
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for f in src.glob("*_test_split1.txt"):
        shutil.copy(f, splits)
    name = "Geena_und_die_Radschl_ge___;-)_cartwheel_f_cm_np1_fr_med_2.avi"
    put_file(root / "hmdb51_org/cartwheel" / name, clip_bytes)
    hash_name = next(line.rsplit(" ", 2)[0] for line in (src / "chew_test_split1.txt").read_text().splitlines()
                     if line.startswith("#"))
    put_file(root / "hmdb51_org/chew" / hash_name, clip_bytes)
    prepare_hmdb51(root, tmp_path / "out", split=1, workers=1, progress="off")
    p = find_prepared("hmdb51", tmp_path / "out")
    assert p.classes == ["brush_hair", "cartwheel", "chew"]
    recs = read_list_file(p.train_list) + read_list_file(p.val_list)
    assert {r.path for r in recs} == {f"cartwheel/{name}", f"chew/{hash_name}"}
    assert (tmp_path / "out/missing_train.txt").exists()


def test_cli_errors_name_file_and_line(tmp_path, capsys, shared_dir):
    root = tmp_path / "bad"
    root.mkdir()
    shutil.copy(shared_dir / "formats/jester/jester-v1-labels.csv", root)
    (root / "jester-v1-train.csv").write_text("1;Drumming Fingers\n2;Juggling\n")
    (root / "jester-v1-validation.csv").write_text("3;Thumb Up\n")
    (root / "20bn-jester-v1").mkdir()
    assert main(["jester", "--root", str(root), "--out", str(tmp_path / "o")]) == 2
    assert "jester-v1-train.csv:2: label 'Juggling'" in capsys.readouterr().err
    assert main(["sthv2", "--root", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
