"""Networks: shapes and a training step per modality (tiny backbone), official key layout (meta R50),
Lite stem, input layouts, channels_last + bf16 autocast predictions."""
from __future__ import annotations

import json

import pytest
import torch

from pan_lib import MODALITIES, build_model, frames_per_segment
from pan_lib.backbones import BACKBONES, PretrainedWeightsUnavailable, build_backbone
from pan_lib.engine.optim import official_param_groups
from pan_lib.models import PANNet, frame_differences, mean_rgb_stem

TINY = "resnet_tiny"


def clip(model: PANNet, batch: int = 2, size: int = 32) -> torch.Tensor:
    return torch.randn(batch, model.num_segments * model.input_channels, size, size)


@pytest.mark.parametrize("modality", MODALITIES)
def test_forward_backward_each_modality(modality):
    model = build_model(modality, 5, num_segments=4, backbone=TINY)
    expected = {"PA": 4, "Lite": 4, "Flow": 5, "RGBDiff": 6}.get(modality, 1)
    assert model.new_length == frames_per_segment(modality) == expected
    x, y = clip(model), torch.tensor([1, 3])
    out = model(x)
    assert out.shape == (2, 5)
    torch.nn.functional.cross_entropy(out, y).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert grads["base_model.conv1.weight"].abs().sum() > 0
    if modality in ("PA", "Lite"):
        assert grads["PA.shallow_conv.weight"].abs().sum() > 0


def test_five_dim_input_equals_flat_and_bad_shape_message():
    model = build_model("Lite", 3, num_segments=4, backbone=TINY).eval()
    x = clip(model)
    with torch.no_grad():
        torch.testing.assert_close(model(x.view(2, 4, 12, 32, 32)), model(x))
    with pytest.raises(ValueError, match=r"expects a clip \[B, 48, H, W\]"):
        model(torch.randn(2, 12, 32, 32))


def test_unknown_names_list_valid_ones():
    with pytest.raises(ValueError, match="valid: TSN, TSM, RGB, PA, Lite, Flow, RGBDiff"):
        build_model("Depth", 3)
    with pytest.raises(ValueError, match="resnet_tiny"):
        build_model("RGB", 3, backbone="resnet2")
    with pytest.raises(ValueError, match="valid: vap, avg"):
        build_model("RGB", 3, backbone=TINY, head="mean")
    with pytest.raises(PretrainedWeightsUnavailable, match="pretrained=False"):
        build_backbone(TINY, pretrained=True)


@pytest.mark.parametrize("modality", ["Lite", "RGB", "PA"])
def test_official_state_dict_layout(shared_dir, modality):
    manifest = json.loads((shared_dir / "reference" / f"official_state_dict_{modality}_r50_seg8_c174.json").read_text())
    with torch.device("meta"):
        model = build_model(modality, 174)
    ours = [["module." + k, list(v.shape)] for k, v in model.state_dict().items()]
    assert ours == manifest  # same keys, same shapes, same order
    # "first conv" of the official optimiser groups: PA.shallow_conv for PA/Lite (registered first)
    first = next(n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d))
    assert first == ("PA.shallow_conv" if modality != "RGB" else "base_model.conv1")


def test_baseline_heads_and_resnet101_keys():
    with torch.device("meta"):
        tsn = build_model("TSN", 174)
        tsm = build_model("TSM", 174)
        r101 = build_model("Lite", 174, backbone="resnet101")
        no_drop = build_model("TSM", 10, dropout=0.0)
    keys = set(tsn.state_dict())
    assert {"new_fc.weight", "new_fc.bias"} <= keys and not any(".net." in k for k in keys)
    assert isinstance(tsn.base_model.fc, torch.nn.Dropout) and tsn.new_fc.weight.shape == (174, 2048)
    assert "base_model.layer1.0.conv1.net.weight" in tsm.state_dict() and not tsn.shift
    assert no_drop.new_fc is None and no_drop.base_model.fc.weight.shape == (10, 2048)
    k101 = r101.state_dict()
    assert "base_model.layer3.22.conv1.net.weight" in k101 and "base_model.layer3.21.conv1.weight" in k101
    assert k101["base_model.conv1.weight"].shape == (64, 6, 7, 7)


