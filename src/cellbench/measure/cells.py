"""Per-object measurements of one image: each object (a cell) and its compartments (nucleus, cytoplasm).

The measured object types are those of the evaluate section that are not part of another one
(with the defaults, cells; their nuclei are measured as a compartment of each cell). A type with a
seed class that is a strict part of it (cell = cytoplasm + nucleus, seeded by nucleus) has three
compartments, each named after its classes: the whole object (``cell``), its seed-class pixels
(``nucleus``, all of them, however many pieces: a lobed nucleus is one nucleus) and the rest
(``cytoplasm``). Columns are ``<compartment>_<feature>`` (cellbench.measure.features), plus the
object's centroid and, for seeded types, ``nucleus_count``, ``nc_ratio`` and ``nc_intensity_ratio``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from skimage.measure import label

from cellbench.classmaps import in_classes
from cellbench.evaluation.matching import Overlaps
from cellbench.measure.features import LEVELS, channels_of, histograms, shape_features, statistics_columns

MATCH_IOU = 0.5  # the one-to-one matching of the instance metrics at IoU 0.5 (unique above 0.5)


@dataclass(frozen=True)
class Compartments:
    """How one object type is measured: its name (the whole object), and for a seeded type the names
    and class indices of the seed part and the rest."""

    name: str
    seed_name: str | None = None
    rest_name: str | None = None
    seeds: tuple[int, ...] = ()

    @property
    def names(self) -> list[str]:
        return [n for n in (self.name, self.seed_name, self.rest_name) if n]


def measured_types(classes: list[str], types: dict[str, dict]) -> dict[str, Compartments]:
    """The object types to measure (``types``: cellbench.evaluation.scope's object_indices), each with
    its compartments: types whose classes are a strict part of another type's are left out."""
    out = {}
    for name, kind in types.items():
        members = set(kind["classes"])
        if any(members < set(other["classes"]) for other in types.values()):
            continue
        seeds = sorted(set(kind.get("seeds") or ()) & members)
        if seeds and len(seeds) < len(members):
            rest = sorted(members - set(seeds))
            out[name] = Compartments(name, "_".join(classes[i] for i in seeds), "_".join(classes[i] for i in rest),
                                     tuple(seeds))
        else:
            out[name] = Compartments(name)
    return out


def _shape_table(labels: np.ndarray, ids: np.ndarray, prefix: str, centroid: bool = False) -> pd.DataFrame:
    table = shape_features(labels).reindex(ids)
    table["area"] = table["area"].fillna(0.0)  # a cell without nucleus has a nucleus of area 0
    if not centroid:
        table = table.drop(columns=["centroid_row", "centroid_column"])
    return table.rename(columns={c: c if c.startswith("centroid_") else f"{prefix}_{c}" for c in table.columns})


def _intensity_tables(objects: np.ndarray, ids: np.ndarray, seed: np.ndarray | None, channels,
                      compartments: Compartments, bin_width: int) -> pd.DataFrame:
    """Intensity features of every compartment, from one histogram per object x part (seed, rest)
    and channel: the whole object's histogram is their sum."""
    inside = objects > 0
    position = np.searchsorted(ids, objects[inside])
    parts = 1 if seed is None else 2
    if seed is not None:
        position = position * 2 + seed[inside]
    columns = {}
    for channel, values in channels.items():
        hist = histograms(position, len(ids) * parts, values[inside]).reshape(len(ids), parts, LEVELS)
        named = [(compartments.name, hist.sum(axis=1))]
        if seed is not None:
            named += [(compartments.seed_name, hist[:, 1]), (compartments.rest_name, hist[:, 0])]
        for prefix, part in named:
            columns.update({f"{prefix}_{k}": v for k, v in statistics_columns(part, channel, bin_width).items()})
    return pd.DataFrame(columns, index=pd.Index(ids, name="object_id"))


def measure_objects(image: np.ndarray, class_map: np.ndarray, objects: np.ndarray, compartments: Compartments,
                    bin_width: int = 25) -> pd.DataFrame:
    """One row per object of ``objects`` (an instance map of one type; index: object_id).

    ``class_map`` tells the compartments apart (the predicted or annotated classes of the same image)."""
    objects = np.asarray(objects)
    channels = channels_of(image)
    ids = np.unique(objects)
    ids = ids[ids > 0].astype(np.int64)
    table = _shape_table(objects, ids, compartments.name, centroid=True)
    seed = None
    if compartments.seed_name:
        seed = in_classes(class_map, compartments.seeds) & (objects > 0)
        nucleus = np.where(seed, objects, 0)
        shapes = [_shape_table(nucleus, ids, compartments.seed_name),
                  _shape_table(np.where(seed, 0, objects), ids, compartments.rest_name)]
        # seed pieces: 4-connected components of the seed class inside each object, counted per object
        pieces = label(nucleus, connectivity=1)  # equal ids only: touching nuclei of two cells stay apart
        owner = np.zeros(int(pieces.max(initial=0)) + 1, np.int64)
        owner[pieces] = objects  # a piece lies in one object: any of its pixels names it
        counts = np.bincount(owner[1:], minlength=int(ids.max(initial=0)) + 1)
        table["nucleus_count"] = counts[ids].astype(np.float64) if len(ids) else np.zeros(0)
        table["nc_ratio"] = shapes[0][f"{compartments.seed_name}_area"] / table[f"{compartments.name}_area"]
        table = table.join(shapes)
    intensity = _intensity_tables(objects, ids, seed, channels, compartments, bin_width)
    if compartments.seed_name:
        with np.errstate(divide="ignore", invalid="ignore"):
            table["nc_intensity_ratio"] = (intensity[f"{compartments.seed_name}_grey_mean"]
                                           / intensity[f"{compartments.rest_name}_grey_mean"])
    table = table.join(intensity)
    table.index.name = "object_id"
    return table


def matches(reference: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """The one-to-one matching at IoU >= 0.5 of the instance metrics: one row per matched predicted
    object (index: its id) with the reference object's id and the pair's IoU."""
    overlaps = Overlaps.of(reference, predicted)
    chosen = overlaps.match(MATCH_IOU)
    reference_ids, predicted_ids = (np.unique(m) for m in (reference, predicted))
    reference_ids, predicted_ids = reference_ids[reference_ids > 0], predicted_ids[predicted_ids > 0]
    return pd.DataFrame({"reference_id": reference_ids[overlaps.pairs_true[chosen]].astype(np.int64),
                         "match_iou": overlaps.iou[chosen].astype(np.float64)},
                        index=pd.Index(predicted_ids[overlaps.pairs_pred[chosen]].astype(np.int64), name="object_id"))
