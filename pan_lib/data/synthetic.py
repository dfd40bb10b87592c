"""The embedded motion dataset: short videos whose class is defined by motion and temporal order only.

Every class comes in a **time-reversal pair**: a video of the second class of a pair is a video of
the first class played backwards. Shapes, colours, textures, backgrounds, distractors, camera jitter
and noise are drawn from one distribution for every class, so any order-free view of a video (a
single frame, an unordered bag of frames) carries no information about which class of its pair it
belongs to. A model must see temporal order to tell the two apart
(``pan_lib.data.baseline.bag_of_frames_baseline`` measures this).

    pair  forward class (index)                              backward class
    1     Moving [something] from left to right             Moving [something] from right to left
    2     Moving [something] down                            Moving [something] up
    3     Turning [something] clockwise                      Turning [something] counterclockwise
    4     Moving [something] closer to the camera            Moving [something] away from the camera
    5     [Something] appearing                              [Something] disappearing
    6     Pushing [something] until it stops                 [Something] starting to move
    7*    Moving [something] and [something] closer to ...   ... away from each other
    8*    Covering [something] with [something]              Uncovering [something]
    (* only with ``classes="all"``; the default set has pairs 1-6 = 12 classes)

Within a video: onset, duration and speed of the motion are random; 0-2 distractor objects drift
with random (direction-symmetric) velocities; optional per-frame camera jitter and brightness
flicker; Gaussian noise; video compression (VP9 by default).

Written in the Something-Something-V2 layout, so it is prepared with the SSv2 code
(``pan_lib.data.preparation.prepare_sthv2``, as ``python -m data_prep sthv2`` prepares the real one)::

    <raw>/20bn-something-something-v2/<id>.webm
    <raw>/labels/something-something-v2-{labels,train,validation,test}.json   (+ test-answers.csv)
    <raw>/labels.json            class list with pairs (documentation of the classes)
    <raw>/generator.json         parameters + fingerprint (resume / regenerate decisions)

The class index of a template is its rank in the sorted template list (as in real SSv2).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import multiprocessing as mp
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from pan_lib.progress import progress_bar
from pan_lib.data.parsers import strip_brackets
from pan_lib.data.video import write_video

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1

# (forward template, backward template, motion kind)
PAIRS: tuple[tuple[str, str, str], ...] = (
    ("Moving [something] from left to right", "Moving [something] from right to left", "horizontal"),
    ("Moving [something] down", "Moving [something] up", "vertical"),
    ("Turning [something] clockwise", "Turning [something] counterclockwise", "rotation"),
    ("Moving [something] closer to the camera", "Moving [something] away from the camera", "scale"),
    ("[Something] appearing", "[Something] disappearing", "fade"),
    ("Pushing [something] until it stops", "[Something] starting to move", "stop"),
    ("Moving [something] and [something] closer to each other",
     "Moving [something] and [something] away from each other", "two_objects"),
    ("Covering [something] with [something]", "Uncovering [something]", "cover"),
)
CLASS_SETS = {"default": 6, "all": 8}

# name -> (train, validation, test videos per class, frames, frame size)
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(train_per_class=2, val_per_class=1, test_per_class=1, num_frames=16, resolution=48),
    "small": dict(train_per_class=12, val_per_class=4, test_per_class=2, num_frames=32, resolution=96),
    # the workbook's data set: 960 / 300 / 300 videos. 80 training videos per class are enough for a
    # network trained from scratch to learn the motion classes in minutes on a 2-core CPU (24 per
    # class stayed at chance); every choice (recipe, epochs, checkpoint) is made on val, and the
    # reported numbers come from the held-out test split, 25 videos per class (one test video is
    # 0.33 points of top-1; with the former 10 per class it was 0.83)
    "default": dict(train_per_class=80, val_per_class=25, test_per_class=25, num_frames=32, resolution=64),
    "large": dict(train_per_class=160, val_per_class=50, test_per_class=50, num_frames=32, resolution=96),
}

VIDEO_FOLDER = "20bn-something-something-v2"
LABELS_FOLDER = "labels"
CODECS = {"vp9": ("libvpx-vp9", ".webm"), "h264": ("libx264", ".mp4"), "mpeg4": ("mpeg4", ".mp4")}


@dataclass
class SyntheticConfig:
    """Parameters of the embedded dataset (fields mirror the notebook parameters)."""
    size: str = "default"
    seed: int = 0
    classes: str = "default"               # "default" (12 classes) | "all" (16)
    train_per_class: int | None = None     # None -> from the size preset
    val_per_class: int | None = None
    test_per_class: int | None = None
    num_frames: int | None = None
    resolution: int | None = None          # frame height = width (even)
    fps: float = 12.0
    codec: str = "vp9"                     # "vp9" (.webm like SSv2) | "h264" | "mpeg4" (.mp4)
    max_distractors: int = 2
    noise: float = 6.0                     # max std of Gaussian pixel noise (0..255)
    jitter: int = 1                        # max camera jitter in px per frame

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; valid: {', '.join(SIZES)}")
        if self.classes not in CLASS_SETS:
            raise ValueError(f"unknown class set {self.classes!r}; valid: {', '.join(CLASS_SETS)}")
        if self.codec not in CODECS:
            raise ValueError(f"unknown codec {self.codec!r}; valid: {', '.join(CODECS)}")
        for key, value in SIZES[self.size].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.resolution % 2 or self.resolution < 32:
            raise ValueError(f"resolution must be even and >= 32, got {self.resolution}")
        if self.num_frames < 8:
            raise ValueError(f"num_frames must be >= 8, got {self.num_frames}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        payload = json.dumps({"version": GENERATOR_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def class_templates(classes: str = "default") -> list[str]:
    """Templates of the class set, sorted: list index == class index (SSv2 ``labels.json`` order)."""
    pairs = PAIRS[:CLASS_SETS[classes]]
    return sorted([t for fwd, bwd, _ in pairs for t in (fwd, bwd)], key=strip_brackets)


def class_names(classes: str = "default") -> list[str]:
    return [strip_brackets(t) for t in class_templates(classes)]


def class_pairs(classes: str = "default") -> list[tuple[int, int]]:
    """(forward index, backward index) of each time-reversal pair."""
    names = class_names(classes)
    return [(names.index(strip_brackets(f)), names.index(strip_brackets(b)))
            for f, b, _ in PAIRS[:CLASS_SETS[classes]]]


# ----------------------------------------------------------------------------- appearance
def _polygon_sdf(vertices: Sequence[tuple[float, float]]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Signed distance (exact inside, a lower bound outside) to a convex polygon."""
    verts = np.asarray(vertices, dtype=np.float32)
    edges = np.roll(verts, -1, axis=0) - verts
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    inward = ((verts.mean(axis=0) - verts) * normals).sum(axis=1) > 0
    normals[inward] *= -1.0  # every normal points out of the polygon

    def sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        d = None
        for (ax, ay), (nx, ny) in zip(verts, normals):
            di = (u - ax) * nx + (v - ay) * ny
            d = di if d is None else np.maximum(d, di)
        return d

    return sdf


