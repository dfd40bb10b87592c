"""`python -m pan_lib.bench epoch_loop --quick`: rows, ratio and provenance (speed itself is not asserted)."""
from __future__ import annotations

import json

from pan_lib.bench import BENCHMARKS
from pan_lib.bench import epoch_loop


def test_quick_epoch_loop_writes_ratio_rows_with_provenance(tmp_path):
    assert BENCHMARKS["epoch_loop"][0] == "pan_lib.bench.epoch_loop"
    paths = epoch_loop.run(tmp_path, quick=True)
    assert {p.suffix for p in paths} == {".csv", ".md", ".json"}
    table = json.loads((tmp_path / "epoch_loop.json").read_text())
    rows = table["rows"]
    assert [(r["modality"], r["workers"]) for r in rows] == [("Lite", 0), ("Lite", 1)]
    for r in rows:
        assert r["compute-only clips/s"] > 0 and r["epoch loop clips/s"] > 0
        assert abs(r["ratio"] - r["epoch loop clips/s"] / r["compute-only clips/s"]) < 0.01  # rates are rounded
        assert r["s/epoch"] >= r["val s/epoch"] > 0
    assert table["provenance"]["config"]["malloc_keeps_freed_blocks"] in (True, False)
    assert "python -m pan_lib.bench epoch_loop --quick" in (tmp_path / "epoch_loop.md").read_text()
