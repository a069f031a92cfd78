import pytest
import torch

from cellbench.inference import tta


@pytest.mark.parametrize("choice", tta.CHOICES)
def test_each_transform_and_its_inverse_give_the_identity(choice):
    x = torch.rand(2, 3, 24, 40, generator=torch.Generator().manual_seed(1))  # not square: rotations swap sides
    for transform in tta.transforms(choice):
        seen = transform.apply(x)
        assert torch.equal(transform.invert(seen), x), transform.name


def test_the_views_are_the_symmetries_of_the_square():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    views = {choice: {tuple(t.apply(x).flatten().tolist()) for t in tta.transforms(choice)} for choice in tta.CHOICES}
    assert [len(views[c]) for c in tta.CHOICES] == [1, 4, 8]
    assert views["none"] < views["flips"] < views["d4"]
    flips = {tuple(torch.flip(x, dims).flatten().tolist()) for dims in [(), (-1,), (-2,), (-2, -1)]}
    assert views["flips"] == flips


def test_an_unknown_choice_is_refused():
    with pytest.raises(ValueError, match="tta must be one of none, flips, d4"):
        tta.transforms("d8")
