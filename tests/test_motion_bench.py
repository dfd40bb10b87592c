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
                                                                **kw)))
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
