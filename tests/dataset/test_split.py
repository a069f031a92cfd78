import logging

import numpy as np
import pandas as pd
import pytest

from cellbench.dataset.split import assign_folds, make_splits
from cellbench.errors import InputError


def split_config(**kwargs):
    return {"folds": 3, "seed": 1, "metadata": None, "id_column": None, "stratify_column": None,
            "group_column": None, **kwargs}


def manifest(n):
    return pd.DataFrame({"sample_id": [f"{i:03d}" for i in range(1, n + 1)]})


def test_every_sample_once_and_folds_balanced():
    splits = make_splits(manifest(10), split_config())
    assert sorted(splits["sample_id"]) == [f"{i:03d}" for i in range(1, 11)]
    assert sorted(splits.groupby("fold").size().tolist()) == [3, 3, 4]


def test_seeded_and_seed_sensitive():
    a = make_splits(manifest(30), split_config())
    assert a.equals(make_splits(manifest(30), split_config()))
    assert not a["fold"].equals(make_splits(manifest(30), split_config(seed=2))["fold"])


def test_groups_never_straddle_folds():
    groups = pd.Series(list("aabbbccddeeeff"))
    folds = assign_folds(groups, pd.Series(["x"] * len(groups)), 3, seed=0)
    assert (pd.DataFrame({"g": groups, "f": folds}).groupby("g")["f"].nunique() == 1).all()


def test_strata_are_spread_over_folds():
    strata = pd.Series(["rare"] * 3 + ["common"] * 27)
    folds = assign_folds(pd.Series(range(30)).astype(str), strata, 3, seed=5)
    assert sorted(folds[strata == "rare"]) == [0, 1, 2]


def test_too_few_groups():
    with pytest.raises(ValueError, match="2 groups cannot fill 3 folds"):
        make_splits(manifest(2), split_config())


def test_metadata_ids_match_ignoring_leading_zeros(tmp_path):
    csv = tmp_path / "types.csv"
    csv.write_text("image ID,class\n" + "".join(f"{i},{1 + i % 2}\n" for i in range(1, 13)))
    splits = make_splits(manifest(12), split_config(id_column="image ID", stratify_column="class"), str(csv))
    assert splits.set_index("sample_id").at["007", "stratum"] == "2"
    assert (pd.crosstab(splits["stratum"], splits["fold"]) == 2).all().all()


def test_metadata_missing_rows_names_them(tmp_path):
    csv = tmp_path / "types.csv"
    csv.write_text("id,class\n1,a\n")
    with pytest.raises(InputError, match="2 images have no row: 002, 003"):
        make_splits(manifest(3), split_config(stratify_column="class"), str(csv))


def test_metadata_unknown_column(tmp_path):
    csv = tmp_path / "types.csv"
    csv.write_text("id,class\n1,a\n2,b\n3,a\n")
    with pytest.raises(InputError, match="no column 'type'"):
        make_splits(manifest(3), split_config(stratify_column="type"), str(csv))


def test_stratifying_without_metadata_says_which_keys():
    with pytest.raises(ValueError, match="split.stratify_column 'cell_type' needs split.metadata"):
        make_splits(manifest(6), split_config(stratify_column="cell_type"))


def test_metadata_path_defaults_to_the_demo_table_only_for_the_demo():
    from cellbench import config as configuration
    from cellbench.dataset.split import metadata_path
    assert metadata_path(configuration.complete({"dataset": "d", "data": {"demo": True}})) == \
        "results/d/demo_input/cell_types.csv"
    assert metadata_path(configuration.complete({"data": {"demo": False, "annotations": "x"}})) is None
    assert metadata_path(configuration.complete({"split": {"metadata": "m.csv"}})) == "m.csv"


# ---- copies of one image share a group ----

def hashed_manifest(n, copies=(), near=()):
    """n samples with distinct random hashes; ``copies``: (i, j) with identical pixels, ``near``:
    (i, j) whose perceptual hashes differ in 5 bits."""
    rng = np.random.default_rng(3)
    content = [f"{i:064x}" for i in range(n)]
    perceptual = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(n)]
    for i, j in copies:
        content[j], perceptual[j] = content[i], perceptual[i]
    for i, j in near:
        bits = np.unpackbits(np.frombuffer(bytes.fromhex(perceptual[i]), np.uint8))
        bits[[3, 50, 100, 150, 200]] ^= 1
        perceptual[j] = np.packbits(bits).tobytes().hex()
    table = manifest(n)
    table["content_hash"], table["perceptual_hash"] = content, perceptual
    return table


def same_fold(splits, *ids):
    return splits.set_index("sample_id").loc[list(ids), "fold"].nunique() == 1


