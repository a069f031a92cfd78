"""What the app does with one image, without any user interface: the benchmark's trained fold
models (loaded once per architecture), the same segmentation, LabelMe export and per-cell
measurements as the workflow's infer step, and the files a user downloads.

Kept apart from the Gradio page (cellbench.app.ui) so that it is tested and reused directly.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from cellbench.classmaps import relabel_sequential
from cellbench.errors import ConfigError, InputError, InputProblem
from cellbench.evaluation.scope import resolve
from cellbench.evaluation.semantic_metrics import FOREGROUND_MEAN
from cellbench.images import ImageReadError, read_image, write_png
from cellbench.inference.ensemble import DEFAULT_WINDOWS, Windows
from cellbench.inference.infer import labelme_for, learned_types, overlay
from cellbench.inference.object_files import write_object_files
from cellbench.inference.segment import FoldModel, Segmentation, load_models, segment
from cellbench.measure.measure import inferred_cells
from cellbench.report.figures import colour_legend

MAX_PIXELS = 40_000_000  # per image: the probabilities of 40 MP stay well inside a laptop's memory
SHOWN = ("object_id", "cell_area", "nucleus_area", "nc_ratio", "cell_circularity", "nucleus_count", "cell_red_mean",
         "cell_green_mean", "cell_blue_mean", "nucleus_grey_mean", "cytoplasm_grey_mean", "uncertainty")


@dataclass(frozen=True)
class Choice:
    """One architecture the app offers: its fold checkpoints and cross-validated foreground Dice."""

    arch: str
    checkpoints: tuple[Path, ...]
    cv_dice: float
    data: Path | None = None  # the benchmark's annotated images: what the object rules are learned from

    @property
    def label(self) -> str:
        score = "not scored" if math.isnan(self.cv_dice) else f"{self.cv_dice:.3f}"
        return f"{self.arch} (CV Dice {score}, {len(self.checkpoints)} fold models)"


def choices(results: Path) -> list[Choice]:
    """The trained architectures of a results/<dataset> folder, the CV winner first (then by CV
    Dice; architectures without a score last, by name)."""
    results = Path(results)
    models = results / "models"
    found = {arch.name: tuple(sorted(arch.glob("fold*/model.pt"))) for arch in sorted(models.glob("*"))
             if arch.is_dir()} if models.is_dir() else {}
    found = {arch: paths for arch, paths in found.items() if paths}
    if not found:
        raise ConfigError(f"{results}: no trained model (models/<arch>/fold<k>/model.pt); run the benchmark first "
                          "(snakemake --cores all), then point --results at results/<dataset>")
    scores: dict[str, float] = {}
    summary = results / "summary.parquet"
    if summary.is_file():
        try:
            table = pd.read_parquet(summary, columns=["arch", "class", "cv_dice"])
        except Exception as err:  # any damage: name the file
            raise InputError([InputProblem(summary, f"is not a cellbench summary ({type(err).__name__})",
                                           "run the aggregate step again")]) from None
        head = table[table["class"] == FOREGROUND_MEAN]
        scores = dict(zip(head["arch"], head["cv_dice"], strict=True))
    data = results / "data" if (results / "data" / "manifest.parquet").is_file() else None
    listed = [Choice(arch, paths, float(scores.get(arch, np.nan)), data) for arch, paths in found.items()]
    return sorted(listed, key=lambda c: (math.isnan(c.cv_dice), -np.nan_to_num(c.cv_dice), c.arch))


class ModelCache:
    """Each architecture's fold models, loaded on first use and kept (one load per app, not per image)."""

    def __init__(self, device: str = "auto"):
        self.device = device
        self._loaded: dict[str, list[FoldModel]] = {}
        self._types: dict[str, dict[str, dict]] = {}
        self._lock = threading.Lock()

    def models(self, choice: Choice) -> list[FoldModel]:
        with self._lock:
            if choice.arch not in self._loaded:
                loaded = []
                for path in choice.checkpoints:
                    try:
                        loaded += load_models([path], self.device)
                    except Exception as err:  # any damage: name the file
                        raise InputError([InputProblem(path, f"is not a cellbench checkpoint ({type(err).__name__})",
                                                       "train the model again")]) from None
                self._loaded[choice.arch] = loaded
            return self._loaded[choice.arch]


    def object_types(self, choice: Choice) -> dict[str, dict]:
        """The object types of ``choice``'s models with the rules learned from the images they trained
        on (cellbench.inference.object_rules), as infer uses them; learned once per architecture."""
        fold_models = self.models(choice)
        with self._lock:
            if choice.arch not in self._types:
                types = resolve(fold_models[0].classes, {"regions": {}}).object_indices()
                self._types[choice.arch] = learned_types(types, fold_models, choice.data, None)[0]
            return self._types[choice.arch]


def cell_uncertainty(probabilities: np.ndarray | None, instances: np.ndarray) -> pd.Series:
    """Per object id: the mean over its pixels of the predictive entropy of the averaged
    probabilities, divided by log(C) (0 = certain, 1 = uniform); NaN without probabilities."""
    ids = np.unique(instances[instances > 0])
    if probabilities is None or len(ids) == 0:
        return pd.Series(np.nan, index=pd.Index(ids, name="object_id"), dtype=float)
    p = probabilities.astype(np.float32)
    entropy = -(p * np.log(np.clip(p, 1e-12, None))).sum(0) / math.log(max(p.shape[0], 2))
    return pd.Series(ndimage.mean(entropy, instances, ids), index=pd.Index(ids, name="object_id"))


@dataclass
class Analysis:
    """One image analysed: what the page shows and the files it offers."""

    name: str
    overlay: np.ndarray
    cells: pd.DataFrame
    summary: dict
    files: list[Path] = field(default_factory=list)


