"""Seeing the motion cue: PA maps and optical flow as pictures, static figures, widgets, animations.

    from pan_lib.viz import compute_motion_cues, random_pa, motion_figure
    from pan_lib.motion import available_flow_estimators
    cues = compute_motion_cues(frames, {"PA (random init)": random_pa(0)},
                               available_flow_estimators(["farneback", "dis_medium"]))
    motion_figure(cues)           # rows: RGB, PA, flows; columns: frame pairs

Submodules: `colour` (colormaps, flow colour wheel), `maps` (computing the cues), `figures`
(matplotlib), `animation` (jshtml), `widgets` (ipywidgets explorer), `video` (frames from files and
datasets).
"""
from __future__ import annotations

from pan_lib._lazy import lazy_getattr

_EXPORTS = {
    "COLORMAPS": "pan_lib.viz.colour",
    "colourise": "pan_lib.viz.colour",
    "flow_to_rgb": "pan_lib.viz.colour",
    "MotionCues": "pan_lib.viz.maps",
    "MotionRow": "pan_lib.viz.maps",
    "compute_motion_cues": "pan_lib.viz.maps",
    "pa_maps": "pan_lib.viz.maps",
    "random_pa": "pan_lib.viz.maps",
    "learned_pa": "pan_lib.viz.maps",
    "most_active_segment": "pan_lib.viz.maps",
    "motion_figure": "pan_lib.viz.figures",
    "pair_figure": "pan_lib.viz.figures",
    "speed_figure": "pan_lib.viz.figures",
    "figure_to_png": "pan_lib.viz.figures",
    "pa_animation": "pan_lib.viz.animation",
    "animation_html": "pan_lib.viz.animation",
    "MotionExplorer": "pan_lib.viz.widgets",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
