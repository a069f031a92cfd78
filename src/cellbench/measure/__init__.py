"""Per-cell measurements (shape and intensity of each cell, its nucleus and cytoplasm), their
summaries per cell type, and how faithfully each architecture measures what the expert's masks do."""
