"""PA: official shapes/names/init, fast path == official-style loop == naive per-pixel formula, gradients."""
from __future__ import annotations

import pytest
import torch

from pan_lib import PA
from pan_lib.modules.pa import pa_reference_loop, persistence_of_appearance


def naive_pa(frames: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, m: int) -> torch.Tensor:
    """The paper formula written out: sqrt(sum_c (F_i,c - F_i+1,c + 1e-6)^2) per pixel, float64."""
    h, w = frames.shape[-2:]
    x = frames.double().reshape(-1, m, 3, h, w)
    out = torch.empty(x.shape[0], m - 1, h, w, dtype=torch.float64)
    for s in range(x.shape[0]):
        feats = [torch.nn.functional.conv2d(x[s, i : i + 1], weight.double(), bias.double(), padding=3)[0] for i in range(m)]
        for i in range(m - 1):
            out[s, i] = ((feats[i] - feats[i + 1] + 1e-6) ** 2).sum(0).sqrt()
    return out


def test_pa_shape_names_and_init():
    pa = PA(n_length=4)
    assert [n for n, _ in pa.named_parameters()] == ["shallow_conv.weight", "shallow_conv.bias"]
    assert pa.shallow_conv.weight.shape == (8, 3, 7, 7) and pa.shallow_conv.bias.shape == (8,)
    assert torch.all(pa.shallow_conv.bias == 0)
    assert 0.0007 < pa.shallow_conv.weight.std().item() < 0.0013  # N(0, 0.001)
    out = pa(torch.randn(2 * 8 * 4, 3, 32, 40))
    assert out.shape == (16, 3, 32, 40)
    assert (out >= 0).all()
    # the loader's clip layout [B, T*m*3, H, W] works too
    assert pa(torch.randn(2, 8 * 4 * 3, 16, 16)).shape == (16, 3, 16, 16)


@pytest.mark.parametrize("m", [2, 4])
def test_fast_equals_reference_and_naive(m):
    torch.manual_seed(1)
    weight, bias = torch.randn(8, 3, 7, 7) * 0.05, torch.randn(8) * 0.1
    frames = torch.randn(3 * m, 3, 20, 24)
    naive = naive_pa(frames, weight, bias, m)
    ref = pa_reference_loop(frames, weight, bias, m)
    fast = persistence_of_appearance(frames, weight, bias, m)
    assert ref.shape == fast.shape == (3, m - 1, 20, 24)
    torch.testing.assert_close(ref.double(), naive, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast.double(), naive, rtol=1e-5, atol=1e-6)


def test_chunking_does_not_change_result():
    pa = PA()
    frames = torch.randn(5 * 4, 3, 16, 16)
    whole = persistence_of_appearance(frames, pa.shallow_conv.weight, pa.shallow_conv.bias, 4, chunk_snippets=100)
    chunked = persistence_of_appearance(frames, pa.shallow_conv.weight, pa.shallow_conv.bias, 4, chunk_snippets=2)
    torch.testing.assert_close(whole, chunked, rtol=0, atol=0)


def test_reference_implementation_switch_and_bad_names():
    pa = PA()
    frames = torch.randn(8, 3, 12, 12)
    fast = pa(frames)
    pa.implementation = "reference"
    torch.testing.assert_close(pa(frames), fast, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="valid: fast, reference"):
        pa.implementation = "loop"
    with pytest.raises(ValueError, match="multiple of n_length=4"):
        pa(torch.randn(6, 3, 12, 12))


def test_identical_frames_give_finite_gradients():
    pa = PA()
    frame = torch.randn(1, 3, 16, 16)
    frames = frame.repeat(8, 1, 1, 1).requires_grad_(True)  # 2 snippets of 4 identical frames
    out = pa(frames)
    # static pixels: sqrt(8) * 1e-6
    torch.testing.assert_close(out, torch.full_like(out, 8**0.5 * 1e-6), rtol=1e-3, atol=0)
    out.sum().backward()
    assert torch.isfinite(frames.grad).all()
    assert torch.isfinite(pa.shallow_conv.weight.grad).all()
    # the bias cancels in the difference: it is used (DDP-safe) but its gradient is exactly zero
    assert pa.shallow_conv.bias.grad is not None and torch.all(pa.shallow_conv.bias.grad == 0)


def test_gradients_match_reference():
    torch.manual_seed(2)
    w = (torch.randn(8, 3, 7, 7) * 0.05).requires_grad_(True)
    frames = torch.randn(8, 3, 12, 12)
    persistence_of_appearance(frames, w, None, 4).square().sum().backward()
    g_fast = w.grad.clone()
    w.grad = None
    pa_reference_loop(frames, w, None, 4).square().sum().backward()
    torch.testing.assert_close(g_fast, w.grad, rtol=1e-4, atol=1e-6)


def test_bf16_autocast_close_to_fp32():
    pa = PA()
    with torch.no_grad():
        pa.shallow_conv.weight.normal_(0, 0.05)
    frames = torch.randn(8, 3, 32, 32)
    ref = pa(frames)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = pa(frames)
    torch.testing.assert_close(low.float(), ref, rtol=0.03, atol=0.02 * ref.abs().max().item())
