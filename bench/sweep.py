"""Benchmark: `mlpipe sweep` with 1 and 2 Dask workers, against bare loops over the same candidates.

In a temporary copy of the project with this repository's split outputs (artifacts/split, as `mlpipe run`
left them; run it first), measured in the same run:
- bare, 1 process: one plain process fits and scores every candidate of params.yaml `sweep.grid` in
  turn with the same library calls (no Prefect, no Dask, no MLflow); seconds of the loop after imports;
- bare, 2 processes: the same candidates split between two plain processes started together (loops
  released at the same moment): what this machine's cores give two workers at best;
- `mlpipe sweep --no-apply --workers 1` and `--workers 2`: the whole command; its candidate phase (the
  Dask cluster's start, the workers' imports, the data sent, every candidate scored) as the flow
  measures it; and the span from the first candidate's start to the last one's end (fits only).
Writes bench/results/sweep.json. Usage: python bench/sweep.py [--repeat N]
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
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import REPO, make_project, report, timed  # noqa: E402

from mlpipe.runtime.shell import tool_env  # noqa: E402


def bare_loop(root: Path, part: int, parts: int) -> None:
    """Candidates part, part + parts, ... fitted and scored serially here; prints "ready", waits for a
    line on stdin, then runs the loop and prints its seconds and scores as JSON."""
    from mlpipe.config import ProjectPaths, load_params
    from mlpipe.pipeline.sweep import (
        candidate_seed,
        candidate_train_cfg,
        expand_grid,
        read_verified_train,
        score_candidate,
        training_frames,
    )

    params = load_params(root / "params.yaml")
    frames = training_frames(
        read_verified_train(ProjectPaths(root))[0], params, params.sweep.validation_fraction
    )
    mine = list(enumerate(expand_grid(params.train.hyperparams, params.sweep.grid)))[part::parts]
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    scores = {}
    for i, hp in mine:
        scored = score_candidate(
            candidate_train_cfg(params.train, hp),
            params.features,
            frames["X_fit"],
            frames["y_fit"],
            frames["X_val"],
            frames["y_val"],
            candidate_seed(params),
            params.evaluate.threshold,
            params.task,
        )
        scores[i] = scored["metrics"][params.sweep_metric]
    print(json.dumps({"loop_s": round(time.perf_counter() - t0, 3), "scores": scores}), flush=True)


def bare(root: Path, processes: int) -> tuple[float, dict[int, float]]:
    """Seconds from releasing `processes` bare loops together until the last is done; every score."""
    cmds = [
        [sys.executable, __file__, "--bare-in", str(root), "--part", str(k), "--parts", str(processes)]
        for k in range(processes)
    ]
    procs = [
        subprocess.Popen(
            c, cwd=root, env=tool_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for c in cmds
    ]
    for proc in procs:
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"bare loop failed: {proc.communicate()}")
    t0 = time.perf_counter()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    scores: dict[int, float] = {}
    for proc in procs:
        scores.update({int(k): v for k, v in json.loads(proc.stdout.readline())["scores"].items()})
    elapsed = time.perf_counter() - t0
    for proc in procs:
        proc.wait(timeout=60)
    return elapsed, scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1, help="repetitions of each measurement (median)")
    parser.add_argument("--bare-in", type=Path, help=argparse.SUPPRESS)  # a bare loop, in its own process
    parser.add_argument("--part", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--parts", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_in:
        bare_loop(args.bare_in, args.part, args.parts)
        return 0
    split = REPO / "artifacts" / "split"
    if not (split / "split.json").exists():
        raise SystemExit(f"{split}: no split outputs; run `mlpipe run` in {REPO} first")
    py = sys.executable
    runs: dict[str, list] = {"bare1": [], "bare2": [], 1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-sweep-") as tmp:
        root = make_project(Path(tmp) / "project", full=False)
        shutil.copytree(split, root / "artifacts" / "split")
        for _ in range(args.repeat):  # interleaved, so a busy spell on the machine hits every variant
            runs["bare1"].append(bare(root, 1))
            runs["bare2"].append(bare(root, 2))
            for workers in (1, 2):
                wall, out, _ = timed(
                    [py, "-m", "mlpipe.cli", "sweep", "--no-apply", "--json", "--workers", str(workers)], root
                )
                runs[workers].append((wall, json.loads(out)))
        cfg = yaml.safe_load((root / "params.yaml").read_text())["sweep"]
        rows = json.loads((root / "artifacts/split/split.json").read_text())["parts"]["train"]["rows"]

    def med(values) -> float:
        return round(statistics.median(values), 3)

    bare1, bare2 = med([t for t, _ in runs["bare1"]]), med([t for t, _ in runs["bare2"]])
    phase = {w: med([s["candidates_wall_s"] for _, s in runs[w]]) for w in (1, 2)}
    span = {w: med([s["candidates_span_s"] for _, s in runs[w]]) for w in (1, 2)}
    fits = {w: med([s["fit_s_total"] for _, s in runs[w]]) for w in (1, 2)}
    command = {w: med([t for t, _ in runs[w]]) for w in (1, 2)}
    reference = [v for _, v in sorted(runs["bare1"][0][1].items())]
    same = all([v for _, v in sorted(scores.items())] == reference for _, scores in runs["bare2"]) and all(
        [c[f"val_{cfg['metric']}"] for c in s["candidates"]] == reference for w in (1, 2) for _, s in runs[w]
    )
    figures = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "data": f"initial period (Jan-Mar 2013), train split {rows} rows",
        "grid": cfg["grid"],
        "candidates": len(reference),
        "bare_1_process_s": bare1,
        "bare_2_processes_s": bare2,
        "machine_speedup_2_vs_1": round(bare1 / bare2, 2),
        "sweep_1_worker_candidates_s": phase[1],
        "sweep_2_workers_candidates_s": phase[2],
        "speedup_candidates_2_vs_1": round(phase[1] / phase[2], 2),
        "sweep_1_worker_span_s": span[1],
        "sweep_2_workers_span_s": span[2],
        "speedup_span_2_vs_1": round(span[1] / span[2], 2),
        "sweep_1_worker_fit_s_total": fits[1],
        "sweep_2_workers_fit_s_total": fits[2],
        "sweep_1_worker_command_s": command[1],
        "sweep_2_workers_command_s": command[2],
        "speedup_command_2_vs_1": round(command[1] / command[2], 2),
        "ratio_1_worker_candidates_vs_bare": round(phase[1] / bare1, 2),
        "ratio_2_workers_candidates_vs_bare_2": round(phase[2] / bare2, 2),
        "winner": runs[2][0][1]["winner_hyperparams"],
        "same_scores_everywhere": same,
        "repeat": args.repeat,
    }
    report(figures, "sweep.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
