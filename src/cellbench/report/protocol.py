"""How a run's kept weights were chosen (train.selection), in words for every table and figure."""

from __future__ import annotations

import pandas as pd

SELECTION_WORDS = {
    "last": "weights of the last epoch; no decision looked at the scored fold",
    "inner": "weights of the best epoch on an inner hold-out of the training images; no decision looked at "
             "the scored fold",
    "scored_fold_best": "OPTIMISTIC: weights of the best epoch on the scored fold itself (the protocol of some "
                        "published comparisons, kept only to reproduce their numbers)",
}


def selection_of(table: pd.DataFrame) -> str | None:
    """The model-selection protocol recorded in a table (one value), or None when absent."""
    if "selection" not in table.columns or table.empty:
        return None
    values = sorted(table["selection"].dropna().unique())
    return values[0] if len(values) == 1 else "mixed: " + ", ".join(values)


def is_optimistic(selection: str | None) -> bool:
    return bool(selection) and "scored_fold_best" in selection
