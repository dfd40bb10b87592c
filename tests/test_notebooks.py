"""The notebook series: conventions (static) and every notebook under papermill in small mode.

The series runs once per session (`series` fixture: tiny embedded dataset, 1 epoch, 1 seed) through
`pan_lib.workbook`, the same runner `make workbook` uses; the tests assert on the files the notebooks
wrote, not on cell text. The design card's example, `papermill notebooks/03_train_full.ipynb out.ipynb
-p dataset sthv2`, is run literally and must stop in its first cells with the preparation command.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from pan_lib import workbook as wb
from pan_lib.provenance import absolute_paths_in_file

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = {name: REPO / "notebooks" / f"{name}.ipynb" for name in wb.SERIES}
# parameters the runner passes: every notebook that trains or evaluates must declare them
TRAINING = ("03_train_lite", "03_train_full", "04_ensemble_en", "06_motion_inputs")
COMMON = ("dataset", "data_root", "small", "progress", "results_dir")


def _read(name: str) -> nbformat.NotebookNode:
    path = NOTEBOOKS[name]
    if not path.is_file():
        pytest.fail(f"{path} is missing: the series needs all of {', '.join(wb.SERIES)}")
    return nbformat.read(str(path), as_version=4)


def _parameters(nb) -> list:
    return [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]


# ------------------------------------------------------------------------------------ conventions
@pytest.mark.parametrize("name", wb.SERIES)
def test_one_parameters_cell_of_literals(name):
    nb = _read(name)
    cells = _parameters(nb)
    assert len(cells) == 1, f"{name}: {len(cells)} cells tagged 'parameters' (need exactly one)"
    cell = cells[0]
    assert cell.cell_type == "code"
    tree = ast.parse(cell.source)
    names = []
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name), \
            f"{name}: parameters cell may only assign names, found {ast.dump(node)[:80]}"
        ast.literal_eval(node.value)  # raises for anything derived (a * 2, f(x), names)
        names.append(node.targets[0].id)
    assert len(names) == len(set(names)), f"{name}: a parameter is assigned twice"
    assert "dataset" in names
    index = nb.cells.index(cell)
    assert nb.cells[index + 1].cell_type == "code", f"{name}: derived values belong in the cell after the parameters"


@pytest.mark.parametrize("name", TRAINING)
def test_training_notebooks_declare_the_common_parameters(name):
    declared = set(wb.declared_parameters(NOTEBOOKS[name]))
    needed = set(COMMON) | {"data_root", "recipe", "seeds", "backbone", "segments", "epochs", "batch_size", "lr",
                            "device", "num_workers", "run_root", "nproc_per_node"}
    assert needed <= declared, f"{name} lacks {sorted(needed - declared)}"


@pytest.mark.parametrize("name", wb.SERIES)
def test_stored_without_outputs_with_python3_kernel(name):
    nb = _read(name)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: stored with outputs"


@pytest.mark.parametrize("name", [n for n in wb.SERIES if n != "02_pa_visualisation"])
def test_opens_with_what_it_teaches_and_ends_with_summary_and_exercises(name):
    nb = _read(name)
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "What this notebook teaches" in first.source
    assert last.cell_type == "markdown" and "## Summary" in last.source and "## Exercises" in last.source


# ------------------------------------------------------------------------- the series, small mode
@pytest.fixture(scope="session")
def series(tmp_path_factory):
    """Run the whole series headless in small mode once; later tests read what they wrote."""
    out = tmp_path_factory.mktemp("workbook")
    cfg = wb.WorkbookConfig(small=True, seeds=(0,), out=str(out), data_root=str(out / "data"), device="cpu")
    try:
        runs = wb.run_workbook(cfg)
    except wb.WorkbookError as exc:
        pytest.fail(f"the series failed in small mode: {exc}")
    return out, runs


def _records(root: Path, kind: str) -> list[dict]:
    out = []
    for path in sorted(root.rglob("record.json")):
        rec = json.loads(path.read_text())
        if rec.get("kind") == kind:
            out.append(rec)
    return out


@pytest.mark.slow
def test_series_runs_every_notebook_and_times_it(series):
    out, runs = series
    assert [r.name for r in runs] == list(wb.SERIES)
    assert all(r.status == "ok" for r in runs)
    timings = json.loads((out / "notebooks" / "timings.json").read_text())
    assert [row["notebook"] for row in timings["rows"]] == [*wb.SERIES, "TOTAL"]
    assert timings["provenance"]["git_sha"]
    for name in wb.SERIES:
        executed = nbformat.read(str(out / "notebooks" / f"{name}.ipynb"), as_version=4)
        errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{name}: {errors[0]['ename']}: {errors[0]['evalue']}"
        injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected and "small = True" in injected[0].source


@pytest.mark.slow
def test_data_prep_writes_dataset_statistics_and_figures(series):
    out, _ = series
    assert (out / "data" / "prepared.json").is_file()
    rows = json.loads((out / "tables" / "data_embedded.json").read_text())["rows"]
    assert [r["split"] for r in rows] == ["train", "val", "test"] and rows[0]["videos"] > 0
    for fig in ("01_data_prep_embedded_sampling", "01_data_prep_embedded_samples"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000


@pytest.mark.slow
def test_training_notebooks_write_completed_runs_and_evaluations(series):
    out, _ = series
    train = {r["modality"]: r for r in _records(wb.default_run_root(out), "train")}
    assert set(train) == {"TSN", "TSM", "Lite", "RGB", "PA", "Flow", "RGBDiff"}  # Flow, RGBDiff: 06
    assert all(r["status"] == "completed" and r["metrics"]["epochs_completed"] == 1 for r in train.values())
    records = _records(wb.default_run_root(out), "eval")
    assert {r["data"]["split"] for r in records} == {"test"}  # reported numbers: the held-out split
    evals = {(r["model"], r["views"]): r for r in records}
    for model in ("TSN", "TSM", "PAN_Lite", "PAN_RGB", "PAN_PA", "PAN_Full", "PAN_En"):
        assert (model, 1) in evals, f"no 1-clip evaluation of {model}"
    for model in ("PAN_Lite", "PAN_Full"):
        assert (model, 2) in evals, f"no evaluation of {model} under the En protocol"
    en = evals[("PAN_En", 2)]
    assert en["protocol"]["full_res"] and en["protocol"]["twice_sample"]
    assert sorted(m["modality"] for m in en["members"]) == ["Lite", "PA", "RGB"]
    assert en["gflops_per_view"] == pytest.approx(sum(m["gflops_per_view"] for m in en["members"]))
    assert (out / "figures" / "04_ensemble_en_embedded_cost.png").is_file()


@pytest.mark.slow
def test_result_tables_list_all_seven_models_on_the_test_split(series):
    out, _ = series
    table = json.loads((out / "tables" / "embedded.json").read_text())
    rows = table["rows"]
    assert [r["model"] for r in rows] == ["TSN", "TSM", "PAN_RGB", "PAN_PA", "PAN_Lite", "PAN_Full", "PAN_En"]
    assert all(r["seeds"] == 1 and r["split"] == "test" and isinstance(r["top1_mean"], float) for r in rows)
    assert rows[-1]["flops_x_views"].endswith("× 2") and rows[4]["flops_x_views"].endswith("× 1")
    assert table["provenance"]["data_fingerprint"]  # the data every record was evaluated on
    steps = json.loads((out / "tables" / "embedded_steps.json").read_text())["rows"]
    assert all(r["paired_seeds"] == 1 and r["verdict"] == "not shown" for r in steps)  # one seed: no interval
    ordering = json.loads((out / "tables" / "embedded_ordering.json").read_text())["rows"]
    assert len(ordering) == 7 and all(r["verdict"] == "not shown" for r in ordering)
    assert (out / "tables" / "embedded_findings.md").read_text().count("\n- ") >= len(steps)
    real = json.loads((out / "tables" / "real_datasets.json").read_text())["rows"]
    assert all(r["our_top1"] == "not run" for r in real)
    for png in ("embedded_top1.png", "embedded_accuracy_vs_cost.png", "embedded_steps.png"):
        assert (out / "figures" / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_motion_inputs_tables_put_accuracy_beside_end_to_end_cost(series):
    """06 in small mode: DIS flow computed and trained on, TV-L1 timed on one clip, RAFT (no weights here)
    listed as not run; every motion input alone and fused with RGB on the test split."""
    out, _ = series
    rows = {r["model"]: r for r in json.loads((out / "tables" / "motion_inputs.json").read_text())["rows"]}
    for model in ("PAN_RGB", "PAN_PA", "PAN_Full", "PAN_RGBDiff", "TwoStream_RGBDiff", "PAN_Flow (dis)",
                  "TwoStream_Flow (dis)"):
        assert rows[model]["seeds"] == 1 and rows[model]["split"] == "test", model
        assert isinstance(rows[model]["top1_mean"], float) and rows[model]["end_to_end_ms_per_clip"] > 0, model
    assert rows["PAN_PA"]["extraction_ms_per_clip"] == 0 and rows["PAN_Flow (dis)"]["extraction_ms_per_clip"] > 0
    assert rows["PAN_Flow (tvl1)"]["top1_%"] == "not run" and "cost measured on 1 clips" in rows["PAN_Flow (tvl1)"]["note"]
    extraction = {r["method"]: r for r in json.loads((out / "tables" / "motion_inputs_extraction.json").read_text())["rows"]}
    assert extraction["dis"]["accuracy_run"] and extraction["dis"]["timed_on"].startswith("all 48 videos")
    assert not extraction["tvl1"]["accuracy_run"] and extraction["tvl1"]["seconds_per_clip"] > 0
    network = {r["model"] for r in json.loads((out / "tables" / "motion_inputs_network.json").read_text())["rows"]}
    assert network == {"PAN_RGB", "PAN_PA", "PAN_RGBDiff", "PAN_Flow"}
    comparisons = json.loads((out / "tables" / "motion_inputs_comparisons.json").read_text())["rows"]
    assert {c["verdict"] for c in comparisons if c["paired_seeds"]} == {"not shown"}  # one seed: no interval
    assert "PAN_PA" in (out / "tables" / "motion_inputs_findings.md").read_text()
    for png in ("motion_inputs_accuracy_vs_cost", "06_motion_inputs_embedded_pa_vs_flow", "06_motion_inputs_embedded_flow_xy"):
        assert (out / "figures" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    for source in json.loads((out / "tables" / "motion_inputs.json").read_text())["provenance"]["records"]:
        assert (out / source).is_file()  # 05 ran after 06 and mirrored the records: 06's copies are there


@pytest.mark.slow
def test_every_table_row_traces_to_a_committed_record(series):
    out, _ = series
    per_seed = json.loads((out / "tables" / "per_seed.json").read_text())["rows"]
    assert per_seed and all(r["source"].startswith("records/") for r in per_seed)
    for row in per_seed:
        record = json.loads((out / row["source"]).read_text())
        assert record["kind"] == "eval" and record["metrics"]["top1"] == row["top1"]
    train_copies = [p for p in (out / "records").rglob("record.json") if json.loads(p.read_text())["kind"] == "train"]
    assert len(train_copies) == 7  # TSN, TSM, RGB, PA, Lite, Flow (dis), RGBDiff for the one seed
    assert not list((out / "records").rglob("*.pt")) and not list((out / "records").rglob("*.npz"))


@pytest.mark.slow
def test_committed_outputs_hold_no_absolute_paths(series):
    """Everything `make workbook` commits (tables, records, executed notebooks, timings) is portable."""
    out, _ = series
    for folder in ("tables", "records", "notebooks"):
        for path in (out / folder).rglob("*"):
            if path.suffix in (".md", ".csv", ".json", ".ipynb"):
                found = absolute_paths_in_file(path)
                assert not found, f"{path.relative_to(out)}: {found[:3]}"


@pytest.mark.slow
def test_executed_notebooks_stay_small(series):
    out, _ = series
    for name in wb.SERIES:
        size = (out / "notebooks" / f"{name}.ipynb").stat().st_size
        assert size < 2_000_000, f"{name}: executed copy is {size / 1e6:.1f} MB"


# ------------------------------------------------------------------------------ fast failure paths
def test_design_card_example_stops_with_preparation_command(tmp_path):
    """`papermill notebooks/03_train_full.ipynb out.ipynb -p dataset sthv2` without SSv2 prepared."""
    env = {**os.environ, "PAN_DATA_ROOT": str(tmp_path / "no_data_here")}  # the default data/<name> lives here
    out = tmp_path / "out.ipynb"
    proc = subprocess.run([sys.executable, "-m", "papermill", "notebooks/03_train_full.ipynb", str(out),
                           "-p", "dataset", "sthv2", "--no-progress-bar"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    executed = nbformat.read(str(out), as_version=4)
    errors = [(i, o) for i, c in enumerate(executed.cells) for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert len(errors) == 1
    index, error = errors[0]
    assert error["ename"] == "DatasetNotPreparedError"
    assert "python -m data_prep sthv2 --root" in error["evalue"]
    assert str(tmp_path / "no_data_here" / "sthv2") in error["evalue"]
    # it stopped in its first code cells: parameters, injected parameters, derived values
    code_before = [c for c in executed.cells[:index] if c.cell_type == "code"]
    assert len(code_before) == 2
    assert not any(c.get("outputs") for c in executed.cells[index + 1:] if c.cell_type == "code")


def test_unknown_dataset_lists_valid_names(tmp_path):
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(PapermillExecutionError) as info:
        pm.execute_notebook(str(NOTEBOOKS["05_result_tables"]), str(tmp_path / "out.ipynb"),
                            parameters={"dataset": "sthv3", "run_root": str(tmp_path), "results_dir": str(tmp_path)},
                            progress_bar=False, cwd=str(REPO / "notebooks"))
    assert info.value.ename == "ValueError"
    assert "unknown dataset 'sthv3'; valid: embedded, sthv1, sthv2, kinetics400, ucf101, hmdb51, jester" in info.value.evalue
