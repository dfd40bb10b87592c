"""Official checkpoints: every manifest key/shape round-trips, names parse, unsafe pickles are refused."""
from __future__ import annotations

import json
import os

import pytest
import torch

from pan_lib import build_model, load_checkpoint, save_official_checkpoint
from pan_lib.checkpoints import (
    CheckpointMismatchError,
    UnsafeCheckpointError,
    official_checkpoint_name,
    parse_checkpoint_name,
)

EPOCHS = {"Lite": 80, "RGB": 50, "PA": 80}


def fake_official_file(manifest: list, path):
    """An official-layout checkpoint with the manifest's keys/shapes and recognisable values."""
    state = {}
    for i, (key, shape) in enumerate(manifest):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(i, dtype=torch.long)
        else:
            state[key] = torch.full(shape, float(i))
    torch.save({"epoch": 80, "arch": "resnet50", "state_dict": state, "optimizer": {"state": {}, "param_groups": []},
                "best_prec1": 48.0}, path)
    return state


@pytest.mark.parametrize("modality", ["Lite", "RGB", "PA"])
def test_manifest_round_trip(shared_dir, tmp_path, modality):
    manifest = json.loads((shared_dir / "reference" / f"official_state_dict_{modality}_r50_seg8_c174.json").read_text())
    name = official_checkpoint_name(modality, "something", epochs=EPOCHS[modality])
    assert name == f"PAN_{modality}_something_resnet50_shift8_blockres_avg_segment8_e{EPOCHS[modality]}.pth.tar"
    src = fake_official_file(manifest, tmp_path / name)
    # 1) official file -> our model, built from the file name + shapes, strict
    loaded = load_checkpoint(tmp_path / name)
    model = loaded.model
    assert (model.modality, model.num_classes, model.num_segments, model.backbone_name) == (modality, 174, 8, "resnet50")
    assert (loaded.epoch, loaded.best_prec1, loaded.arch) == (80, 48.0, "resnet50")
    ours = model.state_dict()
    assert len(ours) == len(manifest)
    for key, value in src.items():
        assert torch.equal(ours[key[len("module."):]], value), key
    assert all(p.device.type == "cpu" and p.requires_grad for p in model.parameters())
    # 2) our model -> official layout: identical keys, order and shapes
    out = save_official_checkpoint(model, tmp_path / "ours.pth.tar", epoch=3, best_prec1=1.5)
    raw = torch.load(out, weights_only=True)
    assert set(raw) >= {"epoch", "arch", "state_dict", "optimizer", "best_prec1"}
    assert [[k, list(v.shape)] for k, v in raw["state_dict"].items()] == manifest
    # 3) and back into an explicitly built model
    fresh = build_model(modality, 174, backbone="resnet50")
    load_checkpoint(out, fresh)
    assert torch.equal(fresh.base_model.fc.pred.weight, model.base_model.fc.pred.weight)


def test_parse_official_names():
    n = parse_checkpoint_name("ckpts/PAN_Lite_something_resnet50_shift8_blockres_avg_segment8_e80.pth.tar")
    assert (n.modality, n.dataset, n.arch, n.shift, n.shift_div, n.shift_place, n.num_segments, n.epochs) == (
        "Lite", "something", "resnet50", True, 8, "blockres", 8, 80)
    # "PA" appears in every PAN_ name; the official parser would call this a PA model
    assert parse_checkpoint_name("PAN_RGB_somethingv2_resnet101_shift8_blockres_avg_segment8_e50.pth.tar").modality == "RGB"
    n = parse_checkpoint_name("checkpoint/PAN_PA_jester_resnet_tiny_shift4_block_tpool_avg_segment16_e5_cos_dense_nl/ckpt.best.pth.tar")
    assert (n.modality, n.arch, n.shift_div, n.shift_place, n.temporal_pool, n.num_segments, n.extras) == (
        "PA", "resnet_tiny", 4, "block", True, 16, ("cos", "dense", "nl"))
    assert n.dense_sample and n.non_local
    tsn = parse_checkpoint_name("TSM_something_RGB_resnet50_avg_segment8_e50.pth")
    assert (tsn.modality, tsn.shift, tsn.prefix) == ("TSN", False, "TSM")
    assert parse_checkpoint_name(official_checkpoint_name("TSM", "sthv2", epochs=5)).modality == "TSM"
    with pytest.raises(ValueError, match="official checkpoint name pattern"):
        parse_checkpoint_name("my_model.pth")
    with pytest.raises(ValueError, match="not supported"):
        parse_checkpoint_name("PAN_Depth_something_resnet50_avg_segment8_e50.pth.tar")


def test_refuses_unsafe_pickle(tmp_path):
    marker = tmp_path / "code_ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    bad = tmp_path / "PAN_RGB_something_resnet50_shift8_blockres_avg_segment8_e50.pth.tar"
    torch.save({"state_dict": {}, "epoch": 1, "payload": Payload()}, bad)
    with pytest.raises(UnsafeCheckpointError, match="could run arbitrary code.*mkdir"):
        load_checkpoint(bad)
    assert not marker.exists()
    torch.load(bad, weights_only=False)  # the payload is real: unsafe loading would have run it
    assert marker.exists()


def test_numpy_metadata_is_accepted_and_mismatch_hints(tmp_path):
    import numpy as np

    model = build_model("Lite", 5, num_segments=4, backbone="resnet_tiny")
    path = tmp_path / "any_name.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()},
                "epoch": np.int64(2), "best_prec1": np.float64(12.5)}, path)
    loaded = load_checkpoint(path)  # no official name: everything inferred from the weights
    assert (loaded.model.modality, loaded.model.num_segments, loaded.model.backbone_name) == ("Lite", 4, "resnet_tiny")
    assert loaded.best_prec1 == 12.5
    with pytest.raises(CheckpointMismatchError, match="hint: stem channels differ"):
        load_checkpoint(path, build_model("PA", 5, num_segments=4, backbone="resnet_tiny"))
    with pytest.raises(CheckpointMismatchError, match="head='vap'"):
        load_checkpoint(path, build_model("Lite", 5, num_segments=4, backbone="resnet_tiny", head="avg"))
    with pytest.raises(CheckpointMismatchError, match="num_classes differs"):
        load_checkpoint(path, build_model("Lite", 6, num_segments=4, backbone="resnet_tiny"))


def test_saved_config_rebuilds_renamed_files_and_outputs_match(tmp_path):
    model = build_model("TSN", 7, num_segments=3, backbone="resnet_tiny").eval()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = save_official_checkpoint(model, tmp_path / "renamed.pth.tar", epoch=1, best_prec1=3.0, optimizer=opt)
    loaded = load_checkpoint(path)
    assert loaded.config["modality"] == "TSN" and loaded.config["num_segments"] == 3
    assert loaded.optimizer["param_groups"][0]["lr"] == 0.1
    x = torch.randn(2, 9, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.eval()(x), model(x))


def test_engine_training_checkpoint_layout(tmp_path):
    model = build_model("RGB", 4, num_segments=4, backbone="resnet_tiny")
    path = tmp_path / "best.pt"
    torch.save({"format": "pan-workbook/train-checkpoint/1", "model": model.state_dict(),
                "model_meta": {**model.config(), "new_length": 1, "input_size": 64}, "epoch": 3, "best_top1": 50.0}, path)
    loaded = load_checkpoint(path)
    assert loaded.model.modality == "RGB" and loaded.epoch == 3 and loaded.best_prec1 == 50.0
