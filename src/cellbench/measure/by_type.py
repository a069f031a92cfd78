"""Features per cell type, as the published comparison tabulates them: P2, P50, P98, mean and SD of
every feature, for the expert masks and for each architecture's objects, per cell type and over all
cells (``cell_type`` = "all"). An architecture's objects are summarised twice: all of them (what a
user of the model gets, false detections included; ``subset`` = "all") and only those matched to an
expert cell (``subset`` = "matched", comparable with the expert's)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellbench.measure.fidelity import feature_columns

ALL = "all"
MATCHED = "matched"
COLUMNS = ["source", "subset", "object_type", "cell_type", "feature", "n", "mean", "sd", "p2", "p50", "p98"]
KEYS = ["source", "subset", "object_type", "cell_type", "feature"]


def by_type(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per source x object type x cell type (and "all") x feature; SD with n - 1, percentiles
    as numpy's (linear); NaN values (a cell without nucleus has no nucleus circularity) left out."""
    features = feature_columns(cells)
    if cells.empty or not features:
        return pd.DataFrame(columns=COLUMNS).astype({"n": "int64"})
    frame = cells.assign(cell_type=cells["cell_type"].astype(object).where(cells["cell_type"].notna(), "unknown"),
                         subset=ALL)
    matched = frame[frame["reference_id"].notna()].assign(subset=MATCHED)
    frame = pd.concat([frame, matched], ignore_index=True)
    typed = frame.assign(cell_type=ALL)
    if cells["cell_type"].notna().any():  # per type only when the split knows the types
        typed = pd.concat([typed, frame], ignore_index=True)
    long = typed.melt(id_vars=["source", "subset", "object_type", "cell_type"], value_vars=features,
                      var_name="feature")
    long = long[np.isfinite(long["value"].to_numpy(np.float64))]
    grouped = long.groupby(KEYS, sort=True)["value"]
    table = grouped.agg(n="size", mean="mean", sd=lambda v: v.std(ddof=1)).reset_index()
    quantiles = grouped.quantile([0.02, 0.5, 0.98]).unstack()
    quantiles.columns = ["p2", "p50", "p98"]
    table = table.merge(quantiles.reset_index(), on=KEYS)
    return table[COLUMNS].astype({"n": "int64"})
