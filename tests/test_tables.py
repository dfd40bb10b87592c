"""Result tables from run records: intervals over seeds, paired verdicts, the decomposition, committed
record copies with portable paths, 'not run', paper numbers, files."""
from __future__ import annotations

import csv
import json
import statistics

import pytest
from scipy import stats

from pan_lib import tables
from pan_lib.provenance import absolute_paths

SCHEMA = "pan-workbook/run-record/1"
FINGERPRINT = "abcdef0123456789+s56"


def _record(model, modality, seed, top1, top5, *, kind="eval", status="completed", dataset="embedded",
            backbone="resnet_tiny", clips=1, full_res=False, gflops=0.05, params=100_000, clips_per_s=40.0,
            split="test", members=()):
    """A record in the engine's schema (docs/ARCHITECTURE.md, 'Run records')."""
    return {
        "schema": SCHEMA, "kind": kind, "name": f"{model}_{seed}", "status": status, "message": "",
        "model": model, "modality": modality, "dataset": dataset, "backbone": backbone, "seed": seed,
        "metrics": {"top1": top1, "top5": top5, "mean_class_acc": top1, "num_videos": 96},
        "views": clips, "protocol": {"crops": 1, "clips": clips, "full_res": full_res, "twice_sample": clips == 2,
                                     "dense_sample": False, "input_size": 72 if full_res else 64, "scale_size": 72},
        "gflops_per_view": gflops, "params": params, "clips_per_s": clips_per_s,
        "data": {"dataset": dataset, "split": split, "fingerprint": FINGERPRINT, "num_videos": 96},
        "members": [{"checkpoint": str(m), "checkpoint_sha256": "0" * 64} for m in members],
        "provenance": {"git_sha": "abc123", "device": {"cpu": "test-cpu"}},
    }


def _write(root, rel, record):
    path = root / rel / "record.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


MODALITY = {"TSN": "TSN", "TSM": "TSM", "PAN_RGB": "RGB", "PAN_PA": "PA", "PAN_Lite": "Lite", "PAN_Full": "Full",
            "PAN_En": "En"}
# top-1 per seed 0, 1, 2 (test split, each model under its paper protocol)
TOP1 = {"TSN": [50.0, 52.0, 54.0], "TSM": [60.0, 61.0, 65.0], "PAN_RGB": [70.0, 66.0, 74.0],
        "PAN_PA": [69.0, 67.0, 73.0], "PAN_Lite": [71.0, 67.0, 75.0], "PAN_Full": [74.0, 75.0, 76.0],
        "PAN_En": [80.0, 79.0, 81.0]}


@pytest.fixture()
def run_root(tmp_path):
    root = tmp_path / "runs"
    for model, values in TOP1.items():
        for seed, t1 in enumerate(values):
            en = model == "PAN_En"
            run = root / f"{model}_s{seed}"
            _write(root, f"{model}_s{seed}/eval/{model}", _record(
                model, MODALITY[model], seed, t1, min(100.0, t1 + 20), clips=2 if en else 1, full_res=en,
                gflops=0.2 if en else 0.05, params=300_000 if en else 100_000, members=[run / "last.pt"]))
            # the training record next to it must not be counted (its metrics are not the test protocol)
            _write(root, f"{model}_s{seed}", _record(model, MODALITY[model], seed, 1.0, 2.0, kind="train",
                                                     split="val"))
            # the same model evaluated on val: its own group, never in the test tables
            _write(root, f"{model}_s{seed}/eval/{model}_val", _record(
                model, MODALITY[model], seed, 99.0, 99.0, clips=2 if en else 1, full_res=en, split="val"))
    # Lite also evaluated under the En protocol: a separate group, not mixed into the 1-clip row
    _write(root, "PAN_Lite_s0/eval/fullres", _record("PAN_Lite", "Lite", 0, 99.0, 99.0, clips=2, full_res=True))
    # unfinished, foreign and broken records are ignored
    _write(root, "running", _record("TSN", "TSN", 7, 0.0, 0.0, status="running"))
    _write(root, "other", {**_record("TSN", "TSN", 8, 0.0, 0.0), "schema": "something-else"})
    (root / "broken").mkdir()
    (root / "broken" / "record.json").write_text("{not json")
    return root, TOP1


def _add_protocol_comparison(root):
    """PAN_Full under the En protocol and PAN_En under 1 clip centre crop (notebook 04's extra rows)."""
    for seed in range(3):
        _write(root, f"PAN_Full_s{seed}/eval/full_en", _record("PAN_Full", "Full", seed, 76.0 + seed, 96.0,
                                                               clips=2, full_res=True))
        _write(root, f"PAN_En_s{seed}/eval/en_1clip", _record("PAN_En", "En", seed, [77.0, 76.0, 79.0][seed],
                                                              97.0))


