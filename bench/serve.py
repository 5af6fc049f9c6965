"""Benchmark: `mlpipe serve` against the bare model and against `mlflow models serve`, same model, same rows.

In a temporary copy of the project: `mlpipe run` once (registers models:/flights-late/1, the champion),
then, in the same run and on the same 1k-row batches of real rows from the test split, one client on one
keep-alive connection, batches back to back:
(1) bare in-process `model.predict_proba` (loaded through mlpipe.model.loading) on ready frames, with
    OpenMP's default threads and with one thread (as the service runs it); the faster is the baseline;
(2) `mlpipe serve` over HTTP on 127.0.0.1 (`{"records": [...]}`: validation and prediction log included);
(3) `mlflow models serve --env-manager local` on the same registered model (`{"dataframe_split": ...}`),
    as shipped and with OMP_NUM_THREADS=1.
They are measured in interleaved rounds (the machine is shared) and the median round counts; CPU ms per
1k rows of the process (group) doing the work is recorded beside rows/s. Then single-row latency of the
service at a fixed request rate (open loop, client-side from each request's scheduled start, and the
server's own histogram from /metrics). Aims of issue 18: service >= 0.8 x bare predict at the same thread
count on batches (the service predicts with one OpenMP thread: bare with one thread), >= 1.5 x `mlflow models
serve` with OMP_NUM_THREADS=1, single-row p99 <= 8 ms and <= 1.3 x bare predict paced the same way.
Writes bench/results/serve.json (serve-full.json with --full: the whole year as the data).
Usage: python bench/serve.py [--full] [--rounds N] [--seconds S] [--rate R] [--latency-s S] [--project DIR]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import make_project, report, timed  # noqa: E402

BATCH = 1000
MODEL_REF = "models:/flights-late/1"


def start_mlflow(cmd: list[str], root: Path, env: dict, port: int, log: Path, timeout_s: float = 180):
    """`mlflow models serve` in a session of its own (stop it with stop_process_group); returns once /ping
    gives 200."""
    from mlpipe.errors import ToolError
    from mlpipe.runtime.localserver import launch, wait_answering

    proc = launch(cmd, root, env, log)
    try:
        wait_answering(proc, f"http://127.0.0.1:{port}/ping", timeout_s)
    except ToolError as exc:
        raise SystemExit(str(exc)) from exc
    return proc


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    timeout: float = 60,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, bytes]:
    """(status, body) of one request; on `conn` when given (keep-alive), else on a new connection."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        if own:
            conn.close()


def test_rows(root: Path, features: list[str], full_batches: int) -> pd.DataFrame:
    """The first `full_batches` x 1k rows of the test split (cycled when it is shorter), feature
    columns only."""
    frame = pd.read_parquet(root / "artifacts" / "split" / "test.parquet", columns=features)
    need = full_batches * BATCH
    if len(frame) < need:
        frame = pd.concat([frame] * math.ceil(need / len(frame)), ignore_index=True)
    return frame.iloc[:need].reset_index(drop=True)


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


def rows_per_s(call, n_batches: int, seconds: float, cpu=time.process_time) -> tuple[float, float]:
    """(rows/s, CPU ms per 1k rows as `cpu()` counts it) of `call(i)` (one 1k-row batch each), cycled over
    the batches for about `seconds`."""
    call(0)  # warm
    done, t0, c0 = 0, time.perf_counter(), cpu()
    while True:
        call(done % n_batches)
        done += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and done >= n_batches:
            return done * BATCH / elapsed, (cpu() - c0) * 1000 / done


def open_loop(port: int, bodies: list[bytes], rate: float, seconds: float) -> dict:
    """Single-row POST /predict at a fixed rate, whatever the answers' pace (open loop); latency of each
    request from its scheduled start to its last response byte, so a queue in front of the server counts."""
    n = int(rate * seconds)
    local = threading.local()
    out: list[tuple[int, float, float]] = []

    def one(k: int, due: float) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        sent = time.perf_counter()
        try:
            status, _ = request(port, "POST", "/predict", bodies[k % len(bodies)], conn=conn)
        except OSError:
            status, local.conn = 0, None
        end = time.perf_counter()
        out.append((status, end - due, end - sent))

    t0 = time.perf_counter() + 0.1
    with ThreadPoolExecutor(16) as pool:
        for k in range(n):
            due = t0 + k / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            pool.submit(one, k, due)
    from_due = np.array([d for _, d, _ in out]) * 1000
    from_send = np.array([s for _, _, s in out]) * 1000
    return {
        "requests": n,
        "rate_per_s": rate,
        "ok": sum(1 for s, _, _ in out if s == 200),
        "p50_ms": round(float(np.percentile(from_due, 50)), 2),
        "p99_ms": round(float(np.percentile(from_due, 99)), 2),
        "max_ms": round(float(from_due.max()), 2),
        "p99_from_send_ms": round(float(np.percentile(from_send, 99)), 2),
    }


