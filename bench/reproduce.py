"""Benchmark: `mlpipe reproduce` against the original pipeline's own time on the same data.

In a temporary copy of the project: `mlpipe run` once (the original model), then, measured in the same
run, the baseline `dvc repro --force` (every stage, as the original training ran them) and
`mlpipe reproduce models:/NAME/1` (worktree + data restore + `dvc repro --force` + comparison +
MLflow record), interleaved. Goal of issue 18: reproduce <= 1.1 x baseline + 5 s (issue 4's was
1.2 x + 10 s). Writes bench/results/reproduce.json.
Usage: python bench/reproduce.py [--repeat N] [--full]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import make_project, report, timed  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each measurement (median)")
    parser.add_argument("--full", action="store_true", help="the whole bundled year as the data")
    args = parser.parse_args(argv)
    py = sys.executable
    dvc = str(Path(py).parent / "dvc")
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-repro-") as tmp:
        root = make_project(Path(tmp) / "project", args.full)
        timed([py, "-m", "mlpipe.cli", "run"], root)
        baseline, repro, verdicts = [], [], []
        for _ in range(args.repeat):  # interleaved: a shared machine's load changes within minutes
            baseline.append(timed([dvc, "repro", "--force"], root)[0])
            seconds, out, _ = timed(
                [py, "-m", "mlpipe.cli", "reproduce", "models:/flights-late/1", "--json"], root
            )
            repro.append(seconds)
            verdicts.append(json.loads(out)["identical"])
    base_s, repro_s = statistics.median(baseline), statistics.median(repro)
    pairs = [round(r / b, 2) for b, r in zip(baseline, repro, strict=True)]
    figures = {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "data": "whole 2013" if args.full else "initial period (Jan-Mar 2013)",
        "dvc_repro_force_s": round(base_s, 3),
        "mlpipe_reproduce_s": round(repro_s, 3),
        "ratio": round(repro_s / base_s, 2),
        "overhead_s": round(repro_s - base_s, 3),
        "pair_ratios": pairs,  # each reproduce over the baseline run just before it
        "load_average": [round(x, 2) for x in __import__("os").getloadavg()],
        "goal_s": round(1.1 * base_s + 5, 3),  # issue 18 (issue 4 asked for 1.2x + 10 s)
        "goal_met": repro_s <= 1.1 * base_s + 5,
        "all_identical": all(verdicts),
    }
    report(figures, "reproduce-full.json" if args.full else "reproduce.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
