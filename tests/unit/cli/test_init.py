"""`mlpipe init` on a user's table: what it writes, and its refusals as one line each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from mlpipe.cli import main
from mlpipe.config import load_params


@pytest.fixture
def table(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame(
        {
            "id": np.arange(n),  # an identifier: excluded
            "site": rng.choice(["a", "b", "c"], n),
            "depth": rng.normal(10, 2, n).round(3),
            "reading": np.where(rng.random(n) < 0.05, np.nan, rng.normal(size=n)),
            "measured_at": pd.date_range("2020-01-01", periods=n, freq="6h", tz="UTC").astype(str),
        }
    )
    df["yield"] = (df["depth"] * 1.5 + rng.normal(size=n)).round(4)  # a float target: regression
    df.to_csv(tmp_path / "table.csv", index=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_float_target_with_a_classifier_task_is_refused_saying_why(table, capsys):
    code = main(["init", "--data", "table.csv", "--target", "yield", "--task", "binary", "--into", "p"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert "fractional values" in err and "task: regression" in err
    assert not (table / "p" / "params.yaml").exists()


def test_an_unknown_target_a_time_that_does_not_parse_and_no_file_are_refused(table, capsys):
    assert main(["init", "--data", "table.csv", "--target", "nope", "--into", "p"]) == 1
    assert "'nope'" in capsys.readouterr().err
    assert main(["init", "--data", "table.csv", "--target", "yield", "--time", "depth", "--into", "p"]) == 1
    assert "depth: 200 values do not parse as datetime" in capsys.readouterr().err
    assert main(["init", "--data", "missing*.csv", "--target", "yield", "--into", "p"]) == 1
    assert "matches no .csv or .parquet file" in capsys.readouterr().err


def test_init_writes_a_project_the_config_accepts(table, capsys):
    code = main(["init", "--data", "table.csv", "--target", "yield", "--time", "measured_at", "--into", "p"])
    out = capsys.readouterr().out
    assert code == 0, out
    params = load_params(table / "p" / "params.yaml")
    assert params.task == "regression" and params.dataset.time_column == "measured_at"
    assert params.dataset.path == str(table / "table.csv") and params.split.method == "time"
    assert "id" in params.features.leakage and "excluded 'id': an identifier" in out
    assert set(params.features.numerical) == {"depth", "reading"} and params.features.categorical == ["site"]
    assert params.monitor_metric == "r2" and params.tolerance == {"r2": 0.01}
    # the estimator is chosen on evidence at each training, and the file and the printout say so
    assert params.train.estimator == "auto" and params.train.hyperparams == {}
    text = (table / "p" / "params.yaml").read_text()
    assert "# train.estimator auto: " in text.split("\ntrain:\n")[0] and "  estimator: auto\n" in text
    assert "  estimator: auto (a linear model and hist_gradient_boosting compared on a validation" in out
    pipeline = yaml.safe_load((table / "p" / "dvc.yaml").read_text())
    assert list(pipeline["stages"]) == ["validate", "split", "train", "evaluate"]
    assert (table / "p" / ".dvc" / "config").exists() and (table / "p" / ".git").exists()
    assert main(["init", "--data", "table.csv", "--target", "yield", "--into", "p"]) == 1  # not twice


def test_init_profiles_only_the_initial_period_and_excludes_a_time_proxy(tmp_path, monkeypatch, capsys):
    """The hotel table's finding: a price range drawn from rows after --initial-end, and a decimal year kept
    as a feature. Rows after the initial period change neither the features nor the rules."""
    rng = np.random.default_rng(1)
    n = 600
    at = pd.Series(pd.date_range("2016-01-01", periods=n, freq="12h", tz="UTC"))
    df = pd.DataFrame(
        {
            "arrival": at.astype(str),
            "arrival_date_num": (at.dt.year + (at.dt.dayofyear - 1) / 366).round(4),
            "nights": rng.integers(0, 8, n),
            "hotel": rng.choice(["city", "resort"], n),
        }
    )
    df["price"] = (60 + 10 * df["nights"] + rng.normal(0, 5, n)).round(2)
    late = at >= pd.Timestamp("2016-06-01", tz="UTC")
    df.loc[late, "price"] += 500  # only after the initial period
    df.loc[late, "nights"] = -1  # a value the initial period never had
    df.to_csv(tmp_path / "hotel.csv", index=False)
    monkeypatch.chdir(tmp_path)
    args = ["init", "--data", "hotel.csv", "--target", "price", "--time", "arrival"]
    assert main([*args, "--initial-end", "2016-06-01", "--into", "p"]) == 0
    out = capsys.readouterr().out
    params = load_params(tmp_path / "p" / "params.yaml")
    assert "arrival_date_num" in params.features.leakage
    assert "excluded 'arrival_date_num': tracks the time column" in out
    assert params.features.numerical == ["nights"]
    # nights 0..7 and price ~60..140 in January-May: never negative, and no observed max becomes a limit
    assert params.validate_.ranges["nights"].min == 0 and params.validate_.ranges["nights"].max is None
    assert "price" not in params.validate_.ranges  # 50..140: no limit the profile can justify
    assert f"{int((~late).sum())} rows of 1 file(s)" in out and "(the only rows profiled)" in out
    assert main([*args, "--initial-end", "2010-01-01", "--into", "q"]) == 1
    assert "initial period" in capsys.readouterr().err and not (tmp_path / "q" / "params.yaml").exists()


@pytest.fixture
def loans(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    n = 200
    pd.DataFrame(
        {
            "amount": rng.uniform(1, 50, n).round(1),
            "purpose": rng.choice(["car", "home"], n),
            "status": np.where(np.arange(n) % 20 == 0, "bad", "good"),  # 5% bad
        }
    ).to_csv(tmp_path / "loans.csv", index=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_init_states_the_minority_class_as_positive_and_writes_it_where_dvc_tracks_it(loans, capsys):
    assert main(["init", "--data", "loans.csv", "--target", "status", "--into", "p"]) == 0
    out = capsys.readouterr().out
    assert (
        "positive class 'bad': the minority class (5.0% of rows); set dataset.positive_class to change" in out
    )
    assert load_params(loans / "p" / "params.yaml").dataset.positive_class == "bad"
    train = yaml.safe_load((loans / "p" / "dvc.yaml").read_text())["stages"]["train"]
    assert "dataset.positive_class" in train["params"]


def test_init_positive_sets_the_class_and_an_unknown_label_is_refused_naming_the_labels(loans, capsys):
    assert (
        main(["init", "--data", "loans.csv", "--target", "status", "--positive", "good", "--into", "p"]) == 0
    )
    assert load_params(loans / "p" / "params.yaml").dataset.positive_class == "good"
    assert "positive class 'good': given (95.0% of rows)" in capsys.readouterr().out
    code = main(
        ["init", "--data", "loans.csv", "--target", "status", "--positive", "defaulted", "--into", "q"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert "positive class 'defaulted': not a label of target 'status' (labels: bad, good" in err
    assert not (loans / "q" / "params.yaml").exists()
