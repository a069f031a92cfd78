"""Shape and first-order intensity features of every labelled region of an image (docs/measurements.md).

Shape has scikit-image's ``regionprops`` definitions (REGIONPROPS: property -> feature), computed for
all regions at once by cellbench.measure.shape (equal to ``regionprops_table`` to 1e-7, tested);
circularity and elongation are derived from its columns. The first-order intensity features of all
regions come from one 256-bin histogram per region and channel (one ``bincount`` over the pixels),
with pyradiomics' definitions: population moments, numpy's linear percentiles, and entropy and
uniformity of the histogram discretised with a fixed bin width.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage.color import rgb2gray

from cellbench.measure.shape import region_shapes

# regionprops_table property -> feature name (pyradiomics/IBSI names where they define the quantity)
REGIONPROPS = {"area": "area", "perimeter_crofton": "perimeter", "equivalent_diameter_area": "equivalent_diameter",
               "axis_major_length": "major_axis_length", "axis_minor_length": "minor_axis_length",
               "eccentricity": "eccentricity", "solidity": "solidity", "feret_diameter_max": "feret_diameter_max"}
SHAPE = (*REGIONPROPS.values(), "circularity", "elongation")
INTENSITY = ("mean", "sd", "min", "max", "p2", "p10", "p50", "p90", "p98", "skewness", "kurtosis", "entropy",
             "energy", "uniformity")
PERCENTILES = {"p2": 2, "p10": 10, "p50": 50, "p90": 90, "p98": 98}
CHANNELS = ("red", "green", "blue", "grey")
LEVELS = 256  # intensities are 8-bit: the ingested and inferred images are RGB uint8
EPSILON = np.finfo(np.float64).eps  # pyradiomics' guard inside the entropy's logarithm
CHUNK = 4096  # regions whose histogram statistics are computed at once (bounds the float temporaries)


def channels_of(image: np.ndarray) -> dict[str, np.ndarray]:
    """Red, green, blue and grey (skimage's rgb2gray luminance, 0.2125 R + 0.7154 G + 0.0721 B,
    rounded to 0..255) of an RGB uint8 image."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"measurements need an RGB uint8 image, not {image.dtype} of shape {image.shape}")
    grey = np.rint(rgb2gray(image) * 255).astype(np.uint8)
    return {"red": image[..., 0], "green": image[..., 1], "blue": image[..., 2], "grey": grey}


def shape_features(labels: np.ndarray) -> pd.DataFrame:
    """Shape of every region of ``labels`` (index: its label), plus its centroid (row, column)."""
    frame = region_shapes(labels)
    frame = frame[["centroid_row", "centroid_column", *REGIONPROPS.values()]]
    perimeter = frame["perimeter"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["circularity"] = np.where(perimeter > 0, 4 * np.pi * frame["area"] / perimeter ** 2, np.nan)
        frame["elongation"] = np.where(frame["major_axis_length"] > 0,
                                       frame["minor_axis_length"] / frame["major_axis_length"], np.nan)
    return frame.astype(np.float64)


def histograms(position: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """(n, 256) counts of each intensity per region: ``position`` (0..n-1) is each pixel's region,
    ``values`` its intensity."""
    key = position.astype(np.int64) * LEVELS
    key += values
    return np.bincount(key, minlength=n * LEVELS).reshape(n, LEVELS)


def _percentile(cumulative: np.ndarray, count: np.ndarray, q: float) -> np.ndarray:
    """numpy's default (linear) percentile of each row's values, from their cumulative histogram."""
    rank = (count - 1) * q / 100
    low = np.floor(rank)

    def value_at(k):  # the k-th smallest value (0-based): the first level whose cumulative count exceeds k
        return (cumulative <= k[:, None]).sum(axis=1)

    below = value_at(low)
    above = value_at(np.minimum(low + 1, count - 1))
    return below + (rank - low) * (above - below)


def histogram_statistics(hist: np.ndarray, bin_width: int = 25) -> dict[str, np.ndarray]:
    """First-order features of each row of 256-level histograms (rows must not be empty)."""
    out = {name: np.empty(len(hist)) for name in INTENSITY}
    levels = np.arange(LEVELS, dtype=np.float64)
    edges = np.arange(0, LEVELS, bin_width)
    for start in range(0, len(hist), CHUNK):
        part = hist[start:start + CHUNK].astype(np.float64)
        rows = slice(start, start + len(part))
        count = part.sum(axis=1)
        mean = part @ levels / count
        deviation = levels[None, :] - mean[:, None]
        m2, m3, m4 = ((part * deviation ** k).sum(axis=1) / count for k in (2, 3, 4))
        flat = m2 <= 0
        with np.errstate(divide="ignore", invalid="ignore"):  # flat regions: 0, as pyradiomics
            out["skewness"][rows] = np.where(flat, 0.0, m3 / m2 ** 1.5)
            out["kurtosis"][rows] = np.where(flat, 0.0, m4 / m2 ** 2)
        out["mean"][rows], out["sd"][rows] = mean, np.sqrt(m2)
        present = part > 0
        out["min"][rows] = present.argmax(axis=1)
        out["max"][rows] = LEVELS - 1 - present[:, ::-1].argmax(axis=1)
        cumulative = part.cumsum(axis=1)
        for name, q in PERCENTILES.items():
            out[name][rows] = _percentile(cumulative, count, q)
        out["energy"][rows] = part @ levels ** 2
        p = np.add.reduceat(part, edges, axis=1) / count[:, None]
        out["entropy"][rows] = -(p * np.log2(p + EPSILON)).sum(axis=1)
        out["uniformity"][rows] = (p ** 2).sum(axis=1)
    return out


def statistics_columns(hist: np.ndarray, channel: str, bin_width: int = 25) -> dict[str, np.ndarray]:
    """``<channel>_<feature>`` columns from per-region histograms; NaN for a region without pixels."""
    filled = hist.sum(axis=1) > 0
    columns = {}
    for feature, values in histogram_statistics(hist[filled], bin_width).items():
        column = np.full(len(hist), np.nan)
        column[filled] = values
        columns[f"{channel}_{feature}"] = column
    return columns


def intensity_features(labels: np.ndarray, channels: dict[str, np.ndarray], bin_width: int = 25) -> pd.DataFrame:
    """First-order features of every region per channel (columns ``<channel>_<feature>``, index: label)."""
    inside = labels > 0
    ids, position = np.unique(labels[inside], return_inverse=True)
    columns = {}
    for name, channel in channels.items():
        columns.update(statistics_columns(histograms(position, len(ids), channel[inside]), name, bin_width))
    return pd.DataFrame(columns, index=pd.Index(ids.astype(np.int64), name="label"))


def region_features(labels: np.ndarray, channels: dict[str, np.ndarray], bin_width: int = 25) -> pd.DataFrame:
    """Shape and intensity of every region of ``labels`` (index: label; none when it is empty)."""
    shape = shape_features(labels)
    intensity = intensity_features(labels, channels, bin_width)
    return shape.drop(columns=["centroid_row", "centroid_column"]).join(intensity, how="outer")
