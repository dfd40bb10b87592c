"""Same seed, same machine -> identical records: a tiny run of the workbook's embedded recipe (bf16
autocast, channels_last, the PA path) trained twice and evaluated twice on the held-out split.

Across machines the numbers are not expected to match (CPU kernels differ; docs/results.md says
which figures are bit-stable where); on one machine they must, or seeds would not mean anything.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from pan_lib.data.registry import get_prepared
from pan_lib.engine import EvalConfig, evaluate, train
from pan_lib.notebook import runs

# per-epoch fields that measure the machine, not the model
TIMING_WORDS = ("seconds", "per_s", "memory", "time")


def _model_fields(row: dict) -> dict:
    return {k: v for k, v in row.items() if not any(w in k for w in TIMING_WORDS)}


def _train_and_evaluate(tmp_path, data_root, name: str):
    cfg, = runs.train_configs("embedded", ["Lite"], [0], data_root=str(data_root), run_root=tmp_path / name,
                              small=True, progress="off")
    result = train(cfg)
    record = json.loads(result.record_path.read_text())
    ev = evaluate([result.last_checkpoint], EvalConfig(dataset="embedded", data_root=str(data_root), split="test",
                                                      device="cpu", num_workers=0, progress="off",
                                                      out_dir=str(tmp_path / name / "eval")))
    return record, json.loads(ev.record_path.read_text()), ev


@pytest.mark.slow
def test_same_seed_same_machine_gives_identical_records(tmp_path):
    data_root = tmp_path / "data"
    get_prepared("embedded", data_root, size="tiny", progress="off")
    train_a, eval_a, scores_a = _train_and_evaluate(tmp_path, data_root, "a")
    train_b, eval_b, scores_b = _train_and_evaluate(tmp_path, data_root, "b")
    assert train_a["status"] == train_b["status"] == "completed"
    assert train_a["metrics"] == train_b["metrics"]
    assert [_model_fields(r) for r in train_a["history"]] == [_model_fields(r) for r in train_b["history"]]
    assert train_a["data"]["fingerprint"] == train_b["data"]["fingerprint"]
    assert eval_a["data"]["split"] == "test" and eval_a["metrics"] == eval_b["metrics"]
    assert np.array_equal(scores_a.scores, scores_b.scores)  # bit-identical logits, not just equal top-1
