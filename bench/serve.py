"""Benchmark: `mlpipe serve` against what a user would run instead, same model, same rows, same cores.

Peers, in one run, each server pinned with `taskset` to the same core(s) (`--server-cores`, default the
last CPU) and the client on the others (`--client-cores`):
- `bare`: in-process `scores(model, frame)` on ready frames, this process pinned to the server cores for the
  measurement (OpenMP threads = the cores given), the ceiling of any service;
- `service`: `mlpipe serve` (the champion; validation against the training profile and the durable
  prediction log included), `{"records": [...]}`;
- `fastapi`: the service a user writes by hand (`HANDWRITTEN` below): FastAPI + uvicorn, the model from
  `mlflow.sklearn.load_model`, records parsed into a DataFrame, predict_proba, answered; no validation, no
  log;
- `mlflow`: `mlflow models serve --env-manager local` of the same registered version (`dataframe_split`).
Each on two models: the bundled flights model (15 fields, 3 categorical) and a 30-numeric-field model
(sklearn's breast_cancer, `mlpipe init` + `mlpipe run` in the bench).

Figures per model: rows/s with one client on one keep-alive connection, requests back to back, at 1, 100 and
1k rows per request (interleaved rounds, median round; the machine is shared); single-row latency at a
paced rate (`--rate`, open loop, from each request's scheduled start, so a queue counts) for each server
and the bare predict paced the same way. Printed as ratios, service / each peer, against issue 33's aims:
>= 1.5x mlflow, >= 1.2x fastapi and >= 0.8x bare at 1k rows; single-row p99 <= 1.5x bare paced; >= 0.6x
bare on the 30-field model. Writes bench/results/serve.json (serve-quick.json with --quick).
Usage: python bench/serve.py [--quick] [--rounds N] [--seconds S] [--rate R] [--latency-s S] [--work DIR]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import make_project, report, timed  # noqa: E402

SIZES = (1, 100, 1000)
SERVERS = ("service", "fastapi", "mlflow")

# The hand-written peer: what a user puts around a model in a few minutes (no validation, no log).
HANDWRITTEN = """
import os
from typing import Any

import mlflow.sklearn
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

FEATURES = os.environ["BENCH_FEATURES"].split(",")
model = mlflow.sklearn.load_model(os.environ["BENCH_MODEL_URI"])
app = FastAPI()


class Request(BaseModel):
    records: list[dict[str, Any]]


@app.post("/predict")
def predict(request: Request):
    frame = pd.DataFrame(request.records, columns=FEATURES)
    proba = model.predict_proba(frame)
    return {
        "predictions": model.classes_[proba.argmax(axis=1)].tolist(),
        "probabilities": proba[:, 1].tolist(),
    }
"""


@dataclass
class Subject:
    """One model under test: its project, registered version, features and rows."""

    label: str
    root: Path
    name: str
    features: list[str]
    frame: pd.DataFrame = field(repr=False)
    records: list[dict] = field(repr=False)
    model: object = field(repr=False, default=None)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, bytes]:
    """(status, body) of one request; on `conn` when given (keep-alive), else on a new connection."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        if own:
            conn.close()


def as_records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready dicts, as a client would send them: native ints and floats, null for a missing value."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group (Linux /proc)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rows_per_s(call, n_bodies: int, rows: int, seconds: float, cpu) -> tuple[float, float]:
    """(rows/s, CPU ms per 1k rows as `cpu()` counts it) of `call(i)` (`rows` rows each), cycled over the
    bodies for about `seconds`."""
    call(0)  # warm
    done, t0, c0 = 0, time.perf_counter(), cpu()
    while True:
        call(done % n_bodies)
        done += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and done >= min(n_bodies, 5):
            return done * rows / elapsed, (cpu() - c0) * 1e6 / (done * rows)


def open_loop(port: int, path: str, bodies: list[bytes], rate: float, seconds: float) -> dict:
    """Single-row POSTs at a fixed rate, whatever the answers' pace (open loop); latency of each request
    from its scheduled start to its last response byte, so a queue in front of the server counts."""
    n = int(rate * seconds)
    local = threading.local()
    out: list[tuple[int, float]] = []

    def one(k: int, due: float) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            status, _ = request(port, "POST", path, bodies[k % len(bodies)], conn=conn)
        except (OSError, http.client.HTTPException):
            status, local.conn = 0, None
        out.append((status, time.perf_counter() - due))

    t0 = time.perf_counter() + 0.1
    with ThreadPoolExecutor(16) as pool:
        for k in range(n):
            due = t0 + k / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            pool.submit(one, k, due)
    ms = np.array([d for _, d in out]) * 1000
    return {
        "requests": n,
        "ok": sum(1 for s, _ in out if s == 200),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def bare_latency(model, frame: pd.DataFrame, rate: float, seconds: float) -> dict:
    """p50/p99 of the bare model's single-row scores at `rate` calls/s (idle between calls, as a service
    at that rate is: on this VM a call after a pause is slower)."""
    from mlpipe.model.outputs import scores

    times = []
    n = int(rate * seconds)
    start = time.perf_counter()
    for i in range(n):
        row = frame.iloc[i % len(frame) : i % len(frame) + 1]
        time.sleep(max(0.0, start + i / rate - time.perf_counter()))
        t0 = time.perf_counter()
        scores(model, row)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "requests": n,
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
        "max_ms": round(float(max(times)), 2),
    }


