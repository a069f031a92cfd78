import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from cellbench.classmaps import IGNORE_INDEX
from cellbench.evaluation.boundary import hd95_assd, surface, surface_mask
from cellbench.evaluation.semantic_metrics import image_rows


def square(shape, r0, r1, c0, c1):
    mask = np.zeros(shape, bool)
    mask[r0:r1, c0:c1] = True
    return mask


def test_surface_is_the_outline():
    assert len(surface(square((10, 10), 2, 6, 2, 6))) == 12  # a 4 x 4 square has 12 outline pixels


def test_identical_masks_are_zero_apart():
    mask = square((20, 20), 3, 12, 4, 15)
    assert hd95_assd(mask, mask) == (0.0, 0.0)


def test_shift_by_one_pixel():
    a, b = square((20, 20), 3, 12, 4, 15), square((20, 20), 3, 12, 5, 16)
    hd95, assd = hd95_assd(a, b)
    assert hd95 == pytest.approx(1.0) and 0 < assd <= 1


def test_empty_cases():
    mask = square((30, 40), 3, 12, 4, 15)
    empty = np.zeros_like(mask)
    assert all(math.isnan(v) for v in hd95_assd(empty, empty))
    assert hd95_assd(mask, empty) == hd95_assd(empty, mask) == (50.0, 50.0)  # the diagonal


# ---- against a brute-force reference: every surface pixel to every other, no k-d tree ----

def reference_surface(mask):
    """The surface as boundary.py defines it, written independently: pixels of the mask with a
    4-neighbour outside it, the image border counting as outside."""
    mask = np.asarray(mask, bool)
    return mask & ~ndimage.binary_erosion(mask, ndimage.generate_binary_structure(2, 1), border_value=0)


def reference_directed(a, b):
    """Distances from every surface pixel of a to the nearest surface pixel of b, by all pairs."""
    sa, sb = np.argwhere(reference_surface(a)), np.argwhere(reference_surface(b))
    return cdist(sa, sb).min(axis=1)


def reference_hd95_assd(a, b):
    if not a.any() and not b.any():
        return math.nan, math.nan
    if not a.any() or not b.any():
        return (math.hypot(*a.shape),) * 2
    d_ab, d_ba = reference_directed(a, b), reference_directed(b, a)
    return max(np.percentile(d_ab, 95), np.percentile(d_ba, 95)), np.concatenate([d_ab, d_ba]).mean()


def blobs(rng, shape, n, largest):
    """A union of n random discs and rectangles."""
    rows, cols = np.ogrid[:shape[0], :shape[1]]
    mask = np.zeros(shape, bool)
    for _ in range(n):
        r, c = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        size = rng.integers(1, largest + 1)
        if rng.random() < 0.5:
            mask |= (rows - r) ** 2 + (cols - c) ** 2 <= size ** 2
        else:
            mask[r:r + size, c:c + int(rng.integers(1, largest + 1))] = True
    return mask


