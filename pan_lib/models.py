"""PAN networks and their baselines from one builder: ``build_model(modality, num_classes, ...)``.

::

    clip [B, T*m*3, H, W]  (or [B, T, m*3, H, W]), m = frames per segment
      |
      |  RGB / TSN / TSM (m = 1):  frames              [B*T, 3, H, W]
      |  PA   (m = 4):             PA(frames)          [B*T, 3, H, W]   -> unchanged 3-channel stem
      |  Lite (m = 4):             cat(frame 0, PA)    [B*T, 6, H, W]   -> 6-channel stem
      |  Flow (m = 5, 2 ch/frame): stacked (x, y) flow [B*T, 10, H, W]  -> 10-channel stem
      |  RGBDiff (m = 6):          5 frame differences [B*T, 15, H, W]  -> 15-channel stem
      v
    ResNet (temporal shift in every residual branch; ResNet-101: every 2nd block)
      |                                                [B*T, D]  after global average pooling
      v
    head: VAP (RGB/PA/Lite/Flow/RGBDiff)               [B, C]
          or dropout + new_fc + average over T (TSN/TSM)

| modality | frames/segment | shift | head | what it is |
|----------|----------------|-------|------|------------|
| TSN      | 1 | no  | avg | TSN baseline (ResNet + average consensus) |
| TSM      | 1 | yes | avg | TSM baseline |
| RGB      | 1 | yes | VAP | PAN_Full's appearance stream |
| PA       | 4 | yes | VAP | PAN_Full's motion stream (PA map into the ImageNet RGB stem) |
| Lite     | 4 | yes | VAP | PAN_Lite (RGB frame 0 + PA into a 6-channel stem) |
| Flow     | 5 | yes | VAP | TSN's flow stream: 5 stored flow fields (x, y) per segment, 10-channel stem |
| RGBDiff  | 6 | yes | VAP | TSN's RGB-difference stream: 5 differences of 6 consecutive frames, 15-channel stem |

Flow and RGBDiff stems are built from the RGB stem as TSN does (kernel averaged over its 3 input
channels, replicated; bias kept), like Lite's. A Flow clip has 2 channels per frame (x, y as stored
by ``python -m data_prep flow``), every other clip 3 (RGB): ``[B, T*m*c, H, W]``, c =
:func:`channels_per_frame`. RGBDiff takes 6 frames per segment (the view of TSM's ``_get_diff``;
TSM's ``main.py`` loads only 5, see docs/models.md) and differences them inside the network.

Module names equal the official ones minus ``module.`` (``PA.shallow_conv.weight``,
``base_model.layer1.0.conv1.net.weight``, ``base_model.fc.TES.0.weight``, ``new_fc.weight``), and
``PA`` is registered before ``base_model``, so ``named_parameters()`` runs in the official order
(the official "first conv" optimiser group of PA/Lite is ``PA.shallow_conv``).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from pan_lib.backbones import BACKBONES, build_backbone
from pan_lib.modules.pa import PA
from pan_lib.modules.temporal_shift import SHIFT_PLACES, make_temporal_shift
from pan_lib.modules.vap import VAP

log = logging.getLogger(__name__)

MODALITIES = ("TSN", "TSM", "RGB", "PA", "Lite", "Flow", "RGBDiff")
HEADS = ("vap", "avg")
_FRAMES_PER_SEGMENT = {"TSN": 1, "TSM": 1, "RGB": 1, "PA": 4, "Lite": 4, "Flow": 5, "RGBDiff": 6}
_CHANNELS_PER_FRAME = {"Flow": 2}  # (x, y) flow; every other modality reads RGB frames (3)
_DEFAULT_SHIFT = {"TSN": False, "TSM": True, "RGB": True, "PA": True, "Lite": True, "Flow": True, "RGBDiff": True}
_DEFAULT_HEAD = {"TSN": "avg", "TSM": "avg", "RGB": "vap", "PA": "vap", "Lite": "vap", "Flow": "vap",
                 "RGBDiff": "vap"}

# The project's one table of renamed parameters: old spelling -> canonical name. Old spellings stay
# accepted where people type them or files keep them (build_model keywords, config dicts / YAML,
# `--set`, notebook parameters, old checkpoints); `pan_lib.engine.config.RENAMED_FIELDS` is this table.
RENAMED_FIELDS = {"segments": "num_segments", "fold_div": "shift_div", "dense": "dense_sample"}


def rename_fields(values: Mapping[str, Any], where: str = "parameters") -> dict[str, Any]:
    """``values`` with old spellings (:data:`RENAMED_FIELDS`) replaced by the canonical names, each
    logged as a warning. Giving both spellings with different values is a ``ValueError``."""
    out = dict(values)
    for old, new in RENAMED_FIELDS.items():
        if old not in out:
            continue
        value = out.pop(old)
        if new in out and out[new] != value:
            raise ValueError(f"{where}: {old}={value!r} (old name of {new}) contradicts {new}={out[new]!r}")
        log.warning("%s: %r is the old name of %r; read as %s=%r", where, old, new, new, value)
        out[new] = value
    return out


def _check_modality(modality: str) -> None:
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")


def frames_per_segment(modality: str) -> int:
    """Consecutive frames the loader must deliver per segment: 4 for PA/Lite, 5 flow fields for Flow,
    6 frames for RGBDiff (5 differences), 1 otherwise."""
    _check_modality(modality)
    return _FRAMES_PER_SEGMENT[modality]


def channels_per_frame(modality: str) -> int:
    """Channels of one input frame: 2 for Flow (x, y), 3 (RGB) otherwise."""
    _check_modality(modality)
    return _CHANNELS_PER_FRAME.get(modality, 3)


def stem_channels(modality: str) -> int:
    """Input channels of the ResNet stem: 6 Lite, 10 Flow, 15 RGBDiff, 3 otherwise."""
    m = frames_per_segment(modality)
    return {"Lite": 3 + (m - 1), "Flow": 2 * m, "RGBDiff": 3 * (m - 1)}.get(modality, 3)


def frame_differences(frames: Tensor, snippet_length: int) -> Tensor:
    """TSN's RGB difference: ``[N*m, 3, H, W]`` frames (m = ``snippet_length``) -> ``[N, 3*(m-1), H, W]``,
    the ``m-1`` differences ``frame[k] - frame[k-1]`` stacked in frame order."""
    h, w = frames.shape[-2:]
    snippet = frames.view(-1, snippet_length, 3, h, w)  # (N*m, 3, H, W) -> (N, m, 3, H, W)
    diff = snippet[:, 1:] - snippet[:, :-1]  # (N, m-1, 3, H, W)
    return diff.reshape(-1, 3 * (snippet_length - 1), h, w)  # -> (N, 3*(m-1), H, W)


def mean_rgb_stem(conv1: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """TSN's stem for non-RGB inputs: the 3-channel kernel averaged over its inputs and replicated to
    ``in_channels`` (``weight.mean(dim=1, keepdim=True).expand(...)``); the bias, if any, is kept.

    Used for Lite (6 channels; official behaviour, kept: its RGB half loses the colour filters too),
    Flow (10) and RGBDiff (15).
    """
    new = nn.Conv2d(
        in_channels, conv1.out_channels, conv1.kernel_size, conv1.stride, conv1.padding, bias=conv1.bias is not None
    )
    with torch.no_grad():
        mean_kernel = conv1.weight.mean(dim=1, keepdim=True)  # (64, 3, 7, 7) -> (64, 1, 7, 7)
        new.weight.copy_(mean_kernel.expand(-1, in_channels, -1, -1))  # -> (64, in_channels, 7, 7)
        if conv1.bias is not None:
            new.bias.copy_(conv1.bias)
    return new


def lite_stem(conv1: nn.Conv2d, in_channels: int = 6) -> nn.Conv2d:
    """The official Lite stem (:func:`mean_rgb_stem` with 6 channels)."""
    return mean_rgb_stem(conv1, in_channels)


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a network: the one source of :func:`build_model`'s arguments.

    Stored on the model (``model.model_config``), in checkpoints (official-layout ``model_config``,
    engine ``model_meta``) and in training records; :func:`build_model` rebuilds the network from it.
    ``shift`` and ``head`` left as ``None`` take the modality's default (so a stored config is explicit).

    Fields:
        modality: one of :data:`MODALITIES`.
        num_classes: classes of the classifier.
        num_segments: ``T`` (VAP fixes it: test with the training ``T``).
        backbone: a name from :data:`pan_lib.backbones.BACKBONES` (``resnet50`` as in the paper;
            ``resnet_tiny`` for CPU tutorials).
        pretrained: load torchvision ImageNet weights (downloads on first use; raises a clear error offline).
        dropout: before the classifier (VAP's dropout, or TSN's ``fc`` Dropout).
        shift: temporal shift on/off; default off for TSN, on for every other modality.
        head: ``"vap"`` or ``"avg"`` (dropout + ``new_fc`` + average consensus); default VAP for
            RGB/PA/Lite/Flow/RGBDiff and avg for TSN/TSM.
        shift_div: ``1/shift_div`` of the channels shift each way (the official ``--shift_div``).
        shift_place: ``"blockres"`` (official) or ``"block"``.
    """

    modality: str
    num_classes: int
    num_segments: int = 8
    backbone: str = "resnet50"
    pretrained: bool = False
    dropout: float = 0.5
    shift: bool | None = None
    head: str | None = None
    shift_div: int = 8
    shift_place: str = "blockres"

    def __post_init__(self) -> None:
        _check_modality(self.modality)
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; valid: {', '.join(BACKBONES)}")
        head = _DEFAULT_HEAD[self.modality] if self.head is None else self.head
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; valid: {', '.join(HEADS)}")
        if self.shift_place not in SHIFT_PLACES:
            raise ValueError(f"unknown shift_place {self.shift_place!r}; valid: {', '.join(SHIFT_PLACES)}")
        if self.num_classes < 1 or self.num_segments < 1:
            raise ValueError(f"num_classes and num_segments must be >= 1, got {self.num_classes}, {self.num_segments}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        shift = _DEFAULT_SHIFT[self.modality] if self.shift is None else bool(self.shift)
        object.__setattr__(self, "head", head)  # frozen dataclass: resolve the defaults once
        object.__setattr__(self, "shift", shift)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, ignore_unknown: bool = False) -> "ModelConfig":
        """From plain values; old spellings (``fold_div``, ...) map through :data:`RENAMED_FIELDS`.

        ``ignore_unknown`` drops keys that are not fields (checkpoint metadata also holds
        ``new_length``, ``input_size``, ...); otherwise they raise ``TypeError``.
        """
        values = rename_fields(values, "model config")
        valid = cls.field_names()
        unknown = sorted(k for k in values if k not in valid)
        if unknown and not ignore_unknown:
            raise TypeError(f"unknown model argument(s) {unknown}; valid: {', '.join(valid)}")
        return cls(**{k: v for k, v in values.items() if k in valid})

    def to_dict(self) -> dict[str, Any]:
        """Plain-type fields (what checkpoints and records store)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "ModelConfig":
        return type(self).from_dict({**self.to_dict(), **changes})

    @property
    def new_length(self) -> int:
        """Frames per segment the loader must deliver (4 PA/Lite, 5 Flow, 6 RGBDiff, 1 otherwise)."""
        return _FRAMES_PER_SEGMENT[self.modality]

    @property
    def channels_per_frame(self) -> int:
        """2 for Flow (x, y), 3 otherwise."""
        return channels_per_frame(self.modality)


class PANNet(nn.Module):
    """TSN/TSM/PAN network built from a :class:`ModelConfig`. Use :func:`build_model`; the attributes
    below are part of the API.

    Attributes:
        model_config (the :class:`ModelConfig`), modality, num_segments, num_classes, backbone_name,
        head ("vap"|"avg"), shift (bool), shift_div, shift_place, dropout, new_length (frames per
        segment the loader must deliver), base_model (the ResNet, ``fc`` replaced by the head), PA
        (PA/Lite only), new_fc (avg head with dropout > 0), feature_dim.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.model_config = config
        self.modality = config.modality
        self.num_classes = config.num_classes
        self.num_segments = config.num_segments
        self.new_length = config.new_length
        self.backbone_name = config.backbone
        self.head = config.head
        self.shift = config.shift
        self.shift_div = config.shift_div
        self.shift_place = config.shift_place
        self.dropout = dropout = config.dropout
        num_segments, num_classes = config.num_segments, config.num_classes

        # registration order = official order: PA first (the "first conv" of PA/Lite), then the backbone
        if self.modality in ("PA", "Lite"):
            self.PA = PA(n_length=self.new_length)
        base = build_backbone(config.backbone, pretrained=config.pretrained)
        if self.shift:
            make_temporal_shift(base, num_segments, n_div=config.shift_div, place=config.shift_place)
        base.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = base.fc.in_features
        if self.head == "vap":
            base.fc = VAP(num_segments, self.feature_dim, num_classes, dropout)
        elif dropout > 0:  # official TSN head: fc -> Dropout, new_fc Linear, average consensus
            base.fc = nn.Dropout(p=dropout)
        else:
            base.fc = _normal_linear(self.feature_dim, num_classes)
        if self.modality in ("Lite", "Flow", "RGBDiff"):
            base.conv1 = mean_rgb_stem(base.conv1, stem_channels(self.modality))
        self.base_model = base
        if self.head == "avg" and dropout > 0:
            self.new_fc = _normal_linear(self.feature_dim, num_classes)
        else:
            self.new_fc = None

    @property
    def channels_per_frame(self) -> int:
        """Channels of one input frame: 2 for Flow (x, y), 3 otherwise."""
        return channels_per_frame(self.modality)

    @property
    def input_channels(self) -> int:
        """Channels per segment of the input clip: ``channels_per_frame * new_length`` (10 for Flow)."""
        return self.channels_per_frame * self.new_length

    def _frames(self, x: Tensor) -> Tensor:
        """Validate the clip layout and return ``[B*T*m, c, H, W]`` frames (c = channels per frame)."""
        t, c = self.num_segments, self.input_channels
        if x.dim() == 4 and x.shape[1] == t * c:
            pass
        elif x.dim() == 5 and tuple(x.shape[1:3]) == (t, c):
            pass
        else:
            raise ValueError(
                f"{self.modality} with {t} segments x {self.new_length} frames expects a clip "
                f"[B, {t * c}, H, W] or [B, {t}, {c}, H, W], got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        return x.reshape(-1, self.channels_per_frame, h, w)  # (B, T*m*c, H, W) -> (B*T*m, c, H, W)

    def backbone_input(self, x: Tensor) -> Tensor:
        """What enters the ResNet stem: ``[B*T, 3 | 6 | 10 | 15, H, W]`` (RGB frames, PA map, both for
        Lite, stacked flow, frame differences)."""
        frames = self._frames(x)
        h, w = frames.shape[-2:]
        if self.modality == "Flow":
            return frames.reshape(-1, self.input_channels, h, w)  # (B*T*5, 2, H, W) -> (B*T, 10, H, W)
        if self.modality == "RGBDiff":
            return frame_differences(frames, self.new_length)  # (B*T*6, 3, H, W) -> (B*T, 15, H, W)
        if self.modality == "PA":
            return self.PA(frames)  # (B*T*4, 3, H, W) -> (B*T, 3, H, W)
        if self.modality == "Lite":
            return self.PA.with_first_frame(frames)  # (B*T*4, 3, H, W) -> first frame + PA (B*T, 6, H, W)
        return frames

    def forward(self, x: Tensor) -> Tensor:
        """Clip ``[B, T*m*3, H, W]`` or ``[B, T, m*3, H, W]`` -> logits ``[B, num_classes]``."""
        out = self.base_model(self.backbone_input(x))  # VAP: (B, C); avg head: (B*T, D) or (B*T, C)
        if self.head == "vap":
            return out
        if self.new_fc is not None:
            out = self.new_fc(out)  # (B*T, D) -> (B*T, C)
        return out.view(-1, self.num_segments, self.num_classes).mean(dim=1)  # (B*T, C) -> (B, C)

    def config(self) -> dict[str, Any]:
        """``model_config`` as plain types (stored in checkpoints; ``build_model(**cfg)`` rebuilds it)."""
        return self.model_config.to_dict()

    def extra_repr(self) -> str:
        return (
            f"modality={self.modality!r}, backbone={self.backbone_name!r}, num_segments={self.num_segments}, "
            f"new_length={self.new_length}, head={self.head!r}, shift={self.shift}"
        )


def _normal_linear(in_features: int, out_features: int) -> nn.Linear:
    fc = nn.Linear(in_features, out_features)
    nn.init.normal_(fc.weight, 0.0, 0.001)
    nn.init.constant_(fc.bias, 0.0)
    return fc


def build_model(modality: str | ModelConfig, num_classes: int | None = None, **kwargs: Any) -> PANNet:
    """Build a TSN / TSM / PAN (RGB, PA, Lite) network, or a PAN-style Flow / RGBDiff stream.

    ``build_model(ModelConfig(...))`` or ``build_model(modality, num_classes, num_segments=8,
    backbone="resnet50", pretrained=False, dropout=0.5, shift=None, head=None, shift_div=8,
    shift_place="blockres")``: the keywords are the :class:`ModelConfig` fields (documented there);
    ``fold_div`` is still accepted for ``shift_div`` (:data:`RENAMED_FIELDS`).
    """
    if isinstance(modality, ModelConfig):
        if num_classes is not None or kwargs:
            raise TypeError("build_model(ModelConfig) takes no further arguments; use config.replace(...)")
        return PANNet(modality)
    if num_classes is None:
        raise TypeError("build_model() needs num_classes")
    return PANNet(ModelConfig.from_dict({"modality": modality, "num_classes": num_classes, **kwargs}))
