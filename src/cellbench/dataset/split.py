"""Seeded K-fold split grouped by source image, optionally stratified by a per-image label.

Copies of one image always share a group: identical decoded pixels (the manifest's content_hash)
and, with split.group_near_duplicates, near-duplicates (perceptual_hash within the threshold of
cellbench.duplicates). A manifest without these columns (written before they existed) is split
without that grouping, with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.dataset import duplicates
from cellbench.errors import ConfigError, InputError, InputProblem
from cellbench.formats.pairing import ID_SEPARATOR
from cellbench.layout import Layout

log = logging.getLogger(__name__)


def metadata_path(config: dict) -> str | None:
    """The per-image metadata CSV: split.metadata, else the demo's cell types when data.demo is set."""
    if config["split"]["metadata"]:
        return config["split"]["metadata"]
    if config["data"]["demo"]:
        return Layout(config["results"], config["dataset"]).demo_metadata
    return None


def _id_key(value) -> str:
    """Ids compare as text, except that numbers ignore leading zeros (7 == 007) and a nested sample
    folder may be written as a path (a/set1 == a__set1, the id cellbench gives it)."""
    text = str(value).strip().replace("\\", "/").strip("/")
    if text.isdigit():
        return str(int(text))
    return ID_SEPARATOR.join(text.split("/")) if "/" in text else text


def read_metadata(path: Path, id_column: str | None, sample_ids: list[str],
                  columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Per-image metadata indexed by sample_id; every sample must have exactly one row, and every
    setting -> column of ``columns`` (split.stratify_column: cell_type) must be there. One InputError
    lists every problem of the file."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, skipinitialspace=True)
    except (OSError, ValueError) as err:  # ParserError, EmptyDataError and UnicodeDecodeError are ValueErrors
        raise InputError([InputProblem(path, f"metadata CSV cannot be read ({err})")]) from None
    table.columns = [str(c).strip() for c in table.columns]
    if not len(table.columns):
        raise InputError([InputProblem(path, "metadata CSV has no columns", "one row per image, with a header")])
    id_column = id_column or table.columns[0]
    wanted = {"split.id_column": id_column, **(columns or {})}
    problems = [InputProblem(path, f"no column {column!r} ({key}); columns: {', '.join(table.columns)}")
                for key, column in wanted.items() if column not in table.columns]
    if id_column not in table.columns:
        raise InputError(problems)
    keys = [_id_key(v) for v in table[id_column]]
    by_key = {key: i for i, key in enumerate(keys)}
    wanted_keys = {_id_key(s) for s in sample_ids}
    doubled = sorted({key for key in keys if key in wanted_keys and keys.count(key) > 1}) if len(by_key) < len(keys) \
        else []
    if doubled:
        problems.append(InputProblem(path, f"{len(doubled)} image{'s have' if len(doubled) > 1 else ' has'} more than "
                                           f"one row: {_shown(doubled)}", f"column {id_column!r} must list each image "
                                                                          "once"))
    missing = [s for s in sample_ids if _id_key(s) not in by_key]
    if missing:
        problems.append(InputProblem(path, f"{len(missing)} images have no row: {_shown(missing)}",
                                     f"column {id_column!r} must list every image id"))
    if problems:
        raise InputError(problems)
    rows = table.iloc[[by_key[_id_key(s)] for s in sample_ids]].reset_index(drop=True)
    rows.insert(0, "sample_id", sample_ids)
    return rows.set_index("sample_id")


def _shown(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (" ..." if len(names) > limit else "")


def groups_and_strata(split: dict, metadata: str | Path | None, sample_ids: list[str]) -> tuple[pd.Series, pd.Series]:
    """Each sample's group (itself, or its split.group_column value) and stratum ("all", or its
    split.stratify_column value), before copies are merged. Raises ConfigError for a column asked
    for without metadata, InputError for a metadata CSV that cannot serve (unreadable, a column
    missing, an image without a row or with two)."""
    groups = pd.Series(sample_ids, dtype=str)
    strata = pd.Series(["all"] * len(sample_ids), dtype=str)
    asked = {f"split.{key}": split[key] for key in ("stratify_column", "group_column") if split[key]}
    if not metadata:
        if asked:
            named = ", ".join(f"{key} {column!r}" for key, column in asked.items())
            raise ConfigError(f"{named} needs split.metadata, a CSV with one row per image (none is set); set "
                              "split.metadata, or set the column to null to split without metadata")
        return groups, strata
    meta = read_metadata(metadata, split["id_column"], sample_ids, asked)
    if split["stratify_column"]:
        strata = meta[split["stratify_column"]].fillna("NA").reset_index(drop=True)
    if split["group_column"]:
        groups = meta[split["group_column"]].fillna("NA").reset_index(drop=True)
    return groups, strata


def assign_folds(groups: pd.Series, strata: pd.Series, n_folds: int, seed: int) -> pd.Series:
    """Fold of every sample: all samples of a group share a fold; strata are spread evenly.

    Groups are shuffled with ``seed`` within each stratum (a group's stratum is its most common
    label) and each goes to the fold holding the fewest samples of that stratum, then the fewest
    samples overall.
    """
    n_groups = groups.nunique()
    if n_groups < n_folds:
        raise ConfigError(f"{n_groups} groups cannot fill {n_folds} folds: lower split.folds (groups are source "
                          "images, split.group_column values, and copies of one image merged)")
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"group": groups.astype(str), "stratum": strata.astype(str)})
    sizes = frame.groupby("group").size()
    group_stratum = _majority_stratum(frame)
    per_stratum = np.zeros((0, n_folds))
    stratum_row: dict[str, int] = {}
    total = np.zeros(n_folds)
    fold_of_group: dict[str, int] = {}
    for stratum in sorted(group_stratum.unique()):
        stratum_row[stratum] = len(stratum_row)
        per_stratum = np.vstack([per_stratum, np.zeros(n_folds)])
        members = sorted(group_stratum.index[group_stratum == stratum])
        for group in rng.permutation(members):
            counts = per_stratum[stratum_row[stratum]]
            fold = min(range(n_folds), key=lambda k: (counts[k], total[k], k))
            fold_of_group[group] = fold
            counts[fold] += sizes[group]
            total[fold] += sizes[group]
    return frame["group"].map(fold_of_group).astype(int)


