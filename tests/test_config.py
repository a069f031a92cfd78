import pytest
from helpers import REPO

from cellbench import config as configuration


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
