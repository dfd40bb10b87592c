"""Official PAN checkpoints: safe loading into our networks, saving in the official layout, file names.

Official layout (``main.py`` of zhang-can/PAN-PyTorch)::

    {'epoch': int, 'arch': 'resnet50', 'state_dict': {'module.<key>': Tensor, ...},
     'optimizer': SGD state_dict, 'best_prec1': float}

saved as ``PAN_<Lite|RGB|PA|Flow|RGBDiff>_<dataset>_<arch>_shift8_blockres_avg_segment<T>_e<E>.pth.tar`` (or as
``checkpoint/<that name>/ckpt[.best].pth.tar`` during training). Our module names equal the official
ones minus ``module.``, so official weights load 1:1 and ours load into the official code.

Every file is read with ``torch.load(..., weights_only=True)``: tensors and plain containers only.
A file that would need arbitrary unpickling (which can run code) is refused with
:class:`UnsafeCheckpointError`. Numpy scalars and dtypes (data, not code) are allowed.

:func:`load_checkpoint` also reads the engine's training checkpoints (``last.pt``/``best.pt``, format
``pan-workbook/train-checkpoint/1``) and bare state dicts.
"""
from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pan_lib.backbones import BACKBONES, build_backbone
from pan_lib.models import MODALITIES, ModelConfig, PANNet, build_model, rename_fields, stem_channels

log = logging.getLogger(__name__)

OFFICIAL_KEYS = ("epoch", "arch", "state_dict", "optimizer", "best_prec1")
_SUFFIXES = (".pth.tar", ".pth", ".pt", ".tar", ".ckpt")


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The file needs arbitrary unpickling (it could run code) and was not loaded."""


class CheckpointMismatchError(RuntimeError):
    """The checkpoint's keys or shapes do not fit the model."""


# --------------------------------------------------------------------------------------- file names
@dataclass(frozen=True)
class CheckpointName:
    """What an official checkpoint file name says about its model."""

    modality: str  # Lite | RGB | PA | Flow | RGBDiff | TSN | TSM
    dataset: str
    arch: str
    num_segments: int
    epochs: int
    shift: bool = True
    shift_div: int = 8
    shift_place: str = "blockres"
    temporal_pool: bool = False
    consensus: str = "avg"
    extras: tuple[str, ...] = ()  # trailing parts: pretrain, lr_type, dense, nl, suffix
    prefix: str = "PAN"  # PAN (PAN's main.py) or TSM (TSM's main.py, used for the TSN/TSM baselines)

    @property
    def dense_sample(self) -> bool:
        return "dense" in self.extras

    @property
    def non_local(self) -> bool:
        return "nl" in self.extras

    def model_kwargs(self) -> dict[str, Any]:
        """:class:`ModelConfig` fields the name determines (num_classes and head come from the weights)."""
        return {"modality": self.modality, "num_segments": self.num_segments, "backbone": self.arch,
                "shift": self.shift, "shift_div": self.shift_div, "shift_place": self.shift_place}


_NAME_RE = re.compile(
    r"^(?P<prefix>PAN|TSM)_(?P<a>[^_]+)_(?P<b>[^_]+)_(?P<arch>.+?)"
    r"(?:_shift(?P<div>\d+)_(?P<place>blockres|block))?(?P<tpool>_tpool)?"
    r"_(?P<consensus>[A-Za-z]+)_segment(?P<segments>\d+)_e(?P<epochs>\d+)(?P<rest>(?:_[^_]+)*)$"
)


