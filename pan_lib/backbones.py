"""Backbones: torchvision ResNets (optionally with ImageNet weights) and a tiny ResNet for CPU tutorials.

All backbones are ``torchvision.models.ResNet`` instances (``conv1, bn1, relu, maxpool, layer1..4,
avgpool, fc``), so :func:`pan_lib.modules.temporal_shift.make_temporal_shift` and the official
checkpoint key layout apply to all of them.

| name         | block      | blocks       | widths              | feature dim | ImageNet weights |
|--------------|------------|--------------|---------------------|-------------|------------------|
| resnet18     | BasicBlock | 2-2-2-2      | 64-128-256-512      | 512         | IMAGENET1K_V1    |
| resnet34     | BasicBlock | 3-4-6-3      | 64-128-256-512      | 512         | IMAGENET1K_V1    |
| resnet50     | Bottleneck | 3-4-6-3      | 64-128-256-512 (x4) | 2048        | IMAGENET1K_V1    |
| resnet101    | Bottleneck | 3-4-23-3     | 64-128-256-512 (x4) | 2048        | IMAGENET1K_V1    |
| resnet_tiny  | BasicBlock | 1-1-1-1      | 16-32-64-128        | 128         | none (CPU tutorials) |

``IMAGENET1K_V1`` are the weights ``torchvision.models.resnet50(pretrained=True)`` gave the official
code. They are downloaded by torchvision on first use into ``torch.hub.get_dir()/checkpoints``
(``$TORCH_HOME/hub/checkpoints/<file name of the weights URL>``, :func:`imagenet_weights_file`); a
file already there is used without network, so an offline machine needs only that file copied in.
Nothing here needs them (``pretrained=False`` is the default).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.models.resnet import BasicBlock, ResNet

log = logging.getLogger(__name__)


class TinyResNet(ResNet):
    """A torchvision ``ResNet`` with BasicBlocks and narrow stages (default 16-32-64-128, one block each).

    Same module structure and names as torchvision's ResNets (so temporal shift, PA/Lite stems and
    checkpoints work unchanged), sized so that a PAN_Lite training step on 8x4 frames at 64x64 runs in
    tens of milliseconds on a 2-core CPU.
    """

    def __init__(
        self,
        layers: Sequence[int] = (1, 1, 1, 1),
        widths: Sequence[int] = (16, 32, 64, 128),
        num_classes: int = 1000,
    ) -> None:
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError(f"TinyResNet needs 4 stages, got layers={layers}, widths={widths}")
        nn.Module.__init__(self)  # build the stages ourselves; torchvision's __init__ fixes widths at 64..512
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = widths[0]
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(BasicBlock, widths[0], layers[0])
        self.layer2 = self._make_layer(BasicBlock, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(BasicBlock, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(BasicBlock, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3] * BasicBlock.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    feature_dim: int
    weights: str | None  # torchvision weights enum member, e.g. "ResNet50_Weights.IMAGENET1K_V1"
    description: str


BACKBONES: dict[str, BackboneSpec] = {
    "resnet18": BackboneSpec("resnet18", 512, "ResNet18_Weights.IMAGENET1K_V1", "ResNet-18 (torchvision)"),
    "resnet34": BackboneSpec("resnet34", 512, "ResNet34_Weights.IMAGENET1K_V1", "ResNet-34 (torchvision)"),
    "resnet50": BackboneSpec("resnet50", 2048, "ResNet50_Weights.IMAGENET1K_V1", "ResNet-50 (PAN's backbone)"),
    "resnet101": BackboneSpec("resnet101", 2048, "ResNet101_Weights.IMAGENET1K_V1", "ResNet-101 (PAN_En R101)"),
    "resnet_tiny": BackboneSpec("resnet_tiny", 128, None, "1-1-1-1 BasicBlocks, widths 16-32-64-128 (CPU tutorials)"),
}


class PretrainedWeightsUnavailable(RuntimeError):
    """ImageNet weights were asked for but cannot be had (no network, or none exist for the backbone)."""


def _weights_enum(spec: BackboneSpec):
    enum_name, member = spec.weights.split(".")
    return getattr(getattr(tvm, enum_name), member)


def imagenet_weights_file(name: str) -> Path:
    """Where torchvision looks for (and downloads) ``name``'s ImageNet weights: the hub cache."""
    spec = BACKBONES[name]
    if spec.weights is None:
        raise PretrainedWeightsUnavailable(f"backbone {name!r} has no ImageNet weights")
    return Path(torch.hub.get_dir()) / "checkpoints" / _weights_enum(spec).url.rsplit("/", 1)[-1]


def _load_imagenet_weights(model: ResNet, spec: BackboneSpec, progress: bool) -> None:
    if spec.weights is None:
        raise PretrainedWeightsUnavailable(
            f"backbone {spec.name!r} has no ImageNet weights; use pretrained=False "
            f"(backbones with weights: {', '.join(n for n, s in BACKBONES.items() if s.weights)})"
        )
    weights = _weights_enum(spec)
    try:
        state = weights.get_state_dict(progress=progress, check_hash=True)
    except Exception as err:  # network errors come in many types (URLError, OSError, HTTPError, ...)
        cache = imagenet_weights_file(spec.name)
        raise PretrainedWeightsUnavailable(
            f"could not get ImageNet weights {spec.weights} for {spec.name} ({type(err).__name__}: {err}). "
            f"Either download {weights.url} on a machine with internet and copy it to {cache} "
            f"(or set TORCH_HOME), or build the model with pretrained=False."
        ) from err
    model.load_state_dict(state)
    log.info("loaded ImageNet weights %s into %s", spec.weights, spec.name)


def build_backbone(name: str, *, pretrained: bool = False, progress: bool = False) -> ResNet:
    """A torchvision-structured ResNet by name (see :data:`BACKBONES`), ImageNet weights optional."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES)}")
    spec = BACKBONES[name]
    model = TinyResNet() if name == "resnet_tiny" else getattr(tvm, name)(weights=None)
    if pretrained:
        _load_imagenet_weights(model, spec, progress)
    return model
