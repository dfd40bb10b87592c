"""Notebook 06's tables on synthetic records: motion inputs alone and fused with RGB, accuracy beside
end-to-end cost per clip (extraction outside the network + network), paired verdicts of PA against
each other input, generated sentences, files with provenance and additive record copies."""
from __future__ import annotations

import json

import pytest

from pan_lib import tables
from pan_lib.provenance import absolute_paths

SCHEMA = "pan-workbook/run-record/1"
# top-1 per seed 0, 1, 2 on the test split (1 clip x centre crop)
TOP1 = {
    ("PAN_RGB", None): [60.0, 62.0, 64.0],
    ("PAN_PA", None): [70.0, 66.0, 74.0],
    ("PAN_RGBDiff", None): [50.0, 47.0, 55.0],          # PA clearly higher
    ("PAN_Flow", "dis"): [69.0, 67.0, 73.0],            # PA - Flow: +0.33 [-2.5, 3.2]: not shown
    ("PAN_Flow", "farneback"): [80.0, 77.0, 85.0],      # PA clearly lower
    ("PAN_Full", None): [74.0, 75.0, 76.0],
    ("TwoStream_RGBDiff", None): [66.0, 68.0, 69.0],
    ("TwoStream_Flow", "dis"): [74.0, 76.0, 75.0],
    ("TwoStream_Flow", "farneback"): [79.0, 80.0, 82.0],
}
MODALITY = {"PAN_RGB": "RGB", "PAN_PA": "PA", "PAN_RGBDiff": "RGBDiff", "PAN_Flow": "Flow", "PAN_Full": "Full",
            "TwoStream_RGBDiff": "RGB+RGBDiff", "TwoStream_Flow": "RGB+Flow"}
EXTRACTION = [
    {"method": "dis", "seconds_per_clip": 0.020, "accuracy_run": True, "note": ""},
    {"method": "farneback", "seconds_per_clip": 0.030, "accuracy_run": True, "note": ""},
    {"method": "tvl1", "seconds_per_clip": 3.6, "accuracy_run": False,
     "note": "accuracy: not run in the main job (47 minutes of extraction for the 1560 videos on 2 cores); "
             "cost measured on 4 clips"},
]
NETWORK = [{"model": "PAN_RGB", "gmacs_per_view": 0.03, "ms_per_clip": 5.0},
           {"model": "PAN_PA", "gmacs_per_view": 0.12, "ms_per_clip": 6.0},
           {"model": "PAN_RGBDiff", "gmacs_per_view": 0.075, "ms_per_clip": 5.5},
           {"model": "PAN_Flow", "gmacs_per_view": 0.057, "ms_per_clip": 5.2}]
METHODS = ["dis", "farneback", "tvl1"]


def _record(model, method, seed, top1, tmp_root):
    members = [{"checkpoint": str(tmp_root / f"{model}_{method}_{seed}" / "last.pt"), "checkpoint_sha256": "0" * 64}]
    if method:
        members[-1]["flow_method"] = method
    if model.startswith("TwoStream") or model == "PAN_Full":  # RGB member first
        members.insert(0, {"checkpoint": str(tmp_root / f"rgb_{seed}" / "last.pt"), "checkpoint_sha256": "1" * 64})
    return {
        "schema": SCHEMA, "kind": "eval", "name": f"{model}_{seed}", "status": "completed", "message": "",
        "model": model, "modality": MODALITY[model], "dataset": "embedded", "backbone": "resnet_tiny", "seed": seed,
        "metrics": {"top1": top1, "top5": 99.0, "num_videos": 300}, "views": 1,
        "protocol": {"crops": 1, "clips": 1, "full_res": False, "input_size": 48},
        "gflops_per_view": 0.1, "params": 300_000, "clips_per_s": 50.0,
        "data": {"dataset": "embedded", "split": "test", "fingerprint": "abc+s56" + (f"+flow_{method}_s56" if method else "")},
        "members": members, "provenance": {"git_sha": "abc123", "device": {"cpu": "test-cpu"}},
    }


@pytest.fixture()
def run_root(tmp_path):
    root = tmp_path / "runs"
    for (model, method), values in TOP1.items():
        for seed, t1 in enumerate(values):
            path = root / f"{model}_{method}_s{seed}" / "eval" / "test" / "record.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(_record(model, method, seed, t1, root)))
    return root


def _aggregates(root):
    return tables.aggregate(tables.load_results(root))


def test_flow_evaluations_are_named_by_their_flow_method(run_root):
    names = {r.model for r in tables.load_results(run_root)}
    assert {"PAN_Flow (dis)", "PAN_Flow (farneback)", "TwoStream_Flow (dis)", "PAN_PA", "PAN_Full"} <= names
    assert tables.record_model_name({"model": "PAN_Flow", "members": [{}]}) == "PAN_Flow"  # no method recorded


