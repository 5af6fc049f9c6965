"""Stage `evaluate`: test metrics -> metrics.json, predictions, DVC plot data and PNG plots."""

from __future__ import annotations

from mlpipe.config import Params, ProjectPaths
from mlpipe.data.frames import read_frame, write_frame
from mlpipe.model.artifact import load_model_file
from mlpipe.pipeline.evaluate import (
    compute_metrics,
    positive_proba,
    prediction_table,
    predictions_sha256,
    roc_table,
    save_plot_images,
)
from mlpipe.pipeline.features import select_features, target_vector
from mlpipe.pipeline.stages import stage_main, write_json
from mlpipe.runtime.logs import event


def evaluate_model(params: Params, paths: ProjectPaths) -> None:
    test = read_frame(paths.test_split, columns=[*params.features.columns, params.dataset.target])
    model = load_model_file(paths.model)
    X = select_features(test, params.features)
    y = target_vector(test, params.dataset.target).to_numpy()
    proba = positive_proba(model, X)
    threshold = params.evaluate.threshold
    metrics = compute_metrics(y, proba, threshold)
    table = prediction_table(y, proba, threshold)
    write_frame(table, paths.predictions)
    paths.plots.mkdir(parents=True, exist_ok=True)
    table[["actual", "predicted"]].to_csv(paths.plots / "confusion.csv", index=False)
    roc_table(y, proba).to_csv(paths.plots / "roc.csv", index=False)
    save_plot_images(y, proba, threshold, paths.plots)
    write_json(paths.metrics, metrics)
    write_json(
        paths.predictions_record,
        {"predictions_sha256": predictions_sha256(proba), "rows": len(y), "threshold": threshold},
    )
    event("evaluated", rows=len(y), roc_auc=metrics["roc_auc"], f1=metrics["f1"])


def main() -> int:
    return stage_main("evaluate", evaluate_model)


if __name__ == "__main__":
    raise SystemExit(main())
