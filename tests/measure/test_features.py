"""Features against hand-computed values (square, disc, ramp) and against scikit-image, numpy and
scipy for every quantity they also compute."""

import numpy as np
import pytest
from scipy import stats
from skimage.draw import disk
from skimage.measure import regionprops_table

from cellbench.measure.features import (
    CHANNELS,
    INTENSITY,
    SHAPE,
    channels_of,
    histogram_statistics,
    intensity_features,
    region_features,
    shape_features,
)


def _square(n=10, size=32):
    labels = np.zeros((size, size), np.int32)
    labels[5:5 + n, 7:7 + n] = 1
    return labels


def test_square_shape_by_hand():
    n = 10
    row = shape_features(_square(n)).loc[1]
    variance = (n * n - 1) / 12  # of a discrete uniform position along each axis
    assert row["area"] == n * n
    assert row["equivalent_diameter"] == pytest.approx(2 * np.sqrt(n * n / np.pi))
    assert row["major_axis_length"] == pytest.approx(4 * np.sqrt(variance))
    assert row["minor_axis_length"] == pytest.approx(4 * np.sqrt(variance))
    assert row["eccentricity"] == pytest.approx(0, abs=1e-9)
    assert row["elongation"] == pytest.approx(1)
    assert row["solidity"] == 1
    # contour through the pixel-edge midpoints, its corners cut: opposite midpoints n and n - 1 apart
    assert row["feret_diameter_max"] == pytest.approx(np.hypot(n, n - 1))
    assert row["centroid_row"] == pytest.approx(5 + (n - 1) / 2)
    assert row["centroid_column"] == pytest.approx(7 + (n - 1) / 2)


def test_disc_is_round():
    labels = np.zeros((101, 101), np.int32)
    labels[disk((50, 50), 30)] = 3
    row = shape_features(labels).loc[3]
    assert row["area"] == pytest.approx(np.pi * 30 ** 2, rel=0.01)
    assert row["circularity"] == pytest.approx(1, abs=0.02)  # Crofton perimeter: unbiased on discs
    assert row["elongation"] == pytest.approx(1, abs=0.01)
    assert row["feret_diameter_max"] == pytest.approx(60, abs=1.5)
    assert row["circularity"] == pytest.approx(4 * np.pi * row["area"] / row["perimeter"] ** 2)


def test_ellipse_elongation_is_minor_over_major():
    labels = np.zeros((80, 120), np.int32)
    rows, cols = np.ogrid[:80, :120]
    labels[((rows - 40) / 15) ** 2 + ((cols - 60) / 45) ** 2 <= 1] = 1
    row = shape_features(labels).loc[1]
    assert row["elongation"] == pytest.approx(15 / 45, abs=0.02)
    assert row["major_axis_length"] == pytest.approx(90, abs=1.5)


def test_shape_equals_regionprops_for_every_shared_quantity():
    rng = np.random.default_rng(0)
    labels = np.zeros((64, 64), np.int32)
    for k in range(1, 9):
        r, c = rng.integers(8, 56, 2)
        labels[disk((r, c), rng.integers(2, 8), shape=labels.shape)] = k
    table = shape_features(labels)
    skimage = regionprops_table(labels, properties=("label", "area", "perimeter_crofton", "solidity", "eccentricity",
                                                    "feret_diameter_max", "axis_minor_length", "axis_major_length",
                                                    "equivalent_diameter_area", "centroid"))
    present = table.index.to_numpy()
    np.testing.assert_array_equal(present, skimage["label"])
    for ours, theirs in (("area", "area"), ("perimeter", "perimeter_crofton"), ("solidity", "solidity"),
                         ("eccentricity", "eccentricity"), ("feret_diameter_max", "feret_diameter_max"),
                         ("minor_axis_length", "axis_minor_length"), ("major_axis_length", "axis_major_length"),
                         ("equivalent_diameter", "equivalent_diameter_area"), ("centroid_row", "centroid-0"),
                         ("centroid_column", "centroid-1")):
        np.testing.assert_allclose(table[ours].to_numpy(), skimage[theirs])


