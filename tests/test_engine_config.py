"""Configs, recipes, official optimiser groups and schedules."""
from __future__ import annotations

import math

import pytest
import torch

from pan_lib.engine.config import ConfigError, EvalConfig, TrainConfig, load_yaml_text
from pan_lib.engine.optim import build_optimizer, lr_factor, official_param_groups
from pan_lib.engine.recipes import get_recipe, recipe_table
from pan_lib.models import MODALITIES


def test_unknown_key_lists_valid_fields():
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"modality": "Lite", "learning_rate": 0.1})
    msg = str(err.value)
    assert "learning_rate" in msg and "lr_steps" in msg and "batch_size" in msg
    with pytest.raises(ConfigError, match="twice_sample and dense_sample"):
        EvalConfig(twice_sample=True, dense_sample=True)
    with pytest.raises(ConfigError, match="modality"):
        TrainConfig(modality="Depth")
    with pytest.raises(ConfigError, match="channels_last"):
        TrainConfig(channels_last="yes")


def test_yaml_round_trip(tmp_path):
    cfg = TrainConfig.from_recipe("sthv2", "RGB", data_root="/data/sthv2", seed=3)
    cfg.to_yaml(tmp_path / "run.yaml")
    back = TrainConfig.from_yaml(tmp_path / "run.yaml")
    assert back == cfg and back.lr_steps == (20.0, 40.0)
    (tmp_path / "bad.yaml").write_text("modality: Lite\nepoch: 3\n")
    with pytest.raises(ConfigError, match="epoch"):
        TrainConfig.from_yaml(tmp_path / "bad.yaml")


@pytest.mark.parametrize("modality,epochs,steps", [("Lite", 80, (30, 60)), ("RGB", 50, (20, 40)), ("PA", 80, (30, 60))])
@pytest.mark.parametrize("dataset", ["sthv1", "sthv2"])
def test_official_recipes(dataset, modality, epochs, steps):
    cfg = TrainConfig.from_recipe(dataset, modality)
    assert (cfg.epochs, cfg.lr_steps, cfg.batch_size) == (epochs, tuple(float(s) for s in steps), 64)
    assert (cfg.backbone, cfg.num_segments, cfg.dropout, cfg.weight_decay, cfg.momentum, cfg.clip_grad) == (
        "resnet50", 8, 0.5, 1e-4, 0.9, 20.0)
    assert cfg.pretrained and cfg.lr_type == "step" and cfg.resolved_lr() == pytest.approx(0.01)


def test_linear_lr_scaling_with_global_batch_and_accumulation():
    cfg = TrainConfig.from_recipe("sthv2", "Lite", batch_size=256)
    assert cfg.resolved_lr() == pytest.approx(0.04)  # README: batch 256 -> 0.04
    assert cfg.replace(batch_size=16, accumulate=4).resolved_lr() == pytest.approx(0.01)
    assert cfg.replace(lr=0.123).resolved_lr() == 0.123
    assert {r["modality"] for r in recipe_table() if r["dataset"] == "embedded"} == set(MODALITIES)
    assert get_recipe("embedded", "PA")["backbone"] == "resnet_tiny"


def test_schedules():
    kw = dict(epochs=80, lr_type="step", lr_steps=(30, 60))
    assert [lr_factor(e, **kw) for e in (0, 29, 30, 59, 60, 79)] == pytest.approx([1, 1, .1, .1, .01, .01])
    cos = [lr_factor(e, epochs=10, lr_type="cos") for e in range(10)]
    assert cos[0] == 1 and cos[5] == pytest.approx(0.5) and all(a > b for a, b in zip(cos, cos[1:]))
    # warm-up: linear per iteration, first step already > 0, reaches the schedule after warmup_epochs
    assert lr_factor(0, epochs=10, lr_type="cos", warmup_epochs=2, fraction=0.25) == pytest.approx(0.125)
    assert lr_factor(2, epochs=10, lr_type="cos", warmup_epochs=2, fraction=0.5) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 2 / 10)))


def _groups(model, **kw):
    return {g["name"]: g for g in official_param_groups(model, **kw)}


