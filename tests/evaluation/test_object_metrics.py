import math

import numpy as np
import pytest

from cellbench.evaluation import object_metrics as om
from cellbench.evaluation.matching import Overlaps


def squares(shape, boxes):
    """Instance map with object k+1 = rows r0..r1, columns c0..c1 (inclusive) of boxes[k]."""
    out = np.zeros(shape, np.int32)
    for k, (r0, r1, c0, c1) in enumerate(boxes, start=1):
        out[r0:r1 + 1, c0:c1 + 1] = k
    return out


# truth: A and B; prediction: A shifted one column right (IoU 12/20), B missed, an extra object C
TRUTH = squares((20, 30), [(2, 5, 2, 5), (10, 13, 20, 23)])
PREDICTION = squares((20, 30), [(2, 5, 3, 6), (15, 16, 2, 3)])


def at(rows, threshold):
    return next(r for r in rows if r["threshold"] == threshold)


def test_counts_and_scores_by_threshold():
    rows, _ = om.image_scores(TRUTH, PREDICTION)
    assert [r["threshold"] for r in rows] == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    low = at(rows, 0.6)  # IoU 0.6 >= 0.6 matches
    assert (low["tp"], low["fp"], low["fn"]) == (1, 1, 1)
    assert low["precision"] == low["recall"] == low["f1"] == low["rq"] == 0.5
    assert low["ap"] == pytest.approx(1 / 3)
    assert low["sq"] == pytest.approx(0.6) and low["pq"] == pytest.approx(0.6 / 2)
    high = at(rows, 0.65)
    assert (high["tp"], high["fp"], high["fn"], high["ap"], high["pq"]) == (0, 2, 2, 0.0, 0.0)
    assert math.isnan(high["sq"])


def test_threshold_free_metrics_by_hand():
    _, summary = om.image_scores(TRUTH, PREDICTION)
    assert (summary["n_true"], summary["n_pred"]) == (2, 2)
    assert summary["aji"] == pytest.approx(12 / (20 + 16 + 4))  # A with A'; B alone; C unused
    assert summary["aji_plus"] == pytest.approx(12 / (32 + 20 - 12))
    assert summary["segpc_miou"] == pytest.approx((0.6 + 0) / 2)
    assert summary["glas_f1"] == pytest.approx(2 / (2 + 1 + 1))  # A' covers 12/16 of A; C is false
    dice_a = 2 * 12 / 32
    assert summary["object_dice"] == pytest.approx(((16 * dice_a + 4 * 0) / 20 + (16 * dice_a + 16 * 0) / 32) / 2)
    hd_c_a = math.hypot(13, 2)  # C (no overlap) to its Hausdorff-nearest truth object A: from A's (2, 5) to C's (15, 3)
    hd_b_a = math.hypot(8, 17)  # B to A': from A's (2, 3) to B's (10, 20)
    expected = ((16 * 1 + 4 * hd_c_a) / 20 + (16 * 1 + 16 * hd_b_a) / 32) / 2
    assert summary["object_hausdorff"] == pytest.approx(expected)


def test_identical_maps_score_perfectly():
    rows, summary = om.image_scores(TRUTH, TRUTH * 7)  # ids need not be the same
    assert all(r["ap"] == 1 and r["pq"] == 1 for r in rows)
    assert summary["aji"] == summary["aji_plus"] == summary["segpc_miou"] == summary["glas_f1"] == 1.0
    assert summary["object_dice"] == 1.0 and summary["object_hausdorff"] == 0.0


def test_nothing_on_either_side_is_nan():
    empty = np.zeros((5, 5), np.int32)
    rows, summary = om.image_scores(empty, empty)
    assert all(math.isnan(r[k]) for r in rows for k in ("precision", "recall", "f1", "ap", "pq", "sq"))
    assert all(r["tp"] == r["fp"] == r["fn"] == 0 for r in rows)
    assert all(math.isnan(v) for k, v in summary.items() if not k.startswith("n_"))
    assert all(v == 0 for k, v in summary.items() if k.startswith("n_"))


def test_nothing_predicted_scores_zero_and_caps_distances():
    rows, summary = om.image_scores(TRUTH, np.zeros_like(TRUTH))
    assert all(r["precision"] == r["recall"] == r["ap"] == r["pq"] == 0 for r in rows)
    assert summary["aji"] == summary["aji_plus"] == summary["segpc_miou"] == summary["glas_f1"] == 0
    assert summary["object_dice"] == 0 and summary["object_hausdorff"] == pytest.approx(math.hypot(20, 30))


def test_only_false_positives():
    rows, summary = om.image_scores(np.zeros_like(TRUTH), PREDICTION)
    assert all(r["precision"] == 0 and r["ap"] == 0 for r in rows)
    assert math.isnan(summary["segpc_miou"])  # no reference cell to score
    assert summary["aji"] == 0 and summary["object_dice"] == 0


def test_matching_maximises_pairs_when_iou_ties_at_one_half():
    truth = np.array([[1, 1]])
    prediction = np.array([[1, 2]])  # each half has IoU exactly 0.5 with the truth object
    assert len(Overlaps.of(truth, prediction).match(0.5)) == 1


def test_more_than_300_objects_and_ids_beyond_uint8():
    truth = np.zeros((100, 120), np.uint16)
    ids = np.arange(1, 401).reshape(20, 20)
    truth[:80, :100] = np.kron(ids, np.ones((4, 5), np.int64))[:80, :100]
    truth[::4, :] = 0  # separate the rows of objects
    prediction = np.where(truth > 0, truth.astype(np.int64) + 1000, 0)
    rows, summary = om.image_scores(truth, prediction)
    assert summary["n_true"] == summary["n_pred"] == 400
    assert all(r["tp"] == 400 and r["ap"] == 1 for r in rows)
    assert summary["aji"] == 1 and summary["object_hausdorff"] == 0


def test_pooled_scores_from_summed_counts():
    scores = om.threshold_scores(tp=3, fp=1, fn=2, sum_iou=2.4)
    assert scores["ap"] == pytest.approx(3 / 6) and scores["pq"] == pytest.approx(2.4 / 4.5)


def test_objects_on_both_sides_that_never_overlap():
    truth = squares((20, 30), [(2, 5, 2, 5)])
    prediction = squares((20, 30), [(2, 5, 12, 15)])  # same square, 10 columns to the right
    rows, summary = om.image_scores(truth, prediction)
    assert all((r["tp"], r["fp"], r["fn"]) == (0, 1, 1) for r in rows)
    assert summary["aji"] == summary["aji_plus"] == summary["object_dice"] == summary["glas_f1"] == 0
    assert summary["object_hausdorff"] == pytest.approx(10.0)  # each is the other's nearest object