def _box(u0: float, u1: float, v0: float, v1: float):
    return _polygon_sdf([(u0, v0), (u0, v1), (u1, v1), (u1, v0)])


def _union(*fns):
    return lambda u, v: np.minimum.reduce([f(u, v) for f in fns])


# Every shape is orientation-revealing (none is rotation-symmetric), in local units |u|,|v| <= 1.
SHAPES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "bar": _box(-1.0, 1.0, -0.5, 0.5),
    "triangle": _polygon_sdf([(1.0, 0.0), (-0.8, -0.85), (-0.8, 0.85)]),
    "ell": _union(_box(-1.0, -0.35, -1.0, 1.0), _box(-1.0, 1.0, 0.4, 1.0)),
    "tee": _union(_box(-1.0, 1.0, -1.0, -0.45), _box(-0.3, 0.3, -1.0, 1.0)),
    "arrow": _union(_polygon_sdf([(1.0, 0.0), (0.2, -0.8), (0.2, 0.8)]), _box(-1.0, 0.25, -0.3, 0.3)),
    "half_disc": lambda u, v: np.maximum(np.sqrt(u * u + v * v) - 1.0, -0.1 - u),
}
TEXTURES = ("solid", "two_tone", "stripes", "checker")


@dataclass
class Appearance:
    shape: str
    radius: float                 # px at scale 1
    color_a: np.ndarray
    color_b: np.ndarray
    texture: str
    freq: float

    @staticmethod
    def sample(rng: np.random.Generator, radius: float) -> "Appearance":
        return Appearance(shape=str(rng.choice(list(SHAPES))), radius=radius,
                          color_a=_random_color(rng), color_b=_random_color(rng),
                          texture=str(rng.choice(TEXTURES)), freq=float(rng.uniform(2.0, 5.0)))


