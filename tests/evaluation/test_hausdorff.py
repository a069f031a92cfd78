import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import directed_hausdorff

from cellbench.evaluation.hausdorff import STEPS, Outlines, hausdorff, nearest, outline_masks


def brute_force(a_mask, b_mask) -> float:
    ca, cb = np.argwhere(a_mask), np.argwhere(b_mask)
    return max(directed_hausdorff(ca, cb)[0], directed_hausdorff(cb, ca)[0])


def random_objects(rng, shape=(40, 50)):
    """Touching, ragged, sometimes disconnected objects: connected components of noise, some merged."""
    labels, n = ndimage.label(rng.random(shape) < rng.uniform(0.3, 0.7))
    merged = np.arange(n + 1)
    merged[1:] = rng.integers(1, max(n // 2, 1) + 1, n)  # several components may share one id
    labels = merged[labels]
    present = np.unique(labels[labels > 0])
    table = np.zeros(labels.max() + 1, dtype=np.int32)
    table[present] = np.arange(1, len(present) + 1)
    return table[labels], len(present)


def test_outlines_of_a_square():
    labels = np.zeros((8, 8), dtype=np.int32)
    labels[2:6, 2:6] = 1
    surface, rim = outline_masks(labels)
    assert surface.sum() == 12 and rim.sum() == 12  # a 4 x 4 square: its 12 outline pixels
    labels[2:6, 4:6] = 2  # two touching 4 x 2 halves: every pixel touches the other half or outside
    surface, rim = outline_masks(labels)
    assert surface.sum() == rim.sum() == 16


def test_pairs_match_scipy_on_random_objects():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(60):
        a, na = random_objects(rng)
        b, nb = random_objects(rng)
        if not na or not nb:
            continue
        a_ids, b_ids = rng.integers(1, na + 1, 12), rng.integers(1, nb + 1, 12)  # ids repeat across pairs
        got = hausdorff(Outlines(a, na), Outlines(b, nb), a_ids, b_ids)
        expected = [brute_force(a == i, b == j) for i, j in zip(a_ids, b_ids, strict=True)]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
        checked += len(a_ids)
    assert checked > 500


def test_farthest_pixel_inside_the_object():
    """A disc and a ring on its edge: the disc's farthest pixel is its centre, off every outline."""
    r = np.hypot(*np.ogrid[-40:41, -40:41])
    disc, ring = (r < 30).astype(np.int32), ((r >= 20) & (r < 30)).astype(np.int32)
    assert hausdorff(Outlines(disc, 1), Outlines(ring, 1), [1], [1])[0] == pytest.approx(20.0)
    assert brute_force(disc > 0, ring > 0) == pytest.approx(20.0)


def test_identical_objects_are_zero_apart():
    rng = np.random.default_rng(1)
    labels, n = random_objects(rng)
    ids = np.arange(1, n + 1)
    assert not hausdorff(Outlines(labels, n), Outlines(labels, n), ids, ids).any()


def test_nearest_is_the_smallest_over_all_objects():
    rng = np.random.default_rng(2)
    for _ in range(10):
        a, na = random_objects(rng, (30, 60))
        b, nb = random_objects(rng, (30, 60))
        if not na or not nb:
            continue
        got = nearest(Outlines(a, na), Outlines(b, nb), np.arange(1, na + 1))
        # every pair from distance maps, as GlaS's own code does it (bwdist)
        to_a = [ndimage.distance_transform_edt(a != i) for i in range(1, na + 1)]
        to_b = [ndimage.distance_transform_edt(b != j) for j in range(1, nb + 1)]
        expected = [min(max(to_b[j - 1][a == i].max(), to_a[i - 1][b == j].max()) for j in range(1, nb + 1))
                    for i in range(1, na + 1)]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_hull_gaps_are_the_shrunk_octagon_less_the_object():
    rng = np.random.default_rng(3)
    for _ in range(40):
        labels, n = random_objects(rng, (int(rng.integers(3, 40)), int(rng.integers(3, 40))))
        if not n:
            continue
        outlines = Outlines(labels, n)
        points, start = outlines.hull_gaps
        rows, cols = np.indices(labels.shape)
        projections = np.stack([rows * dr + cols * dc for dr, dc in STEPS], axis=-1)  # x.s for every pixel
        for k in range(1, n + 1):
            in_hull = (projections <= outlines.support[k - 1] - 1).all(axis=-1)
            expected = np.argwhere(in_hull & (labels != k))
            got = points[start[k - 1]:start[k]]
            assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, expected.tolist()))


def test_large_shifted_discs_match_scipy():
    """Big smooth objects, where most points are skipped by the tile bound: still exact."""
    rng = np.random.default_rng(4)
    yy, xx = np.ogrid[:200, :200]
    for _ in range(6):
        truth = np.zeros((200, 200), np.int32)
        moved = np.zeros((200, 200), np.int32)
        for k, (cy, cx) in enumerate([(55, 55), (55, 145), (145, 100)], start=1):
            radius = rng.uniform(25, 42)
            truth[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] = k
            dy, dx, grow = rng.normal(0, 5, 3)
            moved[(yy - cy - dy) ** 2 + (xx - cx - dx) ** 2 <= (radius + grow) ** 2] = k
        ids = np.arange(1, 4)
        got = hausdorff(Outlines(truth, 3), Outlines(moved, 3), ids, ids)
        np.testing.assert_allclose(got, [brute_force(truth == k, moved == k) for k in ids], rtol=0, atol=1e-9)
