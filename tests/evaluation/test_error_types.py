import numpy as np

from cellbench.evaluation.error_types import OUTCOMES, error_counts
from cellbench.evaluation.matching import Overlaps
from cellbench.evaluation.object_metrics import image_scores


def _scene():
    """One of each outcome, drawn by hand on a 60 x 120 canvas."""
    truth = np.zeros((60, 120), np.int32)
    pred = np.zeros_like(truth)
    truth[2:12, 2:12] = 1
    pred[2:12, 3:12] = 1  # correct (IoU .9)
    truth[2:12, 20:26], truth[2:12, 26:32] = 2, 3
    pred[2:12, 20:32] = 2  # merge of truths 2 and 3
    truth[20:30, 2:14] = 4
    pred[20:30, 2:8], pred[20:30, 8:14] = 3, 4  # split of truth 4
    truth[20:30, 20:30] = 5  # missed
    pred[40:50, 40:50] = 5  # false detection
    truth[40:50, 2:12] = 6
    pred[44:50, 6:12] = 6  # loose: inside truth 6, IoU .36
    truth[20:30, 60:66], truth[20:30, 66:72] = 7, 8
    pred[20:25, 60:72], pred[25:30, 60:72] = 7, 8  # catastrophe: two truths cut across by two predictions
    return truth, pred


def test_each_outcome_is_named_once():
    truth, pred = _scene()
    counts = error_counts(Overlaps.of(truth, pred))
    assert counts == {f"n_{name}": 1 for name in OUTCOMES}


def test_identical_maps_are_all_correct_and_empty_maps_have_no_outcomes():
    truth, _ = _scene()
    assert error_counts(Overlaps.of(truth, truth)) == {"n_correct": 8, **{f"n_{o}": 0 for o in OUTCOMES[1:]}}
    empty = np.zeros_like(truth)
    assert error_counts(Overlaps.of(empty, empty)) == {f"n_{o}": 0 for o in OUTCOMES}
    assert error_counts(Overlaps.of(truth, empty))["n_missed"] == 8
    assert error_counts(Overlaps.of(empty, truth))["n_false"] == 8


def test_a_small_cell_swallowed_by_a_matched_prediction_is_a_merge_not_a_miss():
    truth = np.zeros((40, 40), np.int32)
    truth[5:30, 5:30] = 1
    truth[30:33, 5:8] = 2  # small neighbour
    pred = np.zeros_like(truth)
    pred[5:33, 5:30] = 1  # matched to 1 at IoU .89, covers all of 2
    counts = error_counts(Overlaps.of(truth, pred))
    assert counts["n_merge"] == 1 and counts["n_correct"] == 0 and counts["n_missed"] == 0


def test_the_object_table_carries_the_counts():
    truth, pred = _scene()
    _, summary = image_scores(truth, pred)
    assert summary["n_split"] == 1 and summary["n_correct"] == 1
    assert summary["n_true"] == 8 and summary["n_pred"] == 8
