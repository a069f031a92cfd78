"""`cellbench export`: the fold ensemble of one architecture as ONNX files, TorchScript files or a
BioImage Model Zoo package, with manifest.json. Every written network is first run on real image
crops and must reproduce cellbench's own probabilities (cellbench.export.parity); the output folder
is staged and appears complete or not at all.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from pathlib import Path

import numpy as np
import torch

from cellbench.errors import ConfigError
from cellbench.export import FORMATS, bioimageio_package, onnx_files, parity, torchscript_files
from cellbench.export import manifest as manifests
from cellbench.export.networks import EnsembleProbabilities, Fold, divisor_of, load_folds, metadata, smallest_side
from cellbench.fsutil import staged_dir
from cellbench.images import MAX_PIXELS

log = logging.getLogger(__name__)

INSTALL = "pip install 'cellbench[export]'"
NEEDS = {"onnx": ("onnx", "onnxruntime"), "torchscript": (),
         "bioimageio": ("onnx", "onnxruntime", "bioimageio.spec", "bioimageio.core")}
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


def require(fmt: str) -> None:
    """ConfigError for an unknown format, or one whose packages (the export extra) are missing."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    missing = []
    for name in NEEDS[fmt]:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # the parent package (bioimageio) is missing
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise ConfigError(f"--format {fmt} needs {', '.join(missing)}, not installed here: {INSTALL}")


def choose(checkpoints: list[Path], arch: str, folds: str | list[int], summary=None) -> tuple[str, list[Path]]:
    """(architecture, its fold checkpoints among ``checkpoints``): ``arch`` or, for ``best``, the
    cross-validation winner of ``summary``; the folds of infer.folds (``all``: every one given)."""
    from cellbench.inference.infer import best_architecture
    if arch == "best" and summary is None:
        raise ConfigError("--arch best needs the cross-validation summary (--summary summary.parquet)")
    name = best_architecture(summary) if arch == "best" else arch
    found: dict[int, Path] = {}
    for path in map(Path, checkpoints):
        meta = metadata(path)
        if str(meta["arch"]) == name:
            found[int(meta["fold"])] = path
    if not found:
        raise ConfigError(f"--arch: no trained model of {name!r} among the {len(checkpoints)} checkpoint(s) given")
    wanted = sorted(found) if folds == "all" else list(folds)
    missing = [k for k in wanted if k not in found]
    if missing:
        raise ConfigError(f"infer.folds: {name} has no model of fold {', '.join(map(str, missing))}")
    return name, [found[k] for k in wanted]


def benchmark_scores(summary, arch: str) -> dict:
    """The cross-validated Dice per class of ``arch`` from summary.parquet (empty without one)."""
    if summary is None:
        return {}
    rows = summary[summary["arch"] == arch]
    scores = {str(r["class"]): float(r["cv_dice"]) for _, r in rows.iterrows() if r["cv_dice"] == r["cv_dice"]}
    return {"cv_dice": scores, "n_images": int(rows["n_images"].max()) if len(rows) else 0,
            "n_folds": int(rows["n_folds"].max()) if len(rows) else 0} if scores else {}


def _example(side: int) -> torch.Tensor:
    """What the networks are traced on: a fixed pseudo-image of another size than the parity crops,
    so that the parity check also shows that height and width stayed free."""
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, side, side, generator=generator) * 255


def _versions(fmt: str) -> dict:
    import segmentation_models_pytorch
    found = {"torch": torch.__version__, "segmentation-models-pytorch": segmentation_models_pytorch.__version__}
    return {**found, **(onnx_files.versions() if fmt in ("onnx", "bioimageio") else {})}


def _mean_runner(runners):
    """The user-side ensemble of per-fold files: the mean of their probabilities."""
    return lambda batch: np.mean([run(batch) for run in runners], axis=0)


def _remembered(run):
    """``run`` answering a batch it has seen from memory: the ensemble check reuses the folds' outputs."""
    seen: dict[bytes, np.ndarray] = {}

    def recall(batch: np.ndarray) -> np.ndarray:
        key = hashlib.sha256(np.ascontiguousarray(batch).tobytes()).digest() + str(batch.shape).encode()
        if key not in seen:
            seen[key] = run(batch)
        return seen[key]

    return recall