def test_exact_copies_share_a_group_named_after_the_smallest(caplog):
    caplog.set_level(logging.INFO, logger="cellbench")
    table = hashed_manifest(12, copies=[(4, 9), (4, 11)])
    for seed in range(10):
        for folds in (2, 3, 4, 5):
            splits = make_splits(table, split_config(seed=seed, folds=folds))
            assert same_fold(splits, "005", "010", "012")
    by_id = splits.set_index("sample_id")["group"]
    assert by_id[["005", "010", "012"]].tolist() == ["005"] * 3 and by_id.nunique() == 10
    assert "merged group 005: groups 005, 010, 012 hold copies of one image (identical pixels: 005 = 010 = 012)" \
        in caplog.text


def test_copies_merge_with_group_column_groups(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="cellbench")
    csv = tmp_path / "meta.csv"
    patients = ["p1", "p1", "p2", "p2", "p3", "p3", "p4", "p4", "p5", "p5", "p6", "p6"]
    csv.write_text("id,patient\n" + "".join(f"{i},{p}\n" for i, p in enumerate(patients, start=1)))
    table = hashed_manifest(12, copies=[(2, 7)], near=[(4, 10)])  # 003 (p2) = 008 (p4); 005 (p3) ~ 011 (p6)
    splits = make_splits(table, split_config(group_column="patient", folds=2), str(csv))
    groups = splits.set_index("sample_id")["group"]
    assert groups.tolist() == ["p1", "p1", "p2", "p2", "p3", "p3", "p2", "p2", "p5", "p5", "p3", "p3"]
    assert "merged group p2: groups p2, p4 hold copies of one image (identical pixels: 003 = 008)" in caplog.text
    assert "merged group p3: groups p3, p6 hold copies of one image (near duplicates: 005 ~ 011 (distance 5))" \
        in caplog.text
    for seed in range(10):
        splits = make_splits(table, split_config(group_column="patient", folds=2, seed=seed), str(csv))
        assert same_fold(splits, "003", "004", "007", "008") and same_fold(splits, "005", "006", "011", "012")


def test_near_duplicates_apart_when_not_grouped_but_exact_copies_together(caplog):
    caplog.set_level(logging.INFO, logger="cellbench")
    table = hashed_manifest(12, copies=[(0, 1)], near=[(2, 3)])
    together = make_splits(table, split_config(group_near_duplicates=True))
    assert together["group"].nunique() == 10
    caplog.clear()
    apart = [make_splits(table, split_config(group_near_duplicates=False, seed=seed)) for seed in range(10)]
    assert all(s["group"].nunique() == 11 and same_fold(s, "001", "002") for s in apart)
    assert not all(same_fold(s, "003", "004") for s in apart)
    assert "near duplicates 003 ~ 004 (distance 5) are not grouped: split.group_near_duplicates is false" in caplog.text


def test_manifest_without_hashes_warns_and_splits_by_image(caplog):
    splits = make_splits(manifest(9), split_config())
    assert splits["group"].tolist() == [f"{i:03d}" for i in range(1, 10)]
    assert "no content_hash / perceptual_hash columns" in caplog.text
    assert make_splits(hashed_manifest(9), split_config())["fold"].equals(splits["fold"])  # no copies: same split


# ---- group_column end to end: a patient's images never straddle folds ----

SEEDS_AND_FOLDS = [(seed, folds) for seed in (0, 1, 7, 42) for folds in (2, 3, 5)]


def patient_metadata(tmp_path):
    """40 images of 12 patients (1 to 6 images each), listed out of order, with a cell type per image."""
    sizes = [6, 1, 5, 2, 4, 3, 6, 1, 4, 2, 3, 3]
    rows, n = [], 0
    for patient, size in enumerate(sizes):
        for k in range(size):
            n += 1
            rows.append((n, f"P{patient:02d}", ("lymphocyte", "neutrophil", "monocyte")[(patient + k) % 3]))
    csv = tmp_path / "patients.csv"
    lines = [f"{image},{patient},{kind}\n" for image, patient, kind in reversed(rows)]
    csv.write_text("image,patient,cell_type\n" + "".join(lines))
    truth = pd.DataFrame(rows, columns=["n", "patient", "cell_type"])
    truth.index = truth["n"].map("{:03d}".format).rename("sample_id")
    return csv, truth


def assert_patients_share_a_fold(splits, truth, folds):
    splits = splits.set_index("sample_id")
    assert sorted(splits.index) == sorted(truth.index)
    folds_of_patient = splits.join(truth["patient"]).groupby("patient")["fold"].unique()
    straddling = {patient: sorted(int(k) for k in f) for patient, f in folds_of_patient.items() if len(f) > 1}
    assert straddling == {}, "patients whose images sit in several folds"
    assert sorted(splits["fold"].unique()) == list(range(folds))
    assert (splits["group"] == truth["patient"]).all()


