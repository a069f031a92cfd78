"""The per-object files other tools open, for each object type of one image: a QuPath GeoJSON
(outlines, class, measurements) and an ImageJ ROI set. infer, the app and the whole-slide path
all write them through here, so the three agree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.inference import imagej_rois, qupath

GEOJSON = ".geojson"
ROIS = "_rois.zip"


def write_object_files(instances: dict[str, np.ndarray], types: dict[str, dict], class_map: np.ndarray,
                       cells: pd.DataFrame, path_for: Callable[[str, str], Path]) -> list[Path]:
    """Per object type, the GeoJSON and ROI set at ``path_for(type, suffix)``; the paths written."""
    written = []
    for index, (name, kind) in enumerate(types.items()):
        measured = qupath.measurements(cells, name)
        geojson, rois = path_for(name, GEOJSON), path_for(name, ROIS)
        with qupath.FeatureCollectionWriter(geojson) as writer:
            writer.add(qupath.features(instances[name], name, index, class_map, kind.get("seeds"), measured))
        imagej_rois.write(rois, imagej_rois.rois(instances[name], name))
        written += [geojson, rois]
    return written
