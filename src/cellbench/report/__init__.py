"""The report of a run: figures (figures.py), tables (tables.py), the protocol in words
(protocol.py), put together by make.make_report. This module only names the outputs, so that the
workflow can declare them without importing matplotlib."""

FIGURES = ("dice_by_architecture.png", "dice_by_class.png", "training_curves.png", "overlays.png",
           "dice_by_stratum.png", "worst_cases.png", "error_types.png", "calibration.png")
TABLES = ("model_comparison.md", "model_comparison.html", "index.html")
# the measurement pages (report rule `report_measurements`, cellbench.report.measurements)
MEASUREMENT_FIGURES = ("cell_features_by_type.png", "bland_altman.png")
MEASUREMENT_TABLES = ("measurement_fidelity.md", "measurement_fidelity.html", "cell_features_by_type.md",
                      "cell_features_by_type.html")
# the cost page (report rule `cost`, cellbench.report.cost)
COST_FIGURES = ("cost_accuracy.png",)
