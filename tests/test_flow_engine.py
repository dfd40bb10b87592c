"""Flow through the engine's own data path (issue 12 item 3's plumbing): `build_split` reads the stored
flow of the run's `flow_method`, no hand-built dataset. One epoch of Flow (DIS, the default) trained by
`train(cfg)` alone, evaluated by `evaluate(ckpt, EvalConfig)` alone, an RGB + Flow ensemble with a
loader per member, a Flow run on Farneback flow named and fingerprinted apart, and the notebook's
evaluation cache keyed on the flow."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from data_prep.flow import compute_flow
from pan_lib.data.flow import decode_flow, flow_root, open_flow
from pan_lib.data.lists import read_list_file
from pan_lib.data.prepared import DatasetNotPreparedError, find_prepared
from pan_lib.data.registry import prepare_embedded
from pan_lib.engine import EvalConfig, TrainConfig, evaluate, train
from pan_lib.engine.config import ConfigError
from pan_lib.engine.data import build_split, merge_fingerprints, train_val_splits
from pan_lib.engine.evaluate import input_channels_per_segment, model_gmacs_per_view, predict
from pan_lib.models import build_model
from pan_lib.notebook.runs import evaluate_or_load, evaluation_key, recorded_key, train_or_load

T, SIZE, SCALE = 4, 48, 56
QUIET = dict(device="cpu", amp="off", num_workers=0, progress="off", tensorboard=False, save_every_minutes=0.0,
             threads=1, num_segments=T, epochs=1, batch_size=8, input_size=SIZE, scale_size=SCALE)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow_engine") / "embedded_tiny"
    prepared = prepare_embedded(root, size="tiny", progress="off", workers=2)
    for method in ("dis", "farneback"):
        compute_flow(prepared.root, method, workers=1, progress="off")
    return find_prepared("embedded", prepared.root)


@pytest.fixture(scope="module")
def runs(tiny, tmp_path_factory):
    """RGB and Flow (DIS) trained through `train(cfg)`'s default data path; Flow on Farneback flow."""
    out_root = str(tmp_path_factory.mktemp("runs"))
    common = dict(QUIET, data_root=str(tiny.root), out_root=out_root)
    out = {m: train(TrainConfig.from_recipe("embedded", m, **common)) for m in ("RGB", "Flow")}
    cfg = TrainConfig.from_recipe("embedded", "Flow", **common, flow_method="farneback")
    tr, va = train_val_splits(cfg)  # what training reads for this config
    out["Flow_farneback"] = train(cfg, train_set=tr.dataset.with_output("uint8"), val_set=va.dataset.with_output("uint8"),
                                  num_classes=tr.num_classes, data_fingerprint=tr.fingerprint)
    return out


def test_flow_method_in_the_config_and_the_run_name():
    cfg = TrainConfig.from_recipe("embedded", "Flow")
    assert cfg.flow_method == "dis" and cfg.run_name.startswith("Flow_dis_embedded_")
    farneback = cfg.replace(flow_method="farneback")
    assert farneback.run_name.startswith("Flow_farneback_") and farneback.run_name != cfg.run_name
    rgb = TrainConfig.from_recipe("embedded", "RGB", flow_method="farneback")  # no flow read: dropped
    assert rgb.flow_method is None and rgb.run_name.startswith("RGB_embedded_")
    with pytest.raises(ConfigError, match="flow_method"):
        TrainConfig.from_recipe("embedded", "Flow", flow_method="lucas_kanade")
    with pytest.raises(ConfigError, match="flow_method"):
        EvalConfig(flow_method="nope")
    assert EvalConfig().flow_method is None


def test_build_split_reads_the_flow_of_the_method(tiny):
    bundles = {m: build_split("embedded", str(tiny.root), "val", modality="Flow", num_segments=T, input_size=SIZE,
                              scale_size=SCALE, flow_method=m) for m in ("dis", "farneback")}
    fingerprints = {m: b.fingerprint for m, b in bundles.items()}
    assert fingerprints["dis"].startswith(tiny.fingerprint) and "+flow_dis_s56" in fingerprints["dis"]
    assert "+flow_farneback_s56" in fingerprints["farneback"]
    assert bundles["farneback"].dataset.flow_root == flow_root(tiny, "farneback")
    clip, _, _ = bundles["dis"].dataset.with_output("uint8")[0]
    assert clip.dtype == torch.uint8 and clip.shape == (T * 5 * 2, SIZE, SIZE)  # 5 fields x (x, y) per segment
    rgb = build_split("embedded", str(tiny.root), "val", modality="RGB", num_segments=T, input_size=SIZE, scale_size=SCALE)
    assert rgb.fingerprint == tiny.fingerprint
    with pytest.raises(DatasetNotPreparedError, match="data_prep flow .* --method tvl1"):
        build_split("embedded", str(tiny.root), "val", modality="Flow", num_segments=T, input_size=SIZE,
                    scale_size=SCALE, flow_method="tvl1")
    stored = open_flow(flow_root(tiny, "dis") / f"{read_list_file(tiny.list_for('val'), 'pan')[0].path}.npy")
    assert np.abs(decode_flow(stored)).max() <= 20.0


