"""The class-map contract: uint8 values 0..C-1 in `classes` order (0 = background), plus one
ignore value for regions that neither the loss nor the metrics look at (LabelMe's `__ignore__`)."""

IGNORE_INDEX = 255
IGNORE_LABEL = "__ignore__"
