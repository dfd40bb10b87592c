"""ImageNet initialisation offline: a weights file already in torch's hub cache is used without network,
and the official initialisations built on it are what they should be (Lite's 6-channel stem = the RGB
kernel's channel mean replicated; PA's stem = the ImageNet stem unchanged). Without the file and the
network, the error says where to put it."""
from __future__ import annotations

import pytest
import torch
from torchvision import models as tvm

from pan_lib.backbones import PretrainedWeightsUnavailable, build_backbone, imagenet_weights_file
from pan_lib.models import build_model


def _no_network(*args, **kwargs):
    raise OSError("network disabled in this test")


@pytest.fixture()
def offline_hub(tmp_path, monkeypatch):
    """An empty TORCH_HOME and no way to download."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    return tmp_path / "torch_home"


def test_cached_weights_are_used_offline_and_the_official_stems_follow(offline_hub):
    torch.manual_seed(3)
    state = tvm.resnet50(weights=None).state_dict()  # stands in for the ImageNet file
    for name, value in state.items():
        if name.endswith(("running_mean", "running_var")):
            value.uniform_(0.5, 1.5)
    path = imagenet_weights_file("resnet50")
    assert path == offline_hub / "hub/checkpoints/resnet50-0676ba61.pth"  # torchvision's IMAGENET1K_V1 file
    path.parent.mkdir(parents=True)
    torch.save(state, path)

    backbone = build_backbone("resnet50", pretrained=True)
    for name, value in backbone.state_dict().items():
        torch.testing.assert_close(value, state[name], rtol=0, atol=0)

    stem = state["conv1.weight"]  # [64, 3, 7, 7]
    lite = build_model("Lite", 7, num_segments=2, pretrained=True)
    lite_stem = lite.base_model.conv1.weight  # [64, 6, 7, 7]
    assert tuple(lite_stem.shape) == (64, 6, 7, 7)
    expected = stem.mean(dim=1, keepdim=True).expand(-1, 6, -1, -1)  # official _construct_pa_model
    torch.testing.assert_close(lite_stem, expected, rtol=0, atol=0)
    pa = build_model("PA", 7, num_segments=2, pretrained=True)
    torch.testing.assert_close(pa.base_model.conv1.weight, stem, rtol=0, atol=0)  # PA map into the RGB stem
    for model in (lite, pa):
        sd = model.base_model.state_dict()
        torch.testing.assert_close(sd["layer1.0.conv1.net.weight"], state["layer1.0.conv1.weight"], rtol=0, atol=0)
        torch.testing.assert_close(sd["layer4.2.bn3.running_var"], state["layer4.2.bn3.running_var"], rtol=0, atol=0)


def test_offline_without_the_file_says_where_to_put_it(offline_hub):
    with pytest.raises(PretrainedWeightsUnavailable) as err:
        build_backbone("resnet18", pretrained=True)
    msg = str(err.value)
    assert "network disabled in this test" in msg and "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg
    assert str(offline_hub / "hub/checkpoints/resnet18-f37072fd.pth") in msg and "pretrained=False" in msg
    with pytest.raises(PretrainedWeightsUnavailable, match="has no ImageNet weights"):
        build_backbone("resnet_tiny", pretrained=True)
