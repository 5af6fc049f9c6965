"""Small fixtures for the unit tests: the real params.yaml and tiny flights-like frames built inline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlpipe.config import Params, load_params

PARAMS_PATH = Path(__file__).parents[2] / "params.yaml"

CARRIERS = ["AA", "B6", "DL", "UA"]
ORIGINS = ["EWR", "JFK", "LGA"]
DESTS = ["ATL", "BOS", "LAX", "MIA", "ORD"]


def make_flights(n: int = 12, seed: int = 0, start: str = "2013-01-01 05:00") -> pd.DataFrame:
    """`n` flights one hour apart with every column params.yaml names (features, leakage, target, time)."""
    rng = np.random.default_rng(seed)
    time_hour = pd.date_range(start, periods=n, freq="h", tz="UTC")
    local = time_hour.tz_convert("America/New_York")
    distance = rng.integers(100, 2600, n).astype("float64")
    temp = rng.uniform(10, 60, n).round(1)
    wind_speed = rng.uniform(0, 30, n).round(2)
    # `late` depends on the features, so a model has something to learn.
    score = (distance / 2600) + (wind_speed / 30) + rng.normal(0, 0.3, n)
    return pd.DataFrame(
        {
            "time_hour": time_hour,
            "carrier": rng.choice(CARRIERS, n),
            "origin": rng.choice(ORIGINS, n),
            "dest": rng.choice(DESTS, n),
            "distance": distance,
            "hour": np.asarray(local.hour, dtype="int64"),
            "minute": rng.integers(0, 60, n).astype("int64"),
            "weekday": np.asarray(local.dayofweek, dtype="int64"),
            "month": np.asarray(local.month, dtype="int64"),
            "day": np.asarray(local.day, dtype="int64"),
            "temp": temp,
            "dewp": (temp - rng.uniform(0, 15, n)).round(1),
            "humid": rng.uniform(20, 100, n).round(2),
            "wind_dir": rng.integers(0, 36, n).astype("float64") * 10,
            "wind_speed": wind_speed,
            "precip": np.zeros(n),
            "pressure": rng.uniform(990, 1040, n).round(1),
            "visib": np.full(n, 10.0),
            "dep_time": rng.integers(500, 2300, n).astype("float64"),
            "dep_delay": rng.normal(5, 20, n).round(),
            "arr_time": rng.integers(500, 2359, n).astype("float64"),
            "arr_delay": rng.normal(5, 25, n).round(),
            "air_time": rng.integers(30, 360, n).astype("float64"),
            "tailnum": [f"N{100 + i}XX" for i in range(n)],
            "flight": rng.integers(1, 5000, n).astype("int64"),
            "late": (score > np.median(score)).astype("int64"),
        }
    )


@pytest.fixture(scope="session")
def params_path() -> Path:
    """The project's params.yaml, found from this file rather than the working directory."""
    return PARAMS_PATH


@pytest.fixture(scope="session")
def make_frame():
    """The builder of flights-like frames: `make_frame(n, seed=0, start=...)`."""
    return make_flights


@pytest.fixture(scope="session")
def params() -> Params:
    """The project's real params.yaml, validated."""
    return load_params(PARAMS_PATH)


@pytest.fixture
def params_dict() -> dict:
    """A fresh copy of params.yaml as the raw mapping, for building variants that must be refused."""
    import yaml

    return yaml.safe_load(PARAMS_PATH.read_text(encoding="utf-8"))


@pytest.fixture
def flights() -> pd.DataFrame:
    """A dozen clean flights."""
    return make_flights()


# Estimators small enough to fit in a unit test.
SMALL = {
    "hist_gradient_boosting": {"max_iter": 10, "max_leaf_nodes": 8, "min_samples_leaf": 10},
    "random_forest": {"n_estimators": 10, "max_depth": 4},
    "logistic_regression": {"max_iter": 200},
}


@pytest.fixture(scope="session")
def small_cfg(params):
    """train config of an estimator with SMALL hyperparams: small_cfg("random_forest")."""

    def cfg(estimator: str = "hist_gradient_boosting"):
        return params.train.model_copy(update={"estimator": estimator, "hyperparams": SMALL[estimator]})

    return cfg


@pytest.fixture(scope="module")
def xy(make_frame, params):
    from mlpipe.pipeline.features import select_features, target_vector

    df = make_frame(300, seed=1)
    return select_features(df, params.features), target_vector(df, params.dataset.target, params.task)


@pytest.fixture(scope="module")
def hgb(small_cfg, params, xy):
    from mlpipe.pipeline.train import fit_model

    X, y = xy
    return fit_model(small_cfg(), params.features, X, y, seed=params.seed, task="binary")