def test_load_results_reads_only_completed_eval_records(run_root):
    root, top1 = run_root
    rows = tables.load_results(root)
    assert len(rows) == 7 * 3 * 2 + 1
    assert {r.model for r in rows} == set(tables.EMBEDDED_MODELS)
    assert {r.split for r in rows} == {"val", "test"}
    assert all(r.data_fingerprint == FINGERPRINT for r in rows)


def test_aggregate_mean_and_t_interval_per_model_and_split(run_root):
    root, top1 = run_root
    aggs = tables.aggregate(tables.load_results(root))
    for model, values in top1.items():
        a = tables.pick(aggs, "embedded", model, split="test")
        assert a.seeds == [0, 1, 2] and a.split == "test" and a.canonical
        assert a.top1_mean == pytest.approx(statistics.fmean(values))
        assert a.top1_std == pytest.approx(statistics.stdev(values))
        low, high = stats.t.interval(0.95, df=2, loc=statistics.fmean(values), scale=stats.sem(values))
        assert (a.top1_ci.low, a.top1_ci.high) == (pytest.approx(low), pytest.approx(high))
        assert tables.pick(aggs, "embedded", model, split="val").top1_mean == 99.0
    lite = [a for a in aggs if a.model == "PAN_Lite" and a.split == "test"]
    assert sorted(a.n for a in lite) == [1, 3]  # the full-res evaluation is its own group
    assert tables.pick(aggs, "embedded", "PAN_Lite", split="test").protocol == "1crop×1clip@64"
    assert tables.pick(aggs, "embedded", "PAN_Lite", split="test", kind=tables.EN_PROTOCOL).n == 1
    assert tables.pick(aggs, "embedded", "PAN_En", split="test").protocol == "1crop×2clip@72 full-res"


def test_mean_interval_edge_cases():
    assert tables.mean_interval([]).n == 0
    one = tables.mean_interval([3.0])
    assert (one.mean, one.shown) == (3.0, False)
    same = tables.mean_interval([2.0, 2.0, 2.0])
    assert (same.low, same.high) == (2.0, 2.0)
    assert tables.fmt_interval(one) == "3.0 (1 seed)"
    assert tables.fmt_interval(tables.mean_interval([1.0, 3.0]), signed=True).startswith("+2.0 [")


def test_embedded_rows_all_seven_models_with_intervals_and_not_run(run_root):
    root, _ = run_root
    aggs = [a for a in tables.aggregate(tables.load_results(root)) if a.model != "TSM"]
    rows = {r["model"]: r for r in tables.embedded_rows(aggs)}
    assert list(rows) == ["TSN", "TSM", "PAN_RGB", "PAN_PA", "PAN_Lite", "PAN_Full", "PAN_En"]
    low, high = stats.t.interval(0.95, df=2, loc=52.0, scale=stats.sem([50.0, 52.0, 54.0]))
    assert rows["TSN"]["top1_%"] == f"52.0 [{low:.1f}, {high:.1f}]" and rows["TSN"]["seeds"] == 3
    assert rows["TSN"]["split"] == "test" and rows["TSN"]["videos"] == 96
    assert rows["TSM"]["top1_%"] == tables.NOT_RUN and rows["TSM"]["seeds"] == 0
    assert rows["PAN_En"]["flops_x_views"] == "0.20G × 2"
    assert rows["PAN_En"]["params_M"] == 0.3
    assert rows["PAN_Full"]["clips_per_s"] == 40.0
    assert all(r["what_it_is"] for r in rows.values())


def test_ordering_report_judges_paired_differences(run_root):
    root, _ = run_root
    aggs = tables.aggregate(tables.load_results(root))
    report = {r["claim"]: r for r in tables.ordering_report(aggs)}
    assert list(report)[:4] == ["TSN < TSM", "TSM < PAN_Lite", "PAN_Lite <= PAN_Full", "PAN_Full <= PAN_En"]
    # TSM - TSN per seed: 10, 9, 11 -> interval well above 0
    tsn_tsm = report["TSN < TSM"]
    low, high = stats.t.interval(0.95, df=2, loc=10.0, scale=stats.sem([10.0, 9.0, 11.0]))
    assert (tsn_tsm["diff_top1"], tsn_tsm["paired_seeds"], tsn_tsm["verdict"]) == (10.0, 3, "holds")
    assert (tsn_tsm["ci_low"], tsn_tsm["ci_high"]) == (round(low, 2), round(high, 2))
    # Lite - RGB per seed: 1, 1, 1: the seeds' spread (±4) is large, but the paired difference is exact
    assert report["PAN_RGB < PAN_Lite"]["verdict"] == "holds"
    # PA - RGB per seed: -1, +1, -1: not shown either way
    assert report["PAN_RGB < PAN_PA"]["verdict"] == "not shown"
    # a reversed claim
    for a in aggs:
        if a.model == "TSM" and a.split == "test":
            a.per_seed_top1 = {0: 45.0, 1: 46.0, 2: 49.0}  # below TSN by 5, 6, 5
    assert tables.ordering_report(aggs)[0]["verdict"] == "reversed"
    assert tables.ordering_report([])[0]["verdict"] == tables.NOT_RUN
    # one seed: no interval, nothing shown
    one = tables.aggregate([r for r in tables.load_results(root) if r.seed == 0])
    assert {r["verdict"] for r in tables.ordering_report(one)} == {"not shown"}


