"""manifest.json: everything a user of the exported files needs to get cellbench's segmentation out
of them (the input convention, which normalisation is already inside, the tile size, overlap and
test-time augmentation infer uses, how the folds are averaged) and where they came from (checkpoints
with their SHA-256, versions, and how closely the files reproduce cellbench's probabilities).
"""

from __future__ import annotations

import platform
from pathlib import Path

from cellbench import __version__
from cellbench.export.networks import Fold
from cellbench.fsutil import WRITER, sha256
from cellbench.inference import tta as tta_views

MANIFEST = "manifest.json"
ENSEMBLE_RULE = ("mean of the per-fold softmax probabilities (and of the test-time augmentation views), "
                 "argmax after averaging")


def class_rule(classes: list[str], outputs: list[str]) -> str:
    """How a class map follows from the averaged probabilities (cellbench.inference.segment)."""
    if len(outputs) == len(classes):
        return "argmax over the output channels: the class index in `classes` order"
    return (f"argmax over the output channels; a pixel whose argmax is `{outputs[-1]}` (a line where two touching "
            "objects meet) takes the most likely foreground class, and separates the objects")


def tta_record(choice: str) -> dict:
    views = tta_views.transforms(choice)
    return {"choice": choice, "views": [view.name for view in views],
            "view_rule": "rot<deg>[_mirror]: mirror left-right first (if _mirror), then rotate by <deg> degrees "
                         "(torch.rot90 over height and width); predict, map the probabilities back by the inverse, "
                         "and average them with the folds' before any argmax"}


def files_record(folder: Path) -> dict:
    """Every file written to ``folder`` (but the manifest and cellbench's marker) with its SHA-256."""
    return {path.name: {"sha256": sha256(path), "bytes": path.stat().st_size}
            for path in sorted(Path(folder).iterdir()) if path.is_file() and not path.name.startswith(".")
            and path.name != MANIFEST}


def build(fmt: str, folds: list[Fold], divisor: int, min_side: int, tile_size: int | None, overlap: float, tta: str,
          parity: dict, versions: dict, fold_files: dict[int, str] | None = None, benchmark: dict | None = None,
          notes: list[str] | None = None) -> dict:
    """The manifest of one export (its "files" are filled by files_record once everything is
    written): ``fold_files`` the file of each fold (per-fold formats), ``parity`` the checks' results."""
    first = folds[0].meta
    classes, outputs = list(first["classes"]), folds[0].outputs
    return {
        "writer": WRITER,
        "cellbench_version": __version__,
        "format": fmt,
        "arch": first["arch"],
        "encoder": first["encoder"],
        "family": first.get("family", "smp"),
        "dataset": first.get("dataset", ""),
        "folds": [{"fold": int(f.meta["fold"]), "checkpoint": str(f.checkpoint),
                   "checkpoint_sha256": sha256(f.checkpoint), "file": (fold_files or {}).get(int(f.meta["fold"])),
                   "mean": list(map(float, f.meta["mean"])),
                   "std": list(map(float, f.meta["std"])), "selection": f.meta.get("selection"),
                   "epoch": f.meta.get("epoch"), "train_samples": len(f.meta.get("train_samples") or [])}
                  for f in folds],
        "classes": classes,
        "outputs": outputs,
        "target": first.get("target", "classes"),
        "input": {"name": "image", "layout": "NCHW", "dtype": "float32", "channels": ["red", "green", "blue"],
                  "value_range": [0, 255],
                  "convention": "8-bit RGB pixel values as they are (not divided by 255); cellbench reads grey and "
                                "16-bit images as 8-bit RGB first (cellbench.images.read_image)"},
        "output": {"name": "probabilities", "layout": "NCHW", "dtype": "float32", "channels": outputs,
                   "meaning": "softmax probability of each output channel; they sum to 1 at every pixel"},
        "normalisation": {"baked_in": True, "formula": "(image / 255 - mean) / std, per channel, each fold its own",
                          "scale": "mean and std on the 0..1 scale"},
        "size": {"divisor": divisor, "min_side": min_side,
                 "rule": f"{min_side} + n x {divisor} px each (n = 0, 1, ...); pad other sizes (cellbench reflects, "
                         "or replicates where the padding exceeds the side) and crop the output back"},
        "tiling": {"tile_size": tile_size, "overlap": overlap, "blending": "Gaussian weights (MONAI "
                   "sliding_window_inference, mode gaussian); tile_size null: the whole image as one window",
                   "from": "the infer settings"},
        "tta": tta_record(tta),
        "ensemble": {"rule": ENSEMBLE_RULE, "class_map": class_rule(classes, outputs),
                     "in_files": "one network per fold" if fold_files else "the mean of the folds is inside the "
                                                                           "network"},
        "parity": parity,
        "benchmark": benchmark or {},
        "files": {},
        "notes": notes or [],
        "versions": {**versions, "python": platform.python_version()},
    }
