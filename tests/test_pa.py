"""PA: official shapes/names/init, fast path == official-style loop == naive per-pixel formula, gradients."""
from __future__ import annotations

import pytest
import torch

from pan_lib import PA
from pan_lib.bench import pa_models
from pan_lib.modules.pa import (column_pair_weight, cpu_chunk_snippets, pa_reference_loop, pa_with_first_frame, pair_norms_by_conv,
                                 persistence_of_appearance)


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


def test_cpu_chunks_hold_a_fixed_number_of_snippet_pixels():
    assert cpu_chunk_snippets(224, 224) == 8  # one clip of 8 segments per chunk at 224^2, as measured
    assert cpu_chunk_snippets(112, 112) == 32
    assert cpu_chunk_snippets(48, 48) >= 16 * 8  # the embedded batch (16 clips x 8 segments) in one chunk
    assert cpu_chunk_snippets(2000, 3000) == 1


@pytest.mark.parametrize("layout", ["plain", "channels_last"])
def test_bf16_stem_from_fp32_clip_equals_stem_from_bf16_clip(layout):
    # in bf16 inference an fp32 clip is cast, then made channels-last per frame before the differences: the
    # copies move bf16 values unchanged, so the stem is bit-identical to the one built from the cast clip
    torch.manual_seed(8)
    weight, bias = torch.randn(8, 3, 7, 7) * 0.05, torch.randn(8) * 0.1
    clip = torch.randn(2, 8 * 4 * 3, 16, 21)  # [N, T*m*3, H, W]
    if layout == "channels_last":
        clip = clip.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        from_fp32 = pa_with_first_frame(clip, weight, bias, 4)
        from_bf16 = pa_with_first_frame(clip.to(torch.bfloat16), weight, bias, 4)
    assert from_fp32.dtype == torch.bfloat16 and from_fp32.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(from_fp32, from_bf16)


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
    """Same maths, checked in float64: in float32 the fast path's different summation order (column
    pairs, one conv over the differences) moves a weight gradient by ~1e-4 relative."""
    torch.manual_seed(2)
    w = (torch.randn(8, 3, 7, 7, dtype=torch.float64) * 0.05).requires_grad_(True)
    frames = torch.randn(8, 3, 12, 12, dtype=torch.float64)
    persistence_of_appearance(frames, w, None, 4).square().sum().backward()
    g_fast = w.grad.clone()
    w.grad = None
    pa_reference_loop(frames, w, None, 4).square().sum().backward()
    torch.testing.assert_close(g_fast, w.grad, rtol=1e-9, atol=1e-12)


def test_bf16_autocast_close_to_fp32():
    pa = PA()
    with torch.no_grad():
        pa.shallow_conv.weight.normal_(0, 0.05)
    frames = torch.randn(8, 3, 32, 32)
    ref = pa(frames)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = pa(frames)
    torch.testing.assert_close(low.float(), ref, rtol=0.03, atol=0.02 * ref.abs().max().item())


def test_pair_norms_by_conv_equals_the_norm_per_column():
    # channel dx*C + c is feature c of column 2j + dx: the 1x1 conv of the squares sums each column's C
    torch.manual_seed(5)
    feats = torch.randn(3, 16, 5, 7).contiguous(memory_format=torch.channels_last)
    want = torch.stack([torch.linalg.vector_norm(feats[:, :8], dim=1),
                        torch.linalg.vector_norm(feats[:, 8:], dim=1)], dim=1)
    kept = feats.clone()
    torch.testing.assert_close(pair_norms_by_conv(feats), want, rtol=1e-5, atol=1e-6)  # (3, 2, 5, 7)
    assert torch.equal(feats, kept)  # not in place unless asked
    torch.testing.assert_close(pair_norms_by_conv(feats, inplace=True), want, rtol=1e-5, atol=1e-6)
    assert torch.equal(feats, kept.square())


def test_bf16_training_path_values_and_weight_gradient_close_to_fp32():
    # on the CPU in bf16 the norm is pair_norms_by_conv (forward and backward): compare with the fp32 loop
    torch.manual_seed(6)
    w = (torch.randn(8, 3, 7, 7) * 0.05).requires_grad_()
    frames = torch.randn(2 * 8 * 4, 3, 20, 22)
    ref = pa_reference_loop(frames, w, None, 4)
    (ref * torch.linspace(0, 1, ref.numel()).view_as(ref)).sum().backward()
    g_ref, w.grad = w.grad.clone(), None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = persistence_of_appearance(frames, w, None, 4)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), ref, rtol=0.03, atol=0.02 * ref.abs().max().item())
    (low.float() * torch.linspace(0, 1, ref.numel()).view_as(ref)).sum().backward()
    torch.testing.assert_close(w.grad, g_ref, rtol=0.05, atol=0.02 * g_ref.abs().max().item())


