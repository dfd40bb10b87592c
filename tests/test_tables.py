"""Result tables from run records: aggregation over seeds, protocols, 'not run', paper numbers, files."""
from __future__ import annotations

import csv
import json
import statistics

import pytest

from pan_lib import tables

SCHEMA = "pan-workbook/run-record/1"


def _record(model, modality, seed, top1, top5, *, kind="eval", status="completed", dataset="embedded",
            backbone="resnet_tiny", clips=1, full_res=False, gflops=0.05, params=100_000, clips_per_s=40.0):
    """A record in the engine's schema (docs/ARCHITECTURE.md, 'Run records')."""
    return {
        "schema": SCHEMA, "kind": kind, "name": f"{model}_{seed}", "status": status, "message": "",
        "model": model, "modality": modality, "dataset": dataset, "backbone": backbone, "seed": seed,
        "metrics": {"top1": top1, "top5": top5, "mean_class_acc": top1, "num_videos": 96},
        "views": clips, "protocol": {"crops": 1, "clips": clips, "full_res": full_res, "twice_sample": clips == 2,
                                     "dense_sample": False, "input_size": 72 if full_res else 64, "scale_size": 72},
        "gflops_per_view": gflops, "params": params, "clips_per_s": clips_per_s,
        "provenance": {"git_sha": "abc123", "device": {"cpu": "test-cpu"}},
    }


def _write(root, rel, record):
    path = root / rel / "record.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


@pytest.fixture()
def run_root(tmp_path):
    root = tmp_path / "runs"
    top1 = {"TSN": [50.0, 52.0, 54.0], "TSM": [60.0, 61.0, 65.0], "PAN_Lite": [70.0, 72.0, 71.0],
            "PAN_Full": [74.0, 75.0, 76.0], "PAN_En": [80.0, 79.0, 81.0]}
    modality = {"TSN": "TSN", "TSM": "TSM", "PAN_Lite": "Lite", "PAN_Full": "Full", "PAN_En": "En"}
    for model, values in top1.items():
        for seed, t1 in enumerate(values):
            en = model == "PAN_En"
            _write(root, f"{model}_s{seed}/eval/{model}", _record(
                model, modality[model], seed, t1, min(100.0, t1 + 20), clips=2 if en else 1, full_res=en,
                gflops=0.2 if en else 0.05, params=300_000 if en else 100_000))
            # the training record next to it must not be counted (its metrics are not the test protocol)
            _write(root, f"{model}_s{seed}", _record(model, modality[model], seed, 1.0, 2.0, kind="train"))
    # Lite also evaluated under the En protocol: a separate group, not mixed into the 1-clip row
    _write(root, "PAN_Lite_s0/eval/fullres", _record("PAN_Lite", "Lite", 0, 99.0, 99.0, clips=2, full_res=True))
    # unfinished, foreign and broken records are ignored
    _write(root, "running", _record("TSN", "TSN", 7, 0.0, 0.0, status="running"))
    _write(root, "other", {**_record("TSN", "TSN", 8, 0.0, 0.0), "schema": "something-else"})
    (root / "broken").mkdir()
    (root / "broken" / "record.json").write_text("{not json")
    return root, top1


def test_load_results_reads_only_completed_eval_records(run_root):
    root, top1 = run_root
    rows = tables.load_results(root)
    assert len(rows) == 5 * 3 + 1
    assert {r.model for r in rows} == set(tables.EMBEDDED_MODELS)
    assert all(r.top1 < 99 or r.protocol.endswith("full-res") for r in rows)


def test_aggregate_mean_and_sample_std_per_model(run_root):
    root, top1 = run_root
    aggs = tables.aggregate(tables.load_results(root))
    for model, values in top1.items():
        a = tables.pick(aggs, "embedded", model)
        assert a.seeds == [0, 1, 2]
        assert a.top1_mean == pytest.approx(statistics.fmean(values))
        assert a.top1_std == pytest.approx(statistics.stdev(values))
        assert a.canonical
    lite = [a for a in aggs if a.model == "PAN_Lite"]
    assert sorted(a.n for a in lite) == [1, 3]  # the full-res evaluation is its own group
    assert tables.pick(aggs, "embedded", "PAN_Lite").protocol == "1crop×1clip@64"
    assert tables.pick(aggs, "embedded", "PAN_En").protocol == "1crop×2clip@72 full-res"


def test_embedded_rows_format_and_not_run(run_root):
    root, _ = run_root
    aggs = [a for a in tables.aggregate(tables.load_results(root)) if a.model != "TSM"]
    rows = {r["model"]: r for r in tables.embedded_rows(aggs)}
    assert list(rows) == list(tables.EMBEDDED_MODELS)
    assert rows["TSN"]["top1_%"] == "52.0 ± 2.0" and rows["TSN"]["seeds"] == 3
    assert rows["TSM"]["top1_%"] == tables.NOT_RUN and rows["TSM"]["seeds"] == 0
    assert rows["PAN_En"]["flops_x_views"] == "0.20G × 2"
    assert rows["PAN_En"]["params_M"] == 0.3
    assert rows["PAN_Full"]["clips_per_s"] == 40.0


