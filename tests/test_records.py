"""Run records: one builder for train and eval records, found by their own kind; tables read through them."""
from __future__ import annotations

import json

import pytest
import torch

from pan_lib import tables
from pan_lib.engine import EvalConfig, TrainConfig, evaluate, train
from pan_lib.engine.records import SCHEMA, build_record, find_records, write_record
from pan_lib.models import build_model
from pan_lib.provenance import file_sha256
from test_engine_toys import ToyMotion


def _record(kind: str, name: str, status: str = "completed", **extra):
    common = dict(name=name, status=status, model="PAN_RGB", modality="RGB", dataset="embedded",
                  backbone="resnet_tiny", seed=0, metrics={"top1": 50.0, "top5": 90.0}, views=1,
                  protocol={"crops": 1, "clips": 1}, gflops_per_view=0.1, params=10, clips_per_s=1.0, speed={},
                  timing={}, config={}, data={"fingerprint": "fp"}, provenance={}, artifacts={})
    return build_record(kind, **{**common, **extra})


def test_build_record_checks_and_shapes():
    rec = _record("train", "t", model_config={"modality": "RGB"}, history=[{"epoch": 1}])
    assert rec["schema"] == SCHEMA and rec["kind"] == "train" and rec["history"] == [{"epoch": 1}]
    assert rec["model_config"] == {"modality": "RGB"} and "members" not in rec
    ev = _record("eval", "e", members=[{"checkpoint": "a.pt", "checkpoint_sha256": "0" * 64}])
    assert ev["members"][0]["checkpoint_sha256"] == "0" * 64 and "history" not in ev
    with pytest.raises(ValueError, match="kind"):
        _record("bench", "x")
    with pytest.raises(ValueError, match="status"):
        _record("eval", "x", status="done")


def test_find_records_filters_on_the_records_own_kind(tmp_path):
    write_record(tmp_path / "run" / "record.json", _record("train", "run"))
    write_record(tmp_path / "run" / "eval" / "a" / "record.json", _record("eval", "a"))
    write_record(tmp_path / "run" / "eval" / "b" / "record.json", _record("eval", "b", status="failed"))
    write_record(tmp_path / "old" / "record.json", _record("train", "old", status="stopped"))
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "record.json").write_text(json.dumps({"schema": "other", "kind": "eval"}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "record.json").write_text("{not json")
    assert [r["name"] for r in find_records(tmp_path, kind="train")] == ["run"]
    assert [r["name"] for r in find_records(tmp_path, kind="eval")] == ["a"]
    assert [r["name"] for r in find_records(tmp_path)] == ["a", "run"]  # sorted by path: run/eval/a < run/record
    assert sorted(r["name"] for r in find_records(tmp_path, kind="eval", status=None)) == ["a", "b"]
    assert [r["name"] for r in find_records(tmp_path, kind="train", status="stopped")] == ["old"]
    assert find_records(tmp_path / "missing") == []
    with pytest.raises(ValueError, match="kind"):
        find_records(tmp_path, kind="eval_record")
    assert [r.source for r in tables.load_results(tmp_path)] == [find_records(tmp_path, kind="eval")[0]["path"]]
    assert len(tables.load_results(tmp_path, kinds=("train", "eval"))) == 2


def test_records_of_a_real_train_and_evaluate(tmp_path):
    torch.manual_seed(0)
    model = build_model("RGB", 3, num_segments=4, backbone="resnet_tiny", dropout=0.0)
    cfg = TrainConfig(modality="RGB", backbone="resnet_tiny", num_segments=4, epochs=1, batch_size=4, lr=0.001,
                      dropout=0.0, input_size=32, scale_size=32, run_dir=str(tmp_path / "run"), device="cpu",
                      amp="off", num_workers=0, progress="off", tensorboard=False, save_every_minutes=0.0,
                      resume=False, count_flops=False)
    res = train(cfg, model=model, train_set=ToyMotion(8), val_set=ToyMotion(4), num_classes=3,
                data_fingerprint="toy-fp")
    eval_cfg = EvalConfig(progress="off", num_workers=0, device="cpu")
    ev = evaluate([res.best_checkpoint], eval_cfg, datasets=[ToyMotion(4)], num_classes=3,
                  data_fingerprint="toy-fp")

    (train_rec,) = find_records(tmp_path, kind="train")
    assert train_rec["path"] == str(res.record_path.resolve()) and train_rec["model"] == "PAN_RGB"
    assert train_rec["model_config"] == model.config() and train_rec["config"] == cfg.to_dict()
    assert train_rec["config"]["num_segments"] == 4 and "segments" not in train_rec["config"]
    assert train_rec["data"]["fingerprint"] == "toy-fp"

    (eval_rec,) = find_records(tmp_path, kind="eval")
    assert eval_rec["path"] == str(ev.record_path.resolve())
    member = eval_rec["members"][0]
    assert member["checkpoint_sha256"] == file_sha256(res.best_checkpoint)
    assert member["model_config"] == model.config()
    assert eval_rec["config"] == eval_cfg.to_dict() and eval_rec["data"]["fingerprint"] == "toy-fp"
    assert [r.model for r in tables.load_results(tmp_path)] == ["PAN_RGB"]