def test_avg_head_is_mean_of_per_frame_logits():
    model = build_model("TSM", 4, num_segments=4, backbone=TINY).eval()
    x = clip(model)
    with torch.no_grad():
        per_frame = model.new_fc(model.base_model(model.backbone_input(x)))  # (B*T, C)
        torch.testing.assert_close(model(x), per_frame.view(2, 4, 4).mean(1))


def test_lite_stem_and_inputs():
    from pan_lib import PA

    torch.manual_seed(0)
    model = build_model("Lite", 3, num_segments=4, backbone=TINY)
    torch.manual_seed(0)
    PA(4)  # same random stream as the builder: PA first, then the backbone
    rgb_stem = build_backbone(TINY).conv1.weight  # (16, 3, 7, 7)
    expected = rgb_stem.mean(1, keepdim=True).expand(-1, 6, -1, -1)  # channel mean replicated to all 6
    torch.testing.assert_close(model.base_model.conv1.weight, expected)
    x = clip(model)
    inp = model.backbone_input(x)  # (B*T, 6, H, W)
    frames = x.view(2, 4, 4, 3, 32, 32)
    torch.testing.assert_close(inp[:, :3], frames[:, :, 0].reshape(8, 3, 32, 32))  # first frame of each snippet
    torch.testing.assert_close(inp[:, 3:], model.PA(x))


def test_pa_modality_keeps_rgb_stem_and_feeds_pa():
    model = build_model("PA", 3, num_segments=4, backbone=TINY)
    assert model.base_model.conv1.weight.shape[1] == 3
    x = clip(model)
    torch.testing.assert_close(model.backbone_input(x), model.PA(x))


