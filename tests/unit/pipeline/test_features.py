"""Features: the model sees exactly the configured columns, in config order and type, and never a
leaky one."""

from __future__ import annotations

import pandas as pd
import pytest

from mlpipe.config import FeaturesCfg
from mlpipe.pipeline.features import select_features, target_vector


def test_only_configured_columns_are_kept_in_config_order(flights, params):
    shuffled = flights[list(reversed(flights.columns))]
    X = select_features(shuffled, params.features)
    assert list(X.columns) == params.features.columns
    assert list(X.columns) == [
        "carrier",
        "origin",
        "dest",
        "distance",
        "hour",
        "minute",
        "weekday",
        "temp",
        "dewp",
        "humid",
        "wind_dir",
        "wind_speed",
        "precip",
        "pressure",
        "visib",
    ]


def test_leakage_columns_never_reach_the_model_even_when_present(flights, params):
    assert set(params.features.leakage) <= set(flights.columns)  # the input carries them all
    X = select_features(flights, params.features)
    assert not set(X.columns) & set(params.features.leakage)
    assert params.dataset.target not in X.columns
    assert params.dataset.time_column not in X.columns


def test_categoricals_are_objects_and_numbers_are_float64(flights, params):
    assert flights["hour"].dtype == "int64"  # integers in, floats out
    X = select_features(flights, params.features)
    for col in params.features.categorical:
        assert X[col].dtype == object
    for col in params.features.numerical:
        assert X[col].dtype == "float64"
    assert X["hour"].tolist() == flights["hour"].astype(float).tolist()


def test_missing_category_stays_missing_not_the_text_nan(flights, params):
    df = flights.copy()
    df.loc[0, "dest"] = None
    X = select_features(df, params.features)
    assert X.loc[0, "dest"] is None
    assert X.loc[1, "dest"] == flights.loc[1, "dest"]


def test_numbers_sent_as_text_are_converted(flights, params):
    df = flights.astype({"distance": str})
    X = select_features(df, params.features)
    assert X["distance"].tolist() == flights["distance"].tolist()


def test_text_that_is_not_a_number_is_refused(flights, params):
    df = flights.astype({"distance": object})
    df.loc[0, "distance"] = "far"
    with pytest.raises(ValueError, match="far"):
        select_features(df, params.features)


def test_missing_feature_columns_are_named(flights, params):
    with pytest.raises(KeyError) as info:
        select_features(flights.drop(columns=["temp", "origin"]), params.features)
    message = str(info.value)
    assert "'origin'" in message and "'temp'" in message
    assert "every configured feature is required" in message


def test_row_index_is_kept_so_predictions_line_up(flights, params):
    part = flights.iloc[[7, 2, 9]]
    X = select_features(part, params.features)
    assert X.index.tolist() == [7, 2, 9]


def test_selection_follows_the_config_it_is_given():
    cfg = FeaturesCfg(categorical=["b"], numerical=["a"], leakage=["c"])
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [9, 9]})
    X = select_features(df, cfg)
    assert list(X.columns) == ["b", "a"]
    assert X.to_dict("list") == {"b": ["x", "y"], "a": [1.0, 2.0]}


def test_target_is_integer_labels(flights):
    y = target_vector(flights.astype({"late": "float64"}), "late", "binary")
    assert y.dtype == "int64"
    assert set(y) <= {0, 1}
    assert y.tolist() == flights["late"].tolist()
