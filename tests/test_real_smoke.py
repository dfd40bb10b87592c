"""A smoke reproduction on real clips: the official downloads' layout, preparation, frame extraction,
the official recipe's code path for a few steps on the CPU, and every test protocol.

The clips in tests/fixtures/realclips are real UCF101 and HMDB51 videos (README there). They are laid
out as the official downloads -- ``UCF-101/<Class>/v_*.avi`` + ``ucfTrainTestlist/`` and
``hmdb51_org/<class>/<name>.avi`` + ``testTrainMulti_7030_splits/`` -- with split files in the real
format (CRLF for UCF101, ``<name>.avi <flag> `` for HMDB51) that name every clip by its official
``.avi`` name, although most files on disk are re-encoded ``.mp4`` (and the UCF101 ``.mp4`` containers
report 0 frames). The real excerpts in tests/fixtures/formats are included too; their videos are not
on disk and must end up in ``missing_<split>.txt``.

Which clip goes to train and which to val is ours: all eleven UCF101 clips are in groups 1-7, i.e.
in ``testlist01`` under the official rule, which would leave nothing to train on (the one clip the
real testlist01 excerpt names stays in val).

What is shrunk against the official recipe (ResNet-50, 224 px, 8 segments, SGD with the x5/x10
groups, step schedule -- all kept): batch 2 instead of 64, 2 optimiser steps of 1 epoch, 1 val batch,
no ImageNet initialisation (no download in CI), 0 workers, and evaluation on at most 2 videos for the
multi-view protocols. ``python tests/test_real_smoke.py DIR`` writes the two raw layouts into DIR
for running ``make reproduce ... SMOKE=1`` by hand (docs/notebooks.md).
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_prep.__main__ import main as data_prep_main
from pan_lib import tables
from pan_lib.data.lists import read_list_file
from pan_lib.data.preparation import find_listed_videos
from pan_lib.data.registry import build_dataset, get_dataset_info, get_prepared
from pan_lib.data.video import count_frames, probe
from pan_lib.engine.config import TrainConfig
from pan_lib.engine.recipes import get_recipe
from pan_lib.notebook.runs import evaluate_or_load, train_configs, train_or_load

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"

# (clip file in tests/fixtures/realclips/ucf101, class folder, split)
UCF_CLIPS = (
    ("v_Basketball_g07_c04.mp4", "Basketball", "train"),
    ("v_Biking_g01_c01.mp4", "Biking", "train"),
    ("v_CliffDiving_g03_c01.mp4", "CliffDiving", "train"),
    ("v_Fencing_g01_c06.mp4", "Fencing", "train"),
    ("v_HorseRiding_g01_c03.mp4", "HorseRiding", "train"),
    ("v_IceDancing_g02_c05.mp4", "IceDancing", "train"),
    ("v_SalsaSpin_g03_c01.mp4", "SalsaSpin", "train"),
    ("v_Basketball_g01_c02.mp4", "Basketball", "val"),        # 0 frames in the container
    ("v_SkateBoarding_g02_c01.mp4", "SkateBoarding", "val"),  # the longest clip: 369 frames
    ("v_HeadMassage_g02_c05.avi", "HeadMassage", "val"),      # an original .avi
    ("v_ApplyEyeMakeup_g01_c01.avi", "ApplyEyeMakeup", "val"),  # also a line of the real testlist01 excerpt
)
# (clip file in tests/fixtures/realclips/hmdb51, class, official flag: 1 train, 2 test)
HMDB_CLIPS = (
    ("50_FIRST_DATES_drink_u_nm_np1_fr_goo_29.mp4", "drink", 1),
    ("BASE_Jumping_Compilation_-_Brilliant_dive_f_cm_np1_le_bad_3.mp4", "dive", 1),
    ("BaseballSwingAnalysis_swing_baseball_u_nm_np1_ba_med_0.mp4", "swing_baseball", 1),
    ("Bodenturnen_im_sportunterricht_handstand_f_cm_np1_le_med_1.mp4", "handstand", 1),
    ("Bruno_Walks_up_Stairs_-_Chicago_Dog_Training_-_We_can_teach_ANYTHING_to_a_dog!!!!_climb_stairs_f_cm_np1_fr_med_0.mp4",
     "climb_stairs", 2),
    ("DefensivePistolShootingTechniques_shoot_gun_f_nm_np1_fr_med_3.mp4", "shoot_gun", 2),
    ("Documentario_Le_Parkour_Londrina_jump_f_cm_np1_ri_bad_6.mp4", "jump", 2),
)


def official_name(clip: str) -> str:
    """The name the official split files give a clip: its stem + ``.avi``."""
    return Path(clip).stem + ".avi"


def write_ucf101_layout(root: Path, fixtures: Path = FIXTURES) -> Path:
    """``root/UCF-101/<Class>/<clip>`` + ``root/ucfTrainTestlist/{classInd,trainlist01,testlist01}.txt``."""
    clips, lists = fixtures / "realclips" / "ucf101", root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    shutil.copy(fixtures / "formats" / "ucf101" / "classInd.txt", lists / "classInd.txt")  # all 101 classes, CRLF
    class_index = {line.split()[1]: int(line.split()[0])
                   for line in (lists / "classInd.txt").read_text().splitlines() if line.strip()}
    train = [f"{cls}/{official_name(c)} {class_index[cls]}" for c, cls, split in UCF_CLIPS if split == "train"]
    test = [f"{cls}/{official_name(c)}" for c, cls, split in UCF_CLIPS if split == "val"]
    excerpts = fixtures / "formats" / "ucf101"  # real lines whose videos are not here
    train += (excerpts / "trainlist01.excerpt.txt").read_text().splitlines()
    test += [line for line in (excerpts / "testlist01.excerpt.txt").read_text().splitlines() if line not in test]
    for name, lines in (("trainlist01.txt", train), ("testlist01.txt", test)):
        (lists / name).write_bytes("".join(f"{line}\r\n" for line in lines).encode())  # CRLF, as shipped
    for clip, cls, _ in UCF_CLIPS:
        (root / "UCF-101" / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(clips / clip, root / "UCF-101" / cls / clip)
    return root


def write_hmdb51_layout(root: Path, fixtures: Path = FIXTURES) -> Path:
    """``root/hmdb51_org/<class>/<clip>`` + ``root/testTrainMulti_7030_splits/<class>_test_split1.txt``."""
    clips, splits = fixtures / "realclips" / "hmdb51", root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True, exist_ok=True)
    for clip, cls, flag in HMDB_CLIPS:
        (splits / f"{cls}_test_split1.txt").write_text(f"{official_name(clip)} {flag} \n")  # trailing space
        (root / "hmdb51_org" / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(clips / clip, root / "hmdb51_org" / cls / clip)
    for excerpt in sorted((fixtures / "formats" / "hmdb51").glob("*_test_split1.txt")):
        shutil.copy(excerpt, splits / excerpt.name)  # real files; their videos are not here
    return root


# ------------------------------------------------------------------------------------ preparation
@pytest.fixture(scope="module")
def raw(tmp_path_factory, shared_dir) -> Path:
    root = tmp_path_factory.mktemp("realclips_raw")
    write_ucf101_layout(root / "ucf101", shared_dir)
    write_hmdb51_layout(root / "hmdb51", shared_dir)
    return root


@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory) -> Path:
    """``python -m data_prep ucf101|hmdb51`` then ``extract-frames`` at the registry's scale and names."""
    out = tmp_path_factory.mktemp("realclips_prepared")
    for name in ("ucf101", "hmdb51"):
        assert data_prep_main([name, "--root", str(raw / name), "--split", "1", "--out", str(out / name),
                               "--workers", "1", "--progress", "off"]) == 0
        assert data_prep_main(["extract-frames", str(out / name), "--workers", "2", "--progress", "off"]) == 0
    return out


