"""The report of a run: figures (figures.py), tables (tables.py), the protocol in words
(protocol.py), put together by make.make_report. This module only names the outputs, so that the
workflow can declare them without importing matplotlib."""

FIGURES = ("dice_by_architecture.png", "dice_by_class.png", "training_curves.png", "overlays.png")
TABLES = ("model_comparison.md", "model_comparison.html")
