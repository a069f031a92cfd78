"""The dataset stage: ingest (annotations -> images, class and instance maps, manifest), the
accessor every later step reads it through, copies of one image, folds, and the demo generator."""

from cellbench.dataset.ingested import Dataset

__all__ = ["Dataset"]