def test_zero_frame_containers_are_counted_by_decoding(shared_dir):
    clip = shared_dir / "realclips" / "ucf101" / "v_Basketball_g01_c02.mp4"
    info = probe(clip, count=True)
    assert info.header_frames == 0 and info.duration_frames == 0  # nothing in the container
    assert count_frames(clip) == info.decoded_frames == 180
    avi = shared_dir / "realclips" / "ucf101" / "v_ApplyEyeMakeup_g01_c01.avi"
    assert count_frames(avi) == probe(avi).header_frames == 164


def test_official_lists_match_reencoded_clips(prepared, shared_dir):
    ucf = get_prepared("ucf101", prepared / "ucf101", source="video")
    assert ucf.num_classes == 101
    train, val = read_list_file(ucf.list_for("train")), read_list_file(ucf.list_for("val"))
    on_disk = {f"{cls}/{c}": split for c, cls, split in UCF_CLIPS}
    assert {r.path: "train" for r in train} | {r.path: "val" for r in val} == on_disk  # .avi names -> .mp4 files
    for r in train + val:
        assert r.num_frames == count_frames(shared_dir / "realclips" / "ucf101" / Path(r.path).name) > 0
        assert ucf.classes[r.label] == r.path.split("/")[0]  # label = classInd - 1
    assert {r.path for r in val if r.path.endswith("Basketball_g01_c02.mp4")}  # the 0-frame container is listed
    missing = (prepared / "ucf101" / "missing_train.txt").read_text().split()
    assert "HandstandPushups/v_HandStandPushups_g08_c01.avi" in missing  # real excerpt lines, not on disk

    hmdb = get_prepared("hmdb51", prepared / "hmdb51", source="video")
    rows = {r.path: r for split in ("train", "val") for r in read_list_file(hmdb.list_for(split))}
    assert len(rows) == len(HMDB_CLIPS)
    for clip, cls, flag in HMDB_CLIPS:
        r = rows[f"{cls}/{clip}"]
        assert hmdb.classes[r.label] == cls and r.num_frames > 0
    assert "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi" in (
        prepared / "hmdb51" / "missing_train.txt").read_text().splitlines()


