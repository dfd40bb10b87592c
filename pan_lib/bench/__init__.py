"""Benchmarks: `python -m pan_lib.bench <name>|all` writes results/bench/<name>.{csv,md,json}.

Each benchmark module defines `run(out_dir: Path, quick: bool = False) -> list[Path]` and registers
itself in BENCHMARKS below (module path, one-line description).
"""
BENCHMARKS: dict[str, tuple[str, str]] = {
    # name: (module, description) — filled by the issues that own each benchmark
    "motion_cues": ("pan_lib.bench.motion_cues", "PA vs optical flow (TV-L1, Farneback, DIS, RAFT): frame pairs/s at 224x224"),
}