def test_merge_fingerprints():
    assert merge_fingerprints(["a", "a"]) == "a"
    assert merge_fingerprints(["a", "a+flow_dis_s56"]) == "a+flow_dis_s56"
    assert merge_fingerprints([None, "a"]) == "a" and merge_fingerprints([]) is None
    assert merge_fingerprints(["a", "b"]) == "a | b"


def test_flow_trains_and_evaluates_through_the_default_data_path(runs, tiny, tmp_path):
    res = runs["Flow"]
    assert res.status == "completed" and res.run_dir.name.startswith("Flow_dis_embedded_")
    record = res.record
    assert record["config"]["flow_method"] == "dis" and "+flow_dis_s56" in record["data"]["fingerprint"]
    cfg = EvalConfig(dataset="embedded", data_root=str(tiny.root), split="test", batch_size=4, num_workers=0,
                     device="cpu", progress="off", out_dir=str(tmp_path / "flow"))
    result = evaluate([res.last_checkpoint], cfg)
    assert result.model == "PAN_Flow" and result.scores.shape == (len(read_list_file(tiny.list_for("test"), "pan")), tiny.num_classes)
    rec = result.record
    assert rec["members"][0]["flow_method"] == "dis" and "+flow_dis_s56" in rec["data"]["fingerprint"]
    assert rec["gflops_per_view"] > 0


def test_rgb_plus_flow_ensemble_gives_each_member_its_loader(runs, tiny, tmp_path):
    cfg = EvalConfig(dataset="embedded", data_root=str(tiny.root), split="test", batch_size=4, num_workers=0,
                     device="cpu", progress="off")
    members = [runs["RGB"].last_checkpoint, runs["Flow"].last_checkpoint]
    result = evaluate(members, cfg.replace(out_dir=str(tmp_path / "two")))
    assert result.model == "TwoStream_Flow" and [m["modality"] for m in result.members] == ["RGB", "Flow"]
    singles = [evaluate([c], cfg.replace(out_dir=str(tmp_path / f"m{k}")), write=False).scores
               for k, c in enumerate(members)]
    np.testing.assert_allclose(result.scores, (singles[0] + singles[1]) / 2, rtol=1e-5, atol=1e-5)
    rec = result.record
    assert rec["data"]["fingerprint"] == f"{tiny.fingerprint}+flow_dis_s56"  # videos + the flow of the Flow member
    assert rec["gflops_per_view"] == pytest.approx(sum(m["gflops_per_view"] for m in rec["members"]))
    # the notebooks' cache: the key read back from the record equals today's, so nothing is recomputed
    assert recorded_key(rec) == evaluation_key(members, EvalConfig.from_dict(rec["config"]))


def test_a_farneback_flow_run_is_evaluated_on_farneback_flow(runs, tiny, tmp_path, capsys):
    res = runs["Flow_farneback"]
    assert res.run_dir.name.startswith("Flow_farneback_") and "+flow_farneback_s56" in res.record["data"]["fingerprint"]
    common = dict(dataset="embedded", data_root=str(tiny.root), split="test", batch_size=4, num_workers=0,
                  device="cpu", progress="off")
    first = evaluate_or_load("flow_fb", [res.last_checkpoint], out_dir=tmp_path / "fb", **common)
    assert first["members"][0]["flow_method"] == "farneback"  # the method it was trained on
    assert "+flow_farneback_s56" in first["data"]["fingerprint"]
    capsys.readouterr()
    again = evaluate_or_load("flow_fb", [res.last_checkpoint], out_dir=tmp_path / "fb", **common)
    assert capsys.readouterr().out.startswith("loading evaluation") and again == first  # not evaluated again
    on_dis = evaluate_or_load("flow_fb_on_dis", [res.last_checkpoint], out_dir=tmp_path / "fb_dis", flow_method="dis",
                              **common)
    assert on_dis["members"][0]["flow_method"] == "dis" and "+flow_dis_s56" in on_dis["data"]["fingerprint"]


def test_view_channels_follow_the_models_input_channels():
    torch.manual_seed(0)
    for modality, per_segment in (("Flow", 10), ("RGBDiff", 18), ("RGB", 3), ("Lite", 12)):
        model = build_model(modality, 5, num_segments=T, backbone="resnet_tiny").eval()
        assert input_channels_per_segment(model) == per_segment
        clips = torch.randn(2, 3 * T * per_segment, 32, 32)  # 2 videos x 3 views
        loader = [(clips, torch.tensor([0, 1]), torch.tensor([0, 1]))]
        out = predict(model, loader, views=None)  # V inferred from the channels
        assert out["logits"].shape == (2, 5)
        assert model_gmacs_per_view(model, 32) > 0


def test_the_notebooks_train_a_flow_run_on_its_own_flow_method(tiny, tmp_path):
    cfg = TrainConfig.from_recipe("embedded", "Flow", **QUIET, data_root=str(tiny.root), out_root=str(tmp_path),
                                  flow_method="farneback", max_train_batches=1)
    result, = train_or_load([cfg])
    assert result.status == "completed" and "+flow_farneback_s56" in result.record["data"]["fingerprint"]
