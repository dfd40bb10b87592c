"""Typed run configurations whose fields mirror the notebooks' parameters cells.

`TrainConfig` drives `pan_lib.engine.train`, `EvalConfig` drives `pan_lib.engine.evaluate`. Both
load from / save to YAML or plain dicts; an unknown key is an error that lists the valid fields, so a
typo in a notebook parameter or a YAML file never passes silently. Old spellings (`segments`,
`fold_div`, `dense`: `RENAMED_FIELDS`) are read as the canonical names with a logged warning.

Values typed by people (`--set key=value` of every CLI and of the workbook, YAML config files) go
through ONE reader, `parse_value` / `parse_override` / `load_yaml_text`: Python literals first, then
YAML in which only `true` / `false` are booleans (YAML 1.1 would turn `off`, `on`, `yes`, `no` into
booleans, so `amp=off` or `progress=off` would arrive as False) and `1e-3` is a float.

    cfg = TrainConfig.from_recipe("sthv2", "Lite", data_root="/data/sthv2")   # the official script
    cfg = TrainConfig.from_yaml("run.yaml")                                   # what torchrun runs
    cfg.to_yaml("run.yaml")
"""
from __future__ import annotations

import ast
import dataclasses
import logging
import math
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import yaml

from pan_lib.data.flow import DEFAULT_FLOW_METHOD, FLOW_PREP_METHODS
from pan_lib.data.registry import SOURCES
from pan_lib.engine.recipes import get_recipe
from pan_lib.models import MODALITIES, RENAMED_FIELDS, ModelConfig, rename_fields  # noqa: F401 (RENAMED_FIELDS re-exported)

log = logging.getLogger(__name__)