def test_ramp_intensity_by_hand():
    ramp = np.arange(256, dtype=np.uint8)[None, :]  # one pixel of every grey level
    hist = np.bincount(ramp.ravel(), minlength=256)[None, :]
    out = {k: v[0] for k, v in histogram_statistics(hist, bin_width=25).items()}
    assert out["mean"] == pytest.approx(127.5)
    assert out["sd"] == pytest.approx(np.sqrt((256 ** 2 - 1) / 12))
    assert (out["min"], out["max"]) == (0, 255)
    assert out["p50"] == pytest.approx(127.5)
    assert out["p2"] == pytest.approx(0.02 * 255)
    assert out["p98"] == pytest.approx(0.98 * 255)
    assert out["skewness"] == pytest.approx(0, abs=1e-12)
    p = np.array([25] * 10 + [6]) / 256  # bins of 25 grey levels: ten full, 250..255 in the last
    assert out["uniformity"] == pytest.approx((p ** 2).sum())
    assert out["entropy"] == pytest.approx(-(p * np.log2(p)).sum())
    assert out["energy"] == pytest.approx((np.arange(256) ** 2).sum())
    assert out["kurtosis"] == pytest.approx(stats.kurtosis(np.arange(256), fisher=False))
    assert set(out) == set(INTENSITY)


def test_flat_region_has_zero_skewness_and_kurtosis_like_pyradiomics():
    hist = np.zeros((1, 256), np.int64)
    hist[0, 90] = 40
    out = histogram_statistics(hist)
    assert out["sd"][0] == 0 and out["skewness"][0] == 0 and out["kurtosis"][0] == 0
    assert out["entropy"][0] == pytest.approx(0, abs=1e-12) and out["uniformity"][0] == 1
    assert out["p2"][0] == out["p98"][0] == 90


def test_intensity_equals_numpy_scipy_and_skimage_on_random_regions():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    labels = np.zeros((48, 48), np.int32)
    labels[2:20, 3:30] = 1
    labels[25:47, 5:9] = 4
    labels[30:40, 20:45] = 7
    labels[0, 47] = 9  # one pixel
    channels = channels_of(image)
    table = intensity_features(labels, channels, bin_width=25)
    skimage = regionprops_table(labels, intensity_image=image, properties=(
        "label", "intensity_mean", "intensity_min", "intensity_max", "intensity_std"))
    for c, name in enumerate(("red", "green", "blue")):
        np.testing.assert_allclose(table[f"{name}_mean"], skimage[f"intensity_mean-{c}"])
        np.testing.assert_allclose(table[f"{name}_min"], skimage[f"intensity_min-{c}"])
        np.testing.assert_allclose(table[f"{name}_max"], skimage[f"intensity_max-{c}"])
        np.testing.assert_allclose(table[f"{name}_sd"], skimage[f"intensity_std-{c}"])
    for label in (1, 4, 7, 9):
        for name in CHANNELS:
            values = channels[name][labels == label].astype(np.float64)
            row = table.loc[label]
            for q in (2, 10, 50, 90, 98):
                assert row[f"{name}_p{q}"] == pytest.approx(np.percentile(values, q))
            if values.std() > 0:
                assert row[f"{name}_skewness"] == pytest.approx(stats.skew(values))
                assert row[f"{name}_kurtosis"] == pytest.approx(stats.kurtosis(values, fisher=False))
            assert row[f"{name}_energy"] == pytest.approx((values ** 2).sum())
            counts, _ = np.histogram(values, bins=np.arange(0, 256 + 25, 25))
            p = counts[counts > 0] / len(values)
            assert row[f"{name}_entropy"] == pytest.approx(-(p * np.log2(p)).sum())
            assert row[f"{name}_uniformity"] == pytest.approx((p ** 2).sum())


def test_grey_is_skimage_luminance():
    image = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 200, 30]]], dtype=np.uint8)
    grey = channels_of(image)["grey"]
    np.testing.assert_array_equal(grey, np.rint(0.2125 * image[..., 0] + 0.7154 * image[..., 1]
                                                 + 0.0721 * image[..., 2]).astype(np.uint8))


def test_non_rgb8_image_is_refused():
    with pytest.raises(ValueError, match="RGB uint8"):
        channels_of(np.zeros((4, 4), np.uint16))


def test_no_regions_gives_an_empty_table_with_every_column():
    table = region_features(np.zeros((16, 16), np.int32), channels_of(np.zeros((16, 16, 3), np.uint8)))
    assert table.empty
    assert set(SHAPE) <= set(table.columns)
    assert {f"grey_{f}" for f in INTENSITY} <= set(table.columns)
