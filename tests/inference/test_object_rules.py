"""Object rules learned from training annotations: the smallest object kept, and objects drawn in pieces
(a lobed nucleus inside one cell) counted the same way in the reference and in the predictions."""

import numpy as np
import pytest

from cellbench.evaluation.scope import resolve
from cellbench.inference.object_rules import applied, learn, piece_gap
from cellbench.inference.objects import objects_of, truth_objects

CLASSES = ["background", "cytoplasm", "nucleus"]


def lobed_cell(class_map, instance_map, top, left, cell_id, lobes=3, gap=4):
    """A 30 x 40 cell whose nucleus is ``lobes`` 6 x 6 squares ``gap`` pixels apart (edge to edge)."""
    class_map[top:top + 30, left:left + 40] = 1
    instance_map[top:top + 30, left:left + 40] = cell_id
    for k in range(lobes):
        column = left + 4 + k * (6 + gap)
        class_map[top + 12:top + 18, column:column + 6] = 2


def annotated(n_lobed=2, n_round=2, size=(160, 200)):
    """One image: ``n_lobed`` cells with a three-piece nucleus, ``n_round`` with a one-piece nucleus."""
    class_map = np.zeros(size, np.uint8)
    instance_map = np.zeros(size, np.uint16)
    for k in range(n_lobed + n_round):
        top, left = 5 + 35 * (k // 4), 5 + 48 * (k % 4)
        lobed_cell(class_map, instance_map, top, left, k + 1, lobes=3 if k < n_lobed else 1)
    return class_map, instance_map


def types():
    return resolve(CLASSES, {"regions": {}}).object_indices()  # cell (nucleus-seeded) and nucleus


def test_piece_gap_is_the_distance_that_joins_every_piece():
    mask = np.zeros((10, 40), bool)
    mask[2:6, 0:5] = True
    assert piece_gap(mask) is None
    mask[2:6, 10:15] = True  # nearest pixel centres: columns 4 and 10
    mask[2:6, 30:35] = True  # nearest centres 14 and 30: the tree's longest edge
    assert piece_gap(mask) == pytest.approx(16.0)


def test_a_perfect_prediction_counts_what_the_annotations_count():
    """The annotations draw two of four cells with a nucleus in three pieces: one cell, one nucleus
    each. With the learned rules, the annotated class map read as a prediction gives exactly the
    annotated objects; without them each lobe would seed a cell of its own."""
    class_map, instance_map = annotated()
    rules = learn([(class_map, instance_map)], types(), min_size_fraction=0.5)
    assert rules["nucleus"]["join_gap"] == pytest.approx(5.0) and rules["cell"]["seed_gap"] == pytest.approx(5.0)
    assert rules["cell"]["join_gap"] == 0.0  # cells are drawn in one piece
    learned = applied(types(), rules)
    for name, kind in learned.items():
        reference = truth_objects(class_map, instance_map, kind["classes"])
        predicted = objects_of(class_map, kind)
        assert predicted.max() == reference.max() == 4, name
        for index in range(1, 5):  # the same pixels, object by object
            assert len(np.unique(reference[predicted == index])) == 1
    naive = {name: objects_of(class_map, kind).max() for name, kind in types().items()}
    assert naive == {"cell": 8, "nucleus": 8}  # the pieces counted: 2 x 3 + 2


def test_pieces_are_not_joined_when_the_annotations_have_none_or_when_asked_not_to():
    class_map, instance_map = annotated(n_lobed=0, n_round=4)
    assert learn([(class_map, instance_map)], types(), 0.5)["nucleus"]["join_gap"] == 0.0
    lobed = annotated()
    assert learn([lobed], types(), 0.5, join_pieces=False)["nucleus"]["join_gap"] == 0.0


def test_specks_smaller_than_the_learned_size_are_dropped_unless_the_type_sets_its_own():
    class_map, instance_map = annotated(n_lobed=0, n_round=4)
    rules = learn([(class_map, instance_map)], types(), min_size_fraction=0.5)
    assert rules["cell"]["min_size"] == 600  # half of every cell's 30 x 40
    assert rules["nucleus"]["min_size"] == 18  # half of 6 x 6
    noisy = class_map.copy()
    noisy[150, 10:13] = 1  # three 3-pixel specks of cytoplasm, one of nucleus
    noisy[150, 20:23] = 1
    noisy[150, 30:33] = 2
    learned = applied(types(), rules)
    assert objects_of(noisy, learned["cell"]).max() == 4 and objects_of(noisy, learned["nucleus"]).max() == 4
    own = resolve(CLASSES, {"regions": {}, "objects": {
        "cell": {"classes": ["cytoplasm", "nucleus"], "seed_class": "nucleus", "min_size": 0}}}).object_indices()
    assert applied(own, rules)["cell"]["min_size"] == 0  # written in the config: kept
    assert objects_of(noisy, applied(own, rules)["cell"]).max() == 7