def test_extract_frames_official_names_and_scale(prepared):
    for name in ("ucf101", "hmdb51"):
        info = get_dataset_info(name)
        summary = json.loads((prepared / name / "extraction.json").read_text())
        assert summary["failed"] == 0 and summary["image_tmpl"] == info.image_tmpl == "img_{:05d}.jpg"
        assert summary["scale_short_side"] == info.frame_scale == 256
        frames = get_prepared(name, prepared / name)  # source auto: the extracted frames
        assert frames.source == "frames"
        videos = {Path(r.path).with_suffix("").as_posix(): r.num_frames
                  for split in ("train", "val") for r in read_list_file(prepared / name / f"{split}_videos.txt")}
        for split in ("train", "val"):
            for r in read_list_file(frames.list_for(split)):
                assert videos[r.path] == r.num_frames  # every decoded frame was written
                folder = frames.data_dir / r.path
                assert (folder / "img_00001.jpg").is_file() and (folder / f"img_{r.num_frames:05d}.jpg").is_file()
                assert not (folder / f"img_{r.num_frames + 1:05d}.jpg").exists()
        import cv2

        first = next(frames.data_dir.rglob("img_00001.jpg"))
        assert min(cv2.imread(str(first)).shape[:2]) == 256


@pytest.mark.parametrize("source", ["frames", "video"])
def test_official_clips_load_from_real_media(prepared, source):
    """PA/Lite clips (8 segments x 4 frames) and the 10-clip dense view, from JPEGs and from the videos
    (the 0-frame .mp4 is decoded by the PyAV fallback)."""
    ucf = get_prepared("ucf101", prepared / "ucf101", source=source)
    ds = build_dataset(ucf, "val", num_segments=8, new_length=4, input_size=224, scale_size=256, bad_input="raise")
    clip, label, _ = ds[0]
    assert tuple(clip.shape) == (8 * 4 * 3, 224, 224) and label >= 0
    dense = build_dataset(ucf, "val", num_segments=8, new_length=1, mode="test", input_size=224, scale_size=256,
                          dense_sample=True, bad_input="raise")
    assert dense[1][0].shape[0] == 10 * 8 * 3


def test_listed_names_match_any_video_extension(tmp_path):
    (tmp_path / "A").mkdir()
    for name in ("v_A_g01_c01.mp4", "v_A_g01_c02.avi", "v_A_g01_c02.mp4", "clip.v2.mp4"):
        (tmp_path / "A" / name).write_bytes(b"x")
    found = find_listed_videos(["A/v_A_g01_c01.avi", "A/v_A_g01_c02.avi", "A/clip.v2.avi", "A/absent.avi"], tmp_path)
    assert found == {"A/v_A_g01_c01.avi": tmp_path / "A" / "v_A_g01_c01.mp4",
                     "A/v_A_g01_c02.avi": tmp_path / "A" / "v_A_g01_c02.avi",  # the listed extension wins
                     "A/clip.v2.avi": tmp_path / "A" / "clip.v2.mp4"}          # only the extension is dropped


# ------------------------------------------------------------------------- the official recipe, smoke
# What `make reproduce ... SMOKE=1` runs (the workbook's small mode, batch 2) plus the budget small
# mode must apply on a real dataset: no ImageNet download, 2 train batches, 1 val batch.
SMOKE_TRAIN = dict(batch_size=2, num_workers=0, pretrained=False, max_train_batches=2, max_val_batches=1,
                   device="cpu", tensorboard=False)
# (eval name, EvalConfig fields): every test protocol of the official test_models.py / the paper
PROTOCOLS = (
    ("PAN_Lite_val_1crop_1clip", dict()),                                               # paper's single-model
    ("PAN_Lite_val_3crop_2clip_fullres", dict(crops=3, twice_sample=True, full_res=True, max_videos=1)),
    ("PAN_Lite_val_1crop_10clip_dense", dict(dense_sample=True, source="video", max_videos=1)),
)


