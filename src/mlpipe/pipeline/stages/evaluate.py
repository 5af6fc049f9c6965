"""Stage `evaluate`: the task's test metrics -> metrics.json, predictions, DVC plot data and PNG plots."""

from __future__ import annotations

from mlpipe.config import Params, ProjectPaths
from mlpipe.data.frames import read_frame, write_frame
from mlpipe.model.artifact import load_model_file
from mlpipe.model.outputs import classes_of, scores
from mlpipe.pipeline.evaluate import (
    baseline_metrics,
    metrics_for,
    predictions_sha256,
    save_task_plots,
    task_prediction_table,
)
from mlpipe.pipeline.features import select_features, target_vector
from mlpipe.pipeline.stages import stage_main, write_json
from mlpipe.runtime.logs import event


def evaluate_model(params: Params, paths: ProjectPaths) -> None:
    test = read_frame(paths.test_split, columns=[*params.features.columns, params.dataset.target])
    model = load_model_file(paths.model, params.train.trusted_types)
    X = select_features(test, params.features)
    target = {"target": params.dataset.target, "task": params.task}
    y = target_vector(test, **target).to_numpy()
    out = scores(model, X)
    classes = classes_of(model)
    threshold = params.evaluate.threshold
    metrics = metrics_for(params.task, y, out, threshold, classes)
    # the trivial model (the train split's prior / mean) on the same rows, beside the model's own metrics
    y_train = target_vector(read_frame(paths.train_split, columns=[params.dataset.target]), **target)
    metrics |= baseline_metrics(params.task, y_train.to_numpy(), y, threshold, classes)
    table = task_prediction_table(params.task, y, out, threshold, classes)
    write_frame(table, paths.predictions)
    save_task_plots(params.task, table, y, out, threshold, classes, paths.plots)
    write_json(paths.metrics, metrics)
    write_json(
        paths.predictions_record,
        {"predictions_sha256": predictions_sha256(out), "rows": len(y), "threshold": threshold},
    )
    headline = {k: metrics[k] for k in params.headline[:2] if k in metrics}
    event("evaluated", rows=len(y), **headline)


BODY = evaluate_model  # what the runner calls in process (pipeline.runner), and `main` as DVC's command


def main() -> int:
    return stage_main("evaluate", BODY)


if __name__ == "__main__":
    raise SystemExit(main())
