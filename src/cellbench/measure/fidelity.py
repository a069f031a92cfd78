"""How close each architecture's measurements are to the expert's, on matched cells.

For every architecture x object type x feature, over the predicted objects matched one-to-one to a
reference object (IoU >= 0.5): bias (mean of predicted - reference), the 95 % limits of agreement
(Bland & Altman 1986: bias -+ 1.96 SD of the differences, SD with n - 1), the mean absolute
difference and Lin's concordance correlation coefficient (Lin 1989, moments over n). The object
count per image (every image, matched or not) is one more feature, ``object_count``. 95 % intervals
of the bias and of the CCC come from a seeded bootstrap that resamples images (cells of one image
are not independent), computed from per-image sums so that thousands of resamples stay cheap.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from cellbench.measure.measure import LEAD, REFERENCE

COUNT = "object_count"
COLUMNS = ["source", "object_type", "feature", "n_pairs", "n_images", "reference_mean", "bias", "bias_low",
           "bias_high", "sd_difference", "loa_low", "loa_high", "mean_absolute_difference", "ccc", "ccc_low",
           "ccc_high", "rank"]


def feature_columns(cells: pd.DataFrame) -> list[str]:
    """The measured quantities of a cells table (every numeric column after the link columns)."""
    return [c for c in cells.columns if c not in LEAD and pd.api.types.is_numeric_dtype(cells[c])]


def matched_pairs(cells: pd.DataFrame, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predicted rows, their reference rows), aligned, for the matched objects of ``source``."""
    predicted = cells[(cells["source"] == source) & cells["reference_id"].notna()]
    reference = cells[cells["source"] == REFERENCE].set_index(["sample_id", "object_type", "object_id"])
    keys = pd.MultiIndex.from_arrays([predicted["sample_id"], predicted["object_type"],
                                      predicted["reference_id"].astype(np.int64)])
    found = keys.isin(reference.index)
    return predicted[found].reset_index(drop=True), reference.loc[keys[found]].reset_index()


def object_counts(cells: pd.DataFrame, source: str, object_type: str,
                  sample_ids: list[str] | None = None) -> pd.DataFrame:
    """Objects per image of ``source`` and of the reference (0 where an image has none)."""
    rows = cells[cells["object_type"] == object_type]
    ids = sample_ids if sample_ids is not None else sorted(set(rows["sample_id"]))
    count = {name: rows[rows["source"] == name].groupby("sample_id").size().reindex(ids, fill_value=0)
             for name in (source, REFERENCE)}
    return pd.DataFrame({"sample_id": ids, "predicted": count[source].to_numpy(np.float64),
                         "reference": count[REFERENCE].to_numpy(np.float64)})


