"""`python -m pan_lib.bench <name> [<name> ...] | all [--quick] [--out results/bench]`."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from pan_lib.bench import BENCHMARKS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pan_lib.bench", description=__doc__)
    parser.add_argument("names", nargs="+", help=f"benchmarks to run: all, {', '.join(sorted(BENCHMARKS))}")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    names = sorted(BENCHMARKS) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; valid: all, {', '.join(sorted(BENCHMARKS))}")
    for name in names:
        module = importlib.import_module(BENCHMARKS[name][0])
        for path in module.run(args.out, quick=args.quick):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