def test_channels_last_and_bf16_autocast_keep_top1():
    torch.manual_seed(0)
    model = build_model("Lite", 10, num_segments=8, backbone=TINY, dropout=0.0).eval()
    with torch.no_grad():  # confident, well-separated predictions (a random init gives near-ties)
        model.PA.shallow_conv.weight.normal_(0, 0.05)
        model.base_model.fc.pred.weight.normal_(0, 1.0)
    x = torch.randn(6, 96, 64, 64)
    with torch.no_grad():
        ref = model(x)
        top2 = ref.topk(2, dim=1).values
        assert ((top2[:, 0] - top2[:, 1]) > 0.01 * ref.abs().max()).all(), "test batch must not have near-ties"
        cl = model.to(memory_format=torch.channels_last)
        out_cl = cl(x.contiguous(memory_format=torch.channels_last))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf16 = cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out_cl, ref, rtol=1e-4, atol=1e-4)
    assert torch.equal(out_cl.argmax(1), ref.argmax(1))
    assert torch.equal(out_bf16.float().argmax(1), ref.argmax(1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_autocast_keeps_top1(dtype):
    torch.manual_seed(0)
    model = build_model("Lite", 10, num_segments=8, backbone=TINY, dropout=0.0).eval()
    with torch.no_grad():
        model.PA.shallow_conv.weight.normal_(0, 0.05)
        model.base_model.fc.pred.weight.normal_(0, 1.0)
    x = torch.randn(6, 96, 64, 64)
    with torch.no_grad():
        ref = model(x)
        gpu = model.cuda().to(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=dtype):
            out = gpu(x.cuda().contiguous(memory_format=torch.channels_last))
    assert torch.equal(out.float().argmax(1).cpu(), ref.argmax(1))


def test_tiny_backbone_is_torchvision_resnet():
    from torchvision.models import ResNet

    tiny = build_backbone(TINY)
    assert isinstance(tiny, ResNet) and tiny.fc.in_features == BACKBONES[TINY].feature_dim == 128
    assert sum(p.numel() for p in tiny.parameters()) < 1_000_000
    model = build_model("Lite", 3, num_segments=8, backbone=TINY)
    assert "base_model.layer1.0.conv1.net.weight" in model.state_dict()  # the tiny backbone is shifted too


def test_pa_models_benchmark_rows_smoke():
    """The benchmark's row builders on a tiny setting (no timing asserted: speed targets live in the bench)."""
    from pan_lib.bench import BENCHMARKS
    from pan_lib.bench.pa_models import PAModelsBenchConfig, pa_rows, target_rows, train_step_rows

    assert BENCHMARKS["pa_models"][0] == "pan_lib.bench.pa_models"
    cfg = PAModelsBenchConfig.for_mode(True, size=16, min_seconds=0.0, warmup=0, tiny_size=16, tiny_batch=2)
    rows = pa_rows(cfg) + train_step_rows(cfg)
    assert {r["section"] for r in rows} == {"PA", "train_step"}
    assert all(r["rate"] > 0 and r["ms_per_call"] > 0 for r in rows)
    targets = target_rows(rows)
    assert targets and targets[0]["target"] == ">= 5" and isinstance(targets[0]["met"], bool)
    with pytest.raises(ValueError, match="unknown option"):
        PAModelsBenchConfig.for_mode(True, size_px=3)


def test_pretrained_download_failure_is_explained(monkeypatch):
    from urllib.error import URLError

    from torchvision.models._api import WeightsEnum

    def offline(self, *args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    with pytest.raises(PretrainedWeightsUnavailable, match=r"resnet18-f37072fd\.pth.*pretrained=False"):
        build_model("RGB", 3, num_segments=2, backbone="resnet18", pretrained=True)


def test_same_seed_same_model_and_outputs():
    def make():
        torch.manual_seed(3)
        return build_model("Lite", 4, num_segments=4, backbone=TINY).eval()

    a, b = make(), make()
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    x = torch.randn(1, 48, 32, 32)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


# ------------------------------------------------------------------ Flow / RGBDiff streams (issue 12)
@pytest.mark.parametrize("modality, channels, stem", [("Flow", 10, 10), ("RGBDiff", 18, 15)])
def test_flow_and_rgbdiff_shapes(modality, channels, stem):
    model = build_model(modality, 5, num_segments=4, backbone=TINY)
    assert model.input_channels == channels and model.head == "vap" and model.shift
    assert model.base_model.conv1.in_channels == stem
    x = clip(model)
    assert x.shape == (2, 4 * channels, 32, 32)
    assert model.backbone_input(x).shape == (2 * 4, stem, 32, 32)
    assert model(x).shape == (2, 5)
    assert model(x.view(2, 4, channels, 32, 32)).shape == (2, 5)
    with pytest.raises(ValueError, match=f"expects a clip \\[B, {4 * channels}, H, W\\]"):
        model(torch.randn(2, 4 * 3, 32, 32))


@pytest.mark.parametrize("modality, channels", [("Flow", 10), ("RGBDiff", 15)])
def test_flow_and_rgbdiff_stem_is_mean_over_rgb_replicated(modality, channels):
    torch.manual_seed(0)
    rgb = build_model("RGB", 5, num_segments=4, backbone=TINY)
    torch.manual_seed(0)  # same initial backbone: the stem is derived from the same RGB kernel
    net = build_model(modality, 5, num_segments=4, backbone=TINY)
    w_rgb = rgb.base_model.conv1.weight
    expected = w_rgb.mean(dim=1, keepdim=True).expand(-1, channels, -1, -1)
    torch.testing.assert_close(net.base_model.conv1.weight, expected)
    conv = torch.nn.Conv2d(3, 4, 3, bias=True)  # the bias, when there is one, is kept
    new = mean_rgb_stem(conv, 10)
    torch.testing.assert_close(new.bias, conv.bias)
    torch.testing.assert_close(new.weight[:, 7], conv.weight.mean(dim=1))


def test_rgbdiff_feeds_consecutive_differences():
    frames = torch.arange(6, dtype=torch.float32).view(1, 6, 1, 1, 1).expand(1, 6, 3, 2, 2) ** 2  # f_k = k^2
    diff = frame_differences(frames.reshape(6, 3, 2, 2), 6)
    assert diff.shape == (1, 15, 2, 2)
    torch.testing.assert_close(diff[0, ::3, 0, 0], torch.tensor([1.0, 3.0, 5.0, 7.0, 9.0]))  # k^2 - (k-1)^2
    model = build_model("RGBDiff", 3, num_segments=2, backbone=TINY)
    still = torch.ones(1, 2 * 18, 16, 16)  # constant frames: all differences are zero
    assert model.backbone_input(still).abs().sum() == 0


def test_flow_first_conv_gets_flow_lr_multipliers():
    for modality, mults in (("Flow", (5, 10)), ("RGBDiff", (1, 2))):
        groups = {g["name"]: g for g in official_param_groups(build_model(modality, 3, num_segments=2, backbone=TINY))}
        assert groups["first_conv_weight"]["lr_mult"] == mults[0]
        assert groups["first_conv_bias"]["lr_mult"] == mults[1]
        assert groups["first_conv_weight"]["params"][0].shape[1] == (10 if modality == "Flow" else 15)