def _per_fold(fmt: str, folds: list[Fold], stage: Path, example: torch.Tensor, items: list[parity.Crop],
              arch: str) -> tuple[dict[int, str], dict]:
    """fold<k>.onnx / fold<k>.pt, each checked against its own checkpoint, then their mean against the
    ensemble."""
    writer = onnx_files if fmt == "onnx" else torchscript_files
    fold_files, results, runners = {}, {}, []
    for fold in folds:
        k = int(fold.meta["fold"])
        name = f"fold{k}{SUFFIX[fmt]}"
        try:
            writer.write(fold.module, stage / name, example)
        except onnx_files.OnnxUnsupported as err:
            raise ConfigError(f"{arch} cannot be exported to ONNX: {err}; --format torchscript (or bioimageio, "
                              "with TorchScript weights) works") from None
        run = _remembered(writer.runner(stage / name))
        expected = [parity.reference(crop, [(fold.net, fold.meta)]) for crop in items]
        results[f"fold{k}"] = parity.compare(f"{arch} {name}", run, items, expected)
        fold_files[k] = name
        runners.append(run)
    together = [parity.reference(crop, [(f.net, f.meta) for f in folds]) for crop in items]
    results["ensemble"] = parity.compare(f"{arch} mean of the {fmt} folds", _mean_runner(runners), items, together)
    return fold_files, results


def _bioimageio(folds: list[Fold], stage: Path, example: torch.Tensor, items: list[parity.Crop], arch: str,
                notes: list[str]) -> tuple[dict, bool]:
    """ensemble.pt and (where it can be expressed) ensemble.onnx, checked against cellbench's ensemble."""
    ensemble = EnsembleProbabilities([fold.module for fold in folds]).eval()
    nets = [(f.net, f.meta) for f in folds]
    expected = [parity.reference(crop, nets) for crop in items]
    results = {}
    torchscript_files.write(ensemble, stage / bioimageio_package.WEIGHTS_TORCHSCRIPT, example)
    results["torchscript"] = parity.compare(f"{arch} ensemble.pt", torchscript_files.runner(
        stage / bioimageio_package.WEIGHTS_TORCHSCRIPT), items, expected)
    try:
        onnx_files.write(ensemble, stage / bioimageio_package.WEIGHTS_ONNX, example)
    except onnx_files.OnnxUnsupported as err:
        log.warning("%s: no ONNX weights in the package (%s); TorchScript only", arch, err)
        notes.append(f"no ONNX weights: {err}")
        (stage / bioimageio_package.WEIGHTS_ONNX).unlink(missing_ok=True)
        return results, False
    results["onnx"] = parity.compare(f"{arch} ensemble.onnx", onnx_files.runner(
        stage / bioimageio_package.WEIGHTS_ONNX), items, expected)
    return results, True


def readme(record: dict) -> str:
    """The package's documentation (README.md): what goes in and out, how to tile and average, and
    how the model was validated."""
    outputs, size, tiling = record["outputs"], record["size"], record["tiling"]
    scores = record["benchmark"].get("cv_dice", {})
    score_lines = "".join(f"- {name}: {value:.4f}\n" for name, value in scores.items()) or \
        "- (no cross-validation summary was given to `cellbench export`)\n"
    worst = max(result["max_abs_diff"] for result in record["parity"]["results"].values())
    return f"""# {record['arch']} ({record['encoder']}) fold ensemble, trained with cellbench

Semantic segmentation of RGB cell images into {', '.join(record['classes'])}: the mean of the softmax
probabilities of {len(record['folds'])} fold models of a {len(record['folds'])}-fold cross-validation
(dataset `{record['dataset']}`). Written by cellbench {record['cellbench_version']} (`cellbench export`).

## Input

`image`: float32 (batch, 3, y, x), RGB pixel values 0..255 as they are. The normalisation the models
were trained with (`(image / 255 - mean) / std`, per channel) is inside the network. Height and width:
{size['rule']}.

## Output

`probabilities`: float32 (batch, {len(outputs)}, y, x), the mean over the folds of each model's softmax
probabilities of {', '.join(outputs)}. Class map: {record['ensemble']['class_map']}.

## Large images

cellbench predicts windows of {tiling['tile_size']} px overlapping by {tiling['overlap']}, blended with
Gaussian weights, and averages test-time augmentation `{record['tta']['choice']}`
({', '.join(record['tta']['views'])}) with the folds before the argmax. manifest.json (beside this
package when exported) holds every detail.

## Validation

The fold models were scored by cellbench on the images each one did not train on (cross-validated
Dice per class):

{score_lines}
The exported network reproduces cellbench's own probabilities on real image crops to within
{worst:.2e} (largest absolute difference; images: {', '.join(Path(p).name for p in record['parity']['images'])}).
"""