def test_bf16_identical_frames_give_finite_gradient():
    # identical frames: every feature is the 1e-6 that rides in the conv bias; its square (1e-12) is a
    # normal bf16 number, so the sqrt and its gradient stay finite
    w = (torch.randn(8, 3, 7, 7) * 0.05).requires_grad_()
    frames = torch.rand(1, 3, 16, 16).repeat(8, 1, 1, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pa = persistence_of_appearance(frames, w, None, 4)
    assert torch.isfinite(pa.float()).all() and pa.float().max() < 1e-4
    pa.float().sum().backward()
    assert torch.isfinite(w.grad).all()


@pytest.mark.parametrize("kernel,width", [(7, 24), (7, 23), (3, 10), (11, 9)])
def test_column_pair_conv_equals_the_conv(kernel, width):
    # a frame with one zero column on the left, read as column pairs, convolved with the pair weight,
    # gives the same feature map as the plain conv with padding k//2
    torch.manual_seed(3)
    weight = torch.randn(8, 3, kernel, kernel)
    x = torch.randn(2, 3, 11, width)
    plain = torch.nn.functional.conv2d(x, weight, padding=kernel // 2)  # (2, 8, 11, W)
    padded_w = 2 * ((width + 1) // 2 + 1)
    nhwc = torch.nn.functional.pad(x.permute(0, 2, 3, 1), (0, 0, 1, padded_w - width - 1))  # (2, 11, W_pad, 3)
    pairs = nhwc.reshape(2, 11, padded_w // 2, 6).permute(0, 3, 1, 2)  # (2, 6, 11, W_pad/2)
    out = torch.nn.functional.conv2d(pairs, column_pair_weight(weight), padding=(kernel // 2, (kernel // 2 - 1) // 2))
    out = out.permute(0, 2, 3, 1).reshape(2, 11, padded_w - 2, 8)[:, :, :width].permute(0, 3, 1, 2)  # (2, 8, 11, W)
    torch.testing.assert_close(out, plain, rtol=1e-5, atol=1e-5)
    for unsupported in (4, 5):
        with pytest.raises(ValueError, match="k % 4 == 3"):
            column_pair_weight(torch.randn(8, 3, unsupported, unsupported))


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("width", [24, 23])
def test_fast_paths_equal_reference_in_any_input_layout(grad, width):
    # inference (buffers written in place) and training (autograd) paths, on the clip layouts the model
    # hands over: [N*T*m, 3, H, W], and [N, T*m*3, H, W] contiguous or channels-last
    torch.manual_seed(4)
    weight, bias = torch.randn(8, 3, 7, 7) * 0.05, torch.randn(8) * 0.1
    clip = torch.randn(2, 4 * 4 * 3, 14, width)  # N=2, T=4, m=4
    ref = pa_reference_loop(clip, weight, bias, 4)  # (8, 3, 14, W)
    for x in (clip.reshape(-1, 3, 14, width), clip, clip.contiguous(memory_format=torch.channels_last)):
        with torch.set_grad_enabled(grad):
            fast = persistence_of_appearance(x, weight.requires_grad_(grad), bias, 4)
        assert fast.requires_grad == grad
        torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6)
        weight.requires_grad_(False)


def test_out_writes_into_strided_views_and_refuses_gradients():
    torch.manual_seed(5)
    weight, bias = torch.randn(8, 3, 7, 7) * 0.05, torch.randn(8) * 0.1
    frames = torch.randn(5 * 4, 3, 12, 17)
    ref = pa_reference_loop(frames, weight, bias, 4)
    target = torch.zeros(5, 6, 12, 17).contiguous(memory_format=torch.channels_last)
    for chunk in (None, 2):  # one chunk, and chunks writing into slices of `out`
        target.zero_()
        got = persistence_of_appearance(frames, weight, bias, 4, chunk_snippets=chunk, out=target[:, 3:])
        assert got.data_ptr() == target[:, 3:].data_ptr()
        torch.testing.assert_close(target[:, 3:], ref, rtol=1e-5, atol=1e-6)
        assert torch.all(target[:, :3] == 0)
    with pytest.raises(ValueError, match="inference"):
        persistence_of_appearance(frames, weight.requires_grad_(True), bias, 4, out=target[:, 3:])


@pytest.mark.parametrize("grad", [False, True])
def test_first_frame_plus_pa_equals_concatenation(grad):
    # PAN_Lite's stem input: cat(first frame of every snippet, PA) -- in inference one channels-last tensor
    torch.manual_seed(6)
    pa = PA()
    with torch.no_grad():
        pa.shallow_conv.weight.normal_(0, 0.05)
    clip = torch.randn(2, 8 * 4 * 3, 16, 20).contiguous(memory_format=torch.channels_last)  # [N, T*m*3, H, W]
    frames = clip.reshape(-1, 3, 16, 20)  # (N*T*m, 3, H, W)
    expected = torch.cat([frames.reshape(16, 4, 3, 16, 20)[:, 0],
                          pa_reference_loop(frames, pa.shallow_conv.weight, pa.shallow_conv.bias, 4)], dim=1)
    with torch.set_grad_enabled(grad):
        stem = pa.with_first_frame(frames)
    assert stem.shape == (16, 6, 16, 20) and stem.requires_grad == grad
    assert grad or stem.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(stem, expected, rtol=1e-5, atol=1e-6)
    pa.implementation = "reference"
    torch.testing.assert_close(pa.with_first_frame(frames), expected, rtol=1e-5, atol=1e-6)
    pa.implementation = "fast"
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # written in the autocast dtype
        low = pa_with_first_frame(frames, pa.shallow_conv.weight, pa.shallow_conv.bias, 4)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), expected.detach(), rtol=0.03, atol=0.02 * expected.abs().max().item())


def test_input_gradients_match_reference():
    torch.manual_seed(7)
    w = torch.randn(8, 3, 7, 7) * 0.05
    frames = torch.randn(8, 3, 10, 13, requires_grad=True)
    persistence_of_appearance(frames, w, None, 4).square().sum().backward()
    g_fast = frames.grad.clone()
    frames.grad = None
    pa_reference_loop(frames, w, None, 4).square().sum().backward()
    torch.testing.assert_close(g_fast, frames.grad, rtol=1e-4, atol=1e-6)


def test_paired_ratio_is_the_median_of_per_iteration_ratios():
    # a load spike that slows both models of one iteration leaves the ratio alone
    rgb = [1.0, 1.0, 3.0, 1.0, 1.0]
    lite = [1.1, 1.1, 3.3, 1.2, 1.0]
    ratio, low, high = pa_models.paired_ratio(lite, rgb)
    assert ratio == pytest.approx(1.1) and low == pytest.approx(1.0) and high == pytest.approx(1.2)


def test_pa_models_forward_rows_are_interleaved_ratios(monkeypatch):
    # the forward section on the tiny backbone: every model against RGB from the same iterations, the
    # Lite/RGB target at 1.12 from the median per-iteration ratio (no speed asserted: targets live in the bench)
    cfg = pa_models.PAModelsBenchConfig.for_mode(True, size=32, min_seconds=0.0, min_repeats=3, warmup=0,
                                                 forward_backbone="resnet_tiny")
    seen = []
    original = pa_models.call_times_round_robin

    def spy(fns, cfg):
        times = original(fns, cfg)
        seen.append(times)
        return times

    monkeypatch.setattr(pa_models, "call_times_round_robin", spy)
    rows = pa_models.forward_rows(cfg)
    names = [r["name"] for r in rows if r["precision"] == "fp32"]
    assert names == ["TSM-resnet_tiny", "PAN RGB-resnet_tiny", "PAN PA-resnet_tiny", "PAN Lite-resnet_tiny",
                     "PA inside Lite-resnet_tiny"]
    assert len(seen) == 2 and all(len({len(t) for t in times}) == 1 for times in seen)  # same iterations
    rgb_times, lite_times = seen[0][1], seen[0][3]
    lite = next(r for r in rows if r["name"] == "PAN Lite-resnet_tiny" and r["precision"] == "fp32")
    assert lite["ratio"] == pytest.approx(pa_models.paired_ratio(lite_times, rgb_times)[0])
    assert lite["ratio_low"] <= lite["ratio"] <= lite["ratio_high"] and "per-iteration" in lite["ratio_meaning"]
    targets = [t for t in pa_models.target_rows(rows) if t["name"].startswith("Lite-")]
    assert [t["target"] for t in targets] == ["<= 1.12", "<= 1.12"]
    assert targets[0]["met"] == (lite["ratio"] <= 1.12)