def test_rows_put_accuracy_beside_end_to_end_cost(run_root):
    rows = tables.motion_input_rows(_aggregates(run_root), {e["method"]: e for e in EXTRACTION},
                                    {n["model"]: n for n in NETWORK}, flow_methods=METHODS)
    by = {r["model"]: r for r in rows}
    assert list(by)[:3] == ["PAN_RGB", "PAN_PA", "PAN_Full"]
    assert by["PAN_PA"]["extraction_ms_per_clip"] == 0 and by["PAN_PA"]["end_to_end_ms_per_clip"] == 6.0
    assert by["PAN_Flow (dis)"]["extraction_ms_per_clip"] == 20.0
    assert by["PAN_Flow (dis)"]["end_to_end_ms_per_clip"] == pytest.approx(25.2)
    assert by["TwoStream_Flow (dis)"]["end_to_end_ms_per_clip"] == pytest.approx(20 + 5.0 + 5.2)
    assert by["PAN_Full"]["network_gmacs"] == pytest.approx(0.15)
    assert by["PAN_Flow (dis)"]["seeds"] == 3 and by["PAN_Flow (dis)"]["top1_%"].startswith("69.7 [")
    tvl1 = by["PAN_Flow (tvl1)"]
    assert tvl1["top1_%"] == tables.NOT_RUN and "not run in the main job" in tvl1["note"]
    assert tvl1["end_to_end_ms_per_clip"] == pytest.approx(3605.2)


def test_comparisons_pair_pa_with_each_input_and_say_how_much_cheaper(run_root):
    aggs = _aggregates(run_root)
    rows = tables.motion_input_rows(aggs, {e["method"]: e for e in EXTRACTION}, {n["model"]: n for n in NETWORK},
                                    flow_methods=METHODS)
    comp = {c["comparison"]: c for c in tables.motion_comparisons(aggs, rows)}
    assert comp["PAN_PA − PAN_RGBDiff"]["verdict"] == "PA higher"
    assert comp["PAN_PA − PAN_Flow (dis)"]["verdict"] == "not shown"
    assert comp["PAN_PA − PAN_Flow (farneback)"]["verdict"] == "PA lower"
    assert comp["PAN_PA − PAN_Flow (tvl1)"]["verdict"] == tables.NOT_RUN
    assert comp["PAN_PA − PAN_Flow (dis)"]["cost_x_pa"] == pytest.approx(25.2 / 6.0, abs=0.01)
    full = comp["PAN_Full − TwoStream_Flow (dis)"]
    assert full["group"] == "fused with RGB" and full["paired_seeds"] == 3
    expected = tables.mean_interval([a - b for a, b in zip(TOP1[("PAN_Full", None)], TOP1[("TwoStream_Flow", "dis")])])
    assert full["diff_top1"] == pytest.approx(expected.mean, abs=0.01)
    assert full["ci_low"] == pytest.approx(expected.low, abs=0.01)

    sentences = tables.motion_findings(rows, list(comp.values()), {e["method"]: e for e in EXTRACTION})
    dis = next(s for s in sentences if s.startswith("Alone: PAN_Flow (dis)"))
    assert "PAN_PA is 4.2× cheaper" in dis and "20.0 ms of it extracting the flow" in dis
    assert "not distinguishable with these seeds" in dis
    farneback = next(s for s in sentences if s.startswith("Alone: PAN_Flow (farneback)"))
    assert "the accuracies are not equal" in farneback
    rgbdiff = next(s for s in sentences if s.startswith("Alone: PAN_RGBDiff"))
    assert "PAN_PA is 1.1× more expensive" in rgbdiff and "PAN_PA is more accurate" in rgbdiff  # 6.0 vs 5.5 ms
    assert any(s.startswith("tvl1: extracting the flow alone costs 3.6 s per clip") and "600×" in s for s in sentences)


def test_fmt_ratio():
    assert tables.fmt_ratio(4.21) == "4.2×" and tables.fmt_ratio(1234.4) == "1,234×" and tables.fmt_ratio(None) == "?"


def test_write_motion_tables_adds_records_and_writes_files(run_root, tmp_path):
    out = tmp_path / "results"
    kept = out / "records" / "from_05" / "record.json"  # a copy 05_result_tables made: adding keeps it
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")
    written = tables.write_motion_tables(run_root, out, extraction=EXTRACTION, network=NETWORK, flow_methods=METHODS,
                                         command="papermill notebooks/06_motion_inputs.ipynb", cost_meta={"repeats": 20})
    assert kept.is_file() and len(written["records"]) == sum(len(v) for v in TOP1.values())
    table = json.loads((out / "tables" / "motion_inputs.json").read_text())
    assert table["provenance"]["costs"] == {"repeats": 20}
    assert all(src.startswith("records/") for src in table["provenance"]["records"])
    for stem in ("motion_inputs", "motion_inputs_comparisons", "motion_inputs_extraction", "motion_inputs_network"):
        for suffix in (".md", ".csv", ".json"):
            text = (out / "tables" / f"{stem}{suffix}").read_text()
            assert not absolute_paths(text), (stem, absolute_paths(text))
    md = (out / "tables" / "motion_inputs.md").read_text()
    assert "top1_mean" not in md and "PAN_Flow (farneback)" in md
    assert (out / "tables" / "motion_inputs_findings.md").read_text().count("\n- ") >= 8
    assert (out / "figures" / "motion_inputs_accuracy_vs_cost.png").read_bytes()[:4] == b"\x89PNG"