def asymmetric_pair(rng, shape):
    """a: a few large blobs; b: a corner of a plus a small blob somewhere else, so that a's surface is
    mostly far from b's while b's is mostly close to a's."""
    a = blobs(rng, shape, 3, max(2, min(shape) // 3))
    corner = np.zeros(shape, bool)
    corner[: max(1, shape[0] // 3), : max(1, shape[1] // 3)] = True
    b = (a & corner) | blobs(rng, shape, 1, max(1, min(shape) // 8))
    return a, b


SIZES = [(1, 30), (7, 9), (32, 32), (48, 80), (100, 64), (61, 17)]


def test_surface_is_every_pixel_with_a_4_neighbour_outside():
    rng = np.random.default_rng(0)
    for shape in SIZES:
        for _ in range(10):
            mask = blobs(rng, shape, 4, max(2, min(shape) // 3))
            assert np.array_equal(surface_mask(mask), reference_surface(mask)), shape


def test_hd95_and_assd_equal_the_brute_force_on_asymmetric_masks():
    rng = np.random.default_rng(1)
    lopsided = 0
    for shape in SIZES:
        for _ in range(8):
            a, b = asymmetric_pair(rng, shape)
            expected = reference_hd95_assd(a, b)
            assert hd95_assd(a, b) == pytest.approx(expected, rel=1e-12, abs=1e-12), shape
            assert hd95_assd(b, a) == pytest.approx(expected, rel=1e-12, abs=1e-12), shape
            if a.any() and b.any():
                d_ab, d_ba = reference_directed(a, b), reference_directed(b, a)
                far, near = sorted([np.percentile(d_ab, 95), np.percentile(d_ba, 95)], reverse=True)
                mean_of_means = (d_ab.mean() + d_ba.mean()) / 2
                lopsided += far > near + 2 and abs(mean_of_means - expected[1]) > 0.1
    assert lopsided >= 20  # the cases tell max from min and pooled from averaged means


def test_hd95_is_the_larger_directed_percentile_and_assd_pools_both_sides():
    """A 9 x 9 square and a single pixel at its centre: the square's 32 outline pixels are 4 to
    4*sqrt(2) from the point; the point is 4 from the nearest of them."""
    a = square((15, 15), 3, 12, 3, 12)
    b = np.zeros_like(a)
    b[7, 7] = True
    d_ab = np.hypot(*(np.argwhere(reference_surface(a)) - [7, 7]).T)
    assert len(d_ab) == 32 and d_ab.min() == 4
    hd95, assd = hd95_assd(a, b)
    assert hd95 == pytest.approx(np.percentile(d_ab, 95)) and hd95 > 5.5  # not 4, the point's side
    assert assd == pytest.approx((d_ab.sum() + 4) / 33)  # not (mean(d_ab) + 4) / 2
    assert hd95_assd(b, a) == (hd95, assd)


# ---- through metrics.image_rows: classes, the cell region, ignored pixels ----

CLASSES = ["background", "cytoplasm", "nucleus"]
REGIONS = {"cell": ["cytoplasm", "nucleus"]}


def class_map(rng, shape):
    cells = blobs(rng, shape, 4, max(2, min(shape) // 4))
    nuclei = cells & blobs(rng, shape, 6, max(1, min(shape) // 6))
    return np.where(nuclei, 2, np.where(cells, 1, 0)).astype(np.uint8)


def test_image_rows_boundary_metrics_equal_the_brute_force_with_ignored_pixels():
    rng = np.random.default_rng(2)
    for shape in SIZES:
        for _ in range(4):
            truth, prediction = class_map(rng, shape), class_map(rng, shape)
            prediction[: shape[0] // 2] = truth[: shape[0] // 2]  # half right, half unrelated
            ignored = np.zeros(shape, bool)
            ignored[:, rng.integers(0, shape[1]):][:, :4] = True  # an ignore band and a few scattered pixels
            ignored |= rng.random(shape) < 0.02
            truth[ignored] = IGNORE_INDEX
            rows = {row["class"]: row for row in image_rows(truth, prediction, CLASSES, REGIONS, boundary=True)}
            assert set(rows) == {"cytoplasm", "nucleus", "cell"}
            for name, members in (("cytoplasm", [1]), ("nucleus", [2]), ("cell", [1, 2])):
                a = np.isin(truth, members) & ~ignored
                b = np.isin(prediction, members) & ~ignored
                expected = reference_hd95_assd(a, b)
                got = (rows[name]["hd95"], rows[name]["assd"])
                assert got == pytest.approx(expected, rel=1e-12, abs=1e-12, nan_ok=True), (shape, name)


def test_ignored_pixels_are_left_out_of_both_surfaces():
    """The prediction is right wherever the truth is scored; its extra blob and its overhang lie in
    the ignore band, so the distances are 0. Kept, they would count."""
    truth = np.zeros((20, 40), np.uint8)
    truth[5:15, 5:15] = 1
    truth[:, 15:] = IGNORE_INDEX
    prediction = np.zeros_like(truth)
    prediction[5:15, 5:18] = 1  # overhangs into the ignore band
    prediction[2:6, 30:36] = 1  # a blob wholly inside it
    [row] = image_rows(truth, prediction, CLASSES[:2], boundary=True)
    assert (row["hd95"], row["assd"]) == (0.0, 0.0)
    assert (row["tp"], row["fp"], row["fn"]) == (100, 0, 0)
    kept = reference_hd95_assd(truth == 1, prediction == 1)
    assert kept[0] > 10 and kept[1] > 1  # what keeping the ignored pixels would give
