import pandas as pd
import pytest

from cellbench.errors import InputError
from cellbench.split import assign_folds, make_splits


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
    with pytest.raises(ValueError, match="'cell_type' / None\\) need split.metadata"):
        make_splits(manifest(6), split_config(stratify_column="cell_type"))


def test_metadata_path_defaults_to_the_demo_table_only_for_the_demo():
    from cellbench import config as configuration
    from cellbench.split import metadata_path
    assert metadata_path(configuration.complete({"dataset": "d", "data": {"demo": True}})) == \
        "results/d/demo_input/cell_types.csv"
    assert metadata_path(configuration.complete({"data": {"demo": False, "annotations": "x"}})) is None
    assert metadata_path(configuration.complete({"split": {"metadata": "m.csv"}})) == "m.csv"


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
