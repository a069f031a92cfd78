import numpy as np
import pytest

from cellbench.classmaps import sequential
from cellbench.evaluation import matching
from cellbench.evaluation.matching import Overlaps


def random_instances(rng, top_id, shape=(30, 40)):
    """An instance map with a few ids below ``top_id`` (so many ids are missing), 0 = background."""
    ids = rng.choice(np.arange(1, top_id + 1), size=min(8, top_id), replace=False)
    return np.where(rng.random(shape) < 0.3, 0, rng.choice(ids, shape)).astype(np.uint16)


def assert_same(a: Overlaps, b: Overlaps):
    for field in ("area_true", "area_pred", "pairs_true", "pairs_pred", "intersection", "iou"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


@pytest.mark.parametrize("top_id", [1, 8, 40, 5000])  # 5000 x 5000 ids: too many for a dense table
def test_relabelled_equals_relabelling_then_counting(top_id):
    rng = np.random.default_rng(top_id)
    truth, prediction = random_instances(rng, top_id), random_instances(rng, top_id)
    got_truth, got_prediction, got = Overlaps.relabelled(truth, prediction)
    (seq_truth, n_true), (seq_prediction, n_pred) = sequential(truth), sequential(prediction)
    np.testing.assert_array_equal(got_truth, seq_truth)
    np.testing.assert_array_equal(got_prediction, seq_prediction)
    assert got_truth.dtype == got_prediction.dtype == np.int32
    assert_same(got, Overlaps.of_sequential(seq_truth, n_true, seq_prediction, n_pred))
    # by hand: every overlapping pair's pixel count
    for t, p, count in zip(got.pairs_true, got.pairs_pred, got.intersection, strict=True):
        assert count == np.sum((seq_truth == t + 1) & (seq_prediction == p + 1)) > 0


def test_dense_table_limit_is_used(monkeypatch):
    rng = np.random.default_rng(1)
    truth, prediction = random_instances(rng, 40), random_instances(rng, 40)
    dense = Overlaps.relabelled(truth, prediction)[2]
    monkeypatch.setattr(matching, "DENSE_TABLE", 1)
    assert_same(Overlaps.relabelled(truth, prediction)[2], dense)


def test_empty_and_background_only_maps():
    _, _, nothing = Overlaps.relabelled(np.zeros((4, 5), np.int32), np.zeros((4, 5), np.int32))
    assert nothing.n_true == nothing.n_pred == 0 and len(nothing.iou) == 0
    _, _, empty = Overlaps.relabelled(np.zeros((0, 5), np.int32), np.zeros((0, 5), np.int32))
    assert empty.n_true == empty.n_pred == 0


def test_bad_maps_are_refused():
    with pytest.raises(ValueError, match="negative"):
        Overlaps.relabelled(np.array([[-1, 2]]), np.array([[0, 1]]))
    with pytest.raises(ValueError, match="differ in shape"):
        Overlaps.relabelled(np.zeros((2, 2), int), np.zeros((2, 3), int))
