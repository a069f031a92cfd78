"""Pixel-exact agreement with LabelMe's own VOC export (its SegmentationClassNpy/ObjectNpy files in
../shared/data), and with LabelMe's `shapes_to_label`, run here, on the small files in tests/data/labelme.

LabelMe paints shapes in file order, `__ignore__` as -1 (our 255) and numbers objects by
(label, group_id), counting ignored ones; we relabel objects 1..N in the same order.
"""

from pathlib import Path

import numpy as np
import pytest
from helpers import reference, shared

from cellbench.classmaps import IGNORE_INDEX, relabel_sequential
from cellbench.formats import labelme

AUTHORED = Path(__file__).resolve().parents[1] / "data" / "labelme"  # written by its make_cases.py

# The only allowed difference: one pixel of 2011_000006 depends on the Pillow version.
PILLOW_DEPENDENT = {"2011_000006": 1}
EXAMPLES = [("instance_segmentation", "2011_000003"), ("instance_segmentation", "2011_000006"),
            ("instance_segmentation", "2011_000025"), ("semantic_segmentation", "2011_000003"),
            ("semantic_segmentation", "2011_000006"), ("semantic_segmentation", "2011_000025")]


def load(example: str, name: str):
    root = shared("labelme-examples", example)
    labels = [line.strip() for line in (root / "labels.txt").read_text().splitlines() if line.strip()]
    classes = [label for label in labels if label != "__ignore__"]  # _background_ is class 0
    annotation, problems = labelme.read_annotation(root / "data_annotated" / f"{name}.json", classes)
    assert problems == []
    return root, classes, annotation


@pytest.mark.parametrize("example, name", EXAMPLES)
def test_class_map_matches_labelme(example, name):
    root, classes, annotation = load(example, name)
    class_map, _ = labelme.to_maps(annotation.shapes, annotation.shape_hw, classes, "file", "labelme")
    reference = np.load(root / "data_dataset_voc" / "SegmentationClassNpy" / f"{name}.npy")
    expected = np.where(reference == -1, IGNORE_INDEX, reference)
    assert (class_map != expected).sum() <= PILLOW_DEPENDENT.get(name, 0)


@pytest.mark.parametrize("name", ["2011_000003", "2011_000006", "2011_000025"])
def test_object_map_matches_labelme(name):
    root, classes, annotation = load("instance_segmentation", name)
    _, instances = labelme.to_maps(annotation.shapes, annotation.shape_hw, classes, "file", "labelme")
    reference = np.load(root / "data_dataset_voc" / "SegmentationObjectNpy" / f"{name}.npy")
    assert (instances != relabel_sequential(np.maximum(reference, 0))).sum() <= PILLOW_DEPENDENT.get(name, 0)
    assert instances.max() == len(np.unique(reference)) - 1


def test_ingest_with_labelme_compatible_settings(tmp_path):
    from helpers import make_config

    from cellbench.dataset.ingest import ingest
    from cellbench.images import read_png
    root, classes, _ = load("instance_segmentation", "2011_000003")
    config = make_config(root / "data_annotated", classes=classes, class_priority="file",
                         data={"instance_mode": "labelme"}, evaluate={"regions": {}})
    manifest = ingest(config, tmp_path / "data").set_index("sample_id")
    assert manifest.at["2011_000003", "pixels_ignored"] > 0 and manifest.at["2011_000025", "pixels_ignored"] == 0
    reference = np.load(root / "data_dataset_voc" / "SegmentationClassNpy" / "2011_000003.npy")
    assert np.array_equal(read_png(tmp_path / "data" / "masks" / "2011_000003.png"),
                          np.where(reference == -1, IGNORE_INDEX, reference))


# ---- the small files in tests/data/labelme, against LabelMe's code run now (bench extra) ----

def labelme_export(path: Path, labels: list[str]):
    """What LabelMe's labelme2voc.py writes for one file: the class map (`__ignore__` -1) and the
    object map (0 under ignored pixels), from LabelMe's own reader and `shapes_to_label`."""
    lm = reference("labelme")
    label_file = lm.LabelFile(filename=str(path))
    image = lm.utils.img_data_to_arr(label_file.image_data)
    values = {name: i - 1 for i, name in enumerate(labels)}  # labels.txt: __ignore__, _background_, ...
    class_map, objects = lm.utils.shapes_to_label(image.shape, label_file.shapes, values)
    objects[class_map == -1] = 0
    return class_map, objects


