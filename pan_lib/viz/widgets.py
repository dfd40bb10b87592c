"""Interactive motion-cue explorer (ipywidgets): pick a video, a segment, a frame pair, a colormap,
and play through the pairs.

    [video v] [segment ----o--] [colormap v] [flow: colour|magnitude]
    [> play] [frame pair --o----]
    +------------------------------------------------------------------+
    | frame i | frame i+1 | PA random | PA learned | Farneback | ... |  <- one PNG (ipywidgets.Image)
    +------------------------------------------------------------------+

The picture is a PNG drawn by matplotlib (`pair_figure`); the colour scale of every cue is fixed over
the whole segment, so scrubbing pairs does not rescale. Play is linked to the pair slider in the
browser (`jslink`). Without a live kernel (papermill) only widget state is stored: call
`show()`, which also displays the static grid (`static_figure`) that lands in the output notebook.
"""
from __future__ import annotations

import logging
from typing import Callable, Mapping

import numpy as np

from pan_lib.viz.colour import COLORMAPS
from pan_lib.viz.figures import figure_to_png, motion_figure, pair_figure
from pan_lib.viz.maps import FLOW_STYLES, MotionCues, compute_motion_cues

log = logging.getLogger(__name__)

# a video: its segments (S, F, H, W, 3) uint8, or a function that decodes them on first use
VideoSegments = np.ndarray | Callable[[], np.ndarray]


class MotionExplorer:
    """ipywidgets UI over `compute_motion_cues`; every picture is also available as a static figure."""

    def __init__(self, videos: Mapping[str, VideoSegments], *, pa_modules: Mapping[str, object] | None = None,
                 flow_estimators: Mapping[str, object] | None = None, cmap: str = "magma",
                 flow_style: str = "colour", device: str = "cpu", dpi: int = 72, play_interval_ms: int = 800,
                 video: str | None = None, segment: int = 0):
        import ipywidgets as w

        if not videos:
            raise ValueError("MotionExplorer needs at least one video")
        if cmap not in COLORMAPS:
            raise ValueError(f"unknown colormap {cmap!r}; valid: {', '.join(COLORMAPS)}")
        if flow_style not in FLOW_STYLES:
            raise ValueError(f"unknown flow_style {flow_style!r}; valid: {', '.join(FLOW_STYLES)}")
        self._sources = dict(videos)
        self._segments: dict[str, np.ndarray] = {}
        self._cues: dict[tuple[str, int], MotionCues] = {}
        self._images: dict[tuple, list[np.ndarray]] = {}
        self.pa_modules = dict(pa_modules or {})
        self.flow_estimators = dict(flow_estimators or {})
        self.device, self.dpi = device, dpi

        first = video if video is not None else next(iter(self._sources))
        if first not in self._sources:
            raise ValueError(f"unknown video {first!r}; valid: {', '.join(self._sources)}")
        n_segments, n_frames = self.segments(first).shape[:2]
        if not 0 <= segment < n_segments:
            raise ValueError(f"segment {segment} out of range 0..{n_segments - 1}")
        self.video = w.Dropdown(options=list(self._sources), value=first, description="video")
        self.segment = w.IntSlider(segment, 0, n_segments - 1, description="segment", continuous_update=False)
        self.pair = w.IntSlider(0, 0, n_frames - 2, description="frame pair", continuous_update=False)
        self.cmap = w.Dropdown(options=list(COLORMAPS), value=cmap, description="colormap")
        self.flow_style = w.Dropdown(options=list(FLOW_STYLES), value=flow_style, description="flow")
        self.play = w.Play(value=0, min=0, max=n_frames - 2, interval=play_interval_ms, description="play")
        w.jslink((self.play, "value"), (self.pair, "value"))
        self.image = w.Image(format="png")
        self.status = w.HTML()
        # CSS classes let the browser test (and users' own styling) find the parts
        self.pair.add_class("pan-pair-slider")
        self.image.add_class("pan-motion-image")
        self.widget = w.VBox([w.HBox([self.video, self.segment]), w.HBox([self.cmap, self.flow_style]),
                              w.HBox([self.play, self.pair]), self.image, self.status])
        self.widget.add_class("pan-motion-explorer")
        self.video.observe(self._on_video, names="value")
        for control in (self.segment, self.pair, self.cmap, self.flow_style):
            control.observe(lambda _change: self.render(), names="value")
        self.render()

    # -- data ------------------------------------------------------------------------------------
    def segments(self, video: str) -> np.ndarray:
        """(S, F, H, W, 3) uint8 segments of a video (decoded once)."""
        if video not in self._segments:
            source = self._sources[video]
            segs = np.asarray(source() if callable(source) else source)
            if segs.ndim != 5 or segs.shape[-1] != 3 or segs.shape[1] < 2:
                raise ValueError(f"video {video!r}: expected segments (S, F>=2, H, W, 3), got {segs.shape}")
            self._segments[video] = segs
        return self._segments[video]

    def cues(self, video: str | None = None, segment: int | None = None) -> MotionCues:
        """Motion cues of one segment (computed once, then cached)."""
        key = (video or self.video.value, self.segment.value if segment is None else segment)
        if key not in self._cues:
            frames = self.segments(key[0])[key[1]]
            self._cues[key] = compute_motion_cues(frames, self.pa_modules, self.flow_estimators, self.device)
        return self._cues[key]

    # -- drawing ---------------------------------------------------------------------------------
    def _on_video(self, change) -> None:
        n_segments, n_frames = self.segments(change["new"]).shape[:2]
        self.segment.max, self.pair.max, self.play.max = n_segments - 1, n_frames - 2, n_frames - 2
        self.render()

    def pair_png(self) -> bytes:
        """PNG of the current frame pair with every cue."""
        cues = self.cues()
        key = (self.video.value, self.segment.value, self.cmap.value, self.flow_style.value)
        if key not in self._images:
            self._images[key] = [r.images(self.cmap.value, self.flow_style.value) for r in cues.rows]
        pair = min(self.pair.value, cues.num_pairs - 1)
        fig = pair_figure(cues, pair, cmap=self.cmap.value, flow_style=self.flow_style.value,
                          row_images=self._images[key],
                          title=f"{self.video.value} · segment {self.segment.value} · pair {pair}")
        return figure_to_png(fig, dpi=self.dpi)

    def render(self) -> None:
        """Redraw the picture for the current controls."""
        try:
            self.image.value = self.pair_png()
            self.status.value = ""
        except Exception as err:  # keep the UI alive and say what went wrong
            log.exception("motion explorer failed")
            self.status.value = f"<b>error:</b> {type(err).__name__}: {err}"

    def static_figure(self, max_pairs: int = 4):
        """The current segment as a static grid (all cues x up to `max_pairs` pairs)."""
        return motion_figure(self.cues(), cmap=self.cmap.value, flow_style=self.flow_style.value,
                             max_pairs=max_pairs, title=f"{self.video.value} · segment {self.segment.value}")

    def show(self, static: bool = True) -> None:
        """Display the static grid (kept by papermill) and then the live widget."""
        import matplotlib.pyplot as plt
        from IPython.display import display

        if static:
            fig = self.static_figure()
            display(fig)
            plt.close(fig)
        display(self.widget)