def _stem(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def parse_checkpoint_name(name: str | os.PathLike) -> CheckpointName:
    """Parse ``PAN_<modality>_<dataset>_<arch>[_shift<d>_<place>][_tpool]_<consensus>_segment<T>_e<E>[...]``.

    Also accepts TSM's own convention (``TSM_<dataset>_RGB_<arch>...``: TSM with a shift token, TSN
    without) and the training layout ``<store_name>/ckpt[.best].pth.tar``. Unlike the official
    ``test_models.py`` (which takes every name containing "PA" for a PA model) the modality is read
    from its position.
    """
    path = Path(name)
    stem = _stem(path.name)
    if stem in ("ckpt", "ckpt.best") and path.parent.name:
        stem = path.parent.name
    match = _NAME_RE.match(stem)
    if match is None:
        raise ValueError(
            f"{path.name!r} does not follow the official checkpoint name pattern "
            "PAN_<Lite|RGB|PA|Flow|RGBDiff>_<dataset>_<arch>_shift8_blockres_avg_segment<T>_e<E>.pth.tar; "
            "pass a model built with pan_lib.build_model(...) to load it"
        )
    g = match.groupdict()
    shift = g["div"] is not None
    if g["prefix"] == "PAN":
        modality, dataset = g["a"], g["b"]
    else:  # TSM_<dataset>_<modality>_...: RGB networks with the average head
        dataset, modality = g["a"], g["b"]
        if modality == "RGB":
            modality = "TSM" if shift else "TSN"
    if modality not in MODALITIES:
        raise ValueError(f"{path.name!r}: modality {modality!r} is not supported; valid: {', '.join(MODALITIES)}")
    return CheckpointName(
        modality=modality, dataset=dataset, arch=g["arch"], num_segments=int(g["segments"]), epochs=int(g["epochs"]),
        shift=shift, shift_div=int(g["div"]) if shift else 8, shift_place=g["place"] or "blockres",
        temporal_pool=bool(g["tpool"]), consensus=g["consensus"],
        extras=tuple(p for p in g["rest"].split("_") if p), prefix=g["prefix"],
    )


def official_checkpoint_name(
    modality: str,
    dataset: str,
    *,
    arch: str = "resnet50",
    num_segments: int = 8,
    epochs: int,
    shift: bool | None = None,
    shift_div: int = 8,
    shift_place: str = "blockres",
    consensus: str = "avg",
    extras: tuple[str, ...] | list[str] = (),
) -> str:
    """The official file name (``store_name + '.pth.tar'``) for a model; inverse of :func:`parse_checkpoint_name`.

    RGB/PA/Lite use PAN's pattern; the TSN/TSM baselines use TSM's (``TSM_<dataset>_RGB_...``), which
    the official test scripts read as RGB networks without VAP.
    """
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")
    if "_" in dataset:
        raise ValueError(f"dataset name {dataset!r} must not contain '_' (the name is '_'-separated)")
    shift = modality != "TSN" if shift is None else shift
    arch_part = arch + (f"_shift{shift_div}_{shift_place}" if shift else "")
    if modality in ("TSN", "TSM"):
        if shift != (modality == "TSM"):
            raise ValueError(f"{modality} {'without' if modality == 'TSM' else 'with'} shift has no official name")
        head = ["TSM", dataset, "RGB"]
    else:
        head = ["PAN", modality, dataset]
    parts = head + [arch_part, consensus, f"segment{num_segments}", f"e{epochs}", *extras]
    return "_".join(parts) + ".pth.tar"


# --------------------------------------------------------------------------------------- reading
def _numpy_safe_globals() -> list:
    core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1
    scalar = core.multiarray.scalar
    dtype_classes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)]
    return [scalar, np.dtype, *dtype_classes]


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; files that need arbitrary unpickling are refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # noqa: BLE001 - listing is best effort (legacy formats)
            unsafe = []
        listing = f" It references: {', '.join(unsafe)}." if unsafe else ""
        raise UnsafeCheckpointError(
            f"refused to load {path}: it is not a plain tensor checkpoint and unpickling it could run "
            f"arbitrary code.{listing} A checkpoint from the internet must never be unpickled. If you made "
            "this file yourself and trust it, re-save its weights once: "
            "sd = torch.load(path, weights_only=False)['state_dict']; torch.save({'state_dict': sd}, new_path)."
        ) from err


