"""The service's compiled scorer gives the pipeline's own scores, bit for bit, or is not used."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from mlpipe.config import FeaturesCfg
from mlpipe.model.outputs import mark_positive_class, scores
from mlpipe.pipeline.train import preprocessing
from mlpipe.serving.fast_scores import compile_scorer, probe_columns
from mlpipe.serving.predict import columns_of, model_scores
from mlpipe.serving.request_rules import RequestRules, judge_records
from mlpipe.serving.served import Served

FEATURES = FeaturesCfg(categorical=["carrier", "origin"], numerical=["distance", "temp", "wind"])
RULES = RequestRules(
    categorical={"carrier": frozenset({"AA", "B6", "UA"}), "origin": frozenset({"EWR", "JFK"})},
    numerical={"distance": (80.0, 4983.0), "temp": (-10.0, 100.0), "wind": (0.0, 40.0)},
    physical={},
    not_null=frozenset(),
)


def training_frame(n: int = 300, seed: int = 7) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "carrier": rng.choice(["AA", "B6", "UA", None], n),
            "origin": rng.choice(["EWR", "JFK"], n),
            "distance": rng.uniform(80, 4983, n),
            "temp": np.where(rng.random(n) < 0.1, np.nan, rng.uniform(-10, 100, n)),
            "wind": rng.uniform(0, 40, n),
        }
    )
    late = (frame["temp"].fillna(50) / 100 + rng.random(n) * 0.8 > 0.9).map({True: "late", False: "on time"})
    return frame, late


def fitted(kind: str, estimator) -> Pipeline:
    frame, y = training_frame()
    if isinstance(estimator, HistGradientBoostingRegressor):
        y = frame["distance"] / 100 + frame["wind"]
    return Pipeline([("preprocess", preprocessing(kind, FEATURES)), ("model", estimator)]).fit(frame, y)


REQUESTS = [
    {"carrier": "AA", "origin": "JFK", "distance": 1000.5, "temp": 20.25, "wind": 3.0},
    {"carrier": "ZZ", "origin": "EWR", "distance": 80.0, "temp": None, "wind": 40.0},  # unseen, null
    {"carrier": None, "origin": "JFK", "distance": 9000.0, "temp": -40.0, "wind": 0.0},  # outside the range
]


@pytest.mark.parametrize(
    ("kind", "estimator"),
    [
        ("native", HistGradientBoostingClassifier(categorical_features=[0, 1], max_iter=20, random_state=0)),
        ("native", HistGradientBoostingRegressor(categorical_features=[0, 1], max_iter=20, random_state=0)),
        ("tree", HistGradientBoostingClassifier(max_iter=20, random_state=0)),
        ("linear", LogisticRegression(max_iter=500)),
    ],
)
def test_the_compiled_scorer_answers_as_the_pipeline_bit_for_bit(kind, estimator):
    model = fitted(kind, estimator)
    scorer = compile_scorer(model, RULES)
    assert scorer is not None
    for records in (REQUESTS, REQUESTS[:1], REQUESTS * 50):
        verdict = judge_records(records, RULES)
        columns = verdict.columns if verdict.columns is not None else columns_of(records, RULES)
        frame = pd.DataFrame.from_records(records, columns=FEATURES.columns).astype(
            {c: "float64" for c in FEATURES.numerical}
        )
        assert np.array_equal(scorer(columns, len(records)), scores(model, frame))


def test_a_binary_model_scores_its_marked_positive_class():
    model = mark_positive_class(fitted("linear", LogisticRegression(max_iter=500)), "on time")
    scorer = compile_scorer(model, RULES)
    columns = columns_of(REQUESTS, RULES)
    frame = pd.DataFrame.from_records(REQUESTS, columns=FEATURES.columns).astype(
        {c: "float64" for c in FEATURES.numerical}
    )
    assert np.array_equal(scorer(columns, 3), scores(model, frame))


def test_a_step_it_does_not_know_leaves_the_pipeline_to_predict():
    frame, y = training_frame()
    frame["temp"] = frame["temp"].fillna(50.0)  # no imputer in this pipeline
    model = Pipeline(
        [
            ("preprocess", ColumnTransformer([("num", MinMaxScaler(), FEATURES.numerical)])),
            ("model", LogisticRegression(max_iter=500)),
        ]
    ).fit(frame, y)
    assert compile_scorer(model, RULES) is None
    served = Served(model, "m", "1", "r", {}, RULES, {}, "binary", ["late", "on time"], scorer=None)
    records = [REQUESTS[0], REQUESTS[2]]  # no null: this pipeline has no imputer
    got = model_scores(served, records, None, FEATURES.columns)
    assert np.array_equal(got, scores(model, pd.DataFrame.from_records(records, columns=FEATURES.columns)))


def test_a_model_that_is_not_a_pipeline_is_not_compiled():
    frame, y = training_frame()
    model = HistGradientBoostingClassifier(max_iter=5).fit(frame[FEATURES.numerical], y)
    assert compile_scorer(model, RULES) is None


def test_probe_rows_hold_every_category_an_unseen_one_nulls_and_the_range_edges():
    columns = probe_columns(RULES)
    assert {"AA", "B6", "UA", None} <= set(columns["carrier"])
    assert any(v not in RULES.categorical["carrier"] and v is not None for v in columns["carrier"])
    for name, (lo, hi) in RULES.numerical.items():
        values = columns[name]
        assert np.isnan(values).any()
        assert np.nanmin(values) < lo and np.nanmax(values) > hi


@pytest.mark.parametrize(
    "estimator",
    [
        HistGradientBoostingClassifier(categorical_features=[0, 1], max_iter=20, random_state=0),
        HistGradientBoostingRegressor(categorical_features=[0, 1], max_iter=20, random_state=0),
    ],
)
@pytest.mark.parametrize("classes", [2, 3])
def test_boosted_trees_are_walked_as_the_model_walks_them_bit_for_bit(estimator, classes):
    from mlpipe.serving.fast_scores import _boosted_trees

    frame, y = training_frame()
    if isinstance(estimator, HistGradientBoostingRegressor):
        y, task = frame["distance"] / 100 + frame["wind"], "regression"
    else:
        y, task = pd.Series(np.arange(len(frame)) % classes).where(y == "late", 0), "classification"
    model = Pipeline([("preprocess", preprocessing("native", FEATURES)), ("model", estimator)]).fit(frame, y)
    walk = _boosted_trees(model.steps[1][1], task)
    assert walk is not None, "a HistGradientBoosting model fitted on arrays is walked directly"
    probe = probe_columns(RULES, 64)
    x = model.steps[0][1].transform(pd.DataFrame({c: probe[c] for c in model.steps[0][1].feature_names_in_}))
    for rows in (slice(0, 64), slice(5, 6)):
        public = estimator.predict(x[rows]) if task == "regression" else estimator.predict_proba(x[rows])
        assert np.array_equal(walk(x[rows]), public, equal_nan=True)
