"""Stored optical flow (issue 12 item 2): TSN's uint8 encoding, `python -m data_prep flow` on the tiny
embedded set (DIS, Farneback; resumable; a corrupt video listed), the timing files, the Flow dataset."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from data_prep.__main__ import main as data_prep_main
from data_prep.flow import compute_flow
from pan_lib.data.flow import (FLOW_BOUND, decode_flow, encode_flow, extraction_seconds_per_clip, flow_dataset_kwargs,
                               flow_methods, flow_root, flow_timing, read_flow, read_timing, timing_file)
from pan_lib.data.lists import read_list_file
from pan_lib.data.prepared import DatasetNotPreparedError, find_prepared
from pan_lib.data.registry import build_dataset, prepare_embedded
from pan_lib.data.transforms import CLIP_STATS, IMAGENET_STD, build_transform, normalize_clip
from pan_lib.motion import estimate_flow, raft_weights_cached


# ------------------------------------------------------------------ encoding
def test_uint8_encoding_round_trip_and_clipping():
    v = np.array([-25.0, -20.0, -10.0, 0.0, 0.07, 10.0, 19.99, 20.0, 33.0], dtype=np.float32)
    u = encode_flow(v)
    assert u.dtype == np.uint8
    assert u[0] == u[1] == 0 and u[-1] == u[-2] == 255  # clipped to +-20 px
    assert u[3] == round(20 * 255 / 40)  # (v + 20) * 255 / 40, rounded: 0 px -> 128 (127.5)
    inside = np.abs(v) <= FLOW_BOUND
    assert np.abs(decode_flow(u)[inside] - v[inside]).max() <= 20 / 255 + 1e-6  # half a step
    np.testing.assert_array_equal(decode_flow(u)[[0, -1]], [-20.0, 20.0])
    again = encode_flow(decode_flow(u))
    np.testing.assert_array_equal(again, u)  # stored values are a fixed point


def test_flow_statistics_and_flip_inverts_x():
    s = float(np.mean(IMAGENET_STD))
    assert CLIP_STATS["Flow"] == ((0.5, 0.5), (pytest.approx(s), pytest.approx(s)))
    assert CLIP_STATS["RGBDiff"][0] == (0.0, 0.0, 0.0) and CLIP_STATS["RGBDiff"][1][0] == pytest.approx(2 * s)
    flow = np.zeros((2, 8, 8, 2), np.uint8)
    flow[..., 0], flow[..., 1] = 200, 60  # x to the right, y up
    flow[:, :, 0, 0] = 10  # left column differs, to see the flip
    t = build_transform("train", input_size=8, scale_size=8, flip=True, output="uint8", modality="Flow")
    t.scales = (1.0,)
    t.__post_init__()
    outs = {bool((t(flow, np.random.default_rng(seed)).view(2, 2, 8, 8)[0, 0, :, -1] == 255 - 10).all())
            for seed in range(12)}
    assert outs == {True, False}  # flipped in some draws: x inverted (255 - x) and mirrored
    flipped = next(t(flow, np.random.default_rng(seed)) for seed in range(12)
                   if (t(flow, np.random.default_rng(seed)).view(2, 2, 8, 8)[0, 0, :, -1] == 245).all())
    clip = flipped.view(2, 2, 8, 8)
    assert (clip[:, 1] == 60).all()  # y unchanged
    assert (clip[:, 0, :, :-1] == 255 - 200).all()
    # float output = normalize_clip(uint8 output) with the Flow statistics
    f = build_transform("val", input_size=8, scale_size=8, modality="Flow")(flow)
    u = build_transform("val", input_size=8, scale_size=8, modality="Flow", output="uint8")(flow)
    torch.testing.assert_close(f, normalize_clip(u, *CLIP_STATS["Flow"]))
    assert f[1].mean().item() == pytest.approx((60 / 255 - 0.5) / s, rel=1e-5)


# ------------------------------------------------------------------ data_prep flow
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow") / "embedded_tiny"
    prepared = prepare_embedded(root, size="tiny", progress="off", workers=2)
    compute_flow(prepared.root, "dis", workers=1, progress="off")
    return find_prepared("embedded", prepared.root)


def _first(prepared, split: str) -> str:
    """The list path of the first video of ``split``."""
    return read_list_file(prepared.list_for(split), "pan")[0].path


def test_dis_flow_is_stored_like_tsn(tiny):
    assert flow_methods(tiny) == ["dis"]
    entry = tiny.manifest["flow"]["dis"]
    assert entry["estimator"] == "dis_medium" and entry["short_side"] == 56 and entry["failed"] == 0
    assert entry["videos"] == 48 and entry["frames_from"] == "decoded"
    root = flow_root(tiny, "dis")
    assert root == tiny.root / "flow_dis_s56"
    name = _first(tiny, "train")
    frames = np.load(tiny.data_dir / f"{name}.npy")
    stored = np.load(root / f"{name}.npy")
    assert stored.dtype == np.uint8 and stored.shape == (frames.shape[0] - 1, *frames.shape[1:3], 2)
    # the same numbers as pan_lib.motion's DIS on the decoded frames, encoded
    np.testing.assert_array_equal(stored, encode_flow(estimate_flow(frames, "dis_medium")))
    np.testing.assert_array_equal(read_flow(root / f"{name}.npy", [0, 3]), stored[[0, 3]])
    rows = read_timing(timing_file(tiny.root, "dis", 56))
    assert len(rows) == 48 and all(r["status"] == "ok" and r["seconds"] > 0 and r["pairs"] == 15 for r in rows)
    timing = flow_timing(tiny)["dis"]
    assert timing["videos"] == 48 and timing["pairs_per_clip"] == 15
    assert extraction_seconds_per_clip(tiny)["dis"] == pytest.approx(sum(r["seconds"] for r in rows) / 48)
    assert (tiny.root / "flow_dis_s56_failures.txt").read_text() == ""


def test_resume_keeps_videos_and_their_timing(tiny):
    before = read_timing(timing_file(tiny.root, "dis", 56))
    summary = compute_flow(tiny.root, "dis", workers=1, progress="off")
    assert summary["kept"] == 48 and summary["failed"] == 0
    after = read_timing(timing_file(tiny.root, "dis", 56))
    assert [(r["video"], r["seconds"]) for r in after] == [(r["video"], r["seconds"]) for r in before]
    missing = flow_root(tiny, "dis") / f"{_first(tiny, 'val')}.npy"
    missing.unlink()  # an interrupted run: one video missing
    summary = compute_flow(tiny.root, "dis", workers=1, progress="off")
    assert summary["kept"] == 47 and missing.is_file()


def test_farneback_with_a_pool_and_a_corrupt_video_listed(tiny, tmp_path, capsys):
    work = tmp_path / "copy"
    shutil.copytree(tiny.root, work, ignore=shutil.ignore_patterns("flow_*", "raw"))
    manifest = json.loads((work / "prepared.json").read_text())
    manifest["video_root"] = str(tiny.root / manifest["video_root"])
    manifest.pop("flow")
    (work / "prepared.json").write_text(json.dumps(manifest))
    corrupt = _first(tiny, "val")
    (work / manifest["decoded_root"] / f"{corrupt}.npy").write_bytes(b"not an array")  # a corrupt video
    code = data_prep_main(["flow", str(work), "--method", "farneback", "--workers", "2", "--progress", "off"])
    assert code == 1  # some videos failed
    failures = (work / "flow_farneback_s56_failures.txt").read_text().splitlines()
    assert len(failures) == 1 and failures[0].startswith(f"{corrupt}\t")
    prepared = find_prepared("embedded", work)
    assert flow_methods(prepared) == ["farneback"]
    entry = prepared.manifest["flow"]["farneback"]
    assert entry["videos"] == 48 and entry["failed"] == 1 and entry["workers"] == 2
    rows = {r["video"]: r for r in read_timing(timing_file(work, "farneback", 56))}
    assert rows[corrupt]["status"] == "failed" and rows[_first(tiny, "train")]["status"] == "ok"
    assert flow_timing(prepared)["farneback"]["videos"] == 47
    # the Flow dataset reads what is there; the corrupt video is a bad input (zeros in val)
    ds = build_dataset(prepared, "val", num_segments=4, new_length=5, input_size=48, scale_size=56, bad_input="zeros",
                       **flow_dataset_kwargs(prepared, "Flow", "farneback"))
    assert ds.clip_shape == (4 * 5 * 2, 48, 48)


def test_raft_without_weights_says_where_to_put_them(tiny, capsys):
    if raft_weights_cached("large") is not None:
        pytest.skip("trained RAFT weights are cached here")
    assert data_prep_main(["flow", str(tiny.root), "--method", "raft", "--progress", "off"]) == 2
    err = capsys.readouterr().err
    assert "RAFT" in err and "checkpoints" in err and "--raft-weights" in err


def test_flow_dataset_reads_stored_flow(tiny):
    kwargs = flow_dataset_kwargs(tiny, "Flow")
    assert kwargs == {"modality": "Flow", "flow_root": tiny.root / "flow_dis_s56"}
    ds = build_dataset(tiny, "train", num_segments=4, new_length=5, input_size=48, scale_size=56, seed=0, **kwargs)
    clip, label, index = ds[0]
    assert clip.shape == ds.clip_shape == (40, 48, 48) and clip.dtype == torch.float32
    u8 = build_dataset(tiny, "val", num_segments=4, new_length=5, input_size=48, scale_size=56, output="uint8",
                       **kwargs)
    x, _, _ = u8[1]
    assert x.dtype == torch.uint8 and x.shape == (40, 48, 48)
    # the val clip is the stored flow of the sampled fields, centre-cropped (no resize at 56 -> 48 crop)
    idx = u8.frame_indices(1) - 1
    stored = np.load(tiny.root / "flow_dis_s56" / f"{u8.records[1].path}.npy")[idx]  # (20, 56, 56, 2)
    expected = torch.from_numpy(stored).permute(0, 3, 1, 2)[..., 4:52, 4:52].reshape(40, 48, 48)
    torch.testing.assert_close(x, expected)
    assert flow_dataset_kwargs(tiny, "RGB") == {"modality": "RGB"}
    with pytest.raises(DatasetNotPreparedError, match="python -m data_prep flow .* --method tvl1"):
        flow_dataset_kwargs(tiny, "Flow", "tvl1")
