"""Decoders, transforms, VideoClipDataset, bad-input policy, DataLoader workers, embedded dataset."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from data_prep.__main__ import main
from data_prep.check import check_videos
from data_prep.extract import extract_frames
from pan_lib.data import (DatasetNotPreparedError, build_dataset, find_prepared, get_dataset_info,
                          prepare_embedded)
from pan_lib.data.dataset import VideoClipDataset
from pan_lib.data.decoded import decode_videos
from pan_lib.data.lists import VideoRecord, read_list_file
from pan_lib.data.synthetic import PAIRS, render_video
from pan_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ClipTransform, GroupMultiScaleCrop
from pan_lib.data.video import VideoReadError, probe, read_video_frames, write_video

CODECS = [("libvpx-vp9", ".webm"), ("libx264", ".mp4")]


def ramp_frames(n: int = 24, h: int = 48, w: int = 64) -> np.ndarray:
    """Frame i is uniformly grey 8*i with a white box whose position encodes i."""
    frames = np.stack([np.full((h, w, 3), 8 * i, np.uint8) for i in range(n)])
    for i in range(n):
        frames[i, 8:24, i:i + 16] = 255
    return frames


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """The tiny embedded set as videos (the decoded-array source has its own tests below)."""
    return prepare_embedded(tmp_path_factory.mktemp("embedded"), size="tiny", progress="off", workers=2,
                            decoded_short_side=None)


@pytest.mark.parametrize("codec,ext", CODECS)
@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_decode_generated_video(tmp_path, codec, ext, backend):
    frames = ramp_frames()
    path = write_video(tmp_path / f"v{ext}", frames, codec=codec)
    idx = [0, 5, 5, 23, 1]
    got = read_video_frames(path, idx, backend=backend)
    assert got.shape == (5, 48, 64, 3) and got.dtype == np.uint8
    # right frames in the requested order (grey level identifies the frame), duplicates allowed
    assert np.abs(got[:, 40, 50].astype(int).mean(-1) - np.array(idx) * 8).max() <= 6
    assert np.array_equal(got[1], got[2])
    assert probe(path).fps == pytest.approx(12.0)


def test_decord_and_pyav_agree(tmp_path):
    path = write_video(tmp_path / "v.webm", ramp_frames())
    a = read_video_frames(path, range(24), backend="decord").astype(int)
    b = read_video_frames(path, range(24), backend="pyav").astype(int)
    assert np.abs(a - b).mean() < 1.0


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    d = tmp_path_factory.mktemp("broken")
    good = write_video(d / "good.webm", ramp_frames())
    data = good.read_bytes()
    (d / "truncated.webm").write_bytes(data[: len(data) // 2])
    (d / "empty.webm").write_bytes(b"")
    (d / "garbage.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    mp4 = write_video(d / "good.mp4", ramp_frames(), codec="libx264").read_bytes()
    (d / "truncated.mp4").write_bytes(mp4[: len(mp4) * 2 // 3])
    return d


@pytest.mark.parametrize("name", ["truncated.webm", "empty.webm", "garbage.mp4", "truncated.mp4"])
@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_broken_files_raise_video_read_error(broken, name, backend):
    with pytest.raises(VideoReadError, match=name.replace(".", r"\.")):
        read_video_frames(broken / name, [0, 20], backend=backend)


def test_check_videos_catches_silent_truncation(broken):
    results = {Path(r.path).name: r for r in check_videos(broken, workers=1, progress="off")}
    assert results["good.webm"].status == "ok" and results["good.mp4"].status == "ok"
    assert results["truncated.webm"].status == "truncated"  # decodes without error, but short
    assert results["truncated.webm"].decoded_frames < results["truncated.webm"].expected_frames
    assert results["empty.webm"].status == "empty"
    assert results["garbage.mp4"].status == "unreadable"
    assert results["truncated.mp4"].status in ("unreadable", "truncated")


def test_check_videos_cli_exit_status(broken, tmp_path, capsys):
    report = tmp_path / "report.csv"
    assert main(["check-videos", str(broken), "--workers", "1", "--progress", "off", "--report", str(report)]) == 1
    out = capsys.readouterr().out
    assert "truncated.webm" in out and "4 bad" in out
    assert len(report.read_text().splitlines()) == 7


# ----------------------------------------------------------------------------- transforms
def test_multiscale_crop_uses_official_candidates():
    crop = GroupMultiScaleCrop(224)
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(400):
        cw, ch, x, y = crop.sample(340, 256, rng)
        seen.add((cw, ch))
        w_step, h_step = (340 - cw) // 4, (256 - ch) // 4
        assert x % max(w_step, 1) == 0 and y % max(h_step, 1) == 0
        assert x + cw <= 340 and y + ch <= 256
    # sizes int(256*s) = 256, 224, 192, 168 (168 kept; 224 exact); scale indices differ <= 1
    assert seen == {(256, 256), (256, 224), (224, 256), (224, 224), (224, 192), (192, 224), (192, 192),
                    (192, 168), (168, 192), (168, 168)}


def test_same_random_parameters_for_all_frames():
    frame = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    clip = np.stack([frame] * 8)
    out = ClipTransform("train", input_size=32, flip=True)(clip, np.random.default_rng(3))
    assert out.shape == (24, 32, 32)
    per_frame = out.view(8, 3, 32, 32)
    assert all(torch.equal(per_frame[0], per_frame[i]) for i in range(8))


def test_normalisation_and_test_views():
    clip = np.full((4, 64, 80, 3), 255, np.uint8)
    out = ClipTransform("val", input_size=56, scale_size=64)(clip)
    expected = (1 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(out.view(4, 3, -1).mean(-1)[0].numpy(), expected, rtol=1e-5)
    for crops in (3, 5, 10):
        t = ClipTransform("test", input_size=56, scale_size=64, test_crops=crops)
        assert t(clip).shape == (crops * 4 * 3, 56, 56)
    assert ClipTransform("test", input_size=56, scale_size=64, full_res=True)(clip).shape == (12, 64, 64)


# ----------------------------------------------------------------------------- registry
def test_registry_names_and_errors(tmp_path):
    assert get_dataset_info("sthv2").flip is False and get_dataset_info("ucf101").flip is True
    assert get_dataset_info("sthv2").image_tmpl == "{:06d}.jpg"
    with pytest.raises(ValueError, match="embedded, sthv1, sthv2, kinetics400, ucf101, hmdb51, jester"):
        get_dataset_info("ssv2")
    with pytest.raises(DatasetNotPreparedError, match=r"python -m data_prep sthv2 --root .* --out " + str(tmp_path)):
        find_prepared("sthv2", tmp_path)


# ----------------------------------------------------------------------------- embedded + dataset
def test_embedded_layout_and_classes(embedded):
    raw = embedded.root / "raw"
    labels = json.loads((raw / "labels/something-something-v2-labels.json").read_text())
    assert list(labels) == sorted(labels) and list(labels.values()) == [str(i) for i in range(12)]
    assert embedded.classes == list(labels)
    doc = json.loads((raw / "labels.json").read_text())
    for c in doc["classes"]:  # every class has its time-reversed partner
        assert doc["classes"][c["reverse_of"]]["reverse_of"] == c["index"]
    train = read_list_file(embedded.train_list)
    assert len(train) == 24 and {r.label for r in train} == set(range(12))
    assert all(r.num_frames == 16 and r.path.endswith(".webm") for r in train)
    again = prepare_embedded(embedded.root, size="tiny", progress="off", decoded_short_side=None)  # same parameters: nothing to do
    assert again.fingerprint == embedded.fingerprint


def test_generator_determinism_and_time_reversal():
    for _, _, kind in PAIRS:
        a, wa = render_video(kind, False, np.random.default_rng([1, 2]), num_frames=12, size=48)
        b, wb = render_video(kind, False, np.random.default_rng([1, 2]), num_frames=12, size=48)
        r, _ = render_video(kind, True, np.random.default_rng([1, 2]), num_frames=12, size=48)
        c, _ = render_video(kind, False, np.random.default_rng([1, 3]), num_frames=12, size=48)
        assert np.array_equal(a, b) and wa == wb
        assert np.array_equal(r, a[::-1])        # the partner class is the same video backwards
        assert not np.array_equal(a, c)
        assert np.abs(a[0].astype(int) - a[-1]).mean() > 0.5  # something happens


@pytest.mark.parametrize("modality_frames", [1, 4])
def test_dataset_items(embedded, modality_frames):
    ds = build_dataset(embedded, "train", num_segments=8, new_length=modality_frames, input_size=32, scale_size=40)
    assert ds.transform.flip is False  # embedded (like SSv2): left/right defines classes
    clip, label, index = ds[3]
    assert clip.shape == (8 * modality_frames * 3, 32, 32) and clip.dtype == torch.float32
    assert label == ds.records[3].label and index == 3
    ds.set_epoch(0)
    a = ds[3][0]
    ds.set_epoch(0)
    assert torch.equal(a, ds[3][0])  # deterministic under (seed, epoch, index)
    ds.set_epoch(1)
    assert not torch.equal(a, ds[3][0])
    val = build_dataset(embedded, "val", num_segments=8, new_length=modality_frames, input_size=32, scale_size=40)
    assert torch.equal(val[0][0], val[0][0])


def test_frames_and_video_sources_agree(embedded, tmp_path):
    work = tmp_path / "prep"
    shutil.copytree(embedded.root, work)  # a prepared folder can be moved: its roots are relative
    manifest = json.loads((work / "prepared.json").read_text())
    assert manifest["video_root"] == "raw/20bn-something-something-v2"
    (work / "frames").mkdir()
    half = work / "frames" / "stale.part"  # leftover of an interrupted run
    half.mkdir()
    summary = extract_frames(work, scale=0, workers=1, progress="off", splits=["val"])
    assert summary["failed"] == 0 and not half.exists()
    assert extract_frames(work, scale=0, workers=1, progress="off", splits=["val"])["videos"] == 12  # resumable
    frames = find_prepared("embedded", work, source="frames")
    video = find_prepared("embedded", work, source="video")
    assert frames.fingerprint != video.fingerprint
    fds = build_dataset(frames, "val", num_segments=4, new_length=2, input_size=32, scale_size=40)
    vds = build_dataset(video, "val", num_segments=4, new_length=2, input_size=32, scale_size=40)
    assert fds.records[0].num_frames == vds.records[0].num_frames == 16
    assert (fds[0][0] - vds[0][0]).abs().mean() < 0.05  # JPEG vs decoded video: same frames


def _mixed_dataset(embedded, broken, policy, report_dir, mode="val"):
    good = read_list_file(embedded.val_list)[:4]
    records = [VideoRecord(str(embedded.data_dir / r.path), r.num_frames, r.label) for r in good]
    records.insert(1, VideoRecord(str(broken / "truncated.webm"), 24, 5))
    records.insert(3, VideoRecord(str(broken / "garbage.mp4"), 24, 6))
    records.append(VideoRecord(str(broken / "empty.webm"), -1, 7))
    return VideoClipDataset(records, "/", num_segments=8, new_length=4, mode=mode, source="video",
                            input_size=32, scale_size=40, bad_input=policy, report_dir=report_dir)


def test_bad_input_policies(embedded, broken, tmp_path):
    ds = _mixed_dataset(embedded, broken, "zeros", tmp_path / "z")
    clip, label, index = ds[1]
    assert torch.count_nonzero(clip) == 0 and (label, index) == (5, 1)
    report = ds.collect_bad_inputs()
    assert report.count == 1 and report.files == [str(broken / "truncated.webm")]
    assert "truncated.webm" in report.summary()
    assert ds.collect_bad_inputs().count == 0  # collected events are cleared

    ds = _mixed_dataset(embedded, broken, "resample", tmp_path / "r", mode="train")
    clip, label, index = ds[3]
    assert index != 3 and torch.count_nonzero(clip) > 0 and label == ds.records[index].label

    ds = _mixed_dataset(embedded, broken, "raise", tmp_path / "x")
    with pytest.raises(VideoReadError, match="garbage.mp4"):
        ds[3]


def test_dataloader_two_workers_reports_bad_inputs(embedded, broken, tmp_path):
    ds = _mixed_dataset(embedded, broken, "auto", tmp_path / "w", mode="train")
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, shuffle=False,
                                         multiprocessing_context="fork" if os.name == "posix" else None)
    ds.set_epoch(0)
    seen = 0
    for clips, labels, indices in loader:
        assert clips.shape[1:] == (96, 32, 32)
        assert torch.count_nonzero(clips.flatten(1), dim=1).min() > 0  # bad rows were resampled
        seen += len(labels)
    assert seen == len(ds)
    report = ds.collect_bad_inputs()
    assert {Path(f).name for f in report.files} == {"truncated.webm", "garbage.mp4", "empty.webm"}
    assert len({e["pid"] for e in report.events}) >= 1 and all(e["pid"] != os.getpid() for e in report.events)


def test_clip_seed_and_dense_alias(embedded):
    ds = build_dataset(embedded, "train", num_segments=4, new_length=1, input_size=32, scale_size=40)
    ds.set_clip_seed(7)
    a = ds[2][0]
    ds.set_clip_seed(7)
    assert torch.equal(a, ds[2][0])
    dense = build_dataset(embedded, "val", num_segments=4, input_size=32, scale_size=40, dense_sample=True)
    assert dense.dense_sample and dense[0][0].shape == (12, 32, 32)
    old = build_dataset(embedded, "val", num_segments=4, input_size=32, scale_size=40, dense=True)  # deprecated
    assert old.dense_sample and torch.equal(old[0][0], dense[0][0])


# ----------------------------------------------------------------------------- decoded arrays
def test_decoded_source_matches_videos_and_is_chosen_automatically(embedded, tmp_path):
    work = tmp_path / "prep"
    shutil.copytree(embedded.root, work)
    with pytest.raises(DatasetNotPreparedError, match="data_prep decode"):
        find_prepared("embedded", work, source="decoded")
    summary = decode_videos(work, short_side=40, workers=1, progress="off")
    assert summary["videos"] == 48 and summary["failed"] == 0 and summary["kept"] == 0
    assert decode_videos(work, short_side=40, workers=1, progress="off")["kept"] == 48  # resumable
    dec, vid = find_prepared("embedded", work), find_prepared("embedded", work, source="video")
    assert dec.source == "decoded" and dec.fingerprint == f"{vid.fingerprint}+s40"
    arr = np.load(dec.data_dir / f"{read_list_file(dec.val_list)[0].path}.npy")
    assert arr.dtype == np.uint8 and arr.shape == (16, 40, 40, 3)
    unlisted = [VideoRecord(r.path, -1, r.label) for r in read_list_file(dec.val_list)]  # counts from the arrays
    counted = VideoClipDataset(unlisted, dec.data_dir, num_segments=4, mode="val", source="decoded",
                               input_size=32, scale_size=40)
    assert counted.frame_indices(0).max() <= 16 and counted[0][0].shape == (4 * 3, 32, 32)
    for new_length in (1, 4):  # same clip from the arrays as from the videos (val: scale 40, crop 32)
        kw = dict(num_segments=4, new_length=new_length, input_size=32, scale_size=40)
        a, b = build_dataset(dec, "val", **kw)[2][0], build_dataset(vid, "val", **kw)[2][0]
        assert a.shape == b.shape and (a - b).abs().max() < 0.05  # uint8 rounding of the resize only


def test_decoded_source_bad_video_is_reported_not_fatal(embedded, tmp_path):
    work = tmp_path / "prep"
    shutil.copytree(embedded.root, work)
    victim = read_list_file(work / "val_videos.txt")[1]
    (work / "raw" / "20bn-something-something-v2" / victim.path).write_bytes(b"not a video")
    summary = decode_videos(work, short_side=40, workers=2, progress="off", splits=["val"])
    assert summary["failed"] == 1
    assert victim.path in (work / "decode_failures.txt").read_text()
    ds = build_dataset(find_prepared("embedded", work), "val", num_segments=4, input_size=32, scale_size=40,
                       report_dir=tmp_path / "bad")
    clip, label, index = ds[1]  # val policy "zeros": the row is scored (as wrong), the file is named
    assert torch.count_nonzero(clip) == 0 and (label, index) == (victim.label, 1)
    report = ds.collect_bad_inputs()
    assert report.files == [str(ds.path_of(1))] and "not in the decoded cache" in report.summary()
    assert torch.count_nonzero(ds[0][0]) > 0


def test_prepare_embedded_decodes_and_regeneration_drops_stale_arrays(tmp_path):
    root = tmp_path / "emb"
    p = prepare_embedded(root, size="tiny", progress="off", workers=2, decoded_short_side=40, num_frames=8)
    assert p.source == "decoded" and (root / "decoded_s40").is_dir()
    p2 = prepare_embedded(root, size="tiny", progress="off", workers=2, decoded_short_side=40, num_frames=10)
    first = read_list_file(p2.train_list)[0]
    assert np.load(p2.data_dir / f"{first.path}.npy").shape[0] == first.num_frames == 10


def test_decode_command_line(embedded, tmp_path, capsys):
    work = tmp_path / "prep"
    shutil.copytree(embedded.root, work)
    assert main(["decode", str(work), "--short-side", "40", "--workers", "1", "--splits", "val",
                 "--progress", "off"]) == 0
    assert '"failed": 0' in capsys.readouterr().out
    prepared = find_prepared("embedded", work)
    assert prepared.source == "decoded" and prepared.val_list is not None and prepared.train_list is None
    assert prepared.media_dir == work / "raw" / "20bn-something-something-v2"


def test_vp9_encoding_still_works_after_decord_has_read_a_video(tmp_path):
    # decord bundles its own FFmpeg: loaded before PyAV's, it broke PyAV's VP9 encoder on some CPUs
    # (avcodec_open2 returned 22). pan_lib loads PyAV first; checked in a fresh interpreter.
    h264 = write_video(tmp_path / "a.mp4", ramp_frames(), codec="libx264")
    script = (f"from pan_lib.data.video import read_video_frames, write_video\n"
              f"import numpy as np\n"
              f"read_video_frames({str(h264)!r}, [0, 1], backend='decord')\n"
              f"write_video({str(tmp_path / 'b.webm')!r}, np.zeros((4, 48, 64, 3), np.uint8))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "b.webm").stat().st_size > 0