def authored_labels():
    labels = [line.strip() for line in (AUTHORED / "labels.txt").read_text().splitlines() if line.strip()]
    return labels, [label for label in labels if label != "__ignore__"]


AUTHORED_FILES = ["cells", "random_cells", "primitives"]


@pytest.mark.parametrize("name", AUTHORED_FILES)
def test_maps_match_labelme_on_authored_files(name):
    labels, classes = authored_labels()
    expected_class, expected_objects = labelme_export(AUTHORED / f"{name}.json", labels)
    annotation, problems = labelme.read_annotation(AUTHORED / f"{name}.json", classes)
    assert problems == []
    class_map, instances = labelme.to_maps(annotation.shapes, annotation.shape_hw, classes, "file", "labelme")
    assert np.array_equal(class_map, np.where(expected_class == -1, IGNORE_INDEX, expected_class))
    assert np.array_equal(instances, relabel_sequential(expected_objects))
    assert instances.max() == len(np.unique(expected_objects)) - 1
    assert (expected_class == -1).any() and len(np.unique(expected_class)) == len(labels)  # every label shows


def test_ingest_with_labelme_compatible_settings_on_authored_files(tmp_path):
    from helpers import make_config
    from PIL import Image

    from cellbench.dataset.ingest import ingest
    from cellbench.images import read_png
    imgviz_io = reference("imgviz.io")  # LabelMe's lblsave
    labels, classes = authored_labels()
    config = make_config(AUTHORED, classes=classes, class_priority="file", data={"instance_mode": "labelme"})
    manifest = ingest(config, tmp_path / "data").set_index("sample_id")
    assert sorted(manifest.index) == sorted(AUTHORED_FILES)
    for name in AUTHORED_FILES:
        expected_class, expected_objects = labelme_export(AUTHORED / f"{name}.json", labels)
        label_png = tmp_path / f"{name}.png"
        imgviz_io.lblsave(label_png, np.where(expected_class == -1, 255, expected_class).astype(np.uint8))
        assert np.array_equal(read_png(tmp_path / "data" / "masks" / f"{name}.png"),
                              np.asarray(Image.open(label_png)))  # LabelMe's class PNG
        assert np.array_equal(read_png(tmp_path / "data" / "instances" / f"{name}.png"),
                              relabel_sequential(expected_objects))
        assert manifest.at[name, "pixels_ignored"] == (expected_class == -1).sum()


def test_labelme_class_pngs_of_authored_files_read_as_class_index_pngs(tmp_path):
    """LabelMe's SegmentationClassPNG files (its lblsave of the class map, -1 saved as 255), made here."""
    from helpers import make_config
    from PIL import Image

    from cellbench.dataset.ingest import ingest
    from cellbench.images import read_png
    lm, imgviz_io = reference("labelme"), reference("imgviz.io")
    labels, classes = authored_labels()
    (tmp_path / "SegmentationClass").mkdir()
    (tmp_path / "JPEGImages").mkdir()
    expected = {}
    for name in AUTHORED_FILES:
        expected[name], _ = labelme_export(AUTHORED / f"{name}.json", labels)
        imgviz_io.lblsave(tmp_path / "SegmentationClass" / f"{name}.png",
                          np.where(expected[name] == -1, 255, expected[name]).astype(np.uint8))
        image = lm.utils.img_data_to_arr(lm.LabelFile(filename=str(AUTHORED / f"{name}.json")).image_data)
        Image.fromarray(image).save(tmp_path / "JPEGImages" / f"{name}.png")
    config = make_config(tmp_path / "SegmentationClass", classes=classes, class_priority=None,
                         data={"format": "class_index_png", "images": str(tmp_path / "JPEGImages")})
    manifest = ingest(config, tmp_path / "data")
    assert sorted(manifest["sample_id"]) == sorted(AUTHORED_FILES)
    for name, class_map in expected.items():
        assert np.array_equal(read_png(tmp_path / "data" / "masks" / f"{name}.png"),
                              np.where(class_map == -1, IGNORE_INDEX, class_map))
