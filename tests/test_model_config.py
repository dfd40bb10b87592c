"""ModelConfig: the one source of a network's arguments; old spellings (fold_div, segments) keep loading."""
from __future__ import annotations

import logging

import pytest
import torch
import yaml

from pan_lib.checkpoints import load_checkpoint
from pan_lib.engine.checkpointing import FORMAT
from pan_lib.engine.config import RENAMED_FIELDS, ConfigError, EvalConfig, TrainConfig
from pan_lib.engine.evaluate import load_member
from pan_lib.engine.recipes import RECIPES, get_recipe
from pan_lib.models import MODALITIES, ModelConfig, build_model
from pan_lib.train import main as train_main
import pan_lib.models

TINY = dict(num_segments=4, backbone="resnet_tiny")


def test_one_alias_table():
    assert RENAMED_FIELDS is pan_lib.models.RENAMED_FIELDS
    assert RENAMED_FIELDS == {"segments": "num_segments", "fold_div": "shift_div", "dense": "dense_sample"}
    assert RECIPES == ("auto", "embedded", "official")


@pytest.mark.parametrize("modality", MODALITIES)
def test_config_resolves_defaults_and_rebuilds(modality):
    cfg = ModelConfig(modality, 5, **TINY)
    assert cfg.shift == (modality != "TSN") and cfg.head == ("avg" if modality in ("TSN", "TSM") else "vap")
    model = build_model(cfg)
    assert model.model_config == cfg and model.config() == cfg.to_dict()
    assert build_model(**model.config()).model_config == cfg                 # keyword form, same network
    assert build_model(modality, 5, **TINY).config() == cfg.to_dict()
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_build_model_keywords_and_errors(caplog):
    with caplog.at_level(logging.WARNING):
        model = build_model("TSM", 3, fold_div=4, **TINY)                   # old spelling of shift_div
    assert model.shift_div == 4 and "fold_div" in caplog.text
    with pytest.raises(ValueError, match="contradicts"):
        build_model("TSM", 3, fold_div=4, shift_div=8, **TINY)
    with pytest.raises(TypeError, match="unknown model argument"):
        build_model("TSM", 3, n_div=4, **TINY)
    with pytest.raises(TypeError):
        build_model(ModelConfig("TSM", 3, **TINY), 3)


def test_train_config_gives_the_model_config(caplog):
    with caplog.at_level(logging.WARNING):
        cfg = TrainConfig.from_dict({"segments": 4}, modality="PA", backbone="resnet_tiny", fold_div=2, dropout=0.0)
    assert cfg.num_segments == 4 and cfg.shift_div == 2 and "'segments' is the old name" in caplog.text
    assert cfg.run_name.endswith("_seg4_seed0")
    assert cfg.model_config(7) == ModelConfig("PA", 7, num_segments=4, backbone="resnet_tiny", dropout=0.0,
                                              shift_div=2)
    with pytest.raises(ConfigError, match="contradicts"):
        TrainConfig.from_dict({"segments": 4, "num_segments": 8})
    assert set(get_recipe("embedded", "Lite")) <= set(TrainConfig.field_names())
    with pytest.raises(ConfigError, match="unknown modality"):
        TrainConfig.from_recipe("embedded", "Depth")


def test_old_yaml_loads(tmp_path, caplog):
    (tmp_path / "train.yaml").write_text("modality: TSM\nsegments: 16\ndense: true\n")
    (tmp_path / "eval.yaml").write_text("crops: 3\nsave_scores: false\n")
    with caplog.at_level(logging.WARNING):
        train_cfg = TrainConfig.from_yaml(tmp_path / "train.yaml")
        eval_cfg = EvalConfig.from_yaml(tmp_path / "eval.yaml")
    assert (train_cfg.num_segments, train_cfg.dense_sample) == (16, True)
    assert eval_cfg.crops == 3 and "save_scores" not in eval_cfg.to_dict() and "save_scores" in caplog.text


def _old_meta(model) -> dict:
    """model_meta / model_config as this project wrote them before ModelConfig (fold_div, no pretrained)."""
    cfg = model.config()
    old = {k: v for k, v in cfg.items() if k not in ("pretrained", "shift_div")}
    return {**old, "fold_div": cfg["shift_div"]}


def test_old_format_checkpoints_load(tmp_path):
    torch.manual_seed(0)
    model = build_model("Lite", 5, num_segments=4, backbone="resnet_tiny", shift_div=4).eval()
    state = model.state_dict()
    # an engine training checkpoint (last.pt / best.pt) of the old format
    engine_path = tmp_path / "best.pt"
    torch.save({"format": FORMAT, "model": state, "epoch": 3, "best_top1": 50.0,
                "model_meta": {**_old_meta(model), "new_length": 4, "input_size": 64, "scale_size": 72},
                "config": {"modality": "Lite", "segments": 4, "shift_div": 4, "seed": 1, "dataset": "embedded"}},
               engine_path)
    # an official-layout file saved by save_official_checkpoint with the old model_config
    official_path = tmp_path / "renamed.pth.tar"
    torch.save({"epoch": 3, "arch": "resnet_tiny", "state_dict": {"module." + k: v for k, v in state.items()},
                "optimizer": None, "best_prec1": 50.0, "model_config": _old_meta(model)}, official_path)
    x = torch.randn(2, 4 * 4 * 3, 32, 32)
    for path in (engine_path, official_path):
        loaded = load_checkpoint(path)
        assert loaded.model.model_config == model.model_config
        assert loaded.config["shift_div"] == 4 and "fold_div" not in loaded.config
        torch.testing.assert_close(loaded.model.eval()(x), model(x))
    member, meta = load_member(engine_path)
    assert member.model_config == model.model_config and meta["model_config"]["shift_div"] == 4
    assert len(meta["checkpoint_sha256"]) == 64
    torch.testing.assert_close(member(x), model(x))


def test_loading_never_downloads_pretrained_weights(tmp_path):
    model = build_model("RGB", 3, **TINY)
    path = tmp_path / "best.pt"
    meta = {**model.config(), "pretrained": True, "new_length": 1}  # trained from ImageNet weights
    torch.save({"format": FORMAT, "model": model.state_dict(), "model_meta": meta, "config": {}}, path)
    assert load_checkpoint(path).model.model_config.pretrained is False
    assert load_member(path)[0].model_config.pretrained is False


def test_train_cli_reads_old_names_layer_by_layer(tmp_path, capsys):
    """Recipe, then an old YAML (segments, fold_div), then --set: each layer's old names map first."""
    (tmp_path / "run.yaml").write_text("segments: 16\nfold_div: 4\n")
    assert train_main(["--recipe", "embedded/TSM", "--config", str(tmp_path / "run.yaml"), "--set", "dense=true",
                 "--set", "num_segments=12", "--print-config"]) == 0
    cfg = TrainConfig.from_dict(yaml.safe_load(capsys.readouterr().out))
    assert (cfg.num_segments, cfg.shift_div, cfg.dense_sample) == (12, 4, True)
