"""Benchmark: `mlpipe run` against a bare training script on the same data, plus the no-op rerun.

Runs everything in one process tree on this machine, in a temporary copy of the project, and writes
bench/results/pipeline.json (or pipeline-full.json with --full: the whole bundled year as the data).
The no-op rerun is measured three ways: `mlpipe run` (answered before any flow starts), the flow
itself (`mlpipe run --flow`) with Prefect's temporary server, and the flow against a running
`prefect server` (what a scheduled deployment sees).
A fresh copy's Prefect database is seeded from the template in the user's cache when there is one
(runtime.localserver: migrated once per Prefect version); each pair says whether it was, and the load.
--no-prefect-template turns that off (MLPIPE_PREFECT_TEMPLATE=0): every fresh run migrates a new database.
Usage: python bench/pipeline.py [--repeat N] [--fresh N] [--full] [--no-prefect-template]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROJECT_FILES = [
    "dvc.yaml",
    "params.yaml",
    ".dvcignore",
    ".gitignore",
    ".dvc/config",
    ".dvc/.gitignore",
    "uv.lock",
    "src",
    "data.dvc",
    "dvc.lock",
    "metrics.json",
]
sys.path.insert(0, str(REPO / "src"))
from mlpipe.runtime.localserver import prefect_template_path  # noqa: E402
from mlpipe.runtime.shell import tool_env  # noqa: E402


def durations(log: str) -> dict[str, float]:
    """Seconds per flow step, from Prefect's log: the time between one task's end and the next's
    (the first from the flow's start; "startup" is the temporary server's start before that)."""
    stamp = r"(\d\d):(\d\d):(\d\d\.\d+) \| \w+ +\| "
    out, prev = {}, None
    for m in re.finditer(
        stamp + r"(?:prefect - Starting temporary server|Flow run '[^']+' - Beginning flow run|"
        r"Task run '([^']+?)(?:-[0-9a-f]{3})?' - Finished in state (\w+))",
        log,
    ):
        t = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
        if m.group(4):
            out[m.group(4) + ("" if m.group(5) == "Completed" else f" ({m.group(5)})")] = round(t - prev, 3)
        elif prev is not None:
            out["startup"] = round(t - prev, 3)
        prev = t
    return out


def before_flow(log: str, started: float) -> float | None:
    """Seconds from the command's start (`time.time()`) to its flow run's first line (the interpreter, the
    imports and the Prefect server's start, with whatever the command overlaps with them)."""
    m = re.search(r"(\d\d):(\d\d):(\d\d\.\d+) \| \w+ +\| Flow run '[^']+' - Beginning flow run", log)
    if m is None:
        return None
    day = time.localtime(started)
    midnight = time.mktime((day.tm_year, day.tm_mon, day.tm_mday, 0, 0, 0, 0, 0, -1))
    return round(int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) - (started - midnight), 3)


def timed(args: list[str], cwd: Path) -> tuple[float, str, str]:
    elapsed, out, log, _ = timed_at(args, cwd)
    return elapsed, out, log


def children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's ended and waited-for descendants so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


LAST_CPU_S = [0.0]  # the CPU seconds of the last command timed_at ran (its whole process tree)


def timed_at(args: list[str], cwd: Path) -> tuple[float, str, str, float]:
    """(wall seconds, stdout, stderr, start as time.time()) of one command; its CPU seconds (the whole
    tree's, a figure the other workers of a shared machine move far less than the clock) in LAST_CPU_S."""
    env = tool_env()
    env.pop("MLFLOW_TRACKING_URI", None)
    cpu0, started, t0 = children_cpu_s(), time.time(), time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    LAST_CPU_S[0] = children_cpu_s() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"{args} failed:\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout, proc.stderr, started


def make_project(dest: Path, full: bool) -> Path:
    for name in PROJECT_FILES:
        if full and name in ("data.dvc", "dvc.lock", "metrics.json"):
            continue  # they describe the committed initial period, not the whole year
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    if full:
        text = (dest / "params.yaml").read_text()
        # The weather table ends on 31 Dec local time: the last UTC hours have none and would fail validation.
        text = text.replace('end: "2013-04-01"', 'end: "2014-01-01"')
        (dest / "params.yaml").write_text(text)
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "-c", "user.email=bench@mlpipe", "-c", "user.name=bench", "commit", "-qm", "bench"],
    ):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return dest