def _majority_stratum(frame: pd.DataFrame) -> pd.Series:
    """Each group's stratum: its most common label (ties: the first in sorted order)."""
    return frame.groupby("group")["stratum"].agg(lambda s: s.value_counts().sort_index().idxmax())


def _shuffled_groups(table: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.Series, list[list[str]]]:
    """(the table with text groups and strata, samples per group, each stratum's groups shuffled with
    ``seed``, strata in sorted order): what the grouped, stratified hold-outs draw from."""
    frame = table.assign(group=table["group"].astype(str), stratum=table["stratum"].astype(str))
    group_stratum = _majority_stratum(frame)
    rng = np.random.default_rng(seed)
    strata = [list(rng.permutation(sorted(group_stratum.index[group_stratum == stratum])))
              for stratum in sorted(group_stratum.unique())]
    return frame, frame.groupby("group").size(), strata


def inner_holdout(table: pd.DataFrame, fraction: float, seed: int) -> list[str]:
    """Sample ids of a grouped hold-out of about ``fraction`` of ``table``'s samples (columns
    sample_id, group, stratum), stratified like the folds: within each stratum the groups are
    shuffled with ``seed`` and held out while that brings the stratum's held-out share closer to
    ``fraction``. At least one group is held out and at least one is kept for training."""
    frame, sizes, strata = _shuffled_groups(table, seed)
    if len(sizes) < 2:
        raise ValueError(f"an inner hold-out needs at least 2 training groups, there is {len(sizes)}")
    held: list[str] = []
    first_candidates: list[str] = []
    for members in strata:
        target = fraction * sizes[members].sum()
        taken = 0
        for group in members:
            if abs(taken + sizes[group] - target) < abs(taken - target):
                held.append(group)
                taken += sizes[group]
        first_candidates.append(members[0])
    if not held:  # every stratum too small for its share: hold out one group of the largest stratum
        held = [max(first_candidates, key=lambda g: (sizes[g], g))]
    if len(held) == len(sizes):
        held = held[:-1]
    chosen = set(held)
    return frame.loc[frame["group"].isin(chosen), "sample_id"].tolist()


def budget_subset(table: pd.DataFrame, fraction: float, seed: int) -> list[str]:
    """Sample ids of about ``fraction`` of ``table``'s samples (columns sample_id, group, stratum),
    whole groups only, stratified: within each stratum the groups are shuffled with ``seed`` (not
    with the fraction) and the shortest prefix holding at least ``fraction`` of the stratum's samples
    is kept, so for one seed a smaller fraction's subset lies inside every larger one's (nested
    budgets). At least one group is kept; fraction 1 keeps everything."""
    if not 0 < fraction <= 1:
        raise ValueError(f"a training fraction must be in (0, 1], not {fraction}")
    if fraction == 1 or table.empty:
        return table["sample_id"].tolist()
    frame, sizes, strata = _shuffled_groups(table, seed)
    kept: list[str] = []
    for members in strata:
        target = fraction * sizes[members].sum()
        taken = 0
        for group in members:
            if taken >= target - 1e-9:
                break
            kept.append(group)
            taken += sizes[group]
    chosen = set(kept)
    return frame.loc[frame["group"].isin(chosen), "sample_id"].tolist()


