"""Flow and RGBDiff streams on the engine (issue 12 item 1): one epoch each on the tiny embedded set,
evaluation, RGB + Flow / RGB + RGBDiff ensembles with their display names, checkpoint round trips."""
from __future__ import annotations

import pytest
import torch

from data_prep.flow import compute_flow
from pan_lib.checkpoints import load_checkpoint, official_checkpoint_name, parse_checkpoint_name, save_official_checkpoint
from pan_lib.data.flow import flow_dataset_kwargs
from pan_lib.data.prepared import find_prepared
from pan_lib.data.registry import build_dataset, prepare_embedded
from pan_lib.engine import EvalConfig, TrainConfig, evaluate, train
from pan_lib.engine.recipes import get_recipe, recipe_table
from pan_lib.ensemble import MODEL_NAMES, Ensemble, ensemble_name, model_name
from pan_lib.flops import count_flops
from pan_lib.models import MODALITIES, build_model, frames_per_segment

T, SIZE, SCALE = 4, 48, 56
QUIET = dict(device="cpu", amp="off", num_workers=0, progress="off", tensorboard=False, save_every_minutes=0.0,
             resume=False, threads=1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("streams") / "embedded_tiny"
    prepared = prepare_embedded(root, size="tiny", progress="off", workers=2)
    compute_flow(prepared.root, "dis", workers=1, progress="off")
    return find_prepared("embedded", prepared.root)


def _split(prepared, modality: str, split: str, mode: str | None = None):
    return build_dataset(prepared, split, num_segments=T, new_length=frames_per_segment(modality), mode=mode,
                         input_size=SIZE, scale_size=SCALE, **flow_dataset_kwargs(prepared, modality))


@pytest.fixture(scope="module")
def runs(tiny, tmp_path_factory):
    """One epoch of RGB, Flow and RGBDiff through the engine (the embedded recipe, tiny sizes)."""
    out = {}
    for modality in ("RGB", "Flow", "RGBDiff"):
        cfg = TrainConfig.from_recipe("embedded", modality, **QUIET, num_segments=T, epochs=1, batch_size=8,
                                      input_size=SIZE, scale_size=SCALE,
                                      run_dir=str(tmp_path_factory.mktemp(modality) / "run"))
        torch.manual_seed(0)
        out[modality] = train(cfg, train_set=_split(tiny, modality, "train").with_output("uint8"),
                              val_set=_split(tiny, modality, "val").with_output("uint8"), num_classes=tiny.num_classes)
    return out


def test_names_recipes_and_modalities():
    assert {"Flow", "RGBDiff"} <= set(MODALITIES)
    assert (frames_per_segment("Flow"), frames_per_segment("RGBDiff")) == (5, 6)
    assert model_name("Flow") == "PAN_Flow" and model_name("RGBDiff") == "PAN_RGBDiff"
    assert ensemble_name(["RGB", "Flow"]) == ("TwoStream_Flow", "RGB+Flow") == (MODEL_NAMES["RGB+Flow"], "RGB+Flow")
    assert ensemble_name(["RGBDiff", "RGB"]) == ("TwoStream_RGBDiff", "RGB+RGBDiff")
    assert ensemble_name(["RGB", "PA"]) == ("PAN_Full", "Full")
    for modality in ("Flow", "RGBDiff"):
        assert get_recipe("embedded", modality)["modality"] == modality
        assert get_recipe("sthv2", modality)["epochs"] > 0
        assert TrainConfig.from_recipe("embedded", modality).model_config(5).modality == modality
    assert {("embedded", "Flow"), ("sthv1", "RGBDiff")} <= {(r["dataset"], r["modality"]) for r in recipe_table()}


@pytest.mark.parametrize("modality", ["Flow", "RGBDiff"])
def test_one_epoch_on_the_engine_then_evaluate(runs, tiny, tmp_path, modality):
    res = runs[modality]
    assert res.status == "completed" and len(res.metrics) == 1
    record = res.record
    assert record["model"] == model_name(modality) and record["modality"] == modality
    assert record["gflops_per_view"] and record["gflops_per_view"] > 0
    cfg = EvalConfig(batch_size=4, progress="off", num_workers=0, device="cpu", out_dir=str(tmp_path / "eval"))
    result = evaluate([res.last_checkpoint], cfg, datasets=[_split(tiny, modality, "test", mode="test")],
                      num_classes=tiny.num_classes, classes=tiny.classes)
    assert result.model == model_name(modality) and result.scores.shape == (12, tiny.num_classes)
    assert result.record["modality"] == modality and 0.0 <= result.top1 <= 100.0


@pytest.mark.parametrize("motion, name, label", [("Flow", "TwoStream_Flow", "RGB+Flow"),
                                                 ("RGBDiff", "TwoStream_RGBDiff", "RGB+RGBDiff")])
def test_two_stream_ensembles_evaluate_with_their_names(runs, tiny, tmp_path, motion, name, label):
    cfg = EvalConfig(batch_size=4, progress="off", num_workers=0, device="cpu", out_dir=str(tmp_path / "eval"))
    members = [runs["RGB"].last_checkpoint, runs[motion].last_checkpoint]
    data = [_split(tiny, "RGB", "test", mode="test"), _split(tiny, motion, "test", mode="test")]
    result = evaluate(members, cfg, datasets=data, num_classes=tiny.num_classes, classes=tiny.classes)
    assert result.model == name and result.record["modality"] == label
    assert [m["modality"] for m in result.members] == ["RGB", motion]
    single = [evaluate([c], cfg.replace(out_dir=str(tmp_path / f"m{k}")), datasets=[d], num_classes=tiny.num_classes,
                       write=False).scores for k, (c, d) in enumerate(zip(members, data))]
    torch.testing.assert_close(torch.as_tensor(result.scores), torch.as_tensor((single[0] + single[1]) / 2))


def test_ensemble_module_takes_member_clips_and_counts_flops():
    torch.manual_seed(0)
    rgb, flow, diff = (build_model(m, 6, num_segments=T, backbone="resnet_tiny").eval() for m in ("RGB", "Flow", "RGBDiff"))
    two = Ensemble.two_stream(rgb, flow)
    assert two.modality == "RGB+Flow" and two.names == ["RGB", "Flow"]
    clips = {"RGB": torch.randn(2, T * 3, 32, 32), "Flow": torch.randn(2, T * 10, 32, 32)}
    with torch.no_grad():
        torch.testing.assert_close(two(clips), (rgb(clips["RGB"]) + flow(clips["Flow"])) / 2)
    with pytest.raises(ValueError, match="reads 2-channel frames"):
        two(torch.randn(2, T * 3, 32, 32))
    macs = count_flops(two, 32)
    assert macs["input_shape"] == {"RGB": (1, T * 3, 32, 32), "Flow": (1, T * 10, 32, 32)}
    assert macs["macs"] == count_flops(rgb, 32)["macs"] + count_flops(flow, 32)["macs"]
    rd = Ensemble.two_stream(rgb, diff)  # RGB-fed members share one clip: RGB takes each snippet's first frame
    assert rd.modality == "RGB+RGBDiff" and rd.new_length == 6
    x = torch.randn(2, T * 18, 32, 32)
    with torch.no_grad():
        first = x.view(2, T, 6, 3, 32, 32)[:, :, 0].reshape(2, T * 3, 32, 32)
        torch.testing.assert_close(rd(x), (rgb(first) + diff(x)) / 2)
    assert Ensemble.two_stream(rgb, build_model("PA", 6, num_segments=T, backbone="resnet_tiny")).modality == "Full"


@pytest.mark.parametrize("modality, stem", [("Flow", 10), ("RGBDiff", 15)])
def test_checkpoint_round_trips(runs, tmp_path, modality, stem):
    engine = load_checkpoint(runs[modality].last_checkpoint)  # the engine's last.pt
    model = engine.model.eval()
    assert model.modality == modality and model.base_model.conv1.in_channels == stem
    x = torch.randn(1, T * model.input_channels, SIZE, SIZE)
    name = official_checkpoint_name(modality, "embedded", arch="resnet_tiny", num_segments=T, epochs=1,
                                    shift_div=model.shift_div)  # the embedded recipe shifts 1/4
    assert name.startswith(f"PAN_{modality}_embedded_") and parse_checkpoint_name(name).modality == modality
    for include_config in (True, False):  # without the stored config: name + 10/15-channel stem say what it is
        path = save_official_checkpoint(model, tmp_path / str(include_config) / name, epoch=1, best_prec1=0.0,
                                        include_config=include_config)
        loaded = load_checkpoint(path).model.eval()
        assert loaded.modality == modality and loaded.num_segments == T
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), model(x))
    bare = tmp_path / "bare.pth"
    torch.save(model.state_dict(), bare)  # no name, no config: the stem's channels give the modality
    assert load_checkpoint(bare).model.modality == modality