def noop_with_server(cmd: list[str], root: Path, repeat: int) -> list[float]:
    """No-op `mlpipe run` times against a running local Prefect server (started and stopped here)."""
    from mlpipe.runtime.localserver import free_port, start_prefect_server
    from mlpipe.runtime.shell import stop_process_group

    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="mlpipe-bench-prefect-"))  # outside the project: keep its tree clean
    server = start_prefect_server(port, home)
    try:
        os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
        try:
            return [timed(cmd, root)[0] for _ in range(repeat)]
        finally:
            del os.environ["PREFECT_API_URL"]
    finally:
        stop_process_group(server)
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="bare-baseline and no-op repetitions (median)")
    parser.add_argument(
        "--full", action="store_true", help="the whole bundled year (336k flights) as the data"
    )
    parser.add_argument(
        "--fresh",
        type=int,
        default=1,
        help="fresh runs, each in a new copy of the project and followed by a bare fit (median ratio)",
    )
    parser.add_argument(
        "--no-prefect-template",
        action="store_true",
        help="every fresh run migrates a new Prefect database (no copy of the template)",
    )
    args = parser.parse_args(argv)
    if args.no_prefect_template:
        os.environ["MLPIPE_PREFECT_TEMPLATE"] = "0"  # read by the runs through tool_env's copy of it
    py = sys.executable
    mlpipe_cmd = [py, "-m", "mlpipe.cli", "run"]
    dvc = str(Path(py).parent / "dvc")
    bare_cmd = [py, str(REPO / "bench" / "bare_train.py")]
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-") as tmp:
        # Fresh clones: bootstrap + all stages + MLflow record + gate; each followed at once by the bare fit
        # on its data, so a pair shares the machine's state (this VM's speed drifts by 2x within minutes).
        fresh, pairs = [], []
        for i in range(args.fresh):
            root = make_project(Path(tmp) / f"project-{i}", args.full)
            template = prefect_template_path()
            had_template = template is not None and template.exists()  # None: turned off
            load_before = os.getloadavg()[0]
            elapsed, out, log, started = timed_at(mlpipe_cmd, root)
            fresh_cpu = LAST_CPU_S[0]
            bare_pair = timed([*bare_cmd, str(root)], root)[0]
            pinned_pair = timed([*bare_cmd, str(root), "--pinned"], root)[0]
            pinned_cpu = LAST_CPU_S[0]
            fresh.append((elapsed, out, log, started))
            pairs.append(
                {
                    "fresh_s": round(elapsed, 3),
                    "bare_s": round(bare_pair, 3),
                    "ratio": round(elapsed / bare_pair, 2),
                    "bare_pinned_s": round(pinned_pair, 3),
                    "ratio_pinned": round(elapsed / pinned_pair, 2),
                    "before_flow_s": before_flow(log, started),
                    # CPU seconds of each process tree: what the run costs, whatever else the cores ran
                    "fresh_cpu_s": round(fresh_cpu, 2),
                    "bare_pinned_cpu_s": round(pinned_cpu, 2),
                    "ratio_pinned_cpu": round(fresh_cpu / pinned_cpu, 2),
                    # a copy of the migrated Prefect database was there to seed the project's (issue 33)
                    "prefect_template": had_template,
                    # the machine's 1-minute load average before and after the run (others share it)
                    "load_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
                }
            )
            if i < args.fresh - 1:
                shutil.rmtree(root)
        full_s = statistics.median(t for t, _, _, _ in fresh)
        _, out, log, started = min(fresh, key=lambda r: abs(r[0] - full_s))  # the median run's steps
        stages_full = next(line for line in out.splitlines() if "stages run" in line).split(":", 1)[1].strip()
        bare = [timed([*bare_cmd, str(root)], root) for _ in range(args.repeat)]
        bare_s = statistics.median([t for t, _, _ in bare] + [p["bare_s"] for p in pairs])
        bare_fit_s, bare_auc = (float(x) for x in bare[0][1].split())
        noop = [timed(mlpipe_cmd, root)[0] for _ in range(args.repeat)]  # answered before any flow starts
        noop_runs = [
            timed([*mlpipe_cmd, "--flow"], root) for _ in range(args.repeat)
        ]  # the flow, skipping all
        noop_flow = [t for t, _, _ in noop_runs]
        noop_server = noop_with_server([*mlpipe_cmd, "--flow"], root, args.repeat)
        repro_noop = [timed([dvc, "repro"], root)[0] for _ in range(args.repeat)]
        metrics = json.loads((root / "metrics.json").read_text())
        split = json.loads((root / "artifacts/split/split.json").read_text())
        rows = {k: v["rows"] for k, v in split["parts"].items()}
    figures = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "bare_train_s": round(bare_s, 3),
        "bare_fit_after_imports_s": round(bare_fit_s, 3),
        "bare_roc_auc": bare_auc,
        "mlpipe_run_fresh_s": round(full_s, 3),
        "mlpipe_run_fresh_pairs": pairs,
        "ratio_fresh_run_vs_bare_median_pair": statistics.median(p["ratio"] for p in pairs),
        # the bare fit with the thread count mlpipe's train stage uses (params train.n_jobs)
        "ratio_fresh_run_vs_bare_pinned_median_pair": statistics.median(p["ratio_pinned"] for p in pairs),
        "ratio_fresh_run_vs_bare_pinned_cpu_median_pair": statistics.median(
            p["ratio_pinned_cpu"] for p in pairs
        ),
        "mlpipe_run_stages": stages_full,
        "mlpipe_run_fresh_before_flow_s": before_flow(log, started),
        "mlpipe_run_fresh_steps_s": durations(log),
        "mlpipe_roc_auc": metrics["roc_auc"],
        "ratio_fresh_run_vs_bare": round(full_s / bare_s, 2),
        "mlpipe_run_noop_s": round(statistics.median(noop), 3),
        "mlpipe_run_noop_flow_s": round(statistics.median(noop_flow), 3),
        "mlpipe_run_noop_flow_steps_s": durations(noop_runs[-1][2]),
        "mlpipe_run_noop_flow_with_prefect_server_s": round(statistics.median(noop_server), 3),
        "dvc_repro_noop_s": round(statistics.median(repro_noop), 3),
        "ratio_noop_vs_bare": round(statistics.median(noop) / bare_s, 2),
    }
    figures["rows"] = rows
    report(figures, "pipeline-full.json" if args.full else "pipeline.json")
    return 0


def report(figures: dict, name: str) -> None:
    """Write bench/results/<name> and print the figures, one per line."""
    out_path = REPO / "bench" / "results" / name
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(figures, indent=2) + "\n")
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(f"written to {out_path.relative_to(REPO)}")


if __name__ == "__main__":
    raise SystemExit(main())