@pytest.fixture(scope="module")
def smoke_run(prepared, tmp_path_factory):
    """The official Lite recipe (ResNet-50, 224 px, 8 x 4 frames, SGD x5/x10 groups, step schedule) for 2
    steps on the extracted UCF101 frames, then every protocol, through the notebooks' entry points."""
    run_root = tmp_path_factory.mktemp("realclips_runs")
    start = time.perf_counter()
    configs = train_configs("ucf101", ["Lite"], [0], recipe="official", data_root=prepared / "ucf101",
                            run_root=run_root, small=True, progress="off", **SMOKE_TRAIN)
    result, = train_or_load(configs)
    evals = {name: evaluate_or_load(name, [result.last_checkpoint], out_dir=result.run_dir / "eval" / name,
                                    dataset="ucf101", data_root=str(prepared / "ucf101"), device="cpu",
                                    num_workers=0, batch_size=1, progress="off", **fields)
             for name, fields in PROTOCOLS}
    return configs[0], result, evals, run_root, time.perf_counter() - start


@pytest.mark.slow
def test_official_recipe_trains_on_real_frames(smoke_run):
    cfg, result, _, _, seconds = smoke_run
    official = TrainConfig.from_dict(get_recipe("sthv2", "Lite"))  # the official Lite.sh
    for key in ("backbone", "input_size", "scale_size", "num_segments", "shift_div", "optimizer", "group_lr",
                "lr_type", "lr_steps", "weight_decay", "momentum", "clip_grad", "dropout", "fc_lr5", "base_lr",
                "base_batch"):
        assert getattr(cfg, key) == getattr(official, key), key
    record = result.record
    assert record["status"] == "completed" and record["data"]["source"] == "frames"
    assert record["history"][-1]["global_step"] == 2 and record["data"]["num_train"] == 7
    assert record["model_config"]["backbone"] == "resnet50" and record["model_config"]["pretrained"] is False
    assert math.isfinite(record["metrics"]["train_loss"])
    print(f"smoke reproduction (train + 3 protocols): {seconds:.0f} s")


@pytest.mark.slow
def test_every_protocol_on_real_clips(smoke_run):
    _, _, evals, _, _ = smoke_run
    views = {"PAN_Lite_val_1crop_1clip": 1, "PAN_Lite_val_3crop_2clip_fullres": 6, "PAN_Lite_val_1crop_10clip_dense": 10}
    for name, record in evals.items():
        assert record["status"] == "completed" and record["views"] == views[name], name
        assert record["metrics"]["num_videos"] == (4 if name.endswith("1clip") else 1)
    assert evals["PAN_Lite_val_3crop_2clip_fullres"]["protocol"]["input_size"] == 256  # full resolution


@pytest.mark.slow
def test_real_dataset_table_marks_smoke_runs(smoke_run, tmp_path):
    _, _, _, run_root, _ = smoke_run
    direct = tables.real_dataset_rows(tables.aggregate(tables.load_results(run_root)))
    # what notebook 05 writes: the records copied under <out>/records (portable paths), the table from them
    tables.write_tables(run_root, tmp_path, command="test", dataset="ucf101")
    written = json.loads((tmp_path / "tables" / "real_datasets.json").read_text())["rows"]
    for rows in (direct, written):
        smoke = {r["our_protocol"]: r["note"] for r in rows if r["dataset"] == "ucf101"}
        assert len(smoke) == len(PROTOCOLS)  # every protocol of a smoke run gets its row
        assert all(note.startswith("smoke run: 7 real train clips, 2 steps, ") and
                   note.endswith("not comparable to the paper") for note in smoke.values()), smoke
        assert all(r["note"] == "" and r["our_top1"] == tables.NOT_RUN for r in rows if r["dataset"] != "ucf101")


def test_make_reproduce_passes_smoke_through(repo_root):
    out = subprocess.run(["make", "-n", "reproduce", "DATASET=ucf101", "DATA_ROOT=/data/ucf101", "SMOKE=1"],
                         cwd=repo_root, capture_output=True, text=True, check=True).stdout
    line = " ".join(out.replace("\\\n", " ").replace('"', "").split())
    assert "-m pan_lib.workbook --dataset ucf101 --data-root /data/ucf101 --recipe official" in line
    assert "--seeds 0 --small --set batch_size=2 --set num_workers=0 --out .cache/smoke/ucf101" in line
    full = subprocess.run(["make", "-n", "reproduce", "DATASET=ucf101", "DATA_ROOT=/data/ucf101"], cwd=repo_root,
                          capture_output=True, text=True, check=True).stdout
    assert "--small" not in full and "--seeds 0 1 2" in full and "results/ucf101" in full


if __name__ == "__main__":  # write the raw layouts for a run by hand: python tests/test_real_smoke.py DIR
    target = Path(sys.argv[1])
    print(write_ucf101_layout(target / "ucf101"), write_hmdb51_layout(target / "hmdb51"))