AMP_CHOICES = ("auto", "off", "bf16", "fp16")
PROGRESS_CHOICES = ("auto", "text", "off")
DEVICE_CHOICES = ("auto", "cpu", "cuda")
SOURCE_CHOICES = ("auto",) + SOURCES
LR_TYPES = ("step", "cos")
OPTIMIZERS = ("sgd", "adamw")
CROP_CHOICES = (1, 3, 5, 10)


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message says which and what is allowed."""


# ------------------------------------------------------------------------------ typed-in values
class _ConfigLoader(yaml.SafeLoader):
    """YAML where only true/false are booleans, `1e-3` is a float and dates stay strings."""


_BOOL_TAG, _FLOAT_TAG, _TIMESTAMP_TAG = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"
_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_ConfigLoader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_ConfigLoader.add_implicit_resolver(_FLOAT_TAG, re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                                    list("-+0123456789"))


def load_yaml_text(text: str) -> Any:
    """Parse YAML config text with `_ConfigLoader` (`amp: off` stays the string 'off')."""
    return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass


def parse_value(raw: str) -> Any:
    """A typed-in value: a Python literal (`3`, `1e-3`, `None`, `[20, 40]`), else YAML with only
    true/false as booleans (`false`, `null`, `[a, b]`), else the text itself (`off`, `resnet18`)."""
    text = raw.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        value = load_yaml_text(text)
    except yaml.YAMLError:
        return text
    return text if value is None and text not in ("null", "Null", "NULL", "~") else value


def parse_override(text: str) -> tuple[str, Any]:
    """'key=value' -> ('key', parse_value(value)); a missing '=' is a ValueError."""
    if "=" not in text:
        raise ValueError(f"--set expects NAME=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    return key.strip(), parse_value(raw)


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """Several 'key=value' strings -> a dict (a later pair wins)."""
    return dict(parse_override(pair) for pair in pairs)


# ------------------------------------------------------------------------------------ validation
def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {', '.join(map(repr, choices))}")


def _auto_bool(name: str, value: Any) -> None:
    if value != "auto" and not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is not valid; use 'auto', True or False")


def _check_bool_fields(config: Any) -> None:
    """Fields declared `bool` hold a bool (0 / 1 accepted): a string such as 'off' is an error, not True."""
    for f in fields(config):
        if f.type != "bool":
            continue
        value = getattr(config, f.name)
        if isinstance(value, int) and value in (0, 1):
            setattr(config, f.name, bool(value))
        else:
            raise ConfigError(f"{f.name}={value!r} is not valid; use true or false")


def _off_if_false(value: Any) -> Any:
    """A YAML 1.1 reader elsewhere turns `off` into False: read it back as 'off' (amp, progress)."""
    return "off" if value is False else value


def resolve_flow_method(modality: str, flow_method: str | None) -> str | None:
    """The flow a `modality` run reads: Flow -> `flow_method` or "dis" (`python -m data_prep flow
    --method`), any other modality -> None (it reads no flow; a value given anyway is dropped)."""
    if modality != "Flow":
        if flow_method is not None:
            log.debug("flow_method=%r ignored for modality %s", flow_method, modality)
        return None
    method = flow_method or DEFAULT_FLOW_METHOD
    _check_choice("flow_method", method, tuple(FLOW_PREP_METHODS))
    return method


class _ConfigIO:
    """Dict/YAML round trip shared by the config dataclasses."""

    # keys of fields that were removed: still accepted in old YAML / dicts, ignored with a warning
    IGNORED_LEGACY_FIELDS: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None, **overrides: Any):
        try:
            merged = {**rename_fields(values or {}, cls.__name__), **rename_fields(overrides, cls.__name__)}
        except ValueError as err:
            raise ConfigError(str(err)) from None
        for key in sorted(cls.IGNORED_LEGACY_FIELDS & merged.keys()):
            log.warning("%s: %r is no longer a parameter; ignored", cls.__name__, key)
            del merged[key]
        valid = cls.field_names()
        unknown = sorted(k for k in merged if k not in valid)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} parameter(s) {unknown}; valid parameters: "
                              f"{', '.join(valid)}")
        for key in ("lr_steps", "members", "coeffs"):
            if key in merged and isinstance(merged[key], list):
                merged[key] = tuple(merged[key])
        return cls(**merged)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike):
        data = load_yaml_text(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of parameters, got {type(data).__name__}")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def replace(self, **changes: Any):
        return type(self).from_dict(self.to_dict(), **changes)


@dataclass
class TrainConfig(_ConfigIO):
    """Everything one training run needs. Defaults are the official sthv1/sthv2 PAN scripts.

    Batch sizes are *global*: `batch_size` clips per forward pass summed over all processes
    (each of `world_size` processes gets `batch_size // world_size`); one optimiser step sees
    `batch_size * accumulate` clips. With `lr=None` the learning rate is
    `base_lr * batch_size * accumulate / base_batch` (the official linear scaling, 0.01 at 64).
    """

    # -- what to train
    dataset: str = "embedded"
    data_root: str | None = None           # None: the registry's default location for `dataset`
    source: str = "auto"                   # auto (what the prepared data holds) | decoded | frames | video
    modality: str = "Lite"                 # TSN | TSM | RGB | PA | Lite
    backbone: str = "resnet50"
    pretrained: bool = False               # ImageNet initialisation (the official recipe uses it)
    num_segments: int = 8
    shift_div: int = 8
    dropout: float = 0.5
    input_size: int = 224
    scale_size: int = 256
    dense_sample: bool = False
    flow_method: str | None = None         # Flow only: the stored flow it reads (dis | tvl1 | farneback | raft;
                                           # None -> dis); part of the run name; None for other modalities
    # -- optimisation (official: SGD momentum 0.9, wd 1e-4, clip 20, step schedule)
    optimizer: str = "sgd"                 # sgd (official) | adamw (small networks from scratch)
    group_lr: bool = True                  # official per-group lr multipliers (first conv x5/x10, fc x5/x10)
    epochs: int = 80
    batch_size: int = 64
    accumulate: int = 1                    # micro-batches per optimiser step
    lr: float | None = None                # None: linear scaling of base_lr (below)
    base_lr: float = 0.01
    base_batch: int = 64
    lr_type: str = "step"                  # step | cos
    lr_steps: tuple[float, ...] = (30, 60)
    warmup_epochs: float = 0.0             # linear warm-up per iteration (not in the official recipe)
    weight_decay: float = 1e-4
    momentum: float = 0.9
    clip_grad: float | None = 20.0
    fc_lr5: bool = True                    # VAP/fc weights lr x5, fc bias x10 (official)
    label_smoothing: float = 0.0
    # -- machine
    device: str = "auto"                   # auto | cpu | cuda
    amp: str = "auto"                      # auto | off | bf16 | fp16
    channels_last: Any = "auto"            # auto | True | False
    num_workers: int = 2
    cudnn_benchmark: bool = True
    sync_bn: bool = False                  # SyncBatchNorm under DDP
    threads: int | None = None             # torch CPU threads (None: leave as is)
    # -- bookkeeping
    seed: int = 0
    name: str | None = None                # None: <modality>_<dataset>_<backbone>_seg<T>_seed<seed>
    out_root: str = "runs"
    run_dir: str | None = None             # None: <out_root>/<name>
    resume: Any = "auto"                   # auto | True | False | path to a checkpoint
    eval_every: int = 1
    save_every_minutes: float = 10.0       # mid-epoch checkpoint period (0: epoch ends only)
    save_every_steps: int = 0              # mid-epoch checkpoint every N optimiser steps (0: off)
    max_minutes: float | None = None       # stop cleanly (checkpoint saved) after this long
    max_train_batches: int | None = None   # cap per epoch (smoke runs)
    max_val_batches: int | None = None
    progress: str = "auto"                 # auto | text | off
    tensorboard: bool = True
    count_flops: bool = True
    export_official: bool = False          # also write the official checkpoint layout at the end

    def __post_init__(self) -> None:
        self.amp, self.progress = _off_if_false(self.amp), _off_if_false(self.progress)
        _check_bool_fields(self)
        _check_choice("modality", self.modality, MODALITIES)
        _check_choice("amp", self.amp, AMP_CHOICES)
        _check_choice("device", self.device.split(":")[0] if isinstance(self.device, str) else self.device,
                      DEVICE_CHOICES)
        _check_choice("progress", self.progress, PROGRESS_CHOICES)
        _check_choice("source", self.source, SOURCE_CHOICES)
        _check_choice("lr_type", self.lr_type, LR_TYPES)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _auto_bool("channels_last", self.channels_last)
        self.flow_method = resolve_flow_method(self.modality, self.flow_method)
        if not (self.resume in ("auto", True, False) or isinstance(self.resume, (str, os.PathLike))):
            raise ConfigError(f"resume={self.resume!r}: use 'auto', True, False or a checkpoint path")
        self.lr_steps = tuple(float(s) for s in self.lr_steps)
        for name in ("epochs", "batch_size", "accumulate", "num_segments", "eval_every", "base_batch"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number or None, got {self.lr!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")

    # -- derived values (never stored: the parameters stay literals, like a papermill cell)
    @property
    def run_name(self) -> str:
        """`<modality>_<dataset>_<backbone>_seg<T>_seed<seed>`; Flow runs name their flow method
        (`Flow_dis_...`, `Flow_farneback_...`), so runs on different flow never share a folder."""
        stream = f"{self.modality}_{self.flow_method}" if self.flow_method else self.modality
        return self.name or f"{stream}_{self.dataset}_{self.backbone}_seg{self.num_segments}_seed{self.seed}"

    @property
    def resolved_run_dir(self) -> Path:
        return Path(self.run_dir) if self.run_dir else Path(self.out_root) / self.run_name

    def effective_batch(self) -> int:
        return self.batch_size * self.accumulate

    def resolved_lr(self) -> float:
        """Absolute base learning rate (before per-group multipliers)."""
        if self.lr is not None:
            return float(self.lr)
        return self.base_lr * self.effective_batch() / self.base_batch

    def model_config(self, num_classes: int) -> ModelConfig:
        """The network this run trains (`num_classes` comes from the data)."""
        return ModelConfig(modality=self.modality, num_classes=num_classes, num_segments=self.num_segments,
                           backbone=self.backbone, pretrained=self.pretrained, dropout=self.dropout,
                           shift_div=self.shift_div)

    @classmethod
    def from_recipe(cls, dataset: str, modality: str, **overrides: Any) -> "TrainConfig":
        """The recipe for (dataset, modality) (see `pan_lib.engine.recipes`), then `overrides`."""
        try:
            values = get_recipe(dataset, modality)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        return cls.from_dict(values, **overrides)


@dataclass
class EvalConfig(_ConfigIO):
    """The official test protocol (`test_models.py`), fixed so results do not depend on batch size.

    views per video = crops x clips, clips = 2 with `twice_sample`, 10 with `dense_sample`;
    logits are averaged over views, then (for ensembles) `sum(coeff_k * logits_k) / K`.
    """

    dataset: str = "embedded"
    data_root: str | None = None
    source: str = "auto"
    split: str = "val"                     # val | test (test lists may be unlabeled)
    crops: int = 1                         # 1 centre | 3 full-res left/centre/right | 10 (5 + flips)
    full_res: bool = False                 # input_size = scale_size (256): the PAN_En protocol
    twice_sample: bool = False
    dense_sample: bool = False
    flow_method: str | None = None         # flow that Flow members read; None: the one each was trained on (dis)
    input_size: int | None = None          # None: the checkpoint's training input size
    scale_size: int | None = None          # None: the checkpoint's (256 officially)
    coeffs: tuple[float, ...] | None = None  # per-member weights (official --coeff); None: all 1
    batch_size: int = 8                    # videos per batch (does not change the result)
    views_per_forward: int = 32            # memory bound: at most this many views (or one video's) per loader
                                           # batch, at most this many per forward pass (does not change the result)
    num_workers: int = 2
    device: str = "auto"
    amp: str = "auto"
    channels_last: Any = "auto"
    threads: int | None = None
    max_videos: int | None = None          # evaluate only the first N videos (smoke runs)
    softmax: bool = False                  # official scripts average raw logits
    name: str | None = None                # None: derived from members + protocol
    out_dir: str | None = None             # None: next to the first checkpoint, eval/<name>
    progress: str = "auto"

    IGNORED_LEGACY_FIELDS: ClassVar[frozenset[str]] = frozenset({"save_scores"})  # scores are always saved

    def __post_init__(self) -> None:
        self.amp, self.progress = _off_if_false(self.amp), _off_if_false(self.progress)
        _check_bool_fields(self)
        _check_choice("crops", self.crops, CROP_CHOICES)
        _check_choice("amp", self.amp, AMP_CHOICES)
        _check_choice("device", self.device.split(":")[0] if isinstance(self.device, str) else self.device,
                      DEVICE_CHOICES)
        _check_choice("progress", self.progress, PROGRESS_CHOICES)
        _check_choice("source", self.source, SOURCE_CHOICES)
        _check_choice("split", self.split, ("train", "val", "test"))
        if self.flow_method is not None:
            _check_choice("flow_method", self.flow_method, tuple(FLOW_PREP_METHODS))
        _auto_bool("channels_last", self.channels_last)
        if self.twice_sample and self.dense_sample:
            raise ConfigError("twice_sample and dense_sample exclude each other (official test_models.py)")
        for name in ("batch_size", "views_per_forward"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.coeffs is not None:
            self.coeffs = tuple(float(c) for c in self.coeffs)

    @property
    def clips(self) -> int:
        return 10 if self.dense_sample else 2 if self.twice_sample else 1

    @property
    def views(self) -> int:
        """Views per video per member: crops x clips."""
        return self.crops * self.clips

    def protocol_name(self) -> str:
        res = "fullres" if self.full_res else "centre" if self.crops == 1 else ""
        parts = [f"{self.crops}crop", f"{self.clips}clip"] + ([res] if res else [])
        return "_".join(parts)