def strip_module_prefix(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official key names -> ours: drop ``module.`` (DataParallel), rename ``base_model.classifier.`` -> ``new_fc.``."""
    out = {}
    for key, value in state_dict.items():
        while key.startswith("module."):
            key = key[len("module."):]
        if key.startswith("base_model.classifier."):  # MobileNet legacy, renamed by test_models.py too
            key = "new_fc." + key[len("base_model.classifier."):]
        out[key] = value
    return out


def _split_checkpoint(obj: Any, path: Path) -> tuple[dict[str, Tensor], dict[str, Any], dict[str, Any]]:
    """-> (state_dict without prefixes, metadata, stored model config: ModelConfig fields, old names mapped)."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a dict checkpoint, got {type(obj).__name__}")
    if "state_dict" in obj:  # official layout (+ our optional model_config)
        state, config = obj["state_dict"], obj.get("model_config") or {}
        meta = {"epoch": obj.get("epoch"), "arch": obj.get("arch"), "best_prec1": obj.get("best_prec1"),
                "optimizer": obj.get("optimizer")}
    elif "model" in obj and isinstance(obj.get("model"), Mapping):  # the engine's training checkpoint
        state, config = obj["model"], obj.get("model_meta") or {}
        meta = {"epoch": obj.get("epoch"), "arch": config.get("backbone"), "best_prec1": obj.get("best_top1"),
                "optimizer": obj.get("optimizer")}
    elif obj and all(isinstance(v, Tensor) for v in obj.values()):  # a bare state dict
        state, config, meta = obj, {}, {}
    else:
        raise ValueError(f"{path}: no 'state_dict' (official layout) or 'model' entry; keys: {sorted(obj)[:10]}")
    stored = rename_fields(config, f"{path.name}: model config")
    return strip_module_prefix(state), meta, {k: v for k, v in stored.items() if k in ModelConfig.field_names()}


# --------------------------------------------------------------------------------------- inference
def _stage_blocks(state: Mapping[str, Tensor]) -> list[int]:
    blocks = []
    for s in range(1, 5):
        idx = {int(m.group(1)) for k in state if (m := re.match(rf"base_model\.layer{s}\.(\d+)\.", k))}
        blocks.append(max(idx) + 1 if idx else 0)
    return blocks


def infer_backbone(state: Mapping[str, Tensor]) -> str:
    """The backbone whose blocks and widths match a (prefix-free) PAN state dict."""
    blocks = _stage_blocks(state)
    bottleneck = any(re.match(r"base_model\.layer1\.0\.(conv3|net\.conv3)", k) for k in state)
    width = state.get("base_model.bn1.weight")
    for name in BACKBONES:
        with torch.device("meta"):
            ref = build_backbone(name)
        if ([len(getattr(ref, f"layer{s}")) for s in range(1, 5)] == blocks
                and hasattr(ref.layer1[0], "conv3") == bottleneck
                and (width is None or ref.bn1.weight.shape == width.shape)):
            return name
    raise ValueError(f"no known backbone has {blocks} blocks per stage (bottleneck={bottleneck}); "
                     f"known: {', '.join(BACKBONES)}")


def infer_model_config(state: Mapping[str, Tensor], name: CheckpointName | None = None) -> dict[str, Any]:
    """:class:`ModelConfig` fields from the weights (num_classes, head, modality, backbone) and the file name."""
    cfg: dict[str, Any] = dict(name.model_kwargs()) if name else {}
    has_pa = "PA.shallow_conv.weight" in state
    stem = state.get("base_model.conv1.weight")
    if "base_model.fc.pred.weight" in state:
        cfg["head"], cfg["num_classes"] = "vap", state["base_model.fc.pred.weight"].shape[0]
    elif "new_fc.weight" in state:
        cfg["head"], cfg["num_classes"] = "avg", state["new_fc.weight"].shape[0]
    elif "base_model.fc.weight" in state:  # TSN head with dropout 0
        cfg["head"], cfg["num_classes"], cfg["dropout"] = "avg", state["base_model.fc.weight"].shape[0], 0.0
    else:
        raise ValueError("cannot find the classifier (base_model.fc.pred / new_fc / base_model.fc) in the checkpoint")
    by_stem = {stem_channels(m): m for m in ("Lite", "Flow", "RGBDiff")}  # 6, 10, 15 input channels
    if stem is not None and stem.shape[1] in by_stem:
        weights_modality = by_stem[stem.shape[1]]
    elif has_pa:
        weights_modality = "PA"
    else:
        weights_modality = None  # RGB, TSN or TSM: decided by the name or the head
    if "modality" in cfg:
        named = cfg["modality"]
        if (weights_modality and named != weights_modality) or (not weights_modality and named in ("PA", *by_stem.values())):
            raise CheckpointMismatchError(f"file name says {cfg['modality']} but the weights are a "
                                          f"{weights_modality or 'RGB/TSN/TSM (no PA weights, 3-channel stem)'} network")
    else:
        cfg["modality"] = weights_modality or ("RGB" if cfg["head"] == "vap" else "TSM")
    shifted = [k for k in state if ".net." in k and k.startswith("base_model.layer")]
    cfg.setdefault("shift", bool(shifted))
    if shifted:
        cfg.setdefault("shift_place", "blockres" if any(".conv1.net." in k for k in shifted) else "block")
    if cfg["modality"] == "TSM" and not cfg["shift"]:
        cfg["modality"] = "TSN"
    cfg.setdefault("backbone", infer_backbone(state))
    if "num_segments" not in cfg:
        if cfg["head"] == "vap":
            slots = state["base_model.fc.TES.0.weight"].shape[1]
            cfg["num_segments"] = slots + 1  # 2^L - 1 slots <- T = 2^L (the common case; 12 would also give 7)
        else:
            cfg["num_segments"] = 8
        log.warning("checkpoint has no official file name: assuming num_segments=%d", cfg["num_segments"])
    return cfg