@pytest.mark.parametrize("modality", ["Lite", "PA", "RGB", "TSM"])
def test_official_param_groups_tiny(modality):
    from pan_lib.models import build_model

    model = build_model(modality, 5, num_segments=4, backbone="resnet_tiny")
    g = _groups(model)
    names = {id(p): n for n, p in model.named_parameters()}
    first = [names[id(p)] for p in g["first_conv_weight"]["params"]]
    if modality in ("PA", "Lite"):  # official quirk: the "first conv" is PA.shallow_conv, x5 / x10
        assert first == ["PA.shallow_conv.weight"]
        assert [names[id(p)] for p in g["first_conv_bias"]["params"]] == ["PA.shallow_conv.bias"]
        assert (g["first_conv_weight"]["lr_mult"], g["first_conv_bias"]["lr_mult"]) == (5, 10)
    else:
        assert first == ["base_model.conv1.weight"] and g["first_conv_weight"]["lr_mult"] == 1
    lr5 = sorted(names[id(p)] for p in g["lr5_weight"]["params"])
    lr10 = [names[id(p)] for p in g["lr10_bias"]["params"]]
    if modality == "TSM":
        assert lr5 == ["new_fc.weight"] and lr10 == ["new_fc.bias"]
    else:
        assert lr5 == ["base_model.fc.TES.0.weight", "base_model.fc.TES.2.weight", "base_model.fc.pred.weight"]
        assert lr10 == ["base_model.fc.pred.bias"]
    assert (g["lr5_weight"]["lr_mult"], g["lr10_bias"]["lr_mult"], g["lr10_bias"]["decay_mult"]) == (5, 10, 0)
    assert g["bn"]["decay_mult"] == 0 and all("bn" in names[id(p)] or "downsample.1" in names[id(p)]
                                              for p in g["bn"]["params"])
    opt = build_optimizer(model, lr=0.02, weight_decay=1e-4)
    by_name = {pg["name"]: pg for pg in opt.param_groups}
    assert by_name["lr5_weight"]["lr"] == pytest.approx(0.1) and by_name["bn"]["weight_decay"] == 0
    assert by_name["normal_weight"]["weight_decay"] == pytest.approx(1e-4)
    assert not _groups(model, fc_lr5=False)["lr5_weight"]["params"]


@pytest.mark.parametrize("modality,n_params,n_normal", [("Lite", 23_875_542, 53), ("RGB", 23_864_950, 52)])
def test_official_param_group_counts_r50(modality, n_params, n_normal):
    """pan_official.md §6b: group sizes of the official ResNet-50 models (174 classes)."""
    from pan_lib.models import build_model

    model = build_model(modality, 174, num_segments=8, backbone="resnet50")
    g = _groups(model)
    assert sum(p.numel() for p in model.parameters()) == n_params
    assert len(g["normal_weight"]["params"]) == n_normal and len(g["bn"]["params"]) == 106
    assert len(g["lr5_weight"]["params"]) == 3 and len(g["lr10_bias"]["params"]) == 1
    assert not g["normal_bias"]["params"] and not g["custom_ops"]["params"]


