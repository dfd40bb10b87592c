"""PAN workbook library: persistence of appearance, VAP, temporal shift, PAN networks and tools.

Heavy submodules (torch, torchvision) are imported lazily, so `import pan_lib` stays cheap and
`python -m data_prep ...` starts fast.
"""
from __future__ import annotations

from pan_lib._lazy import lazy_getattr

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "PA": "pan_lib.modules.pa",
    "VAP": "pan_lib.modules.vap",
    "temporal_shift": "pan_lib.modules.temporal_shift",
    "TemporalShift": "pan_lib.modules.temporal_shift",
    "make_temporal_shift": "pan_lib.modules.temporal_shift",
    "build_model": "pan_lib.models",
    "PANNet": "pan_lib.models",
    "ModelConfig": "pan_lib.models",
    "MODALITIES": "pan_lib.models",
    "frames_per_segment": "pan_lib.models",
    "Ensemble": "pan_lib.ensemble",
    "MODEL_NAMES": "pan_lib.ensemble",
    "model_name": "pan_lib.ensemble",
    "load_checkpoint": "pan_lib.checkpoints",
    "save_official_checkpoint": "pan_lib.checkpoints",
    "parse_checkpoint_name": "pan_lib.checkpoints",
    "official_checkpoint_name": "pan_lib.checkpoints",
    "count_flops": "pan_lib.flops",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__():
    return sorted(list(globals()) + __all__)
