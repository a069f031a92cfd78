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

__all__ = ["FORMAT", "Annotation", "Footprint", "Shape", "label_lookup", "normalise_label", "paint_order",
           "parse_shapes", "rasterise", "read_annotation", "read_samples", "to_maps"]


def read_samples(files, config, problems):
    """Samples of LabelMe files: shapes painted into a class map and an instance map."""
    from cellbench.formats.common import Sample, guarded

    data = config["data"]

    def read(path):
        annotation, found = read_annotation(path, config["classes"], data["label_aliases"], data["unknown_labels"],
                                            data["max_pixels"])
        problems.extend(found)
        if annotation is None:
            return None
        class_map, instance_map = to_maps(annotation.shapes, annotation.shape_hw, config["classes"],
                                          config["class_priority"], data["instance_mode"])
        return Sample(path.stem, path, annotation.image, class_map, instance_map)

    yield from guarded(files, read, problems)


def _format():
    from cellbench.formats import Format
    return Format("labelme", "LabelMe *.json files", lambda data: ("*.json",), read_samples)


FORMAT = _format()
