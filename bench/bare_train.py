"""Bare baseline: the same estimator fitted on the same files by a plain script (no DVC, no MLflow,
no validation, no mlpipe). Prints the seconds it spent after imports and the test AUC.
With --pinned the native thread pools are limited to params.yaml's train.n_jobs, as mlpipe's train
stage fits (without it OpenMP takes every core: faster on an idle machine, and many times slower on a
busy one, where its threads wait for each other).
Usage: python bench/bare_train.py PROJECT_ROOT [--pinned]"""

import sys
import time
from pathlib import Path

t0 = time.perf_counter()
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OrdinalEncoder  # noqa: E402

root = Path(sys.argv[1])
p = yaml.safe_load((root / "params.yaml").read_text())
df = pd.concat([pd.read_parquet(f) for f in sorted((root / "data").glob("*.parquet"))], ignore_index=True)
df = df.sort_values(p["dataset"]["time_column"], kind="mergesort")
cut = df[p["dataset"]["time_column"]].iloc[int(len(df) * (1 - p["split"]["test_fraction"]))]
train, test = df[df.time_hour < cut], df[df.time_hour >= cut]
cat, num = p["features"]["categorical"], p["features"]["numerical"]
model = Pipeline(
    [
        (
            "pre",
            ColumnTransformer(
                [
                    (
                        "cat",
                        OrdinalEncoder(
                            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
                        ),
                        cat,
                    )
                ],
                remainder="passthrough",
            ),
        ),
        (
            "model",
            HistGradientBoostingClassifier(
                categorical_features=list(range(len(cat))),
                random_state=p["seed"] + 2,  # as mlpipe.pipeline.stages.train: seed + k per step
                **p["train"]["hyperparams"],
            ),
        ),
    ]
)
if "--pinned" in sys.argv[2:]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=p["train"]["n_jobs"]):
        model.fit(train[cat + num], train[p["dataset"]["target"]])
else:
    model.fit(train[cat + num], train[p["dataset"]["target"]])
auc = roc_auc_score(test[p["dataset"]["target"]], model.predict_proba(test[cat + num])[:, 1])
print(f"{time.perf_counter() - t0:.3f} {auc:.6f}")
