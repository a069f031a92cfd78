"""cellbench: reproducible K-fold benchmarks of cell segmentation architectures."""

__version__ = "0.1.0"