def histogram(port: int) -> dict[str, float]:
    """The service's /predict latency histogram: cumulative count per bucket bound (seconds, as text)."""
    text = request(port, "GET", "/metrics")[1].decode()
    pat = r'mlpipe_request_latency_seconds_bucket\{endpoint="/predict",le="([^"]+)"\} ([0-9.e+]+)'
    return {le: float(v) for le, v in re.findall(pat, text)}


def server_share(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Share of the requests between two /metrics reads answered (server-side) within 5, 10 and 25 ms."""
    total = after.get("+Inf", 0) - before.get("+Inf", 0)
    return {
        f"within_{float(le) * 1000:g}ms": round((after[le] - before.get(le, 0)) / total, 4)
        for le in ("0.005", "0.01", "0.025")
        if total and le in after
    }


def bare_latency(model, frame: pd.DataFrame, n: int, rate: float | None = None) -> dict:
    """p50/p99 of the bare model's single-row predict_proba, back to back or paced at `rate` calls/s (idle
    between calls, as a service at that rate is: on this VM a call after a pause is slower)."""
    times = []
    start = time.perf_counter()
    for i in range(n):
        row = frame.iloc[i % len(frame) : i % len(frame) + 1]
        if rate:
            time.sleep(max(0.0, start + i / rate - time.perf_counter()))
        t0 = time.perf_counter()
        model.predict_proba(row)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="the whole bundled year as the data")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of the three batch measurements"
    )
    parser.add_argument("--seconds", type=float, default=6, help="seconds per batch measurement per round")
    parser.add_argument("--batches", type=int, default=15, help="distinct 1k-row batches")
    parser.add_argument("--rate", type=float, default=50, help="single-row requests per second (latency)")
    parser.add_argument("--latency-s", type=float, default=20, help="seconds of single-row traffic")
    parser.add_argument(
        "--project", type=Path, help="an existing project copy after `mlpipe run` (development)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-serve-") as tmp:
        if args.project:
            root = args.project.resolve()
        else:
            root = make_project(Path(tmp) / "project", args.full)
            timed([sys.executable, "-m", "mlpipe.cli", "run"], root)
        figures = measure(root, Path(tmp), args)
    report(figures, "serve-full.json" if args.full else "serve.json")
    return 0


def measure(root: Path, tmp: Path, args) -> dict:
    from threadpoolctl import threadpool_info, threadpool_limits

    from mlpipe.config import load_params
    from mlpipe.registry.client import mlflow_client
    from mlpipe.registry.models import load_registered
    from mlpipe.runtime.localserver import free_port, start_service
    from mlpipe.runtime.shell import stop_process_group, tool_env

    load_before = os.getloadavg()[0]
    params = load_params(root / "params.yaml")
    features = list(params.features.columns)
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    loaded, _ = load_registered(mlflow_client(uri), MODEL_REF, dest=tmp / "model")
    model = loaded.model
    frame = test_rows(root, features, args.batches)
    frames = [frame.iloc[i * BATCH : (i + 1) * BATCH] for i in range(args.batches)]
    records = as_records(frame)
    service_bodies = [
        json.dumps({"records": records[i * BATCH : (i + 1) * BATCH]}).encode() for i in range(args.batches)
    ]
    mlflow_bodies = [
        json.dumps(
            {
                "dataframe_split": {
                    "columns": features,
                    "data": [[r[c] for c in features] for r in records[i * BATCH : (i + 1) * BATCH]],
                }
            }
        ).encode()
        for i in range(args.batches)
    ]
    expected = [model.predict_proba(f)[:, 1] for f in frames]

    env = {**tool_env(), "MLFLOW_TRACKING_URI": uri}
    mlflow_port, mlflow1_port = free_port(), free_port()
    servers = []
    try:
        base, proc = start_service(root)  # the champion: version 1
        servers.append(proc)
        service_port = int(base.rsplit(":", 1)[1])
        served_version = json.loads(request(service_port, "GET", "/ready")[1])["model_version"]
        mlflow_cmd = [
            str(Path(sys.executable).parent / "mlflow"),
            "models",
            "serve",
            "-m",
            MODEL_REF,
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
        ]
        servers.append(
            start_mlflow([*mlflow_cmd, str(mlflow_port)], root, env, mlflow_port, tmp / "mlflow.log")
        )
        # The same server with OpenMP at one thread, as the service runs its model: the like-for-like figure.
        servers.append(
            start_mlflow(
                [*mlflow_cmd, str(mlflow1_port)],
                root,
                {**env, "OMP_NUM_THREADS": "1"},
                mlflow1_port,
                tmp / "mlflow-1-thread.log",
            )
        )
        # Same answers before any timing: the service rounds probabilities to 6 places,
        # MLflow returns classes.
        for i in range(args.batches):
            got = json.loads(request(service_port, "POST", "/predict", service_bodies[i])[1])
            assert np.array_equal(got["probabilities"], np.round(expected[i], 6)), (
                f"service batch {i} differs"
            )
            for port in (mlflow_port, mlflow1_port):
                got = json.loads(request(port, "POST", "/invocations", mlflow_bodies[i])[1])
                assert np.array_equal(got["predictions"], (expected[i] >= 0.5).astype(int)), (
                    f"mlflow batch {i} differs"
                )

        def over_http(port: int, path: str, bodies: list[bytes]):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

            def call(i: int) -> None:
                try:
                    status, _ = request(port, "POST", path, bodies[i], conn=conn)
                except (
                    http.client.HTTPException,
                    OSError,
                ):  # the server closed the idle keep-alive connection
                    conn.close()
                    status, _ = request(port, "POST", path, bodies[i], conn=conn)
                assert status == 200, status

            return call

        def bare(i: int) -> None:
            model.predict_proba(frames[i])

        # name -> (call, CPU clock of the process doing the work)
        targets = {
            "bare": (bare, time.process_time),
            "bare_1_thread": (bare, time.process_time),
            "service": (
                over_http(service_port, "/predict", service_bodies),
                lambda: group_cpu_s(servers[0].pid),
            ),
            "mlflow": (
                over_http(mlflow_port, "/invocations", mlflow_bodies),
                lambda: group_cpu_s(servers[1].pid),
            ),
            "mlflow_1_thread": (
                over_http(mlflow1_port, "/invocations", mlflow_bodies),
                lambda: group_cpu_s(servers[2].pid),
            ),
        }
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in targets}
        for _ in range(args.rounds):
            for name, (call, cpu) in targets.items():
                with threadpool_limits(1 if name == "bare_1_thread" else None):
                    runs[name].append(rows_per_s(call, args.batches, args.seconds, cpu))
        rps = {k: statistics.median(r for r, _ in v) for k, v in runs.items()}
        cpu_ms = {k: statistics.median(c for _, c in v) for k, v in runs.items()}

        singles = [json.dumps({"records": [r]}).encode() for r in records[: 2 * BATCH]]
        before = histogram(service_port)
        latency = open_loop(service_port, singles, args.rate, args.latency_s)
        server_side = server_share(before, histogram(service_port))
        with threadpool_limits(1):  # as the service predicts
            bare_single = {
                "back_to_back": bare_latency(model, frame, 500),
                f"at_{args.rate:g}_per_s": bare_latency(model, frame, 500, args.rate),
            }
    finally:
        for proc in servers:
            stop_process_group(proc)
    best_bare = max(rps["bare"], rps["bare_1_thread"])
    return {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "openmp_threads": [i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"],
            "load_avg_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "data": "whole 2013" if args.full else "initial period (Jan-Mar 2013)",
        "model": f"{MODEL_REF} (champion, served version {served_version})",
        "batch_rows": BATCH,
        "rounds": args.rounds,
        "rows_per_s": {k: round(v) for k, v in rps.items()},
        "rows_per_s_each_round": {k: [round(r) for r, _ in v] for k, v in runs.items()},
        "cpu_ms_per_1k_rows": {k: round(v, 1) for k, v in cpu_ms.items()},
        "ratio_service_vs_bare": round(rps["service"] / best_bare, 3),
        "ratio_service_vs_mlflow": round(rps["service"] / rps["mlflow"], 2),
        "ratio_service_vs_mlflow_1_thread": round(rps["service"] / rps["mlflow_1_thread"], 2),
        "ratio_service_vs_bare_1_thread": round(rps["service"] / rps["bare_1_thread"], 3),
        # What a service with no cost of its own would score against MLflow: the bare model's own lead.
        "ceiling_vs_mlflow": round(best_bare / rps["mlflow"], 2),
        "ceiling_vs_mlflow_1_thread": round(rps["bare_1_thread"] / rps["mlflow_1_thread"], 2),
        "single_row_latency": latency,
        "single_row_server_side": server_side,
        "single_row_bare_predict_1_thread": bare_single,
        "ratio_p99_service_vs_bare_paced": round(
            latency["p99_ms"] / bare_single[f"at_{args.rate:g}_per_s"]["p99_ms"], 2
        ),
        "aims": {
            "service_vs_bare_same_threads_0.8": rps["service"] / rps["bare_1_thread"] >= 0.8,
            "service_vs_mlflow_1_thread_1.5x": rps["service"] / rps["mlflow_1_thread"] >= 1.5,
            "p99_8ms": latency["p99_ms"] <= 8,
            "p99_1.3x_bare_paced": latency["p99_ms"]
            <= 1.3 * bare_single[f"at_{args.rate:g}_per_s"]["p99_ms"],
        },
        "notes": "one client, one connection, 1k-row batches back to back; bare ratio against the faster "
        "of bare "
        "(default OpenMP threads) and bare with 1 thread; cpu_ms_per_1k_rows counts the server's whole "
        "process group (the service's includes its prediction-log writer), bare its own process; "
        "mlflow answers classes (pyfunc predict), the service probabilities, classes and flags",
    }


if __name__ == "__main__":
    raise SystemExit(main())