# --------------------------------------------------------------------------------------- loading
@dataclass
class LoadedCheckpoint:
    """Result of :func:`load_checkpoint`: the model with its weights plus the file's metadata."""

    model: PANNet
    path: Path
    config: dict[str, Any]
    epoch: int | None = None
    arch: str | None = None
    best_prec1: float | None = None
    optimizer: dict | None = None
    name: CheckpointName | None = None
    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)


def _mismatch_hints(missing: list[str], unexpected: list[str], shapes: list[str]) -> list[str]:
    hints = []
    if any(".conv1.net." in k for k in unexpected) and any(".conv1.weight" in k for k in missing):
        hints.append("the checkpoint has temporal shift where the model has none (shift / backbone depth)")
    if any(".conv1.net." in k for k in missing) and any(".conv1.weight" in k for k in unexpected):
        hints.append("the model has temporal shift where the checkpoint has none (build with shift=False?)")
    if any("fc.TES" in k for k in unexpected) and any("new_fc" in k for k in missing):
        hints.append("the checkpoint has a VAP head, the model the TSN average head: build it with head='vap' "
                     "(the official test_models.py needs --VAP for the same reason)")
    if any("new_fc" in k for k in unexpected) and any("fc.TES" in k for k in missing):
        hints.append("the checkpoint has the TSN average head: build the model with head='avg'")
    if any(k.startswith("PA.") for k in unexpected):
        hints.append("the checkpoint is a PA or Lite network")
    if any(k.startswith("PA.") for k in missing):
        hints.append("the model is a PA/Lite network but the checkpoint has no PA weights (RGB/TSN/TSM?)")
    if any("conv1.weight" in s and "base_model.conv1" in s for s in shapes):
        hints.append("stem channels differ: conv1 has 3 input channels for RGB/PA/TSN/TSM, 6 for Lite, "
                     "10 for Flow, 15 for RGBDiff")
    if any("pred.weight" in s or "new_fc.weight" in s for s in shapes):
        hints.append("num_classes differs")
    if any("TES" in s for s in shapes):
        hints.append("num_segments differs (VAP fixes the number of segments)")
    return hints


