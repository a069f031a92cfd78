"""LabelMe JSON files: reading and checking them (reading), painting their shapes pixel for pixel as
LabelMe does (painting), turning shapes into class and instance maps (maps), and writing class maps
back as LabelMe files (export)."""

from cellbench.formats.labelme.maps import paint_order, to_maps
from cellbench.formats.labelme.painting import Footprint, rasterise
from cellbench.formats.labelme.reading import (
    Annotation,
    Shape,
    label_lookup,
    normalise_label,
    parse_shapes,
    read_annotation,
)

__all__ = ["Annotation", "Footprint", "Shape", "label_lookup", "normalise_label", "paint_order", "parse_shapes",
           "rasterise", "read_annotation", "to_maps"]