def test_every_parameter_in_exactly_one_group():
    from test_engine_toys import TinyNet

    model = TinyNet()
    groups = official_param_groups(model)
    ids = [id(p) for grp in groups for p in grp["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    model.register_parameter("scale", torch.nn.Parameter(torch.ones(1)))  # not a conv/linear/norm
    custom = {g["name"]: g for g in official_param_groups(model)}["custom_ops"]
    assert [p is model.scale for p in custom["params"]] == [True] and custom["decay_mult"] == 1


def test_adamw_option_keeps_the_decay_rules():
    from pan_lib.models import build_model

    model = build_model("Lite", 12, num_segments=8, backbone="resnet_tiny", dropout=0.0)
    opt = build_optimizer(model, lr=1e-3, weight_decay=0.01, kind="adamw", group_lr=False)
    assert isinstance(opt, torch.optim.AdamW)
    groups = {g["name"]: g for g in opt.param_groups}
    assert all(g["lr"] == pytest.approx(1e-3) for g in groups.values())  # no x5/x10 multipliers
    assert groups["bn"]["weight_decay"] == 0 and groups["normal_weight"]["weight_decay"] == pytest.approx(0.01)
    sgd = build_optimizer(model, lr=0.01, modality="Lite")  # the official default is unchanged
    assert isinstance(sgd, torch.optim.SGD)
    assert {g["name"]: g["lr"] for g in sgd.param_groups}["first_conv_weight"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="sgd, adamw"):
        build_optimizer(model, lr=0.01, kind="adam")
    with pytest.raises(ConfigError, match="'sgd', 'adamw'"):
        TrainConfig(optimizer="adam")


def test_embedded_recipe_is_the_measured_cpu_recipe():
    for modality in ("TSN", "TSM", "RGB", "PA", "Lite"):
        cfg = TrainConfig.from_recipe("embedded", modality)
        assert (cfg.optimizer, cfg.lr, cfg.group_lr, cfg.epochs, cfg.shift_div) == ("adamw", 0.001, False, 10, 4)
        assert (cfg.device, cfg.amp, cfg.channels_last, cfg.num_workers) == ("cpu", "bf16", True, 0)
    assert TrainConfig.from_recipe("sthv2", "Lite").optimizer == "sgd"


# ------------------------------------------------------------------------- one --set / YAML reader
@pytest.mark.parametrize("raw,value", [
    ("off", "off"), ("on", "on"), ("yes", "yes"), ("auto", "auto"), ("3", 3), ("0.5", 0.5), ("1e-3", 1e-3),
    ("true", True), ("False", False), ("None", None), ("null", None), ("[20, 40]", [20, 40]), ("[a, b]", ["a", "b"]),
    ("resnet18", "resnet18"), ("/data/sthv2", "/data/sthv2"), ("2024-01-01", "2024-01-01"), ("", ""),
])
def test_parse_value_keeps_words_as_strings(raw, value):
    from pan_lib.engine.config import parse_value

    assert parse_value(raw) == value and type(parse_value(raw)) is type(value)


def test_enum_fields_stay_strings_in_set_and_yaml(tmp_path):
    from pan_lib.engine.config import parse_overrides

    values = parse_overrides(["amp=off", "progress=off", "resume=auto", "lr=1e-3", "resume=false"])
    assert values == {"amp": "off", "progress": "off", "resume": False, "lr": 1e-3}
    cfg = TrainConfig.from_dict(values)
    assert (cfg.amp, cfg.progress, cfg.resume, cfg.lr) == ("off", "off", False, 1e-3)
    assert TrainConfig.from_dict(parse_overrides(["resume=auto"])).resume == "auto"
    (tmp_path / "run.yaml").write_text("amp: off\nprogress: off\nlr: 1e-3\nresume: auto\n")
    cfg = TrainConfig.from_yaml(tmp_path / "run.yaml")
    assert (cfg.amp, cfg.progress, cfg.lr, cfg.resume) == ("off", "off", 1e-3, "auto")
    assert EvalConfig(amp=False, progress=False).amp == "off"  # a YAML 1.1 reader elsewhere gave False
    with pytest.raises(ConfigError, match="tensorboard='off'"):  # a word in a bool field is not True
        TrainConfig(tensorboard="off")
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_overrides(["amp"])


def test_train_cli_set_amp_off(capsys):
    from pan_lib.train import main

    assert main(["--recipe", "embedded/TSM", "--set", "amp=off", "--set", "progress=off", "--set", "resume=auto",
                 "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "amp: 'off'" in printed and "progress: 'off'" in printed and "resume: auto" in printed


def test_evaluate_cli_config_options_and_set(tmp_path, capsys):
    from pan_lib.evaluate import main

    (tmp_path / "eval.yaml").write_text("crops: 3\namp: off\nbatch_size: 2\nsource: frames\n")
    assert main(["--config", str(tmp_path / "eval.yaml"), "--batch-size", "4", "--dense-sample", "--input-size", "64",
                 "--channels-last", "false", "--coeffs", "1", "2", "--set", "batch_size=6", "--set", "progress=off",
                 "--print-config"]) == 0
    cfg = EvalConfig.from_dict(load_yaml_text(capsys.readouterr().out))
    assert (cfg.crops, cfg.amp, cfg.source, cfg.dense_sample, cfg.input_size, cfg.channels_last) == (
        3, "off", "frames", True, 64, False)
    assert cfg.batch_size == 6 and cfg.coeffs == (1.0, 2.0) and cfg.progress == "off"  # --set wins over options
    with pytest.raises(SystemExit):
        main(["ckpt.pt", "--set", "crop=3"])
    err = capsys.readouterr().err
    assert "crop" in err and "views_per_forward" in err and "dense_sample" in err  # lists the valid fields