def _random_color(rng: np.random.Generator) -> np.ndarray:
    hue, sat, val = rng.random(), rng.uniform(0.45, 1.0), rng.uniform(0.45, 1.0)
    i = int(hue * 6) % 6
    f = hue * 6 - int(hue * 6)
    p, q, t = val * (1 - sat), val * (1 - f * sat), val * (1 - (1 - f) * sat)
    rgb = [(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)][i]
    return np.asarray(rgb, dtype=np.float32) * 255.0


def _texture(app: Appearance, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Colour [h, w, 3] in object coordinates (it moves and turns with the object)."""
    if app.texture == "solid":
        w = np.zeros_like(u)
    elif app.texture == "two_tone":
        w = np.clip(u * 4.0 + 0.5, 0.0, 1.0)
    elif app.texture == "stripes":
        w = 0.5 + 0.5 * np.sin(app.freq * math.pi * u)
    else:
        w = (np.sin(app.freq * math.pi * u) * np.sin(app.freq * math.pi * v) > 0).astype(np.float32)
    return app.color_a * (1.0 - w[..., None]) + app.color_b * w[..., None]


@dataclass
class Pose:
    """Per-frame state of one object: centre (px), angle (rad, clockwise on screen), scale, opacity."""
    cx: np.ndarray
    cy: np.ndarray
    angle: np.ndarray
    scale: np.ndarray
    alpha: np.ndarray

    @staticmethod
    def still(n: int, cx: float, cy: float, angle: float, scale: float = 1.0, alpha: float = 1.0) -> "Pose":
        full = lambda x: np.full(n, x, dtype=np.float32)  # noqa: E731
        return Pose(full(cx), full(cy), full(angle), full(scale), full(alpha))


def _draw(canvas: np.ndarray, app: Appearance, cx: float, cy: float, angle: float, scale: float,
          alpha: float) -> None:
    """Alpha-composite one object onto ``canvas`` [H, W, 3] float32 (antialiased edge, in place)."""
    if alpha <= 0.0 or scale <= 0.0:
        return
    h, w = canvas.shape[:2]
    r = app.radius * scale
    reach = r * 1.45 + 2
    x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 1, w)
    y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 1, h)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xs + 0.5 - cx, ys + 0.5 - cy
    c, s = math.cos(angle), math.sin(angle)
    u, v = (dx * c + dy * s) / r, (-dx * s + dy * c) / r  # screen -> object coordinates
    dist = SHAPES[app.shape](u, v) * r                    # ~px outside the edge (negative inside)
    cover = np.clip(0.5 - dist, 0.0, 1.0)[..., None] * alpha
    region = canvas[y0:y1, x0:x1]
    region *= 1.0 - cover
    region += _texture(app, u, v) * cover


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    kind = rng.integers(4)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = _random_color(rng) * 0.8, _random_color(rng) * 0.8
    if kind == 0:    # gradient
        t = (xs * math.cos(rng.uniform(0, 6.3)) + ys * math.sin(rng.uniform(0, 6.3))) / max(h, w)
        wgt = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    elif kind == 1:  # blobs (low-frequency noise)
        coarse = rng.random((4, 4)).astype(np.float32)
        wgt = np.kron(coarse, np.ones((h // 4 + 1, w // 4 + 1), np.float32))[:h, :w]
        wgt = _blur(wgt, max(h // 8, 1))
    elif kind == 2:  # soft stripes
        f, th = rng.uniform(0.05, 0.2), rng.uniform(0, math.pi)
        wgt = 0.5 + 0.5 * np.sin(f * (xs * math.cos(th) + ys * math.sin(th)))
    else:            # fine texture
        wgt = _blur(rng.random((h, w)).astype(np.float32), 2)
        wgt = (wgt - wgt.min()) / max(float(np.ptp(wgt)), 1e-6)
    return a * (1.0 - wgt[..., None]) + b * wgt[..., None]


def _blur(x: np.ndarray, k: int) -> np.ndarray:
    kernel = np.ones(2 * k + 1, np.float32) / (2 * k + 1)
    x = np.apply_along_axis(lambda r: np.convolve(np.pad(r, k, mode="edge"), kernel, "valid"), 1, x)
    return np.apply_along_axis(lambda c: np.convolve(np.pad(c, k, mode="edge"), kernel, "valid"), 0, x)


# ----------------------------------------------------------------------------- motion
def _progress(rng: np.random.Generator, n: int, onset: int, duration: int, profile: str | None = None) -> np.ndarray:
    """0 before ``onset``, rises to 1 over ``duration`` frames (linear / smooth / ease-out), then 1."""
    t = np.clip((np.arange(n, dtype=np.float32) - onset) / max(duration, 1), 0.0, 1.0)
    profile = profile or str(rng.choice(["linear", "smooth"]))
    if profile == "smooth":
        return t * t * (3.0 - 2.0 * t)
    if profile == "ease_out":  # decelerating: fast first, stops at the end
        return 1.0 - (1.0 - t) ** 2
    return t


def _timing(rng: np.random.Generator, n: int) -> tuple[int, int]:
    """Random duration (40-85 % of the clip) and an onset placed symmetrically in the clip."""
    duration = int(round(rng.uniform(0.4, 0.85) * n))
    onset = int(rng.integers(0, n - duration + 1))
    return onset, duration


def _forward_poses(kind: str, rng: np.random.Generator, n: int, size: int,
                   radius: float) -> list[tuple[Pose, bool]]:
    """Poses of the class objects for the FORWARD class of a pair; ``(pose, is_occluder)``."""
    lo, hi = radius * 1.1, size - radius * 1.1
    cx, cy = rng.uniform(lo, hi), rng.uniform(lo, hi)
    angle = rng.uniform(0, 2 * math.pi)
    onset, duration = _timing(rng, n)
    p = _progress(rng, n, onset, duration)
    pose = Pose.still(n, cx, cy, angle)
    if kind in ("horizontal", "vertical"):
        dist = rng.uniform(0.3, 0.6) * size
        start = rng.uniform(lo, max(hi - dist, lo + 1))
        drift = rng.uniform(-0.05, 0.05) * size
        along, across = start + dist * p, rng.uniform(lo, hi) + drift * p
        pose.cx, pose.cy = (along, across) if kind == "horizontal" else (across, along)
    elif kind == "rotation":
        pose.angle = angle + rng.uniform(0.6, 1.5) * math.pi * p  # + = clockwise on screen (y down)
    elif kind == "scale":
        s0, s1 = rng.uniform(0.45, 0.7), rng.uniform(1.3, 1.7)
        pose.scale = s0 * (s1 / s0) ** p
        pose.cx, pose.cy = np.full(n, size / 2 + rng.uniform(-0.15, 0.15) * size), \
            np.full(n, size / 2 + rng.uniform(-0.15, 0.15) * size)
    elif kind == "fade":
        pose.alpha = p
        pose.scale = np.full(n, rng.uniform(0.8, 1.2))
    elif kind == "stop":  # moving from the first frame, decelerating, at rest for the rest
        duration = int(round(rng.uniform(0.4, 0.75) * n))
        p = _progress(rng, n, 0, duration, "ease_out")
        heading = rng.integers(4) * math.pi / 2 + math.pi / 4 + rng.uniform(-0.25, 0.25)  # diagonal
        dist = rng.uniform(0.3, 0.5) * size
        ex, ey = rng.uniform(0.3, 0.7, size=2) * size                   # where it stops
        sx, sy = ex - math.cos(heading) * dist, ey - math.sin(heading) * dist
        pose.cx = np.clip(sx + (ex - sx) * p, lo * 0.5, size - lo * 0.5)
        pose.cy = np.clip(sy + (ey - sy) * p, lo * 0.5, size - lo * 0.5)
    elif kind == "two_objects":
        axis = rng.uniform(0, math.pi)
        mx, my = size / 2 + rng.uniform(-0.1, 0.1) * size, size / 2 + rng.uniform(-0.1, 0.1) * size
        d0, d1 = rng.uniform(0.6, 0.85) * size / 2, radius * rng.uniform(0.7, 0.9)
        half = d0 + (d1 - d0) * p
        ca, sa = math.cos(axis), math.sin(axis)
        a = Pose(mx - ca * half, my - sa * half, np.full(n, angle), np.full(n, 0.7), np.ones(n))
        b = Pose(mx + ca * half, my + sa * half, np.full(n, rng.uniform(0, 6.3)), np.full(n, 0.7), np.ones(n))
        return [(a, False), (b, False)]
    elif kind == "cover":
        heading = rng.uniform(0, 2 * math.pi)
        dist = rng.uniform(0.35, 0.6) * size
        cx, cy = size / 2 + rng.uniform(-0.15, 0.15) * size, size / 2 + rng.uniform(-0.15, 0.15) * size
        target = Pose.still(n, cx, cy, angle, scale=0.8)
        cover = Pose(cx - math.cos(heading) * dist * (1 - p), cy - math.sin(heading) * dist * (1 - p),
                     np.full(n, rng.uniform(0, 6.3)), np.full(n, 1.5), np.ones(n))
        return [(target, False), (cover, True)]
    else:
        raise ValueError(f"unknown motion kind {kind!r}")
    return [(pose, False)]


def render_video(kind: str, backward: bool, rng: np.random.Generator, *, num_frames: int, size: int,
                 max_distractors: int = 2, noise: float = 6.0, jitter: int = 1) -> tuple[np.ndarray, list[str]]:
    """Frames uint8 ``[F, size, size, 3]`` of one video of the pair ``kind`` and its placeholders.

    The forward video is rendered; the backward class is the same video reversed in time.
    """
    n, pad = num_frames, max(jitter, 0)
    radius = size * rng.uniform(0.14, 0.2)
    background = _background(rng, size + 2 * pad, size + 2 * pad)
    poses = _forward_poses(kind, rng, n, size, radius)
    apps = [Appearance.sample(rng, radius) for _ in poses]
    distractors = []
    for _ in range(int(rng.integers(0, max_distractors + 1))):
        app = Appearance.sample(rng, size * rng.uniform(0.04, 0.07))
        speed, heading = rng.uniform(0.0, 0.35) * size / 48, rng.uniform(0, 2 * math.pi)
        x0, y0 = rng.uniform(0, size, size=2)
        t = np.arange(n, dtype=np.float32) - (n - 1) / 2
        spin = rng.uniform(-0.05, 0.05)
        pose = Pose(x0 + speed * math.cos(heading) * t, y0 + speed * math.sin(heading) * t,
                    rng.uniform(0, 6.3) + spin * t, np.ones(n), np.ones(n))
        distractors.append((app, pose))
    shake = rng.integers(-jitter, jitter + 1, size=(n, 2)) if (jitter > 0 and rng.random() < 0.5) \
        else np.zeros((n, 2), dtype=np.int64)
    sigma = rng.uniform(0.0, noise)
    flicker = 1.0 + rng.uniform(-0.03, 0.03, size=n) * (rng.random() < 0.5)
    order = list(range(len(distractors)))
    frames = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        jx, jy = int(shake[i, 0]), int(shake[i, 1])
        canvas = background[pad + jy:pad + jy + size, pad + jx:pad + jx + size].copy()
        layers = [(a, p) for (a, p) in distractors[:len(order) // 2]]
        layers += [(a, p) for a, (p, _) in zip(apps, poses)]
        layers += [(a, p) for (a, p) in distractors[len(order) // 2:]]
        for app, p in layers:
            _draw(canvas, app, p.cx[i] - jx, p.cy[i] - jy, p.angle[i], p.scale[i], p.alpha[i])
        canvas *= flicker[i]
        if sigma > 0:
            canvas += rng.normal(0.0, sigma, size=canvas.shape).astype(np.float32)
        frames[i] = np.clip(canvas, 0, 255).astype(np.uint8)
    if backward:
        frames = frames[::-1].copy()
    words = [_describe(a) for a in apps]
    return frames, words


def _describe(app: Appearance) -> str:
    return f"{app.texture.replace('_', '-')} {app.shape.replace('_', ' ')}"


# ----------------------------------------------------------------------------- dataset writing
@dataclass
class _Job:
    video_id: str
    template: str
    kind: str
    backward: bool
    seed: tuple[int, ...]
    path: str


def _plan(cfg: SyntheticConfig) -> tuple[dict[str, list[_Job]], list[str]]:
    """Every video: its id, split, class and private seed (independent of worker count)."""
    pairs = PAIRS[:CLASS_SETS[cfg.classes]]
    templates = class_templates(cfg.classes)
    per_split = {"train": cfg.train_per_class, "validation": cfg.val_per_class, "test": cfg.test_per_class}
    items = []
    for split_no, (split, count) in enumerate(per_split.items()):
        for pair_no, (fwd, bwd, kind) in enumerate(pairs):
            for backward, template in ((False, fwd), (True, bwd)):
                for k in range(count):
                    items.append((split, template, kind, backward, (cfg.seed, split_no, pair_no, int(backward), k)))
    ids = np.random.default_rng([cfg.seed, 7]).permutation(len(items)) + 1000  # ids reveal nothing
    ext = CODECS[cfg.codec][1]
    plan: dict[str, list[_Job]] = {s: [] for s in per_split}
    for (split, template, kind, backward, seed), vid in zip(items, ids):
        plan[split].append(_Job(str(int(vid)), template, kind, backward, seed, f"{int(vid)}{ext}"))
    return plan, templates


def _render_job(args: tuple[_Job, dict[str, Any], str]) -> tuple[str, list[str]]:
    job, cfgd, video_dir = args
    cfg = SyntheticConfig(**cfgd)
    rng = np.random.default_rng(list(job.seed))
    frames, words = render_video(job.kind, job.backward, rng, num_frames=cfg.num_frames, size=cfg.resolution,
                                 max_distractors=cfg.max_distractors, noise=cfg.noise, jitter=cfg.jitter)
    final = Path(video_dir) / job.path
    if not final.exists():
        tmp = final.with_name(f".tmp-{os.getpid()}-{final.name}")
        write_video(tmp, frames, fps=cfg.fps, codec=CODECS[cfg.codec][0])
        os.replace(tmp, final)  # atomic: a half-written video never has the final name
    return job.video_id, words


def generate(out_dir: str | Path, config: SyntheticConfig | None = None, *, workers: int | None = None,
             overwrite: bool = False, progress: str = "auto") -> Path:
    """Write the embedded dataset in the SSv2 layout under ``out_dir`` (resumable); returns ``out_dir``.

    Re-running with the same parameters only writes what is missing; different parameters in a
    folder that already holds a generated dataset raise ``ValueError`` unless ``overwrite=True``.
    """
    cfg = config or SyntheticConfig()
    out = Path(out_dir)
    meta_path = out / "generator.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if old.get("fingerprint") != cfg.fingerprint():
            if not overwrite:
                raise ValueError(f"{out} holds an embedded dataset generated with other parameters "
                                 f"({old.get('config')}); use another folder or overwrite=True")
            shutil.rmtree(out / VIDEO_FOLDER, ignore_errors=True)
            meta_path.unlink()
        elif old.get("complete"):
            log.info("embedded dataset already generated in %s (fingerprint %s)", out, cfg.fingerprint())
            return out
    video_dir, label_dir = out / VIDEO_FOLDER, out / LABELS_FOLDER
    video_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    for leftover in video_dir.glob(".tmp-*"):  # half-written videos of an interrupted run
        leftover.unlink()
    meta = {"config": cfg.to_dict(), "fingerprint": cfg.fingerprint(), "version": GENERATOR_VERSION,
            "complete": False}
    meta_path.write_text(json.dumps(meta, indent=1))
    plan, templates = _plan(cfg)
    jobs = [j for split in plan.values() for j in split]
    workers = workers if workers is not None else min(len(jobs), os.cpu_count() or 1, 4)
    args = [(j, cfg.to_dict(), str(video_dir)) for j in jobs]
    words: dict[str, list[str]] = {}
    with progress_bar(total=len(jobs), desc="embedded videos", mode=progress) as bar:
        if workers > 1:
            # spawn, not fork: a child forked from a process that has used decord cannot open
            # the VP9 encoder (avcodec_open2 fails with EINVAL), e.g. regenerating in a notebook
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers) as pool:
                for vid, w in pool.imap_unordered(_render_job, args, chunksize=4):
                    words[vid] = w
                    bar.update(1)
        else:
            for a in args:
                vid, w = _render_job(a)
                words[vid] = w
                bar.update(1)
    _write_annotations(label_dir, out, plan, templates, words, cfg)
    meta["complete"] = True
    meta_path.write_text(json.dumps(meta, indent=1))
    return out


def _write_annotations(label_dir: Path, out: Path, plan: dict[str, list[_Job]], templates: list[str],
                       words: dict[str, list[str]], cfg: SyntheticConfig) -> None:
    names = [strip_brackets(t) for t in templates]
    lines = [f' "{name}":"{i}"' for i, name in enumerate(names)]
    (label_dir / "something-something-v2-labels.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")

    def entry(job: _Job) -> str:
        ph = words[job.video_id]
        n_slots = job.template.count("[")
        ph = (ph + ph)[:n_slots] if n_slots else []
        label = job.template
        for p in ph:
            label = label.replace(label[label.index("["):label.index("]") + 1], p, 1)
        return json.dumps({"id": job.video_id, "label": label.lower(), "template": job.template,
                           "placeholders": ph}, separators=(",", ":"))

    for split in ("train", "validation"):
        rows = sorted(plan[split], key=lambda j: int(j.video_id))
        (label_dir / f"something-something-v2-{split}.json").write_text(
            "[\n" + ",\n".join(entry(j) for j in rows) + "\n]\n")
    test = sorted(plan["test"], key=lambda j: int(j.video_id))
    (label_dir / "something-something-v2-test.json").write_text(
        "[\n" + ",\n".join(json.dumps({"id": j.video_id}, separators=(",", ":")) for j in test) + "\n]\n")
    (label_dir / "test-answers.csv").write_text(
        "".join(f"{j.video_id};{strip_brackets(j.template)}\n" for j in test))
    pairs = class_pairs(cfg.classes)
    doc = {"classes": [{"index": i, "name": n, "template": t,
                        "pair": next(k for k, pr in enumerate(pairs) if i in pr),
                        "reverse_of": next(pr[1 - pr.index(i)] for pr in pairs if i in pr)}
                       for i, (n, t) in enumerate(zip(names, templates))],
           "pairs": pairs,
           "note": "each class of a pair is the other class played backwards; appearance is drawn "
                   "from one distribution for every class"}
    (out / "labels.json").write_text(json.dumps(doc, indent=1))