@pytest.mark.parametrize("stratify", [None, "cell_type"])
def test_group_column_keeps_each_patient_in_one_fold(tmp_path, stratify):
    csv, truth = patient_metadata(tmp_path)
    for seed, folds in SEEDS_AND_FOLDS:
        settings = split_config(folds=folds, seed=seed, id_column="image", group_column="patient",
                                stratify_column=stratify)
        splits = make_splits(manifest(40), settings, str(csv))
        assert_patients_share_a_fold(splits, truth, folds)
        if stratify:
            assert (splits.set_index("sample_id")["stratum"] == truth["cell_type"]).all()


def test_group_column_through_the_command_line(tmp_path):
    import yaml

    from cellbench.cli import main
    csv, truth = patient_metadata(tmp_path)
    manifest_path = tmp_path / "manifest.parquet"
    manifest(40).to_parquet(manifest_path, index=False)
    for seed, folds in [(0, 3), (42, 5)]:
        for stratify in (None, "cell_type"):
            config = tmp_path / "config.yaml"
            config.write_text(yaml.safe_dump({
                "dataset": "patients", "results": str(tmp_path / "results"),
                "data": {"demo": False, "annotations": str(tmp_path)},
                "split": {"folds": folds, "seed": seed, "metadata": str(csv), "id_column": "image",
                          "group_column": "patient", "stratify_column": stratify}}))
            out = tmp_path / f"splits_{seed}_{folds}_{stratify}.parquet"
            assert main(["split", "--config", str(config), "--manifest", str(manifest_path), "--out", str(out)]) == 0
            assert_patients_share_a_fold(pd.read_parquet(out), truth, folds)


def test_a_stratum_smaller_than_the_folds_is_named(tmp_path, caplog):
    csv = tmp_path / "types.csv"
    types = ["common"] * 10 + ["rare"] * 2
    csv.write_text("id,kind\n" + "".join(f"{i},{t}\n" for i, t in enumerate(types, start=1)))
    caplog.set_level(logging.WARNING, logger="cellbench")
    make_splits(manifest(12), split_config(stratify_column="kind", folds=3), str(csv))
    assert "stratum 'rare' of kind has 2 images, fewer than the 3 folds" in caplog.text
    assert "'common'" not in caplog.text


def test_inner_hold_out_is_grouped_stratified_and_seeded():
    from cellbench.dataset.split import inner_holdout
    table = pd.DataFrame({"sample_id": [f"s{i:02d}" for i in range(40)],
                          "group": [f"p{i // 2}" for i in range(40)],
                          "stratum": ["a"] * 20 + ["b"] * 20})
    held = inner_holdout(table, 0.2, seed=3)
    assert held == inner_holdout(table, 0.2, seed=3) and held != inner_holdout(table, 0.2, seed=4)
    chosen = table[table["sample_id"].isin(held)]
    assert len(held) == 8 and chosen["stratum"].value_counts().to_dict() == {"a": 4, "b": 4}
    assert set(table.loc[table["group"].isin(chosen["group"]), "sample_id"]) == set(held)  # whole groups only
    tiny = table.head(4)
    assert 0 < len(inner_holdout(tiny, 0.1, seed=0)) < 4  # at least one group out, at least one kept


def test_budget_subsets_are_nested_grouped_and_stratified():
    from cellbench.dataset.split import budget_subset
    table = pd.DataFrame({"sample_id": [f"s{i:02d}" for i in range(40)],
                          "group": [f"p{i // 2}" for i in range(40)],
                          "stratum": ["a"] * 20 + ["b"] * 20})
    subsets = {f: budget_subset(table, f, seed=1) for f in (0.25, 0.5, 0.75, 1.0)}
    assert set(subsets[0.25]) < set(subsets[0.5]) < set(subsets[0.75]) < set(subsets[1.0])  # nested
    assert len(subsets[1.0]) == 40 and len(subsets[0.5]) == 20
    chosen = table[table["sample_id"].isin(subsets[0.25])]
    assert chosen["stratum"].value_counts().to_dict() == {"a": 6, "b": 6}  # 5 per stratum, rounded up to groups
    assert set(table.loc[table["group"].isin(chosen["group"]), "sample_id"]) == set(subsets[0.25])  # whole groups
    assert budget_subset(table, 0.25, seed=1) == subsets[0.25] != budget_subset(table, 0.25, seed=2)
    assert len(budget_subset(table.head(2), 0.01, seed=0)) == 2  # one group at least
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        budget_subset(table, 0.0, seed=0)
