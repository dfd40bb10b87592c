"""The headless runner: parameter passing, overrides, failures that keep their outputs, timings."""
from __future__ import annotations

import json

import nbformat
import pytest

from pan_lib import workbook as wb
from pan_lib.data.registry import DatasetNotPreparedError
from pan_lib.notebook import datasets, environment, runs


def _notebook(path, params_src: str, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(params_src)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# fake"), params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.fixture()
def fake_series(tmp_path):
    """Three fake notebooks named like the series: ok, ok (writes its parameters), failing."""
    src = tmp_path / "nb"
    src.mkdir()
    _notebook(src / "01_data_prep.ipynb", "dataset = 'embedded'\nsmall = False",
              "print('prepared', dataset, small)")
    _notebook(src / "02_pa_visualisation.ipynb",
              "dataset = 'embedded'\nseeds = [0]\nresults_dir = ''\nprogress = 'auto'\nepochs = 1",
              "import json, os, pathlib\n"
              "pathlib.Path(results_dir, 'params.json').write_text(json.dumps(dict(\n"
              "    dataset=dataset, seeds=seeds, progress=progress, epochs=epochs,\n"
              "    headless=os.environ.get('PAN_WORKBOOK_HEADLESS'))))")
    _notebook(src / "03_train_lite.ipynb", "dataset = 'embedded'",
              "raise RuntimeError('boom: dataset ' + dataset)")
    _notebook(src / "03_train_full.ipynb", "dataset = 'embedded'", "print('never runs')")
    return src


def test_select_notebooks_prefixes_and_errors():
    assert wb.select_notebooks(["05", "01_data_prep", "notebooks/03_train_full.ipynb"]) == [
        "01_data_prep", "03_train_full", "05_result_tables"]
    with pytest.raises(ValueError, match="matches several"):
        wb.select_notebooks(["03"])
    with pytest.raises(ValueError, match="matches none.*01_data_prep"):
        wb.select_notebooks(["99_nope"])


def test_parse_override_literals_and_strings():
    assert wb.parse_override("epochs=3") == ("epochs", 3)
    assert wb.parse_override("seeds=[0, 1]") == ("seeds", [0, 1])
    assert wb.parse_override("backbone=resnet18") == ("backbone", "resnet18")
    assert wb.parse_override("lr=0.1") == ("lr", 0.1)
    with pytest.raises(Exception, match="NAME=VALUE"):
        wb.parse_override("epochs")


def test_config_validation():
    with pytest.raises(ValueError, match="valid: auto, embedded, official"):
        wb.WorkbookConfig(recipe="paper")
    with pytest.raises(ValueError, match="needs a real dataset"):
        wb.WorkbookConfig(dataset="embedded", recipe="official")
    with pytest.raises(ValueError, match="seed"):
        wb.WorkbookConfig(seeds=())


def test_parameters_only_those_declared(fake_series, tmp_path):
    cfg = wb.WorkbookConfig(out=str(tmp_path / "out"), notebook_dir=str(fake_series), seeds=(4, 5),
                            overrides={"epochs": 2})
    params = wb.parameters_for(fake_series / "02_pa_visualisation.ipynb", cfg)
    assert params == {"dataset": "embedded", "seeds": [4, 5], "progress": "text",
                      "results_dir": str(tmp_path / "out"), "epochs": 2}
    assert wb.parameters_for(fake_series / "01_data_prep.ipynb", cfg) == {"dataset": "embedded", "small": False}


def test_renamed_parameters_reach_either_spelling(tmp_path):
    """`--set segments=N` (old spelling) and `--set num_segments=N` reach notebooks declaring either."""
    src = tmp_path / "nb"
    src.mkdir()
    _notebook(src / "01_data_prep.ipynb", "dataset = 'embedded'\nsegments = 8", "pass")
    _notebook(src / "02_pa_visualisation.ipynb", "dataset = 'embedded'\nnum_segments = 8", "pass")
    for key in ("segments", "num_segments"):
        cfg = wb.WorkbookConfig(out=str(tmp_path / "out"), notebook_dir=str(src), overrides={key: 4})
        wb.check_overrides(cfg, ["01_data_prep", "02_pa_visualisation"])
        assert wb.parameters_for(src / "01_data_prep.ipynb", cfg)["segments"] == 4
        assert wb.parameters_for(src / "02_pa_visualisation.ipynb", cfg)["num_segments"] == 4


def test_unknown_override_lists_declared_parameters(fake_series, tmp_path):
    cfg = wb.WorkbookConfig(out=str(tmp_path), notebook_dir=str(fake_series), only=("01",),
                            overrides={"epocs": 2})
    with pytest.raises(ValueError, match=r"unknown notebook parameter\(s\) epocs.*dataset, small"):
        wb.run_workbook(cfg)


@pytest.mark.slow
def test_failure_keeps_output_and_skips_the_rest(fake_series, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    cfg = wb.WorkbookConfig(out=str(out), notebook_dir=str(fake_series), dataset="sthv2",
                            only=("01", "02", "03_train_lite", "03_train_full"), overrides={"epochs": 7})
    with pytest.raises(wb.WorkbookError, match=r"03_train_lite failed \(cell In \[3\] raised RuntimeError: boom: dataset sthv2\)"):
        wb.run_workbook(cfg)
    # parameters arrived, typed, with the headless flag in the kernel's environment
    seen = json.loads((out / "params.json").read_text())
    assert seen == {"dataset": "sthv2", "seeds": [0, 1, 2], "progress": "text", "epochs": 7, "headless": "1"}
    # the failed notebook's executed copy is kept, with the traceback in its outputs
    failed = nbformat.read(str(out / "notebooks" / "03_train_lite.ipynb"), as_version=4)
    errors = [o for c in failed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors and errors[0]["evalue"] == "boom: dataset sthv2"
    assert not (out / "notebooks" / "03_train_full.ipynb").exists()
    rows = {r["notebook"]: r for r in json.loads((out / "notebooks" / "timings.json").read_text())["rows"]}
    assert [rows[n]["status"] for n in ("01_data_prep", "02_pa_visualisation", "03_train_lite", "03_train_full")] \
        == ["ok", "ok", "failed", "skipped"]
    assert rows["TOTAL"]["status"] == "failed" and rows["TOTAL"]["seconds"] > 0
    assert "Command: `python -m pan_lib.workbook" in (out / "notebooks" / "timings.md").read_text()


def test_cli_reports_errors_without_traceback(capsys):
    assert wb.main(["--recipe", "official"]) == 1
    assert "needs a real dataset" in capsys.readouterr().err


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'sthv3'; valid: embedded, sthv1, sthv2"):
        wb.WorkbookConfig(dataset="sthv3")


def test_small_mode_never_writes_into_results():
    assert wb.WorkbookConfig(small=True).out_dir.name == "workbook-small"
    # every notebook gets the same explicit data folder; the small one never clobbers data/embedded
    assert wb.WorkbookConfig(small=True).notebook_parameters()["data_root"].endswith("embedded_tiny")
    assert "seed" not in wb.WorkbookConfig().notebook_parameters()  # 01's generator seed stays its own
    assert wb.WorkbookConfig().out_dir == wb.REPO_ROOT / "results"


# ------------------------------------------------------------------------ notebook helpers (pan_lib)
def test_as_seeds_accepts_papermill_forms():
    as_seeds = environment.as_seeds
    assert as_seeds([0, 1, 2]) == as_seeds("0,1,2") == as_seeds("[0, 1, 2]") == [0, 1, 2]
    assert environment.as_seeds(3) == [3]
    with pytest.raises(ValueError, match="at least one seed"):
        environment.as_seeds("")


def test_resolve_progress_is_text_when_headless(monkeypatch):
    monkeypatch.setenv(environment.HEADLESS_ENV, "1")
    assert environment.resolve_progress("auto") == "text" and environment.resolve_progress("off") == "off"
    with pytest.raises(ValueError, match="'auto', 'text' or 'off'"):
        environment.resolve_progress("widget")


def test_train_configs_recipes_overrides_and_small_mode(tmp_path):
    cfgs = runs.train_configs("embedded", ["TSN", "Lite"], [0, 1], run_root=tmp_path, small=True,
                              progress="off", lr=None, epochs=None, backbone=None)
    assert [(c.modality, c.seed) for c in cfgs] == [("TSN", 0), ("TSN", 1), ("Lite", 0), ("Lite", 1)]
    assert all(c.epochs == 1 and c.data_root.endswith("embedded_tiny") for c in cfgs)
    assert cfgs[0].resolved_run_dir.parent == tmp_path
    full = runs.train_configs("embedded", ["RGB"], [0], run_root=tmp_path, epochs=3, batch_size=4)
    assert (full[0].epochs, full[0].batch_size, full[0].backbone) == (3, 4, "resnet_tiny")
    official = runs.train_configs("sthv2", ["PA"], [0], data_root="/data/sthv2", run_root=tmp_path)
    assert (official[0].epochs, official[0].backbone, official[0].lr_steps) == (80, "resnet50", (30.0, 60.0))
    cpu = runs.train_configs("sthv2", ["Lite"], [0], recipe="embedded", run_root=tmp_path)
    assert cpu[0].dataset == "sthv2" and cpu[0].backbone == "resnet_tiny"
    with pytest.raises(ValueError, match="recipe 'official' is for real datasets"):
        runs.train_configs("embedded", ["Lite"], [0], recipe="official")
    with pytest.raises(ValueError, match="valid: TSN, TSM, RGB, PA, Lite"):
        runs.train_configs("embedded", ["Full"], [0])


def test_ensure_dataset_fails_fast_for_unprepared_real_data(tmp_path):
    with pytest.raises(DatasetNotPreparedError, match="python -m data_prep sthv1 --root"):
        datasets.ensure_dataset("sthv1", tmp_path / "nothing")
    with pytest.raises(ValueError, match="unknown dataset 'ssv2'; valid: embedded"):
        datasets.ensure_dataset("ssv2")


def test_runs_go_outside_the_committed_output_folder(tmp_path):
    REPO_ROOT = wb.REPO_ROOT
    assert wb.default_run_root(REPO_ROOT / "results") == REPO_ROOT / "runs" / "results"
    assert wb.default_run_root(REPO_ROOT / "results" / "sthv2") == REPO_ROOT / "runs" / "results" / "sthv2"
    assert wb.default_run_root(tmp_path / "out") == tmp_path / "out_runs"
    assert wb.WorkbookConfig(out=str(tmp_path / "out")).notebook_parameters()["run_root"] == str(tmp_path / "out_runs")