def test_real_dataset_rows_paper_beside_ours(tmp_path):
    root = tmp_path / "runs"
    for seed, t1 in enumerate([58.0, 60.0, 59.0]):
        _write(root, f"lite{seed}", _record("PAN_Lite", "Lite", seed, t1, 85.0, dataset="sthv2", backbone="resnet50",
                                            gflops=35.5))
    _write(root, "ucf", _record("PAN_Lite", "Lite", 0, 90.0, 99.0, dataset="ucf101", backbone="resnet50"))
    rows = tables.real_dataset_rows(tables.aggregate(tables.load_results(root)))
    assert len(rows) == len(tables.PAPER_RESULTS) + 1
    by_key = {(r["dataset"], r["model"], r["backbone"]): r for r in rows}
    lite = by_key[("sthv2", "PAN_Lite", "resnet50")]
    assert (lite["paper_top1"], lite["paper_top5"], lite["paper_flops_x_views"]) == (60.8, 86.7, "35.7G × 1")
    assert lite["our_top1"] == "59.0 ± 1.0" and lite["our_seeds"] == 3 and lite["our_flops_x_views"] == "35.5G × 1"
    assert by_key[("sthv1", "PAN_En", "resnet101")]["our_top1"] == tables.NOT_RUN
    assert all("PAN-PyTorch" in r["paper_source"] for r in rows[:-1])
    assert by_key[("ucf101", "PAN_Lite", "resnet50")]["paper_top1"] == ""


def test_paper_numbers_match_the_reference(shared_dir):
    """PAPER_RESULTS is transcribed from pan_official.md §11; check every number is there."""
    text = (shared_dir / "reference" / "pan_official.md").read_text()
    for p in tables.PAPER_RESULTS:
        ds = {"sthv1": "SSv1", "sthv2": "SSv2"}[p.dataset]
        bb = {"resnet50": "R50", "resnet101": "R101"}[p.backbone]
        line = f"| {ds} | {p.model} | {bb} | {p.flops_views.replace(' × ', ' × ')} | {p.top1} | {p.top5} |"
        assert line in text, line


def test_write_tables_files_with_provenance_and_readme(run_root, tmp_path):
    root, _ = run_root
    out = tmp_path / "results"
    written = tables.write_tables(root, out, command="python -m pan_lib.tables test")
    for stem in ("embedded", "real_datasets", "per_seed"):
        assert {p.suffix for p in written[stem]} == {".csv", ".md", ".json"}
    with (out / "tables" / "embedded.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == list(tables.EMBEDDED_MODELS)
    assert rows[0]["top1_mean"] == "52.0"
    md = (out / "tables" / "embedded.md").read_text()
    assert "Command: `python -m pan_lib.tables test`" in md and "52.0 ± 2.0" in md
    meta = json.loads((out / "tables" / "embedded.json").read_text())["provenance"]
    assert meta["record_git_shas"] == ["abc123"] and len(meta["records"]) == 16
    pngs = written["figures"]
    assert [p.name for p in pngs] == ["embedded_top1.png", "embedded_accuracy_vs_cost.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in pngs)

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{tables.README_BEGIN}\nOLD-CONTENT\n{tables.README_END}\ntail\n")
    assert tables.update_readme(readme, out)
    text = readme.read_text()
    assert "OLD-CONTENT" not in text and "52.0 ± 2.0" in text and text.endswith("tail\n")
    assert "![embedded_top1](results/figures/embedded_top1.png)" in text
    assert not tables.update_readme(readme, out)  # idempotent
    with pytest.raises(ValueError, match="markers"):
        tables.update_readme(_no_markers(tmp_path), out)


def _no_markers(tmp_path):
    path = tmp_path / "plain.md"
    path.write_text("# nothing here\n")
    return path


def test_empty_run_root_gives_not_run_tables(tmp_path):
    written = tables.write_tables(tmp_path / "nothing", tmp_path / "out", command="c")
    rows = json.loads(written["embedded"][2].read_text())["rows"]
    assert all(r["top1_%"] == tables.NOT_RUN for r in rows)


def test_ordering_report_verdicts(run_root):
    root, _ = run_root
    report = {r["claim"]: r for r in tables.ordering_report(tables.aggregate(tables.load_results(root)))}
    # TSN 52 ± 2 vs TSM 62 ± 2.65: gap 10 > noise 3.3
    assert report["TSN < TSM"]["verdict"] == "holds (clear)"
    assert report["TSN < TSM"]["gap_top1"] == pytest.approx(10.0)
    # Lite 71 ± 1 vs Full 75 ± 1: clear; Full 75 vs En 80: clear
    assert report["PAN_Full <= PAN_En"]["verdict"] == "holds (clear)"
    flipped = [a for a in tables.aggregate(tables.load_results(root))]
    for a in flipped:
        if a.model == "TSM":
            a.top1_mean = 51.0  # below TSN, within TSN's/TSM's spread
    assert tables.ordering_report(flipped)[0]["verdict"] == "reversed (within noise)"
    assert tables.ordering_report([])[0]["verdict"] == tables.NOT_RUN