def flights_project(work: Path, full: bool) -> Path:
    root = work / "flights"
    if not (root / "mlruns").exists():
        make_project(root, full)
        timed([sys.executable, "-m", "mlpipe.cli", "run"], root)
    return root


def cancer_project(work: Path) -> Path:
    """A fresh `mlpipe init` project on sklearn's breast_cancer (30 numeric fields), run once."""
    from sklearn.datasets import load_breast_cancer

    root = work / "cancer"
    if not (root / "mlruns").exists():
        root.mkdir(parents=True, exist_ok=True)
        df = load_breast_cancer(as_frame=True).frame
        df["diagnosis"] = df.pop("target").map({0: "malignant", 1: "benign"})
        df.to_csv(root / "cancer.csv", index=False)
        mlpipe = str(Path(sys.executable).parent / "mlpipe")
        timed([mlpipe, "init", "--data", "cancer.csv", "--target", "diagnosis"], root)
        timed([mlpipe, "run"], root)
    return root


def subject(label: str, root: Path, need_rows: int, tmp: Path) -> Subject:
    from mlpipe.config import load_params
    from mlpipe.registry.client import mlflow_client
    from mlpipe.registry.models import load_registered

    params = load_params(root / "params.yaml")
    features = list(params.features.columns)
    frame = pd.read_parquet(root / "artifacts" / "split" / "test.parquet", columns=features)
    if len(frame) < need_rows:
        frame = pd.concat([frame] * math.ceil(need_rows / len(frame)), ignore_index=True)
    frame = frame.iloc[:need_rows].reset_index(drop=True)
    name = params.model.name
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    loaded, _ = load_registered(
        mlflow_client(uri),
        f"models:/{name}/1",
        dest=tmp / f"{label}-model",
        project_trusted=params.train.trusted_types,
    )
    return Subject(label, root, name, features, frame, as_records(frame), loaded.model)


def bodies_for(s: Subject, peer: str, size: int, count: int) -> list[bytes]:
    """`count` distinct request bodies of `size` rows in the peer's own format."""
    out = []
    for i in range(count):
        part = s.records[i * size : (i + 1) * size]
        if peer == "mlflow":
            data = [[r[c] for c in s.features] for r in part]
            out.append(json.dumps({"dataframe_split": {"columns": s.features, "data": data}}).encode())
        else:
            out.append(json.dumps({"records": part}).encode())
    return out


def pinned(cores: str, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cores, *cmd]


def start_servers(s: Subject, tmp: Path, cores: str) -> dict[str, tuple[int, object]]:
    """peer -> (port, process) of the three servers of `s`, each pinned to `cores`, each answering."""
    from mlpipe.errors import ToolError
    from mlpipe.runtime.localserver import free_port, launch, wait_answering
    from mlpipe.runtime.shell import tool_env

    uri = f"sqlite:///{s.root / 'mlruns' / 'mlflow.db'}"
    threads = str(len(cores_of(cores)))
    env = {**tool_env(), "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": threads}
    app_dir = tmp / "handwritten"
    app_dir.mkdir(exist_ok=True)
    (app_dir / "handwritten_app.py").write_text(HANDWRITTEN)
    bin_dir = Path(sys.executable).parent
    ports = {peer: free_port() for peer in SERVERS}
    cmds = {
        "service": ([sys.executable, "-m", "mlpipe.cli", "serve", "--port", str(ports["service"])], "/ready"),
        "fastapi": (
            [sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir), "handwritten_app:app"]
            + ["--host", "127.0.0.1", "--port", str(ports["fastapi"]), "--log-level", "warning"],
            "/docs",
        ),
        "mlflow": (
            [
                str(bin_dir / "mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{s.name}/1",
                "--env-manager",
                "local",
            ]
            + ["--host", "127.0.0.1", "--port", str(ports["mlflow"])],
            "/ping",
        ),
    }
    extra = {"fastapi": {"BENCH_FEATURES": ",".join(s.features), "BENCH_MODEL_URI": f"models:/{s.name}/1"}}
    procs: dict[str, tuple[int, object]] = {}
    try:
        for peer, (cmd, _) in cmds.items():
            proc = launch(
                pinned(cores, cmd), s.root, {**env, **extra.get(peer, {})}, tmp / f"{s.label}-{peer}.log"
            )
            procs[peer] = (ports[peer], proc)
        for peer, (port, proc) in procs.items():
            wait_answering(proc, f"http://127.0.0.1:{port}{cmds[peer][1]}", 240)
    except ToolError as exc:
        stop_all(procs)
        raise SystemExit(str(exc)) from exc
    return procs