def test_steps_report_separates_en_member_from_protocol(run_root):
    root, _ = run_root
    _add_protocol_comparison(root)
    steps = {r["step"]: r for r in tables.steps_report(tables.aggregate(tables.load_results(root)))}
    assert steps["temporal shift"]["comparison"] == "TSM − TSN" and steps["temporal shift"]["verdict"] == "gain"
    assert steps["VAP head"]["comparison"] == "PAN_RGB − TSM"
    assert steps["PA instead of RGB"]["verdict"] == "not shown"
    best = steps["averaging two streams (Full) over the better stream"]
    assert best["comparison"] == "PAN_Full − PAN_RGB"  # RGB's mean 70.0 > PA's 69.7
    reported = steps["PAN_En as reported over PAN_Full (member + protocol)"]
    assert reported["diff_top1"] == pytest.approx(5.0) and reported["protocols"].startswith("1crop×2clip@72 full-res vs 1crop×1clip")
    member_1clip = steps["En's extra member (Lite), both 1 clip centre crop"]
    assert member_1clip["diff_top1"] == pytest.approx((3.0 + 1.0 + 3.0) / 3, abs=0.01)
    member_en = steps["En's extra member (Lite), both 2 clips full-res"]
    assert member_en["diff_top1"] == pytest.approx((4.0 + 2.0 + 3.0) / 3)
    protocol_full = steps["En's protocol (2nd clip + full res) on PAN_Full"]
    assert protocol_full["diff_top1"] == pytest.approx(2.0) and protocol_full["verdict"] == "gain"
    # without the protocol comparison those rows say 'not run'
    plain = {r["step"]: r for r in tables.steps_report(tables.aggregate(tables.load_results(root / "PAN_Lite_s0")))}
    assert plain["En's protocol (2nd clip + full res) on PAN_En"]["verdict"] == tables.NOT_RUN


def test_findings_are_generated_from_the_reports(run_root):
    root, _ = run_root
    aggs = tables.aggregate(tables.load_results(root))
    text = "\n".join(tables.findings(tables.ordering_report(aggs), tables.steps_report(aggs)))
    assert "Temporal shift (TSM − TSN): +10.0 points of top-1 on the test split, 95 % interval [" in text
    assert "PA is not shown to add anything over RGB" in text
    assert "From TSM to PAN_Lite (+9.0 points), the VAP head (TSM → PAN_RGB) accounts for +8.0" in text
    assert "holds: TSN < TSM" in text


def test_real_dataset_rows_paper_beside_ours(tmp_path):
    root = tmp_path / "runs"
    for seed, t1 in enumerate([58.0, 60.0, 59.0]):
        _write(root, f"lite{seed}", _record("PAN_Lite", "Lite", seed, t1, 85.0, dataset="sthv2", backbone="resnet50",
                                            gflops=35.5, split="val"))
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


def test_reported_split():
    assert tables.reported_split("embedded") == "test"
    assert tables.reported_split("sthv2") == "val"
    assert tables.reported_split("sthv2", "test") == "test"


def test_collect_records_copies_what_the_tables_read_with_portable_paths(run_root, tmp_path):
    root, _ = run_root
    out = tmp_path / "results"
    stale = out / "records" / "old_run" / "record.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    written = tables.collect_records(root, out / "records", split="test",
                                     anchors={str(tmp_path): "<tmp>"})
    assert not stale.exists()  # mirrored: what the run root no longer holds goes
    kinds = [json.loads(p.read_text())["kind"] for p in written]
    assert kinds.count("eval") == 7 * 3 + 1 and kinds.count("train") == 7 * 3
    for path in written:
        text = path.read_text()
        assert not absolute_paths(text), (path, absolute_paths(text))
        assert "path" not in json.loads(text) and "dir" not in json.loads(text)
    member = json.loads((out / "records" / "TSN_s0" / "eval" / "TSN" / "record.json").read_text())["members"][0]
    assert member["checkpoint"] == "<tmp>/runs/TSN_s0/last.pt"


