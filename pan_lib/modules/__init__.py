"""PAN building blocks: PA (motion cue), VAP (head), temporal shift (TSM backbone)."""
from pan_lib.modules.pa import PA, pa_reference_loop, persistence_of_appearance
from pan_lib.modules.temporal_shift import TemporalShift, make_temporal_shift, temporal_shift
from pan_lib.modules.vap import VAP, vap_slots, vap_timescales

__all__ = [
    "PA",
    "VAP",
    "TemporalShift",
    "make_temporal_shift",
    "pa_reference_loop",
    "persistence_of_appearance",
    "temporal_shift",
    "vap_slots",
    "vap_timescales",
]