def export(checkpoints: list[Path], fmt: str, out: Path, images: list[Path], tile_size: int | None = 512,
           overlap: float = 0.25, tta: str = "none", benchmark: dict | None = None,
           authors: tuple[str, ...] = ("cellbench",), license: str = "CC-BY-4.0", zip_package: bool = False,
           max_pixels: int | None = MAX_PIXELS, parity_side: int = parity.PARITY_SIDE) -> dict:
    """Export the fold ensemble of ``checkpoints`` (one architecture) to ``out`` in ``fmt``.

    Parameters
    ----------
    checkpoints:
        The folds' model.pt files (smp architectures; Mask R-CNN and NucleusGuided are refused).
    fmt:
        onnx (fold<k>.onnx), torchscript (fold<k>.pt) or bioimageio (a BioImage Model Zoo package of
        the ensemble, validated and tested with bioimageio.core).
    out:
        Written as a whole (staged); an existing folder cellbench did not write is refused.
    images:
        Real images whose centre crops check that the files reproduce cellbench's probabilities
        (within parity.TOLERANCE, else nothing is written); the first also gives the package's
        test tensors.
    tile_size, overlap, tta:
        The tiling and test-time augmentation recommended in the manifest (infer's settings).
    benchmark:
        Cross-validated scores recorded in the manifest and the package's documentation.
    authors, license, zip_package:
        The package's authors and SPDX license; also write <name>.zip for upload (bioimageio).
    max_pixels, parity_side:
        The decoding limit of the images; the largest side of the crops checked.

    Returns
    -------
    The manifest (also written as manifest.json).
    """
    require(fmt)
    checkpoints = [Path(p) for p in checkpoints]
    folds = load_folds(checkpoints)
    arch = str(folds[0].meta["arch"])
    notes: list[str] = []
    with staged_dir(Path(out), [*checkpoints, *map(Path, images)]) as stage:  # a foreign folder: refused now
        divisor = divisor_of(folds)
        min_side = smallest_side(folds[0].module, divisor)
        items = parity.crops([Path(p) for p in images], divisor, min_side, parity_side, max_pixels)
        example = _example(min_side + divisor)
        if fmt == "bioimageio":
            results, with_onnx = _bioimageio(folds, stage, example, items, arch, notes)
            fold_files = None
        else:
            fold_files, results = _per_fold(fmt, folds, stage, example, items, arch)
        record_parity = {"reference": "cellbench.inference.ensemble.probabilities (the whole crop as one window, "
                                      "no test-time augmentation, float32 on the CPU)",
                         "images": [crop.source for crop in items],
                         "crop_sizes": [list(crop.pixels.shape[:2]) for crop in items], "results": results}
        record = manifests.build(fmt, folds, divisor, min_side, tile_size, overlap, tta, record_parity,
                                 _versions(fmt), fold_files, benchmark, notes)
        if fmt == "bioimageio":
            record["bioimageio"] = _package(stage, folds, items[0], record, authors, license, with_onnx, zip_package)
        record["files"] = manifests.files_record(stage)
        (stage / manifests.MANIFEST).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    log.info("exported %s (%d folds) as %s to %s", arch, len(folds), fmt, out)
    return record


def _package(stage: Path, folds: list[Fold], crop: parity.Crop, record: dict, authors: tuple[str, ...],
             license: str, with_onnx: bool, zip_package: bool) -> dict:
    """The Zoo package around the ensemble weights already in ``stage``."""
    divisor, min_side = record["size"]["divisor"], record["size"]["min_side"]
    test = bioimageio_package.test_crop(crop, divisor, min_side)
    expected = parity.reference(test, [(f.net, f.meta) for f in folds])
    config = {key: record[key] for key in ("cellbench_version", "arch", "encoder", "classes", "outputs", "input",
                                           "normalisation", "size", "tiling", "tta", "ensemble")}
    config["parity_max_abs_diff"] = {name: result["max_abs_diff"]
                                     for name, result in record["parity"]["results"].items()}
    package = bioimageio_package.Package(
        name=f"cellbench {record['arch']} {record['dataset']}".strip(),
        description=f"{record['arch']} ({record['encoder']}) ensemble of {len(folds)} fold models trained with "
                    f"cellbench: semantic segmentation of RGB cell images into {', '.join(record['classes'])}",
        outputs=record["outputs"], min_side=min_side, divisor=divisor, arch=record["arch"], authors=tuple(authors),
        license=license, documentation=readme(record), config=config)
    result = bioimageio_package.write(stage, package, test, expected, with_onnx)
    result["test_tensor_source"] = test.source
    if zip_package:
        name = f"{bioimageio_package.zoo_name(package.name).replace(' ', '_')}.zip"
        bioimageio_package.zip_package(stage / bioimageio_package.RDF, stage / name)
        result["zip"] = name
    log.info("BioImage Model Zoo package: format %s, test_model %s", result["format_validation"], result["test_model"])
    return result
