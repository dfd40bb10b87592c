"""The motion_cues benchmark: every row is measured, ratios come from the same run, files carry provenance.
(Speed targets live in the benchmark output, never in this test.)"""
from __future__ import annotations

import json

import numpy as np
import pytest

from pan_lib.bench import BENCHMARKS
from pan_lib.bench import motion_cues as mc
from pan_lib.data.video import write_video


def test_registered():
    assert BENCHMARKS["motion_cues"][0] == "pan_lib.bench.motion_cues"


def test_bench_frames_are_deterministic_and_move():
    a, b = mc.bench_frames(num_frames=4, size=32), mc.bench_frames(num_frames=4, size=32)
    assert a.shape == (4, 32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert np.abs(a[1].astype(int) - a[0]).mean() > 1.0


def test_options_are_checked():
    with pytest.raises(ValueError, match="valid: quick, device"):
        mc.MotionBenchConfig.for_mode(True, repeats=3)


def test_tiny_run_writes_all_rows_with_ratios(tmp_path, monkeypatch):
    # a full pass at 32x32 with one timed call per row: checks the wiring, not the speed
    monkeypatch.setattr(mc.MotionBenchConfig, "for_mode",
                        classmethod(lambda cls, quick, **kw: cls(quick=True, rounds=1, round_seconds=0.0,
                                                                slow_pairs=1, size=32,
                                                                flow_methods=("tvl1", "dis_ultrafast"),
                                                                real_clips=(), **kw)))
    paths = mc.run(tmp_path, quick=True)
    assert [p.name for p in paths] == ["motion_cues.csv", "motion_cues.md", "motion_cues.json", "motion_cues.png"]
    data = json.loads(paths[2].read_text())
    rows = data["rows"]
    assert len(rows) == 7 and len({r["method"] for r in rows}) == 7
    assert all(r["calls"] == 1 for r in rows)
    assert sum(r["kind"] == "PA" for r in rows) == 5
    tvl1 = next(r for r in rows if r["implementation"] == "tvl1")
    assert tvl1["x_vs_tvl1"] == 1.0
    for r in rows:
        assert r["pairs_per_s"] > 0
        assert r["x_vs_tvl1"] == pytest.approx(r["pairs_per_s"] / tvl1["pairs_per_s"])
    md = paths[1].read_text()
    assert "python -m pan_lib.bench motion_cues --quick" in md and "x TV-L1" in md and "DIS ultrafast" in md
    with pytest.raises(ValueError, match="must include"):
        mc._flow_cases(mc.bench_frames(size=32), mc.MotionBenchConfig(flow_methods=("farneback",)))
    assert data["provenance"]["git_sha"] and data["provenance"]["config"]["size"] == 32


def test_frames_from_a_video(tmp_path):
    path = write_video(tmp_path / "v.mp4", mc.bench_frames(num_frames=40, size=64), codec="mpeg4")
    frames = mc.clip_frames(mc.MotionBenchConfig(video=str(path), size=48))
    assert frames.shape == (32, 48, 48, 3) and frames.dtype == np.uint8


def test_quick_run_on_a_real_clip_reports_ratios_per_content(tmp_path, monkeypatch, shared_dir):
    # quick mode as shipped (synthetic frames + one real clip), at 32x32 with two flow methods to stay short
    clip = shared_dir / "realclips" / "kinetics400" / "arm_wrestling__demo.mp4"
    quick = mc.MotionBenchConfig.for_mode(True)
    assert quick.real_clips == mc.REAL_CLIPS[:1] and mc.real_clip_path(quick.real_clips[0]).is_file()
    monkeypatch.setattr(mc.MotionBenchConfig, "for_mode",
                        classmethod(lambda cls, quick, **kw: cls(quick=True, rounds=1, round_seconds=0.0,
                                                                slow_pairs=1, size=32,
                                                                flow_methods=("tvl1", "dis_ultrafast"),
                                                                real_clips=(str(clip),), **kw)))
    paths = mc.run(tmp_path, quick=True)
    data = json.loads(paths[2].read_text())
    rows = data["rows"]
    real = "kinetics400/arm_wrestling__demo"
    assert data["provenance"]["contents"] == [mc.SYNTHETIC, real]
    assert [r["content"] for r in rows] == [mc.SYNTHETIC] * 7 + [real] * 7
    for content in (mc.SYNTHETIC, real):
        selected = [r for r in rows if r["content"] == content]
        assert sum(r["kind"] == "PA" for r in selected) == 5
        tvl1 = next(r for r in selected if r["implementation"] == "tvl1")
        dis = next(r for r in selected if r["implementation"] == "dis_ultrafast")
        for r in selected:  # ratios against TV-L1 / DIS on the same content
            assert r["pairs_per_s"] > 0
            assert r["x_vs_tvl1"] == pytest.approx(r["pairs_per_s"] / tvl1["pairs_per_s"])
            assert r["x_vs_dis_ultrafast"] == pytest.approx(r["pairs_per_s"] / dis["pairs_per_s"])
    md = paths[1].read_text()
    assert f"| method | {mc.SYNTHETIC} | {real} |" in md  # the per-content table
    assert "Per content" in md and f"{real}: TV-L1" in md


def test_real_clip_frames_are_resized_and_labelled(shared_dir):
    # the 1080p NTU clip comes out at the benchmark's frame size, like every other content
    frames = mc.video_frames(shared_dir / "realclips" / "other" / "ntu_A001_drink_water_1080p.avi", size=48)
    assert frames.shape == (32, 48, 48, 3) and frames.dtype == np.uint8
    assert mc.content_label("other/ntu_A001_drink_water_1080p.avi") == "other/ntu_A001_drink_water_1080p"
    assert mc.content_label(str(shared_dir / "realclips" / "ucf101" / "v_Biking_g01_c01.mp4")) == "ucf101/v_Biking_g01_c01"


def test_missing_real_clip_is_skipped(caplog):
    cfg = mc.MotionBenchConfig(size=32, real_clips=("nowhere/missing.mp4",))
    assert [name for name, _ in mc.contents(cfg)] == [mc.SYNTHETIC]
    assert "real clip skipped" in caplog.text


def test_summary_reads_tables_without_a_content_column():
    # the notebook passes records of a stored CSV; tables written before contents existed are synthetic
    rows = [dict(method="PA, ours fp32, 1 clip/call", kind="PA", implementation="differences convolved first",
                 precision="fp32", clips_per_call=1, pairs_per_s=100.0, x_vs_tvl1=50.0, x_vs_dis_ultrafast=0.1,
                 note=""),
            dict(method="PA, official-style loop fp32, 1 clip/call", kind="PA",
                 implementation="conv every frame, loop over pairs", precision="fp32", clips_per_call=1,
                 pairs_per_s=20.0, x_vs_tvl1=10.0, x_vs_dis_ultrafast=0.02, note=""),
            dict(method="TV-L1", kind="flow", implementation="tvl1", precision="fp32", clips_per_call=1,
                 pairs_per_s=2.0, x_vs_tvl1=1.0, x_vs_dis_ultrafast=0.002, note="", device="cpu"),
            dict(method="DIS", kind="flow", implementation="dis_ultrafast", precision="fp32", clips_per_call=1,
                 pairs_per_s=1000.0, x_vs_tvl1=500.0, x_vs_dis_ultrafast=1.0, note="", device="cpu")]
    lines = mc.summary_lines(rows)
    assert "synthetic texture" in lines[0] and "**50x TV-L1**" in lines[0]
    assert not any(line.startswith("- Per content") for line in lines)
