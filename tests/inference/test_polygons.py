"""Object outlines fill back to exactly the object's pixels (pixel centres, as QuPath and ImageJ fill)."""

import numpy as np
import shapely
from scipy import ndimage
from skimage.measure import label

from cellbench.inference.polygons import outlines, polygons_of, rasterise


def test_outlines_fill_back_to_the_same_pixels_on_random_shapes():
    rng = np.random.default_rng(0)
    checked = 0
    for trial in range(60):
        noise = rng.random((40, 50)) < 0.45
        mask = ndimage.binary_opening(noise) if trial % 2 else noise  # blobs, and 8-connected speckle
        labels = label(mask, connectivity=2 if trial % 3 else 1)
        for object_id, geometry in outlines(labels).items():
            assert shapely.is_valid(geometry)
            assert np.array_equal(rasterise(geometry, labels.shape), labels == object_id)
            checked += 1
    assert checked > 1000


def test_holes_pieces_single_pixels_and_offsets():
    labels = np.zeros((30, 30), np.int32)
    labels[2:15, 2:15] = 1
    labels[5:8, 5:8] = 0  # a hole
    labels[10, 10] = 0  # a one-pixel hole
    labels[20:25, 20:28] = 2
    labels[20:22, 2:4] = 2  # a second piece
    labels[28, 28] = 3  # a single pixel
    found = outlines(labels, offset=(100, 1000))
    assert len(found[1].interiors) == 2 and found[2].geom_type == "MultiPolygon"
    assert found[3].area == 1.0 - 0.5  # a diamond through the 4 edge midpoints: its own centre only
    assert [p.area for p in polygons_of(found[2])] == sorted((p.area for p in found[2].geoms), reverse=True)
    assert found[3].bounds == (1028.0, 128.0, 1029.0, 129.0)  # pixel (x 1028, y 128) covers [1028, 1029)
    shifted = shapely.affinity.translate(found[1], -1000, -100)
    assert np.array_equal(rasterise(shifted, labels.shape), labels == 1)
    assert set(outlines(labels, labels=[2])) == {2}
