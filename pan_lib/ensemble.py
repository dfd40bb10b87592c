"""Test-time ensembles of separately trained networks: PAN_Full = RGB + PA, PAN_En = Lite + RGB + PA,
and the two-stream baselines PAN_Full stands in for: TwoStream_Flow = RGB + Flow, TwoStream_RGBDiff =
RGB + RGBDiff.

The official ``test_models.py`` averages the raw logits of its members (``sum(coeff_k * logits_k) / K``,
coefficients 1 by default); :class:`Ensemble` returns the weighted mean ``sum(w_k * logits_k) / sum(w_k)``,
which is the same with equal weights and ranks classes identically for any positive weights.

Usable like one model: ``Ensemble(...)(clip)`` takes the clip of the member with the most frames per
segment (``m = 4`` when a PA/Lite member is present: ``[B, T*4*3, H, W]``) and gives ``m = 1``
members (RGB/TSN/TSM) the **first frame of each 4-frame snippet**. This is an approximation: the
official test protocol samples each member's frames with its own offsets (RGB takes the centre frame
of each segment, PA/Lite a 4-frame snippet starting at it). ``pan_lib.engine``'s evaluation does that
exact per-member sampling; use this class for demos, FLOP counts and quick checks.

A Flow member cannot be fed from RGB frames: call the ensemble with ``{member name: clip}`` (each
member's own clip, e.g. ``{"RGB": rgb_clip, "Flow": flow_clip}``) instead of one tensor.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from pan_lib.models import PANNet

# Display names (results tables, records, plots) of what each modality label is trained/tested as:
# single networks, the two official ensembles (PAN_Full = RGB + PA, PAN_En = Lite + RGB + PA) and the
# two-stream baselines (RGB + Flow, RGB + RGBDiff; labels "RGB+Flow", "RGB+RGBDiff").
MODEL_NAMES = {"TSN": "TSN", "TSM": "TSM", "Lite": "PAN_Lite", "RGB": "PAN_RGB", "PA": "PAN_PA",
               "Flow": "PAN_Flow", "RGBDiff": "PAN_RGBDiff",
               "Full": "PAN_Full", "En": "PAN_En", "RGB+Flow": "TwoStream_Flow", "RGB+RGBDiff": "TwoStream_RGBDiff"}

# member sets (sorted modalities) with a name of their own -> modality label
NAMED_ENSEMBLES = {("PA", "RGB"): "Full", ("Lite", "PA", "RGB"): "En", ("Flow", "RGB"): "RGB+Flow",
                   ("RGB", "RGBDiff"): "RGB+RGBDiff"}
# the motion stream beside RGB -> the label of the two-stream ensemble
TWO_STREAM = {"PA": "Full", "Flow": "RGB+Flow", "RGBDiff": "RGB+RGBDiff"}


def model_name(modality: str) -> str:
    """Display name of a modality label (``"Lite"`` -> ``"PAN_Lite"``); unknown labels are returned as is."""
    return MODEL_NAMES.get(modality, modality)


def ensemble_name(modalities: Sequence[str]) -> tuple[str, str]:
    """(display name, modality label) of a member set: PAN_Full = RGB+PA, PAN_En = Lite+RGB+PA,
    TwoStream_Flow = RGB+Flow (label "RGB+Flow"), TwoStream_RGBDiff = RGB+RGBDiff (label "RGB+RGBDiff").

    One member: its own name; any other set: ``("Ensemble(<names>)", "Ensemble")``.
    """
    s = tuple(sorted(modalities))
    if len(s) == 1:
        return model_name(s[0]), s[0]
    if s in NAMED_ENSEMBLES:
        label = NAMED_ENSEMBLES[s]
        return MODEL_NAMES[label], label
    return f"Ensemble({'+'.join(model_name(m) for m in modalities)})", "Ensemble"


class Ensemble(nn.Module):
    """Weighted mean of the raw logits of several :class:`PANNet` members.

    Args:
        members: ``{name: model}`` or a list (names are then the members' modalities, numbered when
            repeated). All members must share ``num_segments`` and ``num_classes``.
        weights: per-member weights (a list in member order or a ``{name: weight}`` dict); equal by default.
    Attributes:
        modality ("Full", "En", "RGB+Flow", "RGB+RGBDiff" or "Ensemble"), num_segments, num_classes,
        new_length (the largest frames per segment among the members fed from RGB frames), names, weights.
    """

    def __init__(
        self,
        members: Mapping[str, PANNet] | Sequence[PANNet],
        weights: Sequence[float] | Mapping[str, float] | None = None,
        *,
        modality: str = "Ensemble",
    ) -> None:
        super().__init__()
        if isinstance(members, Mapping):
            named = dict(members)
        else:
            named = {}
            for m in members:
                key, i = m.modality, 2
                while key in named:
                    key, i = f"{m.modality}{i}", i + 1
                named[key] = m
        if not named:
            raise ValueError("an ensemble needs at least one member")
        segs = {n: m.num_segments for n, m in named.items()}
        classes = {n: m.num_classes for n, m in named.items()}
        if len(set(segs.values())) > 1 or len(set(classes.values())) > 1:
            raise ValueError(f"ensemble members must agree on num_segments and num_classes: segments {segs}, "
                             f"classes {classes}")
        self.members = nn.ModuleDict(named)
        self.names = list(named)
        if weights is None:
            w = [1.0] * len(named)
        elif isinstance(weights, Mapping):
            unknown = set(weights) - set(named)
            if unknown:
                raise ValueError(f"weights for unknown members {sorted(unknown)}; members: {self.names}")
            w = [float(weights.get(n, 1.0)) for n in self.names]
        else:
            w = [float(x) for x in weights]
            if len(w) != len(named):
                raise ValueError(f"{len(w)} weights for {len(named)} members ({self.names})")
        if any(x < 0 for x in w) or sum(w) <= 0:
            raise ValueError(f"weights must be non-negative with a positive sum, got {w}")
        self.weights = w
        self.modality = modality
        self.num_segments = next(iter(segs.values()))
        self.num_classes = next(iter(classes.values()))
        rgb_fed = [m.new_length for m in named.values() if m.channels_per_frame == 3]
        self.new_length = max(rgb_fed) if rgb_fed else max(m.new_length for m in named.values())

    @classmethod
    def full(cls, rgb: PANNet, pa: PANNet, weights: Sequence[float] | None = None) -> Ensemble:
        """PAN_Full: RGB + PA."""
        _check(rgb, "RGB", "rgb")
        _check(pa, "PA", "pa")
        return cls({"RGB": rgb, "PA": pa}, weights, modality="Full")

    @classmethod
    def en(cls, lite: PANNet, rgb: PANNet, pa: PANNet, weights: Sequence[float] | None = None) -> Ensemble:
        """PAN_En: Lite + RGB + PA (officially tested with 2 clips at 256x256, see ``pan_lib.engine``)."""
        _check(lite, "Lite", "lite")
        _check(rgb, "RGB", "rgb")
        _check(pa, "PA", "pa")
        return cls({"Lite": lite, "RGB": rgb, "PA": pa}, weights, modality="En")

    @classmethod
    def two_stream(cls, rgb: PANNet, motion: PANNet, weights: Sequence[float] | None = None) -> Ensemble:
        """RGB + a motion stream: PA (= PAN_Full), Flow (TwoStream_Flow) or RGBDiff (TwoStream_RGBDiff)."""
        _check(rgb, "RGB", "rgb")
        if motion.modality not in TWO_STREAM:
            raise ValueError(f"motion must be a {', '.join(TWO_STREAM)} network, got {motion.modality}")
        return cls({"RGB": rgb, motion.modality: motion}, weights, modality=TWO_STREAM[motion.modality])

    def member_input(self, x: Tensor | Mapping[str, Tensor], member: PANNet, name: str | None = None) -> Tensor:
        """A member's clip: its entry of a ``{name: clip}`` mapping, or the ensemble clip cut down to the
        member's frames per segment (first frames of each snippet)."""
        if isinstance(x, Mapping):
            if name not in x:
                raise ValueError(f"no clip for member {name!r}; got clips for {sorted(x)}")
            return x[name]
        if member.channels_per_frame != 3:
            raise ValueError(f"member {name or member.modality} ({member.modality}) reads "
                             f"{member.channels_per_frame}-channel frames, not RGB: call the ensemble with "
                             f"{{member name: clip}} for members {self.names}")
        t, m = self.num_segments, self.new_length
        h, w = x.shape[-2:]
        if x.numel() != x.shape[0] * t * m * 3 * h * w:
            raise ValueError(f"{self.modality} ensemble expects [B, {t * m * 3}, H, W] or [B, {t}, {m * 3}, H, W] "
                             f"({t} segments x {m} frames), got {tuple(x.shape)}")
        if member.new_length == m:
            return x
        clip = x.reshape(x.shape[0], t, m, 3, h, w)  # (B, T*m*3, H, W) -> (B, T, m, 3, H, W)
        first = clip[:, :, : member.new_length]  # (B, T, m', 3, H, W)
        return first.reshape(x.shape[0], t * member.new_length * 3, h, w)  # -> (B, T*m'*3, H, W)

    def forward_members(self, x: Tensor | Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Raw logits ``[B, C]`` of every member."""
        return {name: member(self.member_input(x, member, name)) for name, member in self.members.items()}

    def forward(self, x: Tensor | Mapping[str, Tensor]) -> Tensor:
        """Clip ``[B, T*m*3, H, W]`` (m = :attr:`new_length`), or ``{member name: clip}`` -> weighted
        mean of member logits ``[B, C]``."""
        logits = self.forward_members(x)
        total = sum(w * logits[n].float() for n, w in zip(self.names, self.weights))
        return total / sum(self.weights)

    def extra_repr(self) -> str:
        return f"modality={self.modality!r}, members={self.names}, weights={self.weights}"


def _check(model: PANNet, modality: str, arg: str) -> None:
    if getattr(model, "modality", None) != modality:
        raise ValueError(f"{arg} must be a {modality} network, got {getattr(model, 'modality', type(model).__name__)}")