def _sums(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """(6, n_groups, F) per-group n, sum x, sum y, sum x^2, sum y^2, sum xy over the finite pairs."""
    valid = np.isfinite(x) & np.isfinite(y)
    x, y = np.where(valid, x, 0.0), np.where(valid, y, 0.0)
    member = csr_matrix((np.ones(len(groups)), (groups, np.arange(len(groups)))), shape=(n_groups, len(groups)))
    return np.stack([member @ a for a in (valid.astype(np.float64), x, y, x * x, y * y, x * y)])


def _agreement(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Bias, SD of the differences, CCC from summed moments (any leading shape)."""
    n, sx, sy, sxx, syy, sxy = sums
    with np.errstate(divide="ignore", invalid="ignore"):
        mx, my = sx / n, sy / n
        vx, vy, cov = sxx / n - mx * mx, syy / n - my * my, sxy / n - mx * my
        bias = mx - my
        squared = sxx + syy - 2 * sxy  # sum of squared differences
        sd = np.sqrt(np.maximum(squared - n * bias * bias, 0) / (n - 1))
        denominator = vx + vy + bias * bias
        ccc = np.where(denominator > 0, 2 * cov / denominator, np.nan)
    return {"n": n, "bias": bias, "sd": sd, "ccc": np.where(n > 1, ccc, np.nan), "reference_mean": my}


def agreement_table(predicted: np.ndarray, reference: np.ndarray, groups: np.ndarray, resamples: int,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Agreement of each column of ``predicted`` (n, F) with ``reference``, with image-bootstrap intervals."""
    codes, groups = np.unique(groups, return_inverse=True)
    sums = _sums(predicted, reference, groups, len(codes))
    point = _agreement(sums.sum(axis=1))
    weights = rng.multinomial(len(codes), np.full(len(codes), 1 / len(codes)), size=resamples).astype(np.float64)
    resampled = _agreement(np.einsum("rg,kgf->krf", weights, sums))
    out = {**point}
    for name in ("bias", "ccc"):
        values = np.where(np.isfinite(resampled[name]), resampled[name], np.nan)
        with warnings.catch_warnings():  # a feature without two pairs has no interval: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanpercentile(values, [2.5, 97.5], axis=0)
        out[f"{name}_low"], out[f"{name}_high"] = low, high
    valid = np.isfinite(predicted) & np.isfinite(reference)
    with np.errstate(invalid="ignore"):
        out["mad"] = np.where(valid, np.abs(predicted - reference), 0).sum(axis=0) / point["n"]
        out["n_images"] = np.array([len(np.unique(groups[valid[:, f]])) for f in range(valid.shape[1])])
    return out


def fidelity(cells: pd.DataFrame, resamples: int = 2000, seed: int = 0, sample_ids: list[str] | None = None,
             sources: list[str] | None = None) -> pd.DataFrame:
    """The fidelity table: one row per architecture x object type x feature (and object_count), each
    feature's architectures ranked by CCC (1 = most concordant with the expert). ``sources``: the
    architectures to compare (default: those with rows; one that found no object still has its counts)."""
    rng = np.random.default_rng(seed)
    features = feature_columns(cells)
    rows = []
    sources = sorted(set(sources) if sources is not None else set(cells["source"]) - {REFERENCE})
    for source in sources:
        predicted, reference = matched_pairs(cells, source)
        for object_type in sorted(set(cells.loc[cells["source"] == REFERENCE, "object_type"])):
            chosen = (predicted["object_type"] == object_type).to_numpy()
            names = [f for f in features if reference.loc[chosen, f].notna().any()] if chosen.any() else []
            parts = [(names, predicted.loc[chosen, names].to_numpy(np.float64),
                      reference.loc[chosen, names].to_numpy(np.float64),
                      predicted.loc[chosen, "sample_id"].to_numpy())]
            counts = object_counts(cells, source, object_type, sample_ids)
            parts.append(([COUNT], counts[["predicted"]].to_numpy(), counts[["reference"]].to_numpy(),
                          counts["sample_id"].to_numpy()))
            for names_, x, y, groups in parts:
                if not len(names_) or not len(x):
                    continue
                stats = agreement_table(x, y, groups, resamples, rng)
                for j, feature in enumerate(names_):
                    loa = 1.96 * stats["sd"][j]
                    rows.append({"source": source, "object_type": object_type, "feature": feature,
                                 "n_pairs": int(stats["n"][j]), "n_images": int(stats["n_images"][j]),
                                 "reference_mean": stats["reference_mean"][j], "bias": stats["bias"][j],
                                 "bias_low": stats["bias_low"][j], "bias_high": stats["bias_high"][j],
                                 "sd_difference": stats["sd"][j], "loa_low": stats["bias"][j] - loa,
                                 "loa_high": stats["bias"][j] + loa, "mean_absolute_difference": stats["mad"][j],
                                 "ccc": stats["ccc"][j], "ccc_low": stats["ccc_low"][j],
                                 "ccc_high": stats["ccc_high"][j]})
    table = pd.DataFrame(rows, columns=COLUMNS[:-1])
    table["rank"] = (table.groupby(["object_type", "feature"])["ccc"].rank(ascending=False, method="min")
                     .astype("Int64"))
    return table.astype({"n_pairs": "int64", "n_images": "int64"})
