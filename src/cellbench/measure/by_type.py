"""Features per cell type, as the published comparison tabulates them: P2, P50, P98, mean and SD of
every feature, for the expert masks and for each architecture's objects (all of them, matched or
not), per cell type and over all cells (``cell_type`` = "all")."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellbench.measure.fidelity import feature_columns

ALL = "all"
COLUMNS = ["source", "object_type", "cell_type", "feature", "n", "mean", "sd", "p2", "p50", "p98"]


def by_type(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per source x object type x cell type (and "all") x feature; SD with n - 1, percentiles
    as numpy's (linear); NaN values (a cell without nucleus has no nucleus circularity) left out."""
    features = feature_columns(cells)
    if cells.empty or not features:
        return pd.DataFrame(columns=COLUMNS).astype({"n": "int64"})
    frame = cells.assign(cell_type=cells["cell_type"].astype(object).where(cells["cell_type"].notna(), "unknown"))
    typed = frame.assign(cell_type=ALL)
    if cells["cell_type"].notna().any():  # per type only when the split knows the types
        typed = pd.concat([typed, frame], ignore_index=True)
    long = typed.melt(id_vars=["source", "object_type", "cell_type"], value_vars=features, var_name="feature")
    long = long[np.isfinite(long["value"].to_numpy(np.float64))]
    grouped = long.groupby(["source", "object_type", "cell_type", "feature"], sort=True)["value"]
    table = grouped.agg(n="size", mean="mean", sd=lambda v: v.std(ddof=1)).reset_index()
    quantiles = grouped.quantile([0.02, 0.5, 0.98]).unstack()
    quantiles.columns = ["p2", "p50", "p98"]
    table = table.merge(quantiles.reset_index(), on=["source", "object_type", "cell_type", "feature"])
    return table[COLUMNS].astype({"n": "int64"})
