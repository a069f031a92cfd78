"""All regions' shape at once (cellbench.measure.shape) equals scikit-image's regionprops, region by
region, to 1e-7: random blobs, shapes with holes and in pieces, touching regions, lines, single pixels
and regions cut by the image border."""

import numpy as np
import pytest
from scipy import ndimage
from skimage.draw import disk, polygon
from skimage.measure import regionprops_table

from cellbench.measure.shape import region_shapes

PAIRS = {"area": "area", "perimeter": "perimeter_crofton", "solidity": "solidity", "eccentricity": "eccentricity",
         "feret_diameter_max": "feret_diameter_max", "minor_axis_length": "axis_minor_length",
         "major_axis_length": "axis_major_length", "equivalent_diameter": "equivalent_diameter_area",
         "centroid_row": "centroid-0", "centroid_column": "centroid-1"}


def random_labels(seed: int, size=(120, 150), n=25) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.zeros(size, np.int32)
    for k in range(1, n + 1):
        kind = rng.integers(0, 6)
        r, c = rng.integers(-5, size[0] + 5), rng.integers(-5, size[1] + 5)  # some cut by the border
        if kind == 0:  # a random polygon (often not convex)
            angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 9)))
            radii = rng.uniform(2, 25, len(angles))
            rr, cc = polygon(r + radii * np.sin(angles), c + radii * np.cos(angles), size)
        elif kind == 1:  # a ring (a hole)
            outer = np.zeros(size, bool)
            outer[disk((r, c), rng.uniform(5, 15), shape=size)] = True
            outer[disk((r, c), rng.uniform(1, 4), shape=size)] = False
            rr, cc = np.nonzero(outer)
        elif kind == 2:  # a line, one pixel wide, any direction
            length = rng.integers(1, 30)
            t = np.linspace(0, 1, 60)
            angle = rng.uniform(0, np.pi)
            rr = np.clip(np.rint(r + t * length * np.sin(angle)).astype(int), 0, size[0] - 1)
            cc = np.clip(np.rint(c + t * length * np.cos(angle)).astype(int), 0, size[1] - 1)
        elif kind == 3:  # one pixel
            rr, cc = np.array([np.clip(r, 0, size[0] - 1)]), np.array([np.clip(c, 0, size[1] - 1)])
        elif kind == 4:  # two blobs far apart under one label (a lobed nucleus)
            first = np.zeros(size, bool)
            first[disk((r, c), rng.uniform(2, 6), shape=size)] = True
            first[disk((r + rng.integers(-20, 20), c + rng.integers(-20, 20)), rng.uniform(2, 6), shape=size)] = True
            rr, cc = np.nonzero(first)
        else:  # a noisy blob
            blob = ndimage.gaussian_filter(rng.normal(size=size), 3) > 0.05
            blob &= np.hypot(*np.mgrid[:size[0], :size[1]] - np.array([r, c])[:, None, None]) < rng.uniform(5, 20)
            rr, cc = np.nonzero(blob)
        labels[rr, cc] = k  # later regions lie over earlier ones: touching regions
    return labels


@pytest.mark.parametrize("seed", range(12))
def test_every_region_equals_regionprops(seed):
    labels = random_labels(seed)
    ours = region_shapes(labels)
    theirs = regionprops_table(labels, properties=("label", "centroid", *{v for v in PAIRS.values()
                                                                         if not v.startswith("centroid")}))
    np.testing.assert_array_equal(ours.index.to_numpy(), theirs["label"])
    for mine, skimage in PAIRS.items():
        # 1e-7: a straight line's zero eigenvalue is 1e-17 in LAPACK's rounding, 4 sqrt of it 1e-8
        np.testing.assert_allclose(ours[mine].to_numpy(), theirs[skimage], rtol=1e-9, atol=1e-7, err_msg=mine)


def test_large_coordinates_do_not_cancel():
    labels = np.zeros((4000, 4000), np.int32)
    labels[3900:3990, 3800:3830] = 7  # far from the origin: sums of squares would lose the moments
    row = region_shapes(labels).loc[7]
    theirs = regionprops_table(labels, properties=("axis_major_length", "axis_minor_length", "eccentricity"))
    assert row["major_axis_length"] == pytest.approx(theirs["axis_major_length"][0], rel=1e-12)
    assert row["minor_axis_length"] == pytest.approx(theirs["axis_minor_length"][0], rel=1e-12)


def test_no_region():
    assert region_shapes(np.zeros((5, 5), np.int32)).empty
