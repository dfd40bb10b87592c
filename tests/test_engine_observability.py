"""Progress bars (auto/text/off), the speed monitor (warm-up excluded), run records."""
from __future__ import annotations

import time

import pytest

from pan_lib.progress import progress, resolve_mode
from pan_lib.engine.records import SCHEMA, find_records, write_record
from pan_lib.engine.speed import SpeedMonitor


def test_progress_modes(capsys, monkeypatch):
    monkeypatch.delenv("PAN_PROGRESS", raising=False)
    assert resolve_mode("off") == "off" and resolve_mode("text") == "text"
    assert resolve_mode("auto") == "text"  # pytest: no TTY, no live notebook front end
    monkeypatch.setenv("PAN_PROGRESS", "off")
    assert resolve_mode("auto") == "off"
    assert list(progress(range(5), mode="off", desc="x")) == list(range(5))
    bar = progress(total=4, desc="epoch 1/2", mode="text", interval=0.0)
    for _ in range(4):
        bar.update(1)
    bar.set_postfix(loss="0.5")
    bar.close()
    bar.close()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("epoch 1/2: 1/4") and out[-1].startswith("epoch 1/2: 4/4") and "loss=0.5" in out[-1]
    assert len(out) == 5 and "\r" not in "".join(out)  # one line per update here, no carriage returns
    with pytest.raises(ValueError, match="valid: auto, text, off"):
        resolve_mode("bar")


def test_speed_monitor_excludes_warmup():
    mon = SpeedMonitor("cpu", warmup=2)
    for delay in (0.05, 0.05, 0.01, 0.01):  # slow first steps (warm-up) must not count
        with mon.phase("forward"):
            time.sleep(delay)
        with mon.phase("backward"):
            time.sleep(delay)
        mon.step(clips=4)
    s = mon.summary()
    assert s["measured_steps"] == 2
    assert 200 < s["forward_clips_per_s"] <= 400 and 100 < s["clips_per_s"] <= 200
    assert s["peak_memory_mb"] > 0


def test_records_are_validated_and_found(tmp_path):
    base = {"schema": SCHEMA, "kind": "train", "name": "a", "provenance": {}, "metrics": {"top1": float("nan")}}
    write_record(tmp_path / "a" / "record.json", {**base, "status": "completed"})
    write_record(tmp_path / "b" / "record.json", {**base, "status": "running"})
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "record.json").write_text('{"schema": "other"}')
    found = find_records(tmp_path)
    assert [r["name"] for r in found] == ["a"] and found[0]["metrics"]["top1"] is None
    assert len(find_records(tmp_path, status=None)) == 2
    with pytest.raises(ValueError, match="status"):
        write_record(tmp_path / "d.json", {k: v for k, v in base.items()})
