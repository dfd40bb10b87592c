"""`python -m pan_lib.bench cpu_tuning --quick`: every setting measured, rows relative to the default,
provenance (speed itself is not asserted)."""
from __future__ import annotations

import json

from pan_lib.bench import BENCHMARKS
from pan_lib.bench import cpu_tuning


def test_quick_cpu_tuning_measures_each_setting_against_its_default(tmp_path):
    assert BENCHMARKS["cpu_tuning"][0] == "pan_lib.bench.cpu_tuning"
    cpu_tuning.run(tmp_path, quick=True)
    table = json.loads((tmp_path / "cpu_tuning.json").read_text())
    rows = table["rows"]
    assert {r["section"] for r in rows} == {"malloc", "PA chunks", "bf16 norm"}
    malloc = [r for r in rows if r["section"] == "malloc"]
    assert {r["setting"] for r in malloc} == set(cpu_tuning.MALLOC_SETTINGS)
    assert len(malloc) == 4 * len(cpu_tuning.MALLOC_SETTINGS)  # four measurements in each setting's process
    for r in rows:
        assert r["ms"] > 0
        if r["setting"] in ("glibc default", "8 snippets per chunk (before)", "linalg.vector_norm"):
            assert r["vs default"] == 1
    assert table["provenance"]["config"]["malloc_keeps_freed_blocks"] in (True, False)
