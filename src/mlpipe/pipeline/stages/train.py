"""Stage `train`: seeded fit on the train split -> model.skops + manifest.json."""

from __future__ import annotations

import json

from mlpipe.config import PARAMS_FILE, Params, ProjectPaths, params_hash, read_params_dict
from mlpipe.data.frames import read_frame
from mlpipe.model.artifact import derive_trusted_types, dump_model, file_types
from mlpipe.model.manifest import build_manifest
from mlpipe.model.outputs import classes_of
from mlpipe.pipeline.features import select_features, target_vector
from mlpipe.pipeline.stages import stage_main, write_json
from mlpipe.pipeline.train import fit_model
from mlpipe.runtime.logs import event

TRAIN_SEED_OFFSET = 2


def train_model(params: Params, paths: ProjectPaths) -> None:
    train = read_frame(paths.train_split, columns=[*params.features.columns, params.dataset.target])
    split_record = json.loads(paths.split_record.read_text())
    X = select_features(train, params.features)
    y = target_vector(train, params.dataset.target, params.task)
    seed = params.seed + TRAIN_SEED_OFFSET
    positive = params.dataset.positive_class
    model = fit_model(params.train, params.features, X, y, seed, params.task, positive)
    sha = dump_model(model, paths.model)
    types = derive_trusted_types(file_types(paths.model), params.train.trusted_types, "train.estimator")
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
        estimator=params.train.estimator,
        task=params.task,
        classes=classes_of(model),
        trusted_types=types,
        user_trusted_types=params.train.trusted_types,
    )
    write_json(paths.manifest, manifest)
    event("model_written", rows=len(X), features=X.shape[1], sha256=sha, bytes=paths.model.stat().st_size)


def main() -> int:
    return stage_main("train", train_model)


if __name__ == "__main__":
    raise SystemExit(main())
