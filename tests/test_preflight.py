"""Checks that fail in seconds, before any heavy job."""

import pytest
from helpers import make_config

from cellbench import preflight
from cellbench.cli import main
from cellbench.errors import ConfigError


def test_a_sound_configuration_passes(demo_raw):
    assert preflight.check(make_config(demo_raw)) == []


@pytest.mark.parametrize("sections, message", [
    ({"split": {"folds": 30}}, "split.folds is 30 but the annotations hold 24 images"),
    ({"train": {"early_stopping_patience": 3}}, "early_stopping_patience needs a signal that is not the scored fold"),
    ({"evaluate": {"objects": {"blob": {"classes": ["membrane"]}}}}, "no class 'membrane'"),
    ({"class_priority": ["nucleus", "membrane"]}, "class_priority names classes that are not in classes"),
    ({"infer": {"architectures": ["best", "UnetPlusPlus"]}}, "infer.architectures names UnetPlusPlus, not in train"),
    ({"infer": {"folds": [0, 5]}}, "infer.folds names fold 5 but split.folds is 3"),
])
def test_configurations_that_cannot_work_fail_with_every_reason(demo_raw, sections, message):
    with pytest.raises(ConfigError, match=message):
        preflight.check(make_config(demo_raw, **sections))


def test_every_problem_is_listed_at_once(demo_raw):
    config = make_config(demo_raw, split={"folds": 30}, train={"early_stopping_patience": 3})
    with pytest.raises(ConfigError) as caught:
        preflight.check(config)
    assert str(caught.value).count("\n  - ") == 2


def test_groups_fewer_than_folds_and_small_strata(demo_raw, tmp_path):
    csv = tmp_path / "meta.csv"
    names = sorted(p.stem for p in demo_raw.glob("*.json"))
    csv.write_text("id,patient,kind\n" + "".join(f"{n},p{i % 2},{'rare' if i < 2 else 'common'}\n"
                                                  for i, n in enumerate(names)))
    with pytest.raises(ConfigError, match="group_column 'patient' has only 2 groups"):
        preflight.check(make_config(demo_raw, split={"metadata": str(csv), "group_column": "patient"}))
    warnings = preflight.check(make_config(demo_raw, split={"metadata": str(csv), "stratify_column": "kind"}))
    assert warnings == ["stratum 'rare' of split.stratify_column 'kind' has 2 images, fewer than the 3 folds: "
                        "some folds will have none of it"]


def test_the_optimistic_protocol_is_announced(demo_raw):
    warnings = preflight.check(make_config(demo_raw, train={"selection": "scored_fold_best"}))
    assert any("OPTIMISTIC" in w for w in warnings)


def test_model_checks_name_each_architecture(demo_raw):
    preflight.check_models(make_config(demo_raw, train={"architectures": ["Unet", "PSPNet"], "crop_size": 128}))
    with pytest.raises(ConfigError) as caught:
        preflight.check_models(make_config(demo_raw, train={"architectures": ["Unet", "DeepLabV3Plus", "DPT"],
                                                            "crop_size": 80}))
    text = str(caught.value)
    assert "not a multiple of 32, which Unet needs: use 64 or 96" in text
    assert "not a multiple of 16" not in text  # 80 = 5 x 16 suits DeepLabV3Plus
    assert "DPT cannot be built with encoder 'resnet18'" in text
    with pytest.raises(ConfigError, match="resnet999"):
        preflight.check_models(make_config(demo_raw, train={"encoder": "resnet999"}))


def test_model_checks_know_the_instance_and_two_stage_families(demo_raw):
    preflight.check_models(make_config(demo_raw, train={"architectures": ["MaskRCNN", "NucleusGuided"]}))
    with pytest.raises(ConfigError) as caught:
        preflight.check_models(make_config(demo_raw, train={"architectures": ["MaskRCNN", "NucleusGuided"],
                                                            "crop_size": 80},
                                           nucleus_guided={"input_size": 72}))
    text = str(caught.value)
    assert "train.crop_size 80 is not a multiple of 32, which MaskRCNN needs" in text
    assert "train.crop_size 80 is not a multiple of 32, which Unet needs" in text  # stage 1
    assert "nucleus_guided.input_size 72 is not a multiple of 16, which DeepLabV3Plus needs: use 64 or 80" in text
    with pytest.raises(ConfigError, match="NucleusGuided needs classes"):
        preflight.check_models(make_config(demo_raw, classes=["background", "nucleus"],
                                           train={"architectures": ["NucleusGuided"]}))


def test_cellbench_check_command(demo_raw, tmp_path, capsys):
    import json
    settings = json.dumps({"data": {"annotations": str(demo_raw), "demo": False}, "results": str(tmp_path)})
    assert main(["check", "--config-json", settings]) == 0
    assert "the configuration can run" in capsys.readouterr().out
    bad = json.dumps({"data": {"annotations": str(demo_raw), "demo": False}, "train": {"crop_size": 100}})
    assert main(["check", "--config-json", bad]) == 2
    assert "crop_size 100 is not a multiple of 32" in capsys.readouterr().err