def load_state_dict_checked(model: nn.Module, state: Mapping[str, Tensor], *, strict: bool = True,
                            assign: bool = False, source: str = "checkpoint") -> tuple[list[str], list[str]]:
    """``load_state_dict`` with an explanation of what does not fit; returns (missing, unexpected)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {list(state[k].shape)} vs model {list(v.shape)}"
              for k, v in own.items() if k in state and state[k].shape != v.shape]
    if shapes or (strict and (missing or unexpected)):
        lines = [f"{source} does not fit the model"]
        if missing:
            lines.append(f"  missing in checkpoint ({len(missing)}): {missing[:6]}{' ...' if len(missing) > 6 else ''}")
        if unexpected:
            lines.append(f"  unexpected in checkpoint ({len(unexpected)}): {unexpected[:6]}"
                         f"{' ...' if len(unexpected) > 6 else ''}")
        if shapes:
            lines.append(f"  shape mismatches ({len(shapes)}): {shapes[:4]}")
        lines += [f"  hint: {h}" for h in _mismatch_hints(missing, unexpected, shapes)]
        raise CheckpointMismatchError("\n".join(lines))
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False, assign=assign)
    return missing, unexpected


def load_checkpoint(
    path: str | os.PathLike,
    model: PANNet | None = None,
    *,
    map_location: str | torch.device = "cpu",
    strict: bool = True,
) -> LoadedCheckpoint:
    """Load an official (or our) checkpoint safely into ``model``, or into a model built for it.

    Args:
        path: ``.pth.tar`` in the official layout, one saved by :func:`save_official_checkpoint`, an
            engine ``last.pt``/``best.pt``, or a bare state dict.
        model: load into this network; ``None`` builds one from the stored config, else from the
            official file name (:func:`parse_checkpoint_name`) and the state-dict shapes.
        map_location: where the tensors go.
        strict: every key must match (the official test script loads strictly too).
    Returns:
        :class:`LoadedCheckpoint` (``.model`` in eval mode is NOT set; call ``.eval()`` yourself).
    Raises:
        UnsafeCheckpointError: the file needs arbitrary unpickling.
        CheckpointMismatchError: keys/shapes do not fit (with hints: shift, head, modality, classes).
    """
    path = Path(path)
    state, meta, stored = _split_checkpoint(read_checkpoint(path, map_location), path)
    try:
        name = parse_checkpoint_name(path)
    except ValueError:
        name = None
    if model is not None:
        missing, unexpected = load_state_dict_checked(model, state, strict=strict, source=str(path))
        config = model.config() if hasattr(model, "config") else {}
    else:
        required = {"modality", "num_classes", "num_segments", "backbone"}
        values = dict(stored) if required <= stored.keys() else {**infer_model_config(state, name), **stored}
        if values.get("backbone") not in BACKBONES:
            raise ValueError(f"{path.name}: backbone {values.get('backbone')!r} is not available; "
                             f"valid: {', '.join(BACKBONES)}")
        # the weights come from the file: never download ImageNet weights for a stored pretrained=True
        model_config = ModelConfig.from_dict({**values, "pretrained": False})
        config = model_config.to_dict()
        if strict:  # build without initialising (meta), then adopt the loaded tensors
            with torch.device("meta"):
                model = build_model(model_config)
            missing, unexpected = load_state_dict_checked(model, state, strict=True, assign=True, source=str(path))
        else:
            model = build_model(model_config).to(map_location)
            missing, unexpected = load_state_dict_checked(model, state, strict=False, source=str(path))
    log.info("loaded %s (%s, epoch %s, best_prec1 %s)", path.name, config.get("modality"), meta.get("epoch"),
             meta.get("best_prec1"))
    return LoadedCheckpoint(model=model, path=path, config=config, epoch=meta.get("epoch"), arch=meta.get("arch"),
                            best_prec1=meta.get("best_prec1"), optimizer=meta.get("optimizer"), name=name,
                            missing_keys=missing, unexpected_keys=unexpected)


# --------------------------------------------------------------------------------------- saving
def save_official_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    epoch: int,
    best_prec1: float,
    optimizer: torch.optim.Optimizer | Mapping | None = None,
    arch: str | None = None,
    include_config: bool = True,
) -> Path:
    """Write ``{'epoch','arch','state_dict' (module.-prefixed),'optimizer','best_prec1'}`` atomically.

    The file loads in the official ``test_models.py`` / ``main.py --resume`` and in :func:`load_checkpoint`.
    ``include_config`` adds a ``model_config`` entry (the :class:`ModelConfig` as plain types; the
    official code ignores it) so
    the model can be rebuilt even when the file is renamed. ``optimizer`` may be an optimizer or
    its ``state_dict()`` (``None`` is stored when not given).
    """
    bare = model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model
    state = {"module." + k: v.detach().cpu() for k, v in bare.state_dict().items()}
    if isinstance(optimizer, torch.optim.Optimizer):
        optimizer = optimizer.state_dict()
    ckpt: dict[str, Any] = {
        "epoch": int(epoch),
        "arch": arch or getattr(bare, "backbone_name", type(bare).__name__),
        "state_dict": state,
        "optimizer": optimizer,
        "best_prec1": float(best_prec1),
    }
    if include_config and hasattr(bare, "config"):
        ckpt["model_config"] = bare.config()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, path)  # atomic: an interrupted save leaves any previous file intact
    finally:
        tmp.unlink(missing_ok=True)
    return path
