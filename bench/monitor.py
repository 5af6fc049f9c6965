"""Benchmark: the monitor's drift check on a large prediction log, against Evidently on the whole log.

Fits the project's model on the initial period (Jan-Mar 2013: time split, seeded fit, as `mlpipe run`
does), then writes SQLite prediction logs of N rows (the service's PREDICTIONS rows: inputs as JSON,
the model's probability) for two periods: "stable" (Jan-Mar flights, resampled with a fixed seed)
and "drifted" (Jul-Sep). Each log is checked in fresh processes, the window covering the whole log:
- fast: what flows/monitor.py runs (read_window samples monitor.sample_rows rows in the database,
  reference_sample, coerce_like, drift_summaries, monitor_verdict), then the HTML/JSON report it saves;
  `--repeat` runs, the median kept;
- fast_confirmed (only when some column is borderline): the same, then monitoring.confirm_borderline
  (Evidently again, on every row of the window, for the borderline columns only);
- baseline: every row read and JSON-parsed, Evidently's DataDriftPreset on the raw frame (inputs +
  proba) against the whole training split.
  Above --whole-frame-max rows (1M) the raw frame would not fit (~38 GB at 10M): every row is parsed
  once into a Parquet file, then DataDriftPreset runs in one fresh process per group of --group columns
  (3), each on every row of the log; its time is the sum, its peak the largest process's.
Prints wall and CPU seconds (imports apart), peak RSS (the process's VmHWM), ratios, each path's per-column
verdicts (method, threshold, score, flag), drift share and retrain decision. Aims: the fast path on 1M
rows in <= 5 s and <= 0.6 GB peak (issue 6), on 10M in <= 10 s and <= 1 GB (issue 18).
Writes bench/results/monitor.json.
Usage: python bench/monitor.py [--rows 100000 1000000 10000000] [--repeat 3] [--group 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import REPO, report  # noqa: E402

from mlpipe.runtime.shell import tool_env  # noqa: E402

PERIODS = {"stable": (date(2013, 1, 1), date(2013, 4, 1)), "drifted": (date(2013, 7, 1), date(2013, 10, 1))}
REQUEST_ROWS = 200  # rows per logged request, as the integration tests send them
AIMS = {
    1_000_000: (5, 600),
    10_000_000: (10, 1000),
}  # rows: (seconds, peak MB) of the fast path (issues 6, 18)


# ---- setup (parent process) ----------------------------------------------------------------------


def fit_reference(params, work: Path):
    """The project's model on the initial period's train split (time split, seeded fit); both written
    to `work` for the measuring processes. Returns the model."""
    from mlpipe.data.frames import write_frame
    from mlpipe.data.sources import get_source
    from mlpipe.model.artifact import dump_model
    from mlpipe.pipeline.features import select_features, target_vector
    from mlpipe.pipeline.split import split_by_time
    from mlpipe.pipeline.train import fit_model

    period = params.dataset.initial_period
    df = get_source(params, Path("."))(period.start, period.end)
    train, _, _ = split_by_time(df, params.dataset.time_column, params.split.test_fraction)
    model = fit_model(
        params.train,
        params.features,
        select_features(train, params.features),
        target_vector(train, params.dataset.target, params.task),
        params.seed_for("train"),
        params.task,
    )
    dump_model(model, work / "model.skops")
    write_frame(train, work / "train.parquet")
    return model


def logged_rows(params, model, start: date, end: date) -> tuple[list[str], list[float], list[int]]:
    """Each flight of [start, end) as the service logs it: (inputs JSON, proba, prediction) per row."""
    import math

    from mlpipe.data.sources import get_source
    from mlpipe.pipeline.features import select_features
    from mlpipe.serving.prediction_log import log_rows

    df = get_source(params, Path("."))(start, end)
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in df[params.features.columns].to_dict(orient="records")
    ]
    proba = model.predict_proba(select_features(df, params.features))[:, 1]
    rows = log_rows(
        "source", records, proba, (proba >= params.evaluate.threshold).astype(int), [], "bench", "1", 0.0
    )
    return [r["inputs"] for r in rows], [r["proba"] for r in rows], [r["prediction"] for r in rows]


def write_log(path: Path, source: tuple[list[str], list[float], list[int]], rows: int, seed: int) -> None:
    """A SQLite prediction log (the service's schema) of `rows` rows drawn with replacement from `source`."""
    import numpy as np
    import sqlalchemy as sa

    from mlpipe.serving.prediction_log import METADATA

    engine = sa.create_engine(f"sqlite:///{path}")
    METADATA.create_all(engine)
    engine.dispose()
    inputs, proba, pred = source
    picks = np.random.default_rng(seed).integers(0, len(inputs), rows)
    now = time.time()
    values = (
        (
            f"req-{i // REQUEST_ROWS:07d}",
            i % REQUEST_ROWS,
            now + i * 1e-3,
            "bench",
            "1",
            1.0,
            inputs[j],
            proba[j],
            pred[j],
            "[]",
        )
        for i, j in enumerate(picks.tolist())
    )
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO predictions (request_id, row, ts, model_name, model_version, latency_ms, "
            "inputs, proba, prediction, flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        )
    conn.close()


def measure(kind: str, log: Path, work: Path, rows: int, columns: list[str] | None = None) -> dict:
    """Run one path in a fresh process; its figures (JSON on its last stdout line) plus the wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--log",
            str(log),
            "--work",
            str(work),
            "--rows",
            str(rows),
            *(["--columns", ",".join(columns)] if columns else []),
        ],
        env=tool_env(),
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{kind} on {log.name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"process_wall_s": round(wall, 3)}


# ---- measured paths (child processes) ------------------------------------------------------------


def peak_mb() -> float:
    """This process's peak RSS so far (VmHWM; see mlpipe.release.probe.peak_rss_mb)."""
    from mlpipe.release.probe import peak_rss_mb

    return round(peak_rss_mb(), 1)


class Clock:
    """Wall and CPU seconds per named step since the last one (CPU time barely moves when other people's
    load on the shared machine stretches the wall time)."""

    def __init__(self):
        self.steps: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._t, self._c = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.steps[name], self.cpu[name] = round(now - self._t, 3), round(cpu - self._c, 3)
        self._t, self._c = now, cpu


def fast_path(params, log: Path, work: Path, rows: int, clock: Clock, confirm: bool) -> dict:
    """What the monitor flow's `check` task runs, with the window covering the whole log; with `confirm`,
    then Evidently again on every row for the borderline columns (monitoring.confirm_borderline)."""
    from mlpipe.data.frames import read_frame
    from mlpipe.model.artifact import load_model_file
    from mlpipe.monitoring import monitor as mon
    from mlpipe.monitoring.drift import save_drift

    cfg = params.monitor.model_copy(update={"window_rows": rows})
    url = f"sqlite:///{log}"
    model = load_model_file(work / "model.skops")
    clock.lap("model_s")
    window, in_window = mon.read_window(url, cfg.window_rows, cfg.sample_rows)
    clock.lap("read_s")
    train = read_frame(work / "train.parquet")
    reference = mon.reference_sample(train, model, params.features, cfg.reference_rows, params.seed + 3)
    clock.lap("reference_s")
    current = mon.coerce_like(window, reference, params.features)
    clock.lap("coerce_s")
    inputs, prediction, snapshot = mon.drift_summaries(reference, current, params.features)
    verdicts = inputs["verdicts"] | prediction["verdicts"]
    if sum(v["drifted"] for v in inputs["verdicts"].values()) != inputs["drifted_columns"]:
        raise SystemExit(
            "column_verdicts disagree with Evidently's DriftedColumnsCount (rule: monitoring.DRIFTED_WHEN)"
        )
    decision = mon.monitor_verdict(cfg, in_window, inputs, prediction, None, {})
    clock.lap("drift_s")
    out = {
        "rows_in_window": in_window,
        "rows_checked": len(window),
        "reference_rows": len(reference),
        "borderline": sorted(c for c, v in verdicts.items() if v["borderline"]),
        "decision_at_stake": mon.decision_at_stake(cfg, in_window, verdicts, params.features, None, {}),
    }
    if confirm:
        whole_reference = mon.reference_sample(train, model, params.features, len(train), params.seed + 3)
        verdicts = mon.confirm_borderline(url, cfg.window_rows, whole_reference, verdicts, params.features)
        inputs, prediction = mon.summaries_from_verdicts(verdicts, params.features)
        decision = mon.monitor_verdict(cfg, in_window, inputs, prediction, None, {})
        clock.lap("confirm_s")
    else:
        out["check_peak_mb"] = peak_mb()
        save_drift(snapshot, work / f"report-{log.stem}")
        clock.lap("html_json_report_s")
    return out | {
        "input_drift_share": inputs["drift_share"],
        "columns": verdicts,
        "retrain": decision["retrain"],
        "reasons": decision["reasons"],
    }


def baseline_path(params, log: Path, work: Path, rows: int, clock: Clock, columns: list[str] | None) -> dict:
    """Every logged row read and parsed; Evidently's DataDriftPreset on inputs + proba against the whole
    train split. With `columns` (a group of them), the rows come from the Parquet file `extract_path`
    wrote (every row, parsed the same way) and Evidently sees only that group."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from mlpipe.model.artifact import load_model_file
    from mlpipe.monitoring.monitor import PROBA, column_verdicts, monitor_verdict, summaries_from_verdicts

    features = params.features
    model = load_model_file(work / "model.skops")
    clock.lap("model_s")
    if columns:
        current = pd.read_parquet(extracted(log, work), columns=columns)
    else:
        columns = [*features.columns, PROBA]
        with sqlite3.connect(log) as conn:
            raw = pd.read_sql_query("SELECT inputs, proba FROM predictions ORDER BY id", conn)
        conn.close()
        current = parse_logged(raw["inputs"].tolist(), raw["proba"].to_numpy(), features)
        del raw
    clock.lap("read_s")
    reference = pd.read_parquet(work / "train.parquet")[features.columns]
    reference[PROBA] = model.predict_proba(reference[list(model.feature_names_in_)])[:, 1]
    reference = reference[columns]
    clock.lap("reference_s")
    defn = DataDefinition(
        numerical_columns=[c for c in columns if c not in features.categorical],
        categorical_columns=[c for c in columns if c in features.categorical],
    )
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        current_data=Dataset.from_pandas(current, data_definition=defn),
        reference_data=Dataset.from_pandas(reference, data_definition=defn),
    )
    clock.lap("drift_s")
    out = snapshot.dict()
    verdicts = column_verdicts(out)
    tested = {
        t["metric_config"]["params"]["column"]: t["status"] == "FAIL"
        for t in out["tests"]
        if t["id"] == "drift"
    }
    if tested != {c: v["drifted"] for c, v in verdicts.items()}:
        raise SystemExit(f"monitoring.DRIFTED_WHEN disagrees with Evidently's own per-column tests: {tested}")
    inputs, prediction = summaries_from_verdicts(verdicts, features)
    decision = monitor_verdict(params.monitor, rows, inputs, prediction, None, {})
    return {
        "rows_checked": len(current),
        "reference_rows": len(reference),
        "input_drift_share": inputs["drift_share"],
        "columns": verdicts,
        "retrain": decision["retrain"],
        "reasons": decision["reasons"],
    }


def parse_logged(inputs: list[str], proba, features):
    """Logged rows as the baseline reads them: each inputs JSON parsed by Python json, numbers as float64."""
    import pandas as pd

    from mlpipe.monitoring.monitor import PROBA

    current = pd.DataFrame.from_records([json.loads(s) for s in inputs], columns=features.columns)
    current[PROBA] = proba
    for col in features.numerical:
        current[col] = pd.to_numeric(current[col], errors="coerce").astype("float64")
    return current


def extracted(log: Path, work: Path) -> Path:
    return work / f"{log.stem}.every-row.parquet"


def extract_path(params, log: Path, work: Path, rows: int, clock: Clock) -> dict:
    """The grouped baseline's first step: every logged row read and parsed as the whole-frame baseline
    does (Python's json, not the monitor's SQL), 500k rows at a time, into one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    read = 0
    with sqlite3.connect(log) as conn, closing(conn.cursor()) as cursor:
        cursor.execute("SELECT inputs, proba FROM predictions ORDER BY id")
        writer = None
        while chunk := cursor.fetchmany(500_000):
            part = parse_logged([r[0] for r in chunk], [r[1] for r in chunk], params.features)
            table = pa.Table.from_pandas(part, preserve_index=False)
            writer = writer or pq.ParquetWriter(extracted(log, work), table.schema)
            writer.write_table(table)
            read += len(part)
        if writer is not None:
            writer.close()
    conn.close()
    clock.lap("read_parse_write_s")
    return {"rows_checked": read, "bytes": extracted(log, work).stat().st_size}


def child(kind: str, log: Path, work: Path, rows: int, columns: list[str] | None) -> int:
    """One measured path; prints its figures as JSON. Imports are timed apart from the work."""
    clock = Clock()
    import evidently.presets  # noqa: F401  (both paths need Evidently, pandas, sklearn, the model loader)

    import mlpipe.monitoring.monitor  # noqa: F401
    import mlpipe.pipeline.train  # noqa: F401
    from mlpipe.config import load_params

    params = load_params(REPO / "params.yaml")
    clock.lap("imports_s")
    after_imports = peak_mb()
    if kind == "baseline":
        result = baseline_path(params, log, work, rows, clock, columns)
    elif kind == "extract":
        result = extract_path(params, log, work, rows, clock)
    else:
        result = fast_path(params, log, work, rows, clock, confirm=kind == "confirm")
    check = [k for k in clock.steps if k not in ("imports_s", "html_json_report_s")]
    print(
        json.dumps(
            result
            | {
                "steps_s": clock.steps,
                "check_s": round(sum(clock.steps[k] for k in check), 3),
                "check_cpu_s": round(sum(clock.cpu[k] for k in check), 3),
                "peak_after_imports_mb": after_imports,
                "peak_mb": peak_mb(),
            }
        )
    )
    return 0


# ---- comparison and report -------------------------------------------------------------------------


def compare(fast: dict, confirmed: dict, base: dict) -> dict:
    """Per-column verdicts of the paths (method, threshold, scores, flags) and where they differ."""
    table = {}
    for col, b in base["columns"].items():
        f, c = fast["columns"][col], confirmed["columns"][col]
        table[col] = {
            "method": b["method"],
            "threshold": b["threshold"],
            "baseline_score": b["score"],
            "fast_score": f["score"],
            "baseline": b["drifted"],
            "fast": f["drifted"],
            "borderline": f["borderline"],
            "confirmed": c["drifted"],
        }
        if f["method"] != b["method"]:
            table[col]["fast_method"] = f["method"]
    return {
        "columns": table,
        "fast_differs_on": sorted(
            c for c, v in table.items() if v["fast"] != v["baseline"] or "fast_method" in v
        ),
        "confirmed_differs_on": sorted(c for c, v in table.items() if v["confirmed"] != v["baseline"]),
        "fast_decision_agrees": fast["retrain"] == base["retrain"],
        "confirmed_decision_agrees": confirmed["retrain"] == base["retrain"],
    }


def grouped_baseline(params, log: Path, work: Path, rows: int, group: int) -> dict:
    """The baseline for logs too large for one Evidently frame (~38 GB at 10M rows): every row parsed once
    into Parquet, then DataDriftPreset in one fresh process per group of `group` columns, each on every
    row of the log against the whole train split. Time: the sum of the steps; peak: the largest process."""
    from mlpipe.monitoring.monitor import PROBA, monitor_verdict, summaries_from_verdicts

    ext = measure("extract", log, work, rows)
    columns = [*params.features.columns, PROBA]
    groups = [columns[i : i + group] for i in range(0, len(columns), group)]
    parts = []
    for cols in groups:
        parts.append(measure("baseline", log, work, rows, cols))
        print(f"  baseline {cols}: {parts[-1]['check_s']} s, {parts[-1]['peak_mb']} MB", file=sys.stderr)
    extracted(log, work).unlink()
    if {p["rows_checked"] for p in parts} != {ext["rows_checked"]}:
        raise SystemExit(f"a group saw other rows than the extract: {[p['rows_checked'] for p in parts]}")
    verdicts = {c: v for p in parts for c, v in p["columns"].items()}
    inputs, prediction = summaries_from_verdicts(verdicts, params.features)
    decision = monitor_verdict(params.monitor, rows, inputs, prediction, None, {})
    return {
        "method": (
            f"every row parsed once into Parquet, then DataDriftPreset on {len(groups)} groups of <= {group} "
            "columns, each on every row in its own process"
        ),
        "rows_checked": ext["rows_checked"],
        "reference_rows": parts[0]["reference_rows"],
        "input_drift_share": inputs["drift_share"],
        "columns": verdicts,
        "retrain": decision["retrain"],
        "reasons": decision["reasons"],
        "steps_s": {"extract_s": ext["check_s"]}
        | {",".join(g): p["check_s"] for g, p in zip(groups, parts, strict=True)},
        "check_s": round(ext["check_s"] + sum(p["check_s"] for p in parts), 3),
        "check_cpu_s": round(ext["check_cpu_s"] + sum(p["check_cpu_s"] for p in parts), 3),
        "peak_after_imports_mb": max(p["peak_after_imports_mb"] for p in [ext, *parts]),
        "peak_mb": max(p["peak_mb"] for p in [ext, *parts]),
        "peak_mb_extract": ext["peak_mb"],
        "peak_mb_groups": {",".join(g): p["peak_mb"] for g, p in zip(groups, parts, strict=True)},
        "process_wall_s": round(ext["process_wall_s"] + sum(p["process_wall_s"] for p in parts), 3),
    }


def one_case(
    params, source, rows: int, name: str, work: Path, seed: int, repeat: int, whole_max: int, group: int
) -> dict:
    """Write the log, measure the three paths on it in fresh processes (the fast one `repeat` times, the
    median run kept), compare their verdicts."""
    log = work / f"log-{name}-{rows}.sqlite"
    t0 = time.perf_counter()
    write_log(log, source, rows, seed)
    print(
        f"{rows} {name}: log written in {time.perf_counter() - t0:.1f} s ({log.stat().st_size / 1e6:.0f} MB)",
        file=sys.stderr,
    )
    runs = sorted((measure("fast", log, work, rows) for _ in range(repeat)), key=lambda r: r["check_s"])
    fast = runs[len(runs) // 2] | {"check_s_runs": [r["check_s"] for r in runs]}
    confirmed = measure("confirm", log, work, rows) if fast["borderline"] else fast
    if rows <= whole_max:
        base = measure("baseline", log, work, rows) | {"method": "one DataDriftPreset on the whole frame"}
    else:
        base = grouped_baseline(params, log, work, rows, group)
    log.unlink()
    strip = ("columns", "reasons")
    return {
        "fast": {k: v for k, v in fast.items() if k not in strip},
        "fast_confirmed": {k: v for k, v in confirmed.items() if k not in strip},
        "baseline": {k: v for k, v in base.items() if k not in strip},
        "ratio_time_baseline_vs_fast": round(base["check_s"] / fast["check_s"], 1),
        "ratio_peak_baseline_vs_fast": round(base["peak_mb"] / fast["check_peak_mb"], 1),
        "verdicts": compare(fast, confirmed, base),
    }


def print_table(cases: dict) -> None:
    print(
        f"{'case':<16}{'path':<16}{'rows read':>10}{'check s':>9}{'CPU s':>7}{'peak MB':>9}{'imports MB':>11}"
        f"{'drift share':>12}{'retrain':>8}"
    )
    for name, c in cases.items():
        for path in ("fast", "fast_confirmed", "baseline"):
            r = c[path]
            print(
                f"{name:<16}{path:<16}{r['rows_checked']:>10}{r['check_s']:>9}{r['check_cpu_s']:>7}"
                f"{r.get('check_peak_mb', r['peak_mb']):>9}{r['peak_after_imports_mb']:>11}"
                f"{r['input_drift_share']:>12}"
                f"{r['retrain']!s:>8}"
            )
        v = c["verdicts"]
        fast = "same verdicts" if not v["fast_differs_on"] else "differ on " + ", ".join(v["fast_differs_on"])
        confirmed = (
            "same" if not v["confirmed_differs_on"] else "differ on " + ", ".join(v["confirmed_differs_on"])
        )
        print(
            f"{'':<16}fast vs baseline: {fast}"
            f" (borderline: {', '.join(c['fast']['borderline']) or 'none'}; "
            f"decision at stake: {c['fast']['decision_at_stake']}); "
            f"confirmed: {confirmed}; "
            f"decisions agree: {v['fast_decision_agrees']}"
        )
        for col in v["fast_differs_on"]:
            d = v["columns"][col]
            print(
                f"{'':<16}  {col}: {d['method']} threshold {d['threshold']}: "
                f"fast {d['fast_score']} -> {d['fast']}, "
                f"whole log {d['baseline_score']} -> {d['baseline']}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000], help="logged prediction rows"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fast path per case (median kept)")
    parser.add_argument(
        "--whole-frame-max",
        type=int,
        default=1_000_000,
        help="largest log the baseline checks as one frame; larger ones column group by column group",
    )
    parser.add_argument(
        "--group", type=int, default=3, help="columns per Evidently process of the grouped baseline"
    )
    parser.add_argument("--child", choices=["fast", "confirm", "baseline", "extract"], help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--columns", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(
            args.child, args.log, args.work, args.rows[0], args.columns.split(",") if args.columns else None
        )

    from mlpipe.config import load_params

    params = load_params(REPO / "params.yaml")
    load = round(os.getloadavg()[0], 2)  # the machine is shared: other load slows every path alike
    cases = {}
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-monitor-") as tmp:
        work = Path(tmp)
        model = fit_reference(params, work)
        sources = {name: logged_rows(params, model, *period) for name, period in PERIODS.items()}
        for rows in args.rows:
            for k, name in enumerate(PERIODS):
                cases[f"{rows} {name}"] = one_case(
                    params,
                    sources[name],
                    rows,
                    name,
                    work,
                    params.seed + 10 + k,
                    args.repeat,
                    args.whole_frame_max,
                    args.group,
                )
    print_table(cases)
    figures = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m_at_start": load,
        },
        "data": (
            "model fit on Jan-Mar 2013 (time split); "
            "logs resampled from Jan-Mar (stable) and Jul-Sep (drifted)"
        ),
        "monitor": {
            "window_rows": "whole log",
            "sample_rows": params.monitor.sample_rows,
            "reference_rows": params.monitor.reference_rows,
        },
        "aims": {str(n): {"seconds": sec, "peak_mb": mb} for n, (sec, mb) in AIMS.items()},
        "aims_met": {
            str(n): all(
                c["fast"]["check_s"] <= sec and c["fast"]["check_peak_mb"] <= mb
                for name, c in cases.items()
                if name.startswith(f"{n} ")
            )
            for n, (sec, mb) in AIMS.items()
            if n in args.rows
        },
        "fast_verdicts_same": all(not c["verdicts"]["fast_differs_on"] for c in cases.values()),
        "confirmed_verdicts_same": all(not c["verdicts"]["confirmed_differs_on"] for c in cases.values()),
        "decisions_agree": all(c["verdicts"]["fast_decision_agrees"] for c in cases.values()),
        "cases": cases,
    }
    report(figures, "monitor.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