def write_metadata(path, rows: dict[str, str], header="image,kind"):
    path.write_text(header + "\n" + "".join(f"{k},{v}\n" for k, v in rows.items()))
    return str(path)


@pytest.mark.parametrize("sections, message", [
    ({"split": {"stratify_column": "cell_type"}},
     "split.stratify_column 'cell_type' needs split.metadata, a CSV with one row per image (none is set)"),
    ({"split": {"metadata": "/nowhere/types.csv", "stratify_column": "kind"}}, "split.metadata /nowhere/types.csv "
                                                                                "does not exist"),
    ({"data": {"label_aliases": {"nuclei": "nukleus"}}}, "label alias 'nuclei' points at 'nukleus'"),
    ({"data": {"unknown_labels": "platelet"}}, "unknown_labels must be error, ignore, __ignore__ or a class name"),
    ({"data": {"sample_folders": {"image": "a.tif", "labels": "b.png"}}}, "data.sample_folders is for grey_masks"),
    ({"data": {"format": "grey_masks", "grey_levels": {"background": 0, "membrane": 80}}},
     "grey_levels names classes not in `classes`: ['membrane']"),
    ({"data": {"format": "instance_labels"}}, "data.object_class must name the class of the objects"),
    ({"data": {"format": "grey_masks"}}, "data.images must name the image folder when data.format is grey_masks"),
])
def test_every_setting_a_later_step_would_refuse_is_refused_first(demo_raw, sections, message):
    with pytest.raises(ConfigError) as caught:
        preflight.check(make_config(demo_raw, **sections))
    assert message in str(caught.value)


def test_an_inner_hold_out_needs_two_training_groups_in_every_fold(demo_raw, tmp_path):
    names = sorted(p.stem for p in demo_raw.glob("*.json"))
    patients = write_metadata(tmp_path / "p.csv", {n: f"p{i % 3}" for i, n in enumerate(names)}, "image,patient")
    split = {"metadata": patients, "group_column": "patient", "folds": 2}
    preflight.check(make_config(demo_raw, split=split))
    with pytest.raises(ConfigError, match="with 3 groups in 2 folds a fold trains on 1: it needs 2 or more"):
        preflight.check(make_config(demo_raw, split=split, train={"selection": "inner"}))


def test_metadata_problems_are_found_before_the_split(demo_raw, tmp_path):
    names = sorted(p.stem for p in demo_raw.glob("*.json"))
    partial = write_metadata(tmp_path / "partial.csv", {n: "a" for n in names[3:]})
    with pytest.raises(ConfigError, match="3 images have no row: demo_00, demo_01, demo_02"):
        preflight.check(make_config(demo_raw, split={"metadata": partial, "stratify_column": "kind"}))
    full = write_metadata(tmp_path / "full.csv", {n: "a" for n in names})
    with pytest.raises(ConfigError, match="no column 'patient' \\(split.group_column\\); columns: image, kind"):
        preflight.check(make_config(demo_raw, split={"metadata": full, "group_column": "patient"}))
    nested = write_metadata(tmp_path / "nested.csv", {f"plate/{n}": "a" for n in names})
    from cellbench.dataset.split import read_metadata
    assert len(read_metadata(nested, None, [f"plate__{n}" for n in names])) == len(names)  # a/b == a__b


def test_the_demo_columns_are_known_before_the_demo_is_generated(tmp_path):
    from cellbench import config as configuration
    demo = configuration.complete({"results": str(tmp_path)})
    assert preflight.check(demo) == []
    wrong = configuration.complete({"results": str(tmp_path), "split": {"stratify_column": "patient"}})
    with pytest.raises(ConfigError, match="'patient' is not a column of the demo's cell-type table"):
        preflight.check(wrong)


def test_every_metadata_problem_at_once_and_duplicate_rows(demo_raw, tmp_path):
    names = sorted(p.stem for p in demo_raw.glob("*.json"))
    rows = {n: "a" for n in names[1:]}
    csv = tmp_path / "meta.csv"
    csv.write_text("image,kind\n" + "".join(f"{k},{v}\n" for k, v in rows.items()) + f"{names[5]},b\n")
    with pytest.raises(ConfigError) as caught:
        preflight.check(make_config(demo_raw, split={"metadata": str(csv), "stratify_column": "type",
                                                     "group_column": "patient"}))
    text = str(caught.value)
    assert "no column 'type' (split.stratify_column)" in text and "no column 'patient' (split.group_column)" in text
    assert f"1 image has more than one row: {names[5]}" in text and f"1 images have no row: {names[0]}" in text