def stop_all(procs: dict) -> None:
    from mlpipe.runtime.shell import stop_process_group

    for _, proc in procs.values():
        stop_process_group(proc)


def cores_of(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out |= set(range(int(lo), int(hi or lo) + 1))
    return out


def check_answers(s: Subject, procs: dict, size: int) -> None:
    """Every server answers the first `size` rows as the bare model does, before any timing."""
    from mlpipe.model.outputs import scores

    expected = scores(s.model, s.frame.iloc[:size])
    for peer, (port, _) in procs.items():
        status, raw = request(port, "POST", procs_path(peer), bodies_for(s, peer, size, 1)[0])
        assert status == 200, (peer, status, raw[:300])
        got = json.loads(raw)
        if peer == "mlflow":  # classes
            assert len(got["predictions"]) == size, peer
            continue
        assert np.allclose(got["probabilities"], expected, atol=1e-6), f"{s.label}: {peer} answers differ"


def procs_path(peer: str) -> str:
    return "/invocations" if peer == "mlflow" else "/predict"


def measure(s: Subject, tmp: Path, args) -> dict:
    from threadpoolctl import threadpool_limits

    from mlpipe.model.outputs import scores
    from mlpipe.serving.predict import one_openmp_thread

    server_cores, client_cores = cores_of(args.server_cores), cores_of(args.client_cores)
    n_bodies = args.bodies
    procs = start_servers(s, tmp, args.server_cores)
    try:
        check_answers(s, procs, 100)
        bodies = {(p, n): bodies_for(s, p, n, n_bodies) for p in SERVERS for n in SIZES}
        frames = {n: [s.frame.iloc[i * n : (i + 1) * n] for i in range(n_bodies)] for n in SIZES}

        def over_http(peer: str, size: int):
            port = procs[peer][0]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

            def call(i: int) -> None:
                try:
                    status, _ = request(port, "POST", procs_path(peer), bodies[peer, size][i], conn=conn)
                except (http.client.HTTPException, OSError):  # the server closed the idle connection
                    conn.close()
                    status, _ = request(port, "POST", procs_path(peer), bodies[peer, size][i], conn=conn)
                assert status == 200, (peer, status)

            return call

        def bare_rate(size: int) -> tuple[float, float]:
            os.sched_setaffinity(0, server_cores)
            try:
                with threadpool_limits(len(server_cores)):
                    return rows_per_s(
                        lambda i: scores(s.model, frames[size][i]),
                        n_bodies,
                        size,
                        args.seconds,
                        time.process_time,
                    )
            finally:
                os.sched_setaffinity(0, client_cores)

        runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for _ in range(args.rounds):
            for size in SIZES:
                runs.setdefault(("bare", size), []).append(bare_rate(size))
                for peer in SERVERS:
                    pid = procs[peer][1].pid
                    runs.setdefault((peer, size), []).append(
                        rows_per_s(
                            over_http(peer, size), n_bodies, size, args.seconds, lambda p=pid: group_cpu_s(p)
                        )
                    )
        latency = {
            peer: open_loop(procs[peer][0], procs_path(peer), bodies[peer, 1], args.rate, args.latency_s)
            for peer in SERVERS
        }
    finally:
        stop_all(procs)
    os.sched_setaffinity(0, server_cores)
    try:
        with threadpool_limits(1):
            one_openmp_thread()
            latency["bare"] = bare_latency(s.model, s.frame, args.rate, args.latency_s)
    finally:
        os.sched_setaffinity(0, client_cores)
    peers = ("bare", *SERVERS)
    rps = {p: {n: statistics.median(r for r, _ in runs[p, n]) for n in SIZES} for p in peers}
    cpu = {p: {n: statistics.median(c for _, c in runs[p, n]) for n in SIZES} for p in peers}
    return {
        "rows_per_s": {p: {str(n): round(v) for n, v in rps[p].items()} for p in peers},
        "rows_per_s_each_round": {
            p: {str(n): [round(r) for r, _ in runs[p, n]] for n in SIZES} for p in peers
        },
        "cpu_ms_per_1k_rows": {p: {str(n): round(v, 1) for n, v in cpu[p].items()} for p in peers},
        "ratio_service_vs": {
            p: {str(n): round(rps["service"][n] / rps[p][n], 3) for n in SIZES}
            for p in peers
            if p != "service"
        },
        "single_row_latency_paced": latency,
        "ratio_p99_service_vs": {
            p: round(latency["service"]["p99_ms"] / latency[p]["p99_ms"], 2) for p in peers if p != "service"
        },
    }


def aims(figures: dict) -> dict:
    flights, cancer = figures["flights"], figures["breast_cancer"]
    r = flights["ratio_service_vs"]
    return {
        "1k_rows_vs_mlflow_1.5x": r["mlflow"]["1000"] >= 1.5,
        "1k_rows_vs_fastapi_1.2x": r["fastapi"]["1000"] >= 1.2,
        "1k_rows_vs_bare_0.8x": r["bare"]["1000"] >= 0.8,
        "single_row_p99_vs_bare_paced_1.5x": flights["ratio_p99_service_vs"]["bare"] <= 1.5,
        "30_fields_1k_rows_vs_bare_0.6x": cancer["ratio_service_vs"]["bare"]["1000"] >= 0.6,
    }


def print_summary(figures: dict) -> None:
    for label in ("flights", "breast_cancer"):
        f = figures[label]
        print(f"== {label}: rows/s (service / peer)")
        for n in map(str, SIZES):
            line = "  ".join(
                f"{p} {f['rows_per_s'][p][n]:>7}"
                + (f" ({f['ratio_service_vs'][p][n]:.2f}x)" if p != "service" else "")
                for p in ("service", "bare", "fastapi", "mlflow")
            )
            print(f"  {n:>4} rows/request: {line}")
        lat = f["single_row_latency_paced"]
        print(
            "  single row p50/p99 ms: "
            + "  ".join(
                f"{p} {lat[p]['p50_ms']}/{lat[p]['p99_ms']}" for p in ("service", "bare", "fastapi", "mlflow")
            )
        )
        print(f"  p99 ratio service / peer: {f['ratio_p99_service_vs']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1 round, short measurements (a few minutes)")
    parser.add_argument("--full", action="store_true", help="the whole bundled year as the flights data")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick 1)")
    parser.add_argument(
        "--seconds", type=float, help="seconds per measurement per round (default 4; quick 1.5)"
    )
    parser.add_argument("--bodies", type=int, default=5, help="distinct request bodies per size")
    parser.add_argument("--rate", type=float, default=50, help="single-row requests per second (latency)")
    parser.add_argument("--latency-s", type=float, help="seconds of paced single rows (default 20; quick 6)")
    last = max(os.sched_getaffinity(0))
    parser.add_argument("--server-cores", default=str(last), help="taskset cores of every server and of bare")
    parser.add_argument(
        "--client-cores",
        default=",".join(str(c) for c in sorted(os.sched_getaffinity(0) - {last})) or str(last),
        help="cores of this process (the client)",
    )
    parser.add_argument("--work", type=Path, help="keep (and reuse) the projects here (development)")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.seconds = args.seconds or (1.5 if args.quick else 4.0)
    args.latency_s = args.latency_s or (6.0 if args.quick else 20.0)
    os.sched_setaffinity(0, cores_of(args.client_cores))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-serve-") as tmp:
        work = args.work.resolve() if args.work else Path(tmp)
        need = args.bodies * max(SIZES)
        subjects = {
            "flights": subject("flights", flights_project(work, args.full), need, Path(tmp)),
            "breast_cancer": subject("breast_cancer", cancer_project(work), need, Path(tmp)),
        }
        figures: dict = {
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "server_cores": args.server_cores,
                "client_cores": args.client_cores,
                "load_avg_1min_before": round(load_before, 2),
            },
            "method": {
                "rounds": args.rounds,
                "seconds_per_measurement": args.seconds,
                "rate_per_s": args.rate,
                "latency_s": args.latency_s,
                "quick": args.quick,
            },
        }
        for label, s in subjects.items():
            figures[label] = {
                "model": f"models:/{s.name}/1",
                "fields": len(s.features),
                **measure(s, Path(tmp), args),
            }
    figures["machine"]["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    figures["aims"] = aims(figures)
    print_summary(figures)
    report(figures, "serve-quick.json" if args.quick else ("serve-full.json" if args.full else "serve.json"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
