"""Which regions and object types apply to the classes: defaults that do not fit are skipped with a
note, chosen ones that do not fit are configuration errors, and object types are derived when none
applies."""

import logging

import pytest
from helpers import make_config

from cellbench.errors import ConfigError
from cellbench.evaluation.scope import resolve

DEFAULTS = make_config(None)["evaluate"]
PLAIN = {"min_size": 0, "min_size_set": False, "fill_holes": False}  # no post-processing unless asked for


def test_default_classes_score_the_defaults_without_notes():
    scope = resolve(["background", "cytoplasm", "nucleus"], DEFAULTS)
    assert scope.regions == {"cell": ["cytoplasm", "nucleus"]}
    assert scope.objects == DEFAULTS["objects"] and scope.notes == []
    assert scope.region_indices() == {"cytoplasm": [1], "nucleus": [2], "cell": [1, 2]}
    assert scope.object_indices() == {"cell": {"classes": [1, 2], "seeds": [2], **PLAIN},
                                      "nucleus": {"classes": [2], "seeds": [], **PLAIN}}
    assert resolve(["background", "cytoplasm", "nucleus"]) == scope  # keys left out: the schema defaults


def test_one_class_named_cell_skips_the_defaults_and_derives_its_object_type():
    classes = ["background", "cell"]
    scope = resolve(classes, make_config(None, classes=classes)["evaluate"])
    assert scope.regions == {} and scope.region_indices() == {"cell": [1]}
    assert scope.objects == {"cell": {"classes": ["cell"]}}
    assert scope.object_indices() == {"cell": {"classes": [1], "seeds": [], **PLAIN}}
    assert scope.skipped == ["region 'cell' skipped: it is the name of a class",
                             "object type 'cell' skipped: no class 'cytoplasm' or 'nucleus' in classes "
                             "[background, cell]",
                             "object type 'nucleus' skipped: no class 'nucleus' in classes [background, cell]"]
    assert scope.derived == ["object type 'cell' derived: the connected components of class 'cell' "
                             "(no object type of evaluate.objects fits classes [background, cell])"]
    assert scope.describe()[-1] == "Object types: cell (connected components of cell)."


def test_nucleus_only_keeps_the_default_nucleus_type():
    scope = resolve(["background", "nucleus"], DEFAULTS)
    assert scope.regions == {} and scope.objects == {"nucleus": {"classes": ["nucleus"]}}
    assert scope.notes == ["region 'cell' skipped: no class 'cytoplasm' in classes [background, nucleus]",
                           "object type 'cell' skipped: no class 'cytoplasm' in classes [background, nucleus]"]


def test_several_foreground_classes_derive_one_type_each():
    scope = resolve(["background", "a", "b"], {**DEFAULTS, "objects": {}})
    assert scope.objects == {"a": {"classes": ["a"]}, "b": {"classes": ["b"]}}
    assert scope.derived == ["object types 'a', 'b' derived: the connected components of each foreground class "
                             "(evaluate.objects is empty)"]


@pytest.mark.parametrize(("evaluate", "message"), [
    ({"regions": {"cell": ["cytoplasm", "membrane"]}},
     r"evaluate.regions.cell: no class 'membrane' in classes \[background, cytoplasm, nucleus\]"),
    ({"regions": {"nucleus": ["nucleus"]}},
     r"evaluate.regions.nucleus: a region cannot have the name of a class \('nucleus' is in classes "
     r"\[background, cytoplasm, nucleus\]\)"),
    ({"objects": {"membrane": {"classes": ["membrane"]}}},
     r"evaluate.objects.membrane.classes: no class 'membrane' in classes \[background, cytoplasm, nucleus\]"),
    ({"objects": {"cell": {"classes": ["cytoplasm", "nucleus"], "seed_class": "nuclei"}}},
     r"evaluate.objects.cell.seed_class: no class 'nuclei' in classes"),
])
def test_chosen_entries_that_do_not_fit_are_configuration_errors(evaluate, message):
    with pytest.raises(ConfigError, match=message):
        resolve(["background", "cytoplasm", "nucleus"], evaluate)


def test_a_chosen_entry_is_checked_beside_skipped_defaults():
    """The defaults merged under a user's own type are skipped; the user's type still has to fit."""
    spec = {**DEFAULTS["objects"], "blob": {"classes": ["blob"]}}
    assert list(resolve(["background", "blob"], {"objects": spec}).objects) == ["blob"]
    with pytest.raises(ConfigError, match="evaluate.objects.blob.classes: no class 'blob'"):
        resolve(["background", "cell"], {"objects": spec})


def test_resolved_settings_resolve_to_themselves_without_notes():
    scope = resolve(["background", "cell"], DEFAULTS)
    again = resolve(["background", "cell"], scope.settings(DEFAULTS))
    assert (again.regions, again.objects, again.notes) == (scope.regions, scope.objects, [])
    assert scope.settings(DEFAULTS)["thresholds"] == DEFAULTS["thresholds"]


def test_notes_are_logged_one_line_each(caplog):
    with caplog.at_level(logging.INFO):
        resolve(["background", "cell"], DEFAULTS).log(logging.getLogger("test"))
    assert [r.levelname for r in caplog.records] == ["WARNING"] * 3 + ["INFO"]
    assert all("\n" not in r.getMessage() for r in caplog.records)