def analyse(source: Path, name: str, choice: Choice, cache: ModelCache, out_dir: Path,
            windows: Windows = DEFAULT_WINDOWS, max_pixels: int = MAX_PIXELS) -> Analysis:
    """Segment one uploaded image with ``choice``'s fold ensemble and write its downloads into
    ``out_dir``: <stem>_classes.png (class indices), <stem>_instances.png (uint16 cell ids),
    <stem>.json (LabelMe, imagePath = the uploaded name, to correct in LabelMe beside the image) and
    <stem>_cells.csv, and per object type a QuPath GeoJSON (<stem>_<type>.geojson) and an ImageJ ROI set
    (<stem>_<type>_rois.zip). Raises ImageReadError for an unreadable or too large image."""
    stem = Path(name).stem or "image"
    image = read_image(Path(source), max_pixels, f"image {name}").rgb
    fold_models = cache.models(choice)
    classes = fold_models[0].classes
    types = cache.object_types(choice)
    started = time.perf_counter()
    result: Segmentation = segment(image, fold_models, windows, types, keep_probabilities=True)
    seconds = time.perf_counter() - started
    cells = inferred_cells(image, result.class_map, result.instances, classes, types, "app", choice.arch, stem)
    if len(cells) and types:
        first = next(iter(types))
        uncertainty = cell_uncertainty(result.probabilities, result.instances[first])
        own = cells["object_type"] == first
        cells.loc[own, "uncertainty"] = cells.loc[own, "object_id"].map(uncertainty)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / f"{stem}_classes.png", out_dir / f"{stem}.json", out_dir / f"{stem}_cells.csv"]
    write_png(result.class_map, files[0])
    files[1].write_text(json.dumps(labelme_for(result, name, image.shape[:2]), indent=2) + "\n", encoding="utf-8")
    cells.to_csv(files[2], index=False)
    if types:
        files.insert(1, out_dir / f"{stem}_instances.png")
        write_png(relabel_sequential(result.instances[next(iter(types))]).astype(np.uint16), files[1])
        files += write_object_files(result.instances, types, result.class_map, cells,
                                    lambda kind, suffix: out_dir / f"{stem}_{kind}{suffix}")
    counts = {f"{kind} objects": int(result.instances[kind].max(initial=0)) for kind in types}
    summary = {"image": name, "size": f"{image.shape[1]} x {image.shape[0]}", "architecture": choice.arch,
               "colours": colour_legend(classes),
               "fold models": len(fold_models), **counts, "seconds": round(seconds, 2),
               "mean uncertainty (entropy)": round(result.entropy, 4),
               "fold disagreement": round(result.disagreement, 4)}
    return Analysis(name, overlay(image, result), cells, summary, files)


def shown_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """The per-cell columns the page shows (all of them are in the CSV), rounded for reading."""
    first = cells["object_type"].iloc[0] if len(cells) else None
    table = cells[cells["object_type"] == first] if first is not None else cells
    columns = ["sample_id", *[c for c in SHOWN if c in table.columns]]
    return table[columns].round(3).reset_index(drop=True)


def refusal(name: str, error: ImageReadError) -> str:
    """What the page says about an image it does not analyse."""
    message = str(error).removeprefix(f"image {name} ").strip()
    return f"{name}: {message}" + (f" ({error.hint})" if error.hint else "")


@dataclass
class Batch:
    """What one press of Segment shows: overlays with their names, the summary text, the cells of
    every image and the files to download."""

    overlays: list[tuple[np.ndarray, str]]
    text: str
    cells: pd.DataFrame
    files: list[Path]


DISPLAY_SIDE = 4096  # the page shows overlays at most this long on a side (the downloads keep every pixel)


def for_display(overlay: np.ndarray) -> np.ndarray:
    """The overlay as the page shows it: shrunk by a whole factor until its longer side is at most
    DISPLAY_SIDE (a whole slide's overlay would not reach the browser, nor fit a screen)."""
    step = -(-max(overlay.shape[:2]) // DISPLAY_SIDE)
    return overlay if step <= 1 else np.ascontiguousarray(overlay[::step, ::step])


def analyse_uploads(uploads: list[Path], choice: Choice, cache: ModelCache, out: Path,
                    windows: Windows = DEFAULT_WINDOWS, max_pixels: int = MAX_PIXELS,
                    keep: Path | None = None) -> Batch:
    """Every uploaded file analysed into ``out`` (two with one stem, a.png and a.tif, into separate
    folders); a file that is not read is named with its reason and the others go on. With ``keep``,
    the files are also copied to keep/<out's name>/ (a new folder each time: nothing overwritten)."""
    overlays, notes, tables, files, summaries = [], [], [], [], []
    stems: set[str] = set()
    for upload in uploads:
        name = upload.name
        folder = out / str(len(stems)) if upload.stem in stems else out
        stems.add(upload.stem)
        try:
            analysis = analyse(upload, name, choice, cache, folder, windows, max_pixels)
        except ImageReadError as err:
            notes.append(refusal(name, err))
            continue
        overlays.append((for_display(analysis.overlay), name))
        tables.append(shown_cells(analysis.cells))
        files += analysis.files
        summaries.append(analysis.summary)
    kept = keep / out.name if keep is not None and files else None
    for path in files if kept is not None else []:
        target = kept / path.relative_to(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    lines = ["**" + s["image"] + "**: " + ", ".join(f"{k} {v}" for k, v in s.items() if k != "image")
             for s in summaries]
    lines += [f"Not analysed: {note}" for note in notes]
    if kept is not None:
        lines.append(f"Copies kept in {kept}.")
    cells = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return Batch(overlays, "\n\n".join(lines) or "Nothing was analysed.", cells, files)
