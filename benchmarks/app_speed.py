"""The app's answer time: one image analysed as `cellbench app` does it (the fold ensemble, objects,
per-cell measurements with uncertainty, the four download files), on a CPU or CUDA.

    python benchmarks/app_speed.py --results results/demo --image results/demo/data/images/demo_00.png
    python benchmarks/app_speed.py --results results/wbc --image big.png --device cuda --repeat 3

The models load once (first call, reported apart); the last line holds ``key=value`` figures:
load_seconds, seconds_per_image (mean of --repeat after the first), cells, peak_rss_gb.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from cellbench.app.session import ModelCache, analyse, choices


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="results/<dataset> of a finished benchmark")
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--arch", help="default: the CV winner")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    offered = choices(args.results)
    choice = next((c for c in offered if c.arch == args.arch), offered[0]) if args.arch else offered[0]
    cache = ModelCache(args.device)
    started = time.perf_counter()
    cache.models(choice)
    load = time.perf_counter() - started
    times, cells = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeat + 1):
            started = time.perf_counter()
            result = analyse(args.image, args.image.name, choice, cache, Path(tmp) / str(k))
            times.append(time.perf_counter() - started)
            cells = len(result.cells)
    per_image = sum(times[1:]) / max(len(times) - 1, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print(f"{choice.label} on {args.device}: first image {times[0]:.2f} s, then {per_image:.2f} s per image")
    print(f"load_seconds={load:.2f} seconds_per_image={per_image:.3f} cells={cells} peak_rss_gb={peak:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