def make_splits(manifest: pd.DataFrame, split: dict, metadata: str | None = None) -> pd.DataFrame:
    """The folds of every sample, seeded and grouped.

    Parameters
    ----------
    manifest:
        The ingested manifest (sample_id, and the content and perceptual hashes that group copies).
    split:
        The split settings: folds, seed, id_column, stratify_column, group_column,
        group_near_duplicates.
    metadata:
        The per-image metadata CSV (see metadata_path), needed for stratify_column and group_column.

    Returns
    -------
    The splits table: sample_id, group (source image, group_column value, copies merged), stratum,
    fold. All samples of a group share a fold; strata are spread evenly.
    """
    sample_ids = manifest["sample_id"].tolist()
    groups, strata = groups_and_strata(split, metadata, sample_ids)
    groups = merge_copies(manifest, groups, split.get("group_near_duplicates", True))
    if split["stratify_column"]:
        for stratum, count in strata.value_counts().sort_index().items():
            if count < split["folds"]:
                log.warning("stratum %r of %s has %d image%s, fewer than the %d folds: some folds will have none "
                            "of it", stratum, split["stratify_column"], count, "s" if count != 1 else "",
                            split["folds"])
    folds = assign_folds(groups, strata, split["folds"], split["seed"])
    return pd.DataFrame({"sample_id": sample_ids, "group": groups.values,
                         "stratum": strata.values, "fold": folds.values})


def merge_copies(manifest: pd.DataFrame, groups: pd.Series, near_duplicates: bool = True) -> pd.Series:
    """``groups`` (one label per manifest row) with every group that shares a copy of an image merged:
    samples with identical pixels, and near-duplicates when ``near_duplicates``. A merged group is
    named after the smallest label it contains (so that groups without copies keep their names);
    each merge is logged."""
    labels = groups.astype(str).tolist()
    if not {"content_hash", "perceptual_hash"} <= set(manifest.columns):
        log.warning("the manifest has no content_hash / perceptual_hash columns (it was written by an older "
                    "cellbench): copies of one image are NOT grouped into one fold; rerun ingest to group them")
        return pd.Series(labels, dtype=str)
    ids = manifest["sample_id"].astype(str).tolist()
    d4 = manifest["perceptual_hash_d4"].tolist() if "perceptual_hash_d4" in manifest else None
    if d4 is None:
        log.warning("the manifest has no perceptual_hash_d4 column (it was written by an older cellbench): rotated "
                    "or mirrored copies of one image are not recognised; rerun ingest to group them")
    found = duplicates.find(ids, manifest["content_hash"].tolist(), manifest["perceptual_hash"].tolist(),
                            d4_hashes=d4)
    row = {sample_id: i for i, sample_id in enumerate(ids)}
    sets = duplicates.UnionFind(len(ids))
    first_of_label: dict[str, int] = {}
    for i, label in enumerate(labels):
        sets.union(first_of_label.setdefault(label, i), i)
    reasons: list[tuple[int, str]] = []
    for members in found.exact:
        for other in members[1:]:
            sets.union(row[members[0]], row[other])
        reasons.append((row[members[0]], f"identical pixels: {' = '.join(members)}"))
    for pair in found.near:
        if near_duplicates:
            sets.union(row[pair.a], row[pair.b])
            reasons.append((row[pair.a], f"near duplicates: {pair.a} ~ {pair.b} (distance {pair.distance})"))
        else:
            log.info("near duplicates %s ~ %s (distance %d) are not grouped: split.group_near_duplicates is false",
                     pair.a, pair.b, pair.distance)
    roots = sets.components()
    members_of: dict[int, list[int]] = {}
    for i, root in enumerate(roots):
        members_of.setdefault(root, []).append(i)
    name = {root: min(labels[i] for i in members) for root, members in members_of.items()}
    n_merged = 0
    for root, members in sorted(members_of.items(), key=lambda item: name[item[0]]):
        joined = sorted({labels[i] for i in members})
        if len(joined) > 1:
            n_merged += 1
            why = "; ".join(text for i, text in reasons if roots[i] == root)
            log.info("merged group %s: groups %s hold copies of one image (%s)", name[root], ", ".join(joined), why)
    if n_merged:
        log.info("%d merged groups (copies of one image share a fold)", n_merged)
    return pd.Series([name[root] for root in roots], dtype=str)
