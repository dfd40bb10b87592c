"""VAP: slot order against explicit frame sets, official pools == pure function, weights, names, init."""
from __future__ import annotations

import pytest
import torch

from pan_lib import VAP
from pan_lib.modules.vap import vap_slots, vap_timescales


def naive_slots(x: torch.Tensor, t: int) -> torch.Tensor:
    """Slot (s, j) = max over frames {j, j+s, ...}, in the official order s = 1, 2, 4, ...; j = 0..s-1."""
    n, d = x.shape[0] // t, x.shape[1]
    v = x.view(n, t, d)
    slots = []
    for s in vap_timescales(t):
        for j in range(s):
            slots.append(v[:, list(range(j, t, s))].amax(1))
    return torch.stack(slots, 1)


def test_names_shapes_init():
    vap = VAP(8, 64, 10, 0.5)
    names = [n for n, _ in vap.named_parameters()]
    assert names == ["TES.0.weight", "TES.2.weight", "pred.weight", "pred.bias"]
    assert vap.TES[0].weight.shape == (28, 7) and vap.TES[2].weight.shape == (7, 28)
    assert vap.pred.weight.shape == (10, 64)
    assert torch.all(vap.pred.bias == 0) and vap.pred.weight.std() < 0.0015
    assert isinstance(vap.pools, torch.nn.ModuleList) and len(vap.pools) == 3
    assert vap(torch.randn(3 * 8, 64)).shape == (3, 10)


@pytest.mark.parametrize("t,slots", [(8, 7), (16, 15), (4, 3), (2, 1), (6, 3), (12, 7)])
def test_slot_order_matches_frame_sets(t, slots):
    x = torch.randn(2 * t, 5)
    vap = VAP(t, 5, 3)
    expected = naive_slots(x, t)
    assert expected.shape == (2, slots, 5)
    torch.testing.assert_close(vap.slots(x), expected, rtol=0, atol=0)  # official MaxPool3d stack
    torch.testing.assert_close(vap_slots(x, t), expected, rtol=0, atol=0)  # pure function


def test_slot_order_is_official_for_t8():
    # frame k holds value k in every channel: slot (s, j) = max{j, j+s, ...} = last frame of its set
    x = torch.arange(8.0).repeat_interleave(4).view(8, 4)
    got = vap_slots(x, 8)[0, :, 0].tolist()
    assert got == [7, 6, 7, 4, 5, 6, 7]  # s=1 | s=2: j=0,1 | s=4: j=0..3


def test_forward_is_weighted_slot_sum():
    torch.manual_seed(0)
    vap = VAP(8, 16, 4, 0.0).eval()
    for p in vap.parameters():
        p.data.normal_(0, 0.5)
    x = torch.randn(2 * 8, 16)
    slots = naive_slots(x, 8)  # (2, 7, 16)
    w = torch.softmax(vap.TES(slots.mean(2)), 1)  # GAP over D, TES, softmax over the 7 slots
    assert torch.allclose(w.sum(1), torch.ones(2))
    expected = vap.pred((slots * w[:, :, None]).sum(1))
    torch.testing.assert_close(vap(x), expected)
    torch.testing.assert_close(vap.slot_weights(slots), w)


def test_invalid_segment_counts():
    with pytest.raises(ValueError, match="at least 2 segments"):
        VAP(1, 8, 2)
    with pytest.raises(ValueError, match="does not divide"):
        VAP(10, 8, 2)
