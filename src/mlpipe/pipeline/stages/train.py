"""Stage `train`: seeded fit on the train split -> model.skops + manifest.json (+ selection.json when
train.estimator auto chose the estimator)."""

from __future__ import annotations

import json

from mlpipe.config import AUTO_ESTIMATOR, PARAMS_FILE, Params, ProjectPaths, params_hash, read_params_dict
from mlpipe.data.frames import read_frame
from mlpipe.model.artifact import derive_trusted_types, dump_model
from mlpipe.model.manifest import build_manifest
from mlpipe.model.outputs import classes_of
from mlpipe.pipeline.features import select_features, target_vector
from mlpipe.pipeline.selection import Selection, choose_estimator, chosen_cfg, manifest_selection
from mlpipe.pipeline.stages import stage_main, write_json
from mlpipe.pipeline.train import fit_model
from mlpipe.runtime.logs import event


def train_model(params: Params, paths: ProjectPaths) -> None:
    auto = params.train.estimator == AUTO_ESTIMATOR
    # auto carves its validation part the way the split stage cut: by time, when it did
    columns = [*params.features.columns, params.dataset.target, *(params.time_columns if auto else [])]
    train = read_frame(paths.train_split, columns=columns)
    split_record = json.loads(paths.split_record.read_text())
    X = select_features(train, params.features)
    y = target_vector(train, params.dataset.target, params.task)
    seed = params.seed_for("train")
    positive = params.dataset.positive_class
    selection = choose_estimator(params, train, seed) if auto else None
    cfg = chosen_cfg(params.train, selection)
    model = fit_model(cfg, params.features, X, y, seed, params.task, positive)
    sha = dump_model(model, paths.model)
    types = derive_trusted_types(paths.model, params.train.trusted_types, "train.estimator")
    raw = read_params_dict(paths.root / PARAMS_FILE)
    manifest = build_manifest(
        model_sha256=sha,
        seed=seed,
        params_hash=params_hash(
            {k: raw[k] for k in ("seed", "features", "train")}
            | {"target": params.dataset.target}
            | ({"task": params.task} if params.task != "binary" else {})
            | ({"positive_class": positive} if positive is not None else {})
        ),
        data_md5=split_record["data_md5"],
        train_sha256=split_record["parts"]["train"]["sha256"],
        features=params.features,
        target=params.dataset.target,
        estimator=cfg.estimator,
        task=params.task,
        classes=classes_of(model),
        trusted_types=types,
        user_trusted_types=params.train.trusted_types,
        selection=manifest_selection(selection.record) if selection else None,
    )
    write_json(paths.manifest, manifest)
    record_selection(paths, selection, sha)
    event("model_written", rows=len(X), features=X.shape[1], sha256=sha, bytes=paths.model.stat().st_size)


def record_selection(paths: ProjectPaths, selection: Selection | None, model_sha256: str) -> None:
    """auto's record beside the model, and its candidates' fit seconds apart from it (they vary run to run:
    in the model directory they would change its md5, which `mlpipe reproduce` compares), tied to the model
    they were measured for. A named estimator leaves neither (a stale one is removed)."""
    if selection is None:
        for stale in (paths.selection, paths.selection_fit_seconds):
            stale.unlink(missing_ok=True)
        return
    write_json(paths.selection, selection.record)
    write_json(paths.selection_fit_seconds, {"model_sha256": model_sha256, "fit_s": selection.fit_seconds})
    event("estimator_chosen", winner=selection.winner, reason=selection.record["reason"])


BODY = train_model  # what the runner calls in process (pipeline.runner), and `main` as DVC's command


def main() -> int:
    return stage_main("train", BODY)


if __name__ == "__main__":
    raise SystemExit(main())
