"""FLOPs with torch.utils.flop_counter: official R50 numbers (meta device), ensembles, conventions."""
from __future__ import annotations

import pytest
import torch

from pan_lib import Ensemble, build_model, count_flops

OFFICIAL_GMACS = {"RGB": 32.70, "PA": 34.59, "Lite": 35.53}  # pan_official.md §11, 224^2, 8 segments


@pytest.fixture(scope="module")
def r50():
    with torch.device("meta"):
        return {m: build_model(m, 174) for m in OFFICIAL_GMACS}


@pytest.mark.parametrize("modality", list(OFFICIAL_GMACS))
def test_resnet50_matches_official_macs(r50, modality):
    res = count_flops(r50[modality], 224)
    assert res["gmacs"] == pytest.approx(OFFICIAL_GMACS[modality], rel=0.01)
    assert res["flops"] == 2 * res["macs"] and res["input_shape"] == (1, 8 * r50[modality].new_length * 3, 224, 224)
    assert res["params"] == {"RGB": 23_864_950, "PA": 23_866_134, "Lite": 23_875_542}[modality]
    if modality == "RGB":
        assert res["macs_executed"] == res["macs_official"]
    else:  # our PA convolves 3 differences instead of 4 frames (x 3/4), as column pairs whose
        # [2C, 6, 7, 4] kernel does 8/7 of the multiply-adds: 6/7 of the shallow conv, 1/7 saved
        pa = res["by_module"]["PA"]
        assert pa == pytest.approx(1.888e9, rel=0.01)
        assert res["macs_official"] - res["macs_executed"] == pa // 7


def test_full_and_lite_ratios(r50):
    full = count_flops(Ensemble.full(r50["RGB"], r50["PA"]), 224)
    assert full["gmacs"] == pytest.approx(32.70 + 34.59, rel=0.01)
    assert set(full["by_module"]) == {"RGB", "PA"}
    ratio = count_flops(r50["Lite"])["macs"] / count_flops(r50["RGB"])["macs"]
    assert ratio == pytest.approx(1.087, abs=0.01)
    # full resolution scales with the pixel count
    assert count_flops(r50["Lite"], 256)["gmacs"] == pytest.approx(35.53 * (256 / 224) ** 2, rel=0.01)


def test_counts_real_cpu_model_and_leaves_it_unchanged():
    model = build_model("Lite", 5, num_segments=4, backbone="resnet_tiny").train()
    meta = count_flops(model, 64, batch=2, convention="executed")
    real = count_flops(model, 64, batch=2, convention="executed", on_meta=False)
    assert meta["macs"] == real["macs"] > 0
    assert model.training and model.PA.implementation == "fast"
    assert next(model.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="valid: official, executed"):
        count_flops(model, convention="paper")
