import numpy as np
import pytest

from cellbench.errors import ConfigError
from cellbench.evaluation import semantic_metrics

CLASSES = ["background", "cytoplasm", "nucleus"]


def rows_by_class(truth, prediction, regions=None):
    return {r["class"]: r for r in semantic_metrics.image_rows(np.array(truth), np.array(prediction), CLASSES, regions)}


def test_counts_and_scores_by_hand():
    truth = [[0, 1, 1, 2]]
    pred = [[1, 1, 2, 2]]
    rows = rows_by_class(truth, pred)
    cyto = rows["cytoplasm"]  # truth {1,2}, pred {0,1}: tp 1, fp 1, fn 1, tn 1
    assert (cyto["tp"], cyto["fp"], cyto["fn"], cyto["tn"]) == (1, 1, 1, 1)
    assert cyto["dice"] == pytest.approx(0.5)
    assert cyto["iou"] == pytest.approx(1 / 3)
    nucleus = rows["nucleus"]  # truth {3}, pred {2,3}
    assert (nucleus["tp"], nucleus["fp"], nucleus["fn"]) == (1, 1, 0)
    assert nucleus["dice"] == pytest.approx(2 / 3)
    assert nucleus["precision"] == pytest.approx(0.5)
    assert nucleus["recall"] == pytest.approx(1.0)
    assert nucleus["n_ref"] == 1 and nucleus["n_pred"] == 2


def test_background_is_not_scored():
    assert "background" not in rows_by_class([[0, 1]], [[0, 1]])


def test_both_empty_is_nan():
    row = rows_by_class([[0, 1]], [[0, 1]])["nucleus"]
    assert np.isnan(row["dice"]) and np.isnan(row["iou"])
    assert np.isnan(row["precision"]) and np.isnan(row["recall"])


def test_reference_empty_prediction_not_is_zero():
    row = rows_by_class([[0, 0]], [[0, 2]])["nucleus"]
    assert row["dice"] == 0 and row["iou"] == 0 and row["precision"] == 0 and row["recall"] == 0


def test_reference_present_prediction_empty_is_zero():
    row = rows_by_class([[2, 0]], [[0, 0]])["nucleus"]
    assert row["dice"] == 0 and row["iou"] == 0 and row["recall"] == 0 and row["precision"] == 0


def test_cell_region_is_the_union():
    truth, pred = [[1, 2, 0, 0]], [[2, 2, 1, 0]]
    rows = rows_by_class(truth, pred, {"cell": ["cytoplasm", "nucleus"]})
    cell = rows["cell"]  # truth {0,1}, pred {0,1,2}
    assert (cell["tp"], cell["fp"], cell["fn"]) == (2, 1, 0)
    assert cell["is_region"] and not rows["nucleus"]["is_region"]


def test_region_with_unknown_class_is_an_error_unless_it_is_the_default():
    with pytest.raises(ConfigError, match=r"evaluate.regions.cell: no class 'membrane' in classes \[background, "):
        rows_by_class([[1]], [[1]], {"cell": ["cytoplasm", "membrane"]})
    default = {"cell": ["cytoplasm", "nucleus"]}
    assert list(semantic_metrics.regions_of(["background", "nucleus"], default)) == ["nucleus"]
    assert semantic_metrics.regions_of(["background", "cell"], default) == {"cell": [1]}  # the class, not the region
    with pytest.raises(ConfigError, match="a region cannot have the name of a class"):
        semantic_metrics.regions_of(["background", "cell"], {"cell": ["cell"]})


def test_confusion_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        semantic_metrics.confusion(np.zeros((2, 2), int), np.zeros((2, 3), int), 3)


def test_foreground_dice_ignores_empty_pairs():
    empty = (np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    perfect = (np.array([[1, 2], [0, 0]], np.uint8), np.array([[1, 2], [0, 0]], np.uint8))
    headline, per_class = semantic_metrics.foreground_dice([empty, perfect], CLASSES)
    assert headline == 1.0 and per_class == {"cytoplasm": 1.0, "nucleus": 1.0}


def test_ignored_pixels_are_not_counted():
    truth = np.array([[1, 255, 255, 0]])
    pred = np.array([[1, 2, 1, 0]])
    rows = rows_by_class(truth, pred)
    assert (rows["cytoplasm"]["tp"], rows["cytoplasm"]["fp"], rows["cytoplasm"]["tn"]) == (1, 0, 1)
    assert np.isnan(rows["nucleus"]["dice"])  # its only prediction lies in the ignored region


@pytest.mark.parametrize("n_classes", [2, 3, 5, 6, 17])
def test_confusion_counts_every_pixel_pair(n_classes):
    rng = np.random.default_rng(n_classes)
    truth, prediction = (rng.integers(0, n_classes, (31, 29)).astype(np.uint8) for _ in range(2))
    truth[:3] = 255  # ignored
    expected = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(expected, (truth[truth != 255], prediction[truth != 255]), 1)
    np.testing.assert_array_equal(semantic_metrics.confusion(truth, prediction, n_classes), expected)
