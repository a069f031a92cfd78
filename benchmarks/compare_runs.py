"""Compare the out-of-fold scores of two or more runs of the same folds, image by image.

Two runs that differ in one setting (train.target, train.selection, a budget) are compared as
architectures are within a run: the mean with a bootstrap 95 % interval per run, and the paired
Wilcoxon test on the same images with Holm's correction (cellbench.evaluation.stats). The runs
must have split the same images into the same folds, or a paired test means nothing.

    python benchmarks/compare_runs.py classes=results/dsb boundary=results_boundary/dsb
    python benchmarks/compare_runs.py last=results_last/wbc inner=results_inner/wbc --arch Unet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from cellbench.evaluation.stats import compare, per_image_values


def run_values(folder: Path, label: str, arch: str | None) -> pd.DataFrame:
    """Per-image values of one run, each architecture renamed "<arch> <label>"."""
    tables = {name: folder / f"{name}.parquet" for name in ("metrics", "instance_metrics", "object_metrics")}
    missing = [str(p) for p in tables.values() if not p.exists()]
    if missing:
        sys.exit(f"{folder}: not a finished run (missing {', '.join(missing)})")
    values = per_image_values(*(pd.read_parquet(p) for p in tables.values()))
    if arch is not None:
        values = values[values["arch"] == arch]
        if values.empty:
            sys.exit(f"{folder}: no architecture {arch!r}")
    return values.assign(arch=values["arch"] + " " + label)


def same_folds(folders: list[Path]) -> None:
    first = pd.read_parquet(folders[0] / "splits.parquet")[["sample_id", "fold"]].sort_values("sample_id")
    for folder in folders[1:]:
        other = pd.read_parquet(folder / "splits.parquet")[["sample_id", "fold"]].sort_values("sample_id")
        if not first.reset_index(drop=True).equals(other.reset_index(drop=True)):
            sys.exit(f"{folder} and {folders[0]} did not split the same images into the same folds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="label=results/<dataset> (two or more)")
    parser.add_argument("--arch", help="compare only this architecture")
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    runs = [run.split("=", 1) for run in args.runs]
    if len(runs) < 2 or any(len(run) != 2 for run in runs):
        parser.error("give two or more runs as label=folder")
    folders = [Path(folder) for _, folder in runs]
    same_folds(folders)
    values = pd.concat([run_values(Path(folder), label, args.arch) for label, folder in runs], ignore_index=True)
    table = compare(values, resamples=args.resamples)
    intervals = table[table["kind"] == "interval"]
    print("Mean over out-of-fold images (95 % bootstrap interval)\n")
    print("| metric | target | run | n | mean | 95 % CI |\n|---|---|---|---|---|---|")
    for row in intervals.itertuples():
        print(f"| {row.metric} | {row.target} | {row.arch} | {row.n} | {row.estimate:.4f} | "
              f"[{row.ci_low:.4f}, {row.ci_high:.4f}] |")
    print("\nPaired on the same images (Wilcoxon signed-rank, Holm over pairs)\n")
    print("| metric | target | A | B | n | mean A-B | median A-B | p | p (Holm) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in table[table["kind"] == "paired"].itertuples():
        print(f"| {row.metric} | {row.target} | {row.arch} | {row.arch_b} | {row.n} | {row.mean_difference:+.4f} | "
              f"{row.median_difference:+.4f} | {row.p_value:.2g} | {row.p_holm:.2g} |")


if __name__ == "__main__":
    main()
