"""Ensembles: weighted mean of member logits, m=1 members get the first frame of each snippet."""
from __future__ import annotations

import pytest
import torch

from pan_lib import Ensemble, build_model

KW = dict(num_segments=4, backbone="resnet_tiny")


@pytest.fixture(scope="module")
def members():
    torch.manual_seed(0)
    nets = {m: build_model(m, 6, **KW).eval() for m in ("Lite", "RGB", "PA")}
    with torch.no_grad():
        for net in nets.values():
            net.base_model.fc.pred.weight.normal_(0, 1.0)
    return nets


def test_full_is_mean_of_rgb_and_pa(members):
    full = Ensemble.full(members["RGB"], members["PA"])
    assert (full.modality, full.new_length, full.num_segments, full.names) == ("Full", 4, 4, ["RGB", "PA"])
    x = torch.randn(2, 4 * 4 * 3, 32, 32)
    rgb_clip = x.view(2, 4, 4, 3, 32, 32)[:, :, 0].reshape(2, 12, 32, 32)  # first frame of each snippet
    with torch.no_grad():
        expected = (members["RGB"](rgb_clip) + members["PA"](x)) / 2
        torch.testing.assert_close(full(x), expected)
        torch.testing.assert_close(full(x.view(2, 4, 12, 32, 32)), expected)


def test_en_weights(members):
    x = torch.randn(2, 48, 32, 32)
    en = Ensemble.en(members["Lite"], members["RGB"], members["PA"], weights=[2.0, 1.0, 1.0])
    with torch.no_grad():
        per = en.forward_members(x)
        torch.testing.assert_close(en(x), (2 * per["Lite"] + per["RGB"] + per["PA"]) / 4)
        equal = Ensemble.en(members["Lite"], members["RGB"], members["PA"])(x)
        torch.testing.assert_close(equal, sum(per.values()) / 3)
        assert not torch.allclose(equal, en(x))


def test_list_members_dict_weights_and_errors(members):
    ens = Ensemble([members["RGB"], members["RGB"]], weights={"RGB2": 0.0})
    assert ens.names == ["RGB", "RGB2"] and ens.weights == [1.0, 0.0] and ens.new_length == 1
    with pytest.raises(ValueError, match="rgb must be a RGB network"):
        Ensemble.full(members["PA"], members["PA"])
    with pytest.raises(ValueError, match="num_segments"):
        Ensemble([members["RGB"], build_model("RGB", 6, num_segments=8, backbone="resnet_tiny")])
    with pytest.raises(ValueError, match="unknown members"):
        Ensemble({"a": members["RGB"]}, weights={"b": 1.0})
    with pytest.raises(ValueError, match="expects"):
        Ensemble.full(members["RGB"], members["PA"])(torch.randn(1, 12, 32, 32))
