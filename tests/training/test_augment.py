import numpy as np
import pytest

from cellbench.training import augment


def test_sixteen_variants_rotations_of_image_and_mirror():
    specs = augment.variant_specs(8, True)
    assert len(specs) == 16 and specs[0] == (0.0, False)
    assert sorted({a for a, _ in specs}) == [0, 45, 90, 135, 180, 225, 270, 315]
    assert sum(f for _, f in specs) == 8


def test_right_angles_are_exact_and_masks_stay_labels():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = rng.integers(0, 3, (32, 32), dtype=np.uint8)
    same_image, same_mask = augment.transform(image, mask, 0, False)
    assert np.array_equal(same_image, image) and np.array_equal(same_mask, mask)
    rotated_image, rotated_mask = augment.transform(image, mask, 90, True)
    assert np.array_equal(rotated_mask, np.rot90(mask[:, ::-1]))
    assert np.array_equal(rotated_image, np.rot90(image[:, ::-1]))
    _, oblique = augment.transform(image, mask, 45, False)
    assert set(np.unique(oblique)) <= {0, 1, 2}  # nearest neighbour: no blended labels


@pytest.mark.parametrize("rotations, flip, n", [(1, False, 1), (4, False, 4), (8, True, 16)])
def test_variant_counts(rotations, flip, n):
    assert len(augment.variant_specs(rotations, flip)) == n


def test_variants_carry_instance_maps_one_id_per_connected_piece(demo_data, tmp_path):
    from skimage.measure import label

    from cellbench.dataset import Dataset
    from cellbench.training.variants import VariantStore

    augment.augment(demo_data, tmp_path / "aug", rotations=4, flip=True)
    store = VariantStore(tmp_path / "aug")
    data = Dataset(demo_data)
    first = data.ids[0]
    rows = store.variants_of([first])
    original = data.instances(first)
    assert np.array_equal(store.instances(int(rows[0])) > 0, original > 0)  # the 0-degree variant
    assert store.instances(int(rows[0])).max() == label(original, background=0, connectivity=1).max()
    for row in rows:
        pieces = store.instances(int(row))
        _, mask = store.get(int(row))
        assert pieces.shape == mask.shape and pieces.dtype == np.int32
        assert np.array_equal(label(pieces, background=0, connectivity=1), pieces)  # each id one piece
        assert not (pieces[mask == 0] > 0).any()  # no instance on background
