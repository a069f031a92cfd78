import pytest
from helpers import REPO

from cellbench import config as configuration
from cellbench.errors import ConfigError


def test_defaults_fill_every_section():
    full = configuration.complete({})
    assert full["dataset"] == "demo"
    assert full["train"]["encoder_weights"] is None
    assert full["augment"] == {"rotations": 8, "flip": True}
    assert full["split"]["folds"] == 3


def test_invalid_value_names_the_key():
    with pytest.raises(ValueError, match="train/epochs"):
        configuration.complete({"train": {"epochs": 0}})


def test_unknown_key_is_rejected():
    with pytest.raises(ValueError, match="epochz"):
        configuration.complete({"train": {"epochz": 3}})


def test_merge_is_recursive_and_lists_replace():
    merged = configuration.merge({"train": {"epochs": 3, "architectures": ["Unet", "FPN"]}},
                                 {"train": {"architectures": ["PAN"]}})
    assert merged == {"train": {"epochs": 3, "architectures": ["PAN"]}}


def test_load_applies_files_in_order(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("dataset: one\ntrain: {epochs: 7}\n")
    second.write_text("dataset: two\n")
    loaded = configuration.load(first, second)
    assert (loaded["dataset"], loaded["train"]["epochs"]) == ("two", 7)


def test_digest_is_stable_and_sensitive():
    assert configuration.digest({"a": 1, "b": 2}) == configuration.digest({"b": 2, "a": 1})
    assert configuration.digest({"a": 1}) != configuration.digest({"a": 2})


@pytest.mark.parametrize("overlay", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_every_shipped_configuration_is_valid_on_top_of_the_default(overlay):
    """configs/*.yaml are used as `--configfile config.yaml configs/<name>`: each must validate."""
    merged = configuration.load(REPO / "config.yaml", REPO / "configs" / overlay)
    assert merged["dataset"]


def test_the_default_run_is_the_demo_and_only_the_demo_stratifies_by_its_cell_types():
    default = configuration.load(REPO / "config.yaml")
    assert default["data"]["demo"] is True and default["dataset"] == "demo"
    assert default["split"]["stratify_column"] == "cell_type" and default["class_priority"] is None


def test_a_user_config_of_data_and_classes_inherits_nothing_of_the_demo(tmp_path):
    """config.yaml is loaded under every user config: with only data and classes set, nothing of
    the demo may remain (no demo, no cell_type stratification, no class priority of its classes)."""
    user = tmp_path / "mine.yaml"
    user.write_text(f"data: {{format: mask_pairs, annotations: {tmp_path / 'plasma_cells'}}}\n"
                    "classes: [background, cell]\n")
    merged = configuration.load(REPO / "config.yaml", user)
    assert merged["data"]["demo"] is False and merged["dataset"] == "plasma_cells"
    assert merged["split"]["stratify_column"] is None and merged["split"]["metadata"] is None
    assert merged["class_priority"] is None


def test_what_the_user_wrote_wins_over_the_demo_rules(tmp_path):
    explicit = configuration.complete({"dataset": "mine", "split": {"stratify_column": None}})
    assert explicit["data"]["demo"] is True and explicit["dataset"] == "mine"
    assert explicit["split"]["stratify_column"] is None  # written as null: not replaced by cell_type
    with_metadata = configuration.complete({"split": {"metadata": "types.csv"}})
    assert with_metadata["split"]["stratify_column"] is None  # the user's table has no cell_type column


@pytest.mark.parametrize(("annotations", "name"), [
    ("/data/wbc", "wbc"), ("/data/wbc/masks", "wbc"), ("/data/My Cells (2026)", "My_Cells__2026_"),
    ("/data/nuclei/stage1_solution.csv", "stage1_solution"), ("/data/x/..", "data"), ("/", "dataset")])
def test_the_results_folder_is_named_after_the_annotations(annotations, name):
    assert configuration.complete({"data": {"annotations": annotations}})["dataset"] == name


def test_a_config_that_describes_its_own_data_is_never_the_demo():
    for data in ({"format": "instance_labels"}, {"images": "/data/images"},
                 {"format": "grey_masks", "sample_folders": {"image": "a.tif", "labels": "b.png"}}):
        assert configuration.complete({"data": data})["data"]["demo"] is False, data
    assert configuration.complete({"data": {"annotations": "/data/demo"}})["dataset"] == "demo_data"
    with pytest.raises(ValueError, match="data/annotations"):
        configuration.complete({"data": {"annotations": ""}})


def test_not_a_number_and_every_invalid_setting_are_named_at_once():
    with pytest.raises(ValueError, match="evaluate/min_size_fraction: nan is not a number"):
        configuration.complete({"evaluate": {"min_size_fraction": float("nan")}})
    with pytest.raises(ValueError) as caught:
        configuration.complete({"train": {"epochs": 0, "learning_rate": float("inf")}, "split": {"folds": 1}})
    text = str(caught.value)
    assert "3 invalid settings" in text and "train/epochs" in text and "split/folds" in text
    assert "train/learning_rate: inf" in text


@pytest.mark.parametrize("settings, where", [
    ({"classes": ["background", "<script>alert(1)</script>"]}, "classes/1"),
    ({"classes": ["background", ".."]}, "classes/1"),
    ({"evaluate": {"objects": {"../../x": {"classes": ["nucleus"]}}}}, "evaluate/objects"),
    ({"evaluate": {"regions": {"a/b": ["nucleus"]}}}, "evaluate/regions"),
    ({"results": "out{x}"}, "results"),
    ({"results": "out<resources>"}, "results"),
])
def test_names_that_would_leave_the_results_folder_or_break_planning_are_refused(settings, where):
    with pytest.raises(ConfigError, match=f"at {where}"):
        configuration.check(settings)


def test_a_class_named_like_a_path_derives_an_object_type_named_like_a_folder():
    from cellbench.evaluation.scope import resolve
    from cellbench.inference.objects import object_types
    types = object_types(["background", "../../evil", "tv/monitor", ".."], {})
    assert list(types) == [".._.._evil", "tv_monitor", "class.."]
    assert all(configuration.SAFE_NAME.match(name) for name in types)
    assert resolve(["background", "../../evil"], {"regions": {}, "objects": {}}).object_indices()


def test_ordinary_names_with_spaces_and_signs_are_names():
    configuration.check({"classes": ["background", "CD4+ T cell", "plasma cell (CD138)", "tv/monitor"],
                         "results": "my results/run 1"})
    assert configuration.check_name("smears_2026-11", "--name") == "smears_2026-11"
    for bad in ("../../X", "a/b", "..", "x{1}", "a\nb"):
        with pytest.raises(ConfigError, match="is not a name"):
            configuration.check_name(bad, "--name")
