"""Where every output lives under results/<dataset>/ (also used, with wildcards, by the Snakefile)."""

from __future__ import annotations

from pathlib import Path


class Layout:
    """Paths of one dataset's outputs. Arguments may be Snakemake wildcards such as "{arch}"."""

    def __init__(self, results: str | Path, dataset: str):
        self.root = Path(results) / dataset

    def _p(self, *parts) -> str:
        return str(self.root.joinpath(*map(str, parts)))

    @property
    def demo_annotations(self) -> str:
        return self._p("demo_input", "annotations")

    @property
    def demo_metadata(self) -> str:
        return self._p("demo_input", "cell_types.csv")

    @property
    def weights_cache(self) -> str:
        """Pretrained encoder weights, fetched once on the submitting host (shared by all datasets)."""
        return str(self.root.parent / "weights")

    def weights_marker(self, encoder, weights) -> str:
        return str(self.root.parent / "weights" / f"{encoder}.{weights}.ready")

    @property
    def validation(self) -> str:
        return self._p("validation.txt")

    @property
    def data(self) -> str:
        return self._p("data")

    @property
    def manifest(self) -> str:
        return self._p("data", "manifest.parquet")

    @property
    def splits(self) -> str:
        return self._p("splits.parquet")

    @property
    def augmented(self) -> str:
        return self._p("augmented")

    def model_dir(self, arch, fold) -> str:
        return self._p("models", arch, f"fold{fold}")

    def checkpoint(self, arch, fold) -> str:
        return self._p("models", arch, f"fold{fold}", "model.pt")

    def resume_dir(self, arch, fold) -> str:
        """Resumable training state: outside the job's outputs, which Snakemake removes on failure."""
        return self._p("resume", arch, f"fold{fold}")

    def history(self, arch, fold) -> str:
        return self._p("models", arch, f"fold{fold}", "history.parquet")

    def predictions(self, arch, fold) -> str:
        return self._p("predictions", arch, f"fold{fold}")

    def labelme_export(self, arch) -> str:
        return self._p("labelme", arch)

    def fold_metrics(self, arch, fold) -> str:
        return self._p("metrics", arch, f"fold{fold}.parquet")

    def fold_instance_metrics(self, arch, fold) -> str:
        return self._p("instance_metrics", arch, f"fold{fold}.parquet")

    def fold_object_metrics(self, arch, fold) -> str:
        return self._p("object_metrics", arch, f"fold{fold}.parquet")

    @property
    def reference_cells(self) -> str:
        return self._p("cells", "reference.parquet")

    def fold_cells(self, arch, fold) -> str:
        return self._p("cells", arch, f"fold{fold}.parquet")

    @property
    def cells(self) -> str:
        return self._p("cells.parquet")

    @property
    def fidelity(self) -> str:
        return self._p("fidelity.parquet")

    @property
    def cells_by_type(self) -> str:
        return self._p("cells_by_type.parquet")

    @property
    def metrics(self) -> str:
        return self._p("metrics.parquet")

    @property
    def instance_metrics(self) -> str:
        return self._p("instance_metrics.parquet")

    @property
    def object_metrics(self) -> str:
        return self._p("object_metrics.parquet")

    @property
    def instance_summary(self) -> str:
        return self._p("instance_summary.parquet")

    @property
    def stats(self) -> str:
        return self._p("stats.parquet")

    @property
    def summary(self) -> str:
        return self._p("summary.parquet")

    @property
    def calibration(self) -> str:
        return self._p("calibration.parquet")

    @property
    def cost(self) -> str:
        return self._p("cost.parquet")

    def budget_model_dir(self, fraction, arch, fold) -> str:
        """A model of the annotation budget (train.fractions): trained on ``fraction`` of the fold's
        training groups."""
        return self._p("budget", fraction, "models", arch, f"fold{fold}")

    def budget_checkpoint(self, fraction, arch, fold) -> str:
        return self._p("budget", fraction, "models", arch, f"fold{fold}", "model.pt")

    def budget_history(self, fraction, arch, fold) -> str:
        return self._p("budget", fraction, "models", arch, f"fold{fold}", "history.parquet")

    def budget_resume_dir(self, fraction, arch, fold) -> str:
        return self._p("resume", "budget", fraction, arch, f"fold{fold}")

    def budget_predictions(self, fraction, arch, fold) -> str:
        return self._p("budget", fraction, "predictions", arch, f"fold{fold}")

    def budget_metrics(self, fraction, arch, fold, table="metrics") -> str:
        """One of the fold's three score tables (metrics, instance_metrics, object_metrics)."""
        return self._p("budget", fraction, table, arch, f"fold{fold}.parquet")

    @property
    def learning_curve(self) -> str:
        return self._p("learning_curve.parquet")

    def infer(self, name) -> str:
        return self._p("infer", name)

    def export(self, arch, fmt) -> str:
        """The fold ensemble of ``arch`` (or ``best``) as ``fmt`` files (cellbench export)."""
        return self._p("export", arch, fmt)

    @property
    def report(self) -> str:
        return self._p("report")

    def benchmark(self, step, *names) -> str:
        return self._p("benchmarks", step, *names) + ".tsv"

    def log(self, step, *names) -> str:
        return self._p("logs", step, *names) + ".log"

    @property
    def run_info(self) -> str:
        return self._p("run_info")