def test_write_tables_files_with_provenance_and_readme(run_root, tmp_path):
    root, _ = run_root
    _add_protocol_comparison(root)
    out = tmp_path / "results"
    written = tables.write_tables(root, out, command="python -m pan_lib.tables test")
    for stem in ("embedded", "real_datasets", "per_seed", "ordering", "steps"):
        assert {p.suffix for p in written[stem]} == {".csv", ".md", ".json"}
    assert (out / "records" / "TSN_s0" / "record.json").is_file()
    with (out / "tables" / "embedded.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == list(tables.EMBEDDED_MODELS)
    assert rows[0]["top1_mean"] == "52.0" and float(rows[0]["top1_low"]) < 52.0 < float(rows[0]["top1_high"])
    md = (out / "tables" / "embedded.md").read_text()
    assert "Command: `python -m pan_lib.tables test`" in md and "| 52.0 [" in md and "test split" in md
    assert "top1_low" not in md
    meta = json.loads((out / "tables" / "embedded.json").read_text())["provenance"]
    assert meta["record_git_shas"] == ["abc123"] and meta["data_fingerprint"] == FINGERPRINT
    # the test-split evaluations only (the val ones are not what the tables report)
    assert len(meta["records"]) == 7 * 3 + 1 + 6 and all(r.startswith("records/") for r in meta["records"])
    per_seed = json.loads((out / "tables" / "per_seed.json").read_text())["rows"]
    assert all((out / r["source"]).is_file() for r in per_seed)
    assert "holds" in (out / "tables" / "embedded_ordering.md").read_text()
    assert "- Temporal shift (TSM − TSN)" in (out / "tables" / "embedded_findings.md").read_text()
    pngs = written["figures"]
    assert [p.name for p in pngs] == ["embedded_top1.png", "embedded_accuracy_vs_cost.png", "embedded_steps.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in pngs)
    for path in out.rglob("*"):
        if path.suffix in (".md", ".csv", ".json"):
            assert not absolute_paths(path.read_text()), path

    # regenerating from the committed copies alone gives the same table
    again = tmp_path / "again"
    tables.write_tables(out / "records", again, command="c", copy_records=False)
    assert json.loads((again / "tables" / "embedded.json").read_text())["rows"] == \
        json.loads((out / "tables" / "embedded.json").read_text())["rows"]

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{tables.README_BEGIN}\nOLD-CONTENT\n{tables.README_END}\ntail\n")
    assert tables.update_readme(readme, out)
    text = readme.read_text()
    assert "OLD-CONTENT" not in text and "| 52.0 [" in text and text.endswith("tail\n")
    assert "![embedded_top1](results/figures/embedded_top1.png)" in text
    assert "what each step adds" in text
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
    assert {r["verdict"] for r in json.loads(written["ordering"][2].read_text())["rows"]} == {tables.NOT_RUN}


def test_cross_machine_compares_the_same_runs_per_seed(run_root, tmp_path):
    root, top1 = run_root
    other = tmp_path / "other_machine"
    shift = {"TSN": [0.0, 0.0, 0.0], "TSM": [-3.0, 1.0, 0.0]}  # TSN bit-identical, TSM moved
    for model in ("TSN", "TSM"):
        for seed in (0, 1, 2):
            rec = _record(model, MODALITY[model], seed, top1[model][seed] + shift[model][seed], 90.0)
            rec["provenance"] = {"git_sha": "def4567", "device": {"cpu": "other-cpu"}}
            _write(other, f"{model}_s{seed}/eval/{model}", rec)
    _write(other, "PAN_Lite_s3/eval/PAN_Lite", _record("PAN_Lite", "Lite", 3, 50.0, 60.0))  # one side only
    rows = {r["model"]: r for r in tables.cross_machine_rows(root, other)}
    assert set(rows) == {"TSN", "TSM", "all models"}
    assert rows["TSN"]["identical seeds"] == 3 and rows["TSN"]["largest |difference|"] == 0.0
    assert rows["TSM"]["differences"] == "-3.0 / +1.0 / +0.0" and rows["TSM"]["largest |difference|"] == 3.0
    assert rows["TSM"]["reference"] == "test-cpu @ abc123" and rows["TSM"]["other"] == "other-cpu @ def4567"
    assert rows["all models"]["identical seeds"] == 4 and rows["all models"]["differences"] == "mean |difference| 0.7"
    # val-split evaluations of the same runs are never mixed in
    assert rows["TSN"]["reference top-1"] == "50.0 / 52.0 / 54.0"
