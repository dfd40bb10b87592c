"""Temporal shift: against a naive per-frame version, memory formats, and injection into ResNets."""
from __future__ import annotations

import pytest
import torch
from torchvision.models import resnet18

from pan_lib import TemporalShift, make_temporal_shift, temporal_shift
from pan_lib.backbones import build_backbone


def naive_shift(x: torch.Tensor, t: int, fold_div: int) -> torch.Tensor:
    nt, c, h, w = x.shape
    fold = c // fold_div
    out = torch.zeros_like(x)
    for v in range(nt // t):
        for f in range(t):
            i = v * t + f
            if f + 1 < t:
                out[i, :fold] = x[i + 1, :fold]  # next frame
            if f > 0:
                out[i, fold : 2 * fold] = x[i - 1, fold : 2 * fold]  # previous frame
            out[i, 2 * fold :] = x[i, 2 * fold :]
    return out


@pytest.mark.parametrize("t,c,fold_div", [(8, 16, 8), (4, 12, 4), (3, 10, 8)])
def test_shift_matches_naive(t, c, fold_div):
    x = torch.randn(2 * t, c, 3, 5)
    torch.testing.assert_close(temporal_shift(x, t, fold_div), naive_shift(x, t, fold_div), rtol=0, atol=0)


def test_shift_channels_last_and_gradient():
    x = torch.randn(16, 16, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    out = temporal_shift(x, 8, 8)
    torch.testing.assert_close(out, naive_shift(x.detach(), 8, 8), rtol=0, atol=0)
    out.sum().backward()
    # channels 0..1 of frame 0 and 2..3 of frame 7 are dropped by the shift -> zero gradient there
    v = x.grad.view(2, 8, 16, 4, 4)
    assert torch.all(v[:, 0, :2] == 0) and torch.all(v[:, 7, 2:4] == 0) and torch.all(v[:, 1:, :2] == 1)


def test_bad_batch():
    with pytest.raises(ValueError, match="multiple of n_segment"):
        temporal_shift(torch.randn(6, 8, 2, 2), 4)


def test_injection_resnet50_every_block_resnet101_every_second():
    with torch.device("meta"):
        r50 = make_temporal_shift(build_backbone("resnet50"), 8)
        r101 = make_temporal_shift(build_backbone("resnet101"), 8)
    assert sum(isinstance(b.conv1, TemporalShift) for s in (r50.layer1, r50.layer2, r50.layer3, r50.layer4) for b in s) == 16
    keys = list(r101.state_dict())
    assert "layer3.0.conv1.net.weight" in keys and "layer3.1.conv1.weight" in keys and "layer3.2.conv1.net.weight" in keys
    shifted = [isinstance(b.conv1, TemporalShift) for b in r101.layer3]
    assert shifted == [i % 2 == 0 for i in range(23)]
    assert isinstance(r101.layer1[0].conv1, TemporalShift) and not isinstance(r101.layer1[1].conv1, TemporalShift)


def test_blockres_shift_only_in_residual_branch():
    net = make_temporal_shift(resnet18(), 4).eval()
    block = net.layer1[0]
    x = torch.randn(8, 64, 8, 8)
    expected_branch = block.conv1.net(temporal_shift(x, 4, 8))
    torch.testing.assert_close(block.conv1(x), expected_branch)
    with pytest.raises(ValueError, match="valid: blockres, block"):
        make_temporal_shift(resnet18(), 4, place="residual")
