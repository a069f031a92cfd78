"""Test-time augmentation: the symmetries of the square (D4) an image is predicted under.

Each transform maps an (N, C, H, W) batch to the view the model sees, and its inverse maps the
model's output back onto the original pixel grid, so the views can be averaged. Cell images have
no preferred orientation, which is why the training variants are rotated and mirrored too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CHOICES = ("none", "flips", "d4")


@dataclass(frozen=True)
class Transform:
    """Rotation by ``quarter_turns`` x 90 degrees after an optional left-right mirror."""

    quarter_turns: int = 0
    mirror: bool = False

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.mirror:
            x = torch.flip(x, dims=(-1,))
        return torch.rot90(x, self.quarter_turns, dims=(-2, -1)) if self.quarter_turns else x

    def invert(self, y: torch.Tensor) -> torch.Tensor:
        if self.quarter_turns:
            y = torch.rot90(y, -self.quarter_turns, dims=(-2, -1))
        return torch.flip(y, dims=(-1,)) if self.mirror else y

    @property
    def name(self) -> str:
        return f"rot{90 * self.quarter_turns}" + ("_mirror" if self.mirror else "")


def transforms(choice: str) -> list[Transform]:
    """none: the image as is; flips: plus the left-right, up-down and both mirrors; d4: all eight
    rotations and mirrors. The identity comes first."""
    if choice == "none":
        return [Transform()]
    if choice == "flips":  # up-down = mirror then half turn; both = half turn
        return [Transform(), Transform(0, True), Transform(2, True), Transform(2, False)]
    if choice == "d4":
        return [Transform(k, m) for m in (False, True) for k in range(4)]
    raise ValueError(f"tta must be one of {', '.join(CHOICES)}, not {choice!r}")
